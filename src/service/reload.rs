//! `systemctl reload` (SIGHUP): the configuration file is read again and the
//! keys that can change under a running service take effect at once; the
//! others are named in the log as waiting for a restart.
//!
//! Reloadable: `log_level`, `trusted_proxies`, `allow_registration`,
//! `rate_limit.*` (not `prune_interval_secs`), `webhooks.allowed_networks`,
//! `dropdir.folder_names`, and the drop directory's
//! per-enterprise defaults and profiles (`dropdir.completion`, `quiet_secs`,
//! `fallback_encoding`, `full_export_*`, `profiles`). The listener, folders,
//! database, secrets, limits that size buffers and background schedules are
//! fixed at start.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Services;
use crate::config::{Config, RateLimitConfig};

/// What a reload did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Reloaded {
    /// Keys whose new values now apply.
    pub applied: Vec<String>,
    /// Keys changed in the file that take effect at the next start.
    pub need_restart: Vec<String>,
}

/// Applies `new` (already loaded and validated) to the running service.
pub fn apply(svc: &Services, new: &Config) -> Reloaded {
    let current = svc.settings();
    let next = with_reloadable(&svc.config, new);
    let reloaded = Reloaded {
        applied: changed_keys(&current, &next),
        need_restart: changed_keys(&next, new),
    };
    if current.log_level != next.log_level {
        if let Err(e) = crate::telemetry::set_log_level(&next.log_level) {
            tracing::warn!(error = %e, "the new log_level was not applied");
        }
    }
    svc.replace_settings(next);
    reloaded
}

/// `started` with the reloadable keys taken from `new`.
fn with_reloadable(started: &Config, new: &Config) -> Config {
    let mut next = started.clone();
    next.log_level = new.log_level.clone();
    next.trusted_proxies = new.trusted_proxies.clone();
    next.allow_registration = new.allow_registration;
    next.webhooks.allowed_networks = new.webhooks.allowed_networks.clone();
    next.rate_limit = RateLimitConfig {
        // The pruning task's period is set when it starts.
        prune_interval_secs: started.rate_limit.prune_interval_secs,
        ..new.rate_limit.clone()
    };
    let (to, from) = (&mut next.dropdir, &new.dropdir);
    to.completion = from.completion;
    to.quiet_secs = from.quiet_secs;
    to.fallback_encoding = from.fallback_encoding.clone();
    to.full_export_name_contains = from.full_export_name_contains.clone();
    to.full_export_max_deactivate_percent = from.full_export_max_deactivate_percent;
    to.full_export_max_deactivate_count = from.full_export_max_deactivate_count;
    to.profiles = from.profiles.clone();
    // The drop directory reads folder names live: a renamed folder is watched
    // from the next scan.
    to.folder_names = from.folder_names.clone();
    next
}

/// Dotted keys (`rate_limit.per_key_per_minute`, `dropdir.profiles`) whose
/// values differ.
fn changed_keys(before: &Config, after: &Config) -> Vec<String> {
    let (before, after) = (flatten(before), flatten(after));
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|key| before.get(*key) != after.get(*key))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Top-level keys and the keys of each section; deeper values (profiles,
/// folder names) compare whole.
fn flatten(config: &Config) -> BTreeMap<String, serde_json::Value> {
    let mut keys = BTreeMap::new();
    if let Ok(serde_json::Value::Object(top)) = serde_json::to_value(config) {
        for (key, value) in top {
            match value {
                serde_json::Value::Object(section) => {
                    for (sub, value) in section {
                        keys.insert(format!("{key}.{sub}"), value);
                    }
                }
                value => {
                    keys.insert(key, value);
                }
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloadable_keys_apply_and_the_others_wait_for_a_restart() {
        let started = Config::default();
        let mut new = started.clone();
        new.rate_limit.per_key_per_minute = 7;
        new.rate_limit.prune_interval_secs = 5;
        new.allow_registration = crate::config::RegistrationPolicy::Closed;
        new.dropdir.quiet_secs = 5;
        new.listen = "127.0.0.1:9999".parse().unwrap();
        new.backup.keep = 3;
        let next = with_reloadable(&started, &new);
        assert_eq!(next.rate_limit.per_key_per_minute, 7);
        assert_eq!(
            next.allow_registration,
            crate::config::RegistrationPolicy::Closed
        );
        assert_eq!(next.dropdir.quiet_secs, 5);
        assert_eq!(next.listen, started.listen);
        assert_eq!(
            changed_keys(&started, &next),
            [
                "allow_registration",
                "dropdir.quiet_secs",
                "rate_limit.per_key_per_minute"
            ]
        );
        assert_eq!(
            changed_keys(&next, &new),
            ["backup.keep", "listen", "rate_limit.prune_interval_secs"]
        );
    }
}
