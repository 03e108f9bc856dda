//! Structured logs with tracing: text or JSON output, filtered by `RUST_LOG` or
//! else the configured `log_level`, which a reload can change.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

use crate::config::LogFormat;

type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// Set once the process's subscriber is installed with the configured level;
/// `None` inside when `RUST_LOG` decides (then a reload leaves it alone).
static FILTER: OnceLock<Option<FilterHandle>> = OnceLock::new();

pub fn init(format: LogFormat, log_level: &str) {
    let (filter, from_config) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, false),
        Err(_) => (
            EnvFilter::try_new(log_level).unwrap_or_else(|_| EnvFilter::new("info")),
            true,
        ),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let output = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    // try_init: tests and repeated calls must not panic.
    if tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(from_config.then_some(handle));
    }
}

/// Applies a reloaded `log_level`. Returns whether the filter changed: not when
/// `RUST_LOG` decides, nor in a process without this subscriber (tests).
pub fn set_log_level(log_level: &str) -> Result<bool, String> {
    let Some(Some(handle)) = FILTER.get() else {
        return Ok(false);
    };
    let filter = EnvFilter::try_new(log_level).map_err(|e| e.to_string())?;
    handle.reload(filter).map_err(|e| e.to_string())?;
    Ok(true)
}
