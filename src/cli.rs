//! The administrative subcommands other than `serve`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::config::{unknown_env_vars, Config};
use crate::service::audit::{verify_chain, ChainCheck};
use crate::service::secrets::Secrets;

/// `migrate`: applies pending migrations and prints the schema version.
pub fn migrate(config: &Config) -> anyhow::Result<i64> {
    let db = crate::server::open_database(config)?;
    db.close();
    let conn = crate::store::open_read_only(&config.database_path())?;
    Ok(crate::store::migrations::applied_version(&conn)?)
}

/// `check-config`: validates the configuration and what it points at; returns
/// the lines to print, or the first problem.
pub fn check_config(config: &Config) -> anyhow::Result<Vec<String>> {
    let mut report = Vec::new();
    for name in unknown_env_vars() {
        report.push(format!(
            "warning: {name} is not a configuration variable and is ignored"
        ));
    }
    let data_dir = &config.data_dir;
    if data_dir.exists() {
        let probe = data_dir.join(".check-config");
        std::fs::write(&probe, b"").with_context(|| {
            format!("the data directory {} is not writable", data_dir.display())
        })?;
        let _ = std::fs::remove_file(probe);
    } else {
        report.push(format!(
            "note: the data directory {} will be created at start",
            data_dir.display()
        ));
    }
    for (what, path) in [
        ("JWT secret", config.jwt_secret_path()),
        ("API key pepper", config.pepper_path()),
    ] {
        if path.exists() {
            report.push(format!("{what}: {} (present)", path.display()));
        } else {
            report.push(format!(
                "{what}: {} (will be generated at first start)",
                path.display()
            ));
        }
    }
    if config.jwt_secret_path().exists() && config.pepper_path().exists() {
        Secrets::load(config, false).context("while reading the secret files")?;
    }
    report.push(format!("listen: {}", config.listen));
    report.push(format!("database: {}", config.database_path().display()));
    let temp_dir = config.database_temp_dir();
    report.push(if temp_dir.exists() {
        let probe = temp_dir.join(".check-config");
        std::fs::write(&probe, b"").with_context(|| {
            format!(
                "the temporary files folder {} (database.temp_dir) is not writable",
                temp_dir.display()
            )
        })?;
        let _ = std::fs::remove_file(probe);
        format!("temporary files: {}", temp_dir.display())
    } else {
        format!(
            "temporary files: {} (will be created at start, mode 0700)",
            temp_dir.display()
        )
    });
    if config.dropdir.enabled {
        crate::dropfile::layout::check_roots(config).map_err(|e| anyhow::anyhow!(e))?;
        report.push(format!(
            "drop directory: {} (work folders {}; same filesystem)",
            config.drop_root().display(),
            config.drop_work_root().display()
        ));
    }
    Ok(report)
}

/// `verify-audit`: walks the audit chain; `Err` names the first broken link.
pub fn verify_audit(database: &Path) -> anyhow::Result<u64> {
    let conn = crate::store::open_read_only(database)
        .with_context(|| format!("while opening {}", database.display()))?;
    match verify_chain(&conn)? {
        ChainCheck::Intact { rows } => Ok(rows),
        ChainCheck::Broken { seq, reason } => {
            anyhow::bail!("audit chain broken at seq {seq}: {reason}")
        }
    }
}

/// `healthcheck`: exit status for probes.
pub fn healthcheck(config: &Config, timeout: Duration) -> anyhow::Result<()> {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    crate::healthcheck::check(addr, timeout).map_err(anyhow::Error::msg)
}

/// A per-enterprise limit as given on the command line: a number, or `default`.
pub fn parse_limit(raw: &str) -> Result<Option<u32>, String> {
    if raw.eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(0) | Err(_) => Err(format!(
            "{raw:?} is neither a positive number nor \"default\""
        )),
        Ok(n) => Ok(Some(n)),
    }
}

/// Opens the database, runs `work` on a one-thread runtime and closes the
/// database again: what every operator command that touches it does.
fn with_database<T, F, Fut>(config: &Config, work: F) -> anyhow::Result<T>
where
    F: FnOnce(crate::store::Db) -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::AppError>>,
{
    let db = crate::server::open_database(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(work(db.clone()));
    db.close();
    result.map_err(|e| match e {
        crate::AppError::Validation(fields) => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::anyhow!("{other}"),
    })
}

fn enterprise_id(raw: &str) -> anyhow::Result<crate::domain::EnterpriseId> {
    raw.parse()
        .map_err(|_| anyhow::anyhow!("{raw:?} is not an enterprise id"))
}

/// `enterprise-sync registration-token`: a one-time token, stored hashed.
pub fn registration_token(config: &Config, valid_hours: u32) -> anyhow::Result<String> {
    with_database(config, |db| async move {
        crate::service::registration_tokens::issue(&db, chrono::Utc::now(), valid_hours).await
    })
}

/// `enterprise-sync create-enterprise …`: the enterprise, its first IT admin
/// and their invitation link.
pub fn create_enterprise(
    config: &Config,
    input: crate::service::accounts::Registration,
) -> anyhow::Result<(crate::service::accounts::Registered, String)> {
    with_database(config, |db| async move {
        crate::service::accounts::create_by_operator(&db, config, chrono::Utc::now(), input).await
    })
}

/// `enterprise-sync reset-password EMAIL [--enterprise ID]`: a one-time link
/// to choose a new password, and the enterprise's name.
pub fn reset_password(
    config: &Config,
    email: &str,
    enterprise: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let enterprise = enterprise.map(enterprise_id).transpose()?;
    let clock = crate::clock::SystemClock::shared();
    let base = crate::service::accounts::public_base(config);
    let ttl = config.auth.password_reset_ttl_minutes;
    with_database(config, |db| async move {
        crate::service::password_changes::operator_link(
            &db,
            &clock,
            (&base, ttl),
            email,
            enterprise,
        )
        .await
    })
}

/// `enterprise-sync set-seats --enterprise ID N`.
pub fn set_seats(config: &Config, enterprise: &str, seats: i64) -> anyhow::Result<()> {
    let enterprise = enterprise_id(enterprise)?;
    let clock = crate::clock::SystemClock::shared();
    with_database(config, |db| async move {
        crate::service::operator_settings::set_seats(&db, &clock, enterprise, seats).await
    })
}

/// One line of `enterprise-sync enterprises`.
#[derive(Debug, serde::Serialize)]
pub struct EnterpriseLine {
    pub id: String,
    pub company_name: String,
    pub seats_purchased: i64,
    pub seats_used: i64,
    pub people: i64,
    pub last_successful_sync: Option<String>,
}

/// `enterprise-sync enterprises`: every enterprise with its seats, people and
/// last successful sync.
pub fn enterprises(config: &Config) -> anyhow::Result<Vec<EnterpriseLine>> {
    with_database(config, |db| async move {
        db.read(|conn| {
            let mut lines = Vec::new();
            for id in crate::store::enterprises::all_ids(conn)? {
                let Some(account) = crate::store::enterprises::get(conn, id)? else {
                    continue;
                };
                let staff = crate::store::users::staff_counts(conn, id)?;
                lines.push(EnterpriseLine {
                    id: id.to_string(),
                    company_name: account.company_name,
                    seats_purchased: account.seats_purchased,
                    seats_used: staff.active,
                    people: staff.total,
                    last_successful_sync: crate::store::sync_logs::last_success(conn, id)?,
                });
            }
            Ok::<_, crate::AppError>(lines)
        })
        .await
    })
}

/// `set-rate-limit`: changes an enterprise's request limits.
pub fn set_rate_limit(
    config: &Config,
    enterprise: &str,
    per_key: Option<Option<u32>>,
    per_enterprise: Option<Option<u32>>,
    scim: Option<Option<u32>>,
) -> anyhow::Result<()> {
    let enterprise = enterprise_id(enterprise)?;
    let clock = crate::clock::SystemClock::shared();
    with_database(config, |db| async move {
        let current = db
            .read(move |conn| {
                crate::store::enterprises::get(conn, enterprise).map_err(crate::AppError::from)
            })
            .await?
            .ok_or(crate::AppError::NotFound {
                resource: "enterprise",
            })?;
        let current = crate::store::enterprises::RateLimits::of(&current);
        let limits = crate::store::enterprises::RateLimits {
            per_key: per_key.unwrap_or(current.per_key),
            per_enterprise: per_enterprise.unwrap_or(current.per_enterprise),
            scim: scim.unwrap_or(current.scim),
        };
        crate::service::operator_settings::set_rate_limits(&db, &clock, enterprise, limits).await
    })
}

/// What `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    Users,
    Stores,
}

/// `import FILE`: runs the import engine on a CSV or JSON file, read as the drop
/// directory reads it; the run is logged with `initiated_by: file:<name>`.
pub fn import_file(
    config: &Config,
    kind: Option<ImportKind>,
    file: &Path,
    enterprise: &str,
    mode: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<crate::domain::import::ImportReport> {
    use crate::domain::import::{ImportMode, ImportSource, SourceKind};
    use crate::dropfile::formats::Kind;
    use crate::service::drop_files;
    use crate::AppError;

    let enterprise: crate::domain::EnterpriseId = enterprise
        .parse()
        .map_err(|_| anyhow::anyhow!("{enterprise:?} is not an enterprise id"))?;
    let mode = mode
        .map(|m| {
            ImportMode::parse(m).ok_or_else(|| {
                anyhow::anyhow!("--mode must be create_only, update_only or create_or_update")
            })
        })
        .transpose()?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file_kind = match kind {
        Some(ImportKind::Users) => Kind::Users,
        Some(ImportKind::Stores) => Kind::Stores,
        None => match Kind::of(&name, &config.dropdir) {
            Some(kind) => kind,
            None => anyhow::bail!("{name:?} does not start with users or stores: say --kind"),
        },
    };
    let db = crate::server::open_database(config)?;
    let secrets = Secrets::load(config, true).context("while loading secrets")?;
    let services = crate::service::Services::new(
        std::sync::Arc::new(config.clone()),
        db.clone(),
        crate::clock::SystemClock::shared(),
        secrets,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let settings = runtime.block_on(crate::service::drop_config::settings_of(
        &services, enterprise,
    ))?;
    if file_kind == Kind::Users && settings.is_full_export(&name) {
        eprintln!(
            "{name}: imported as a delta file; full exports (deactivating the people they leave out) go through the drop directory, where the guard and approvals apply"
        );
    }
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("{name}: importing…"));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    // The drop directory's own way from a file to the engine: the same size
    // limit, the same streaming of large users files, the same row limits.
    // A service error (engine refusal, database) keeps its details; a file
    // that is refused or unreadable is told in one sentence.
    let service_error = |e: AppError| match e.details() {
        serde_json::Value::Null => anyhow::anyhow!("{e}"),
        details => anyhow::anyhow!(
            "{e}: {}",
            serde_json::to_string(&details).unwrap_or_default()
        ),
    };
    let result = runtime.block_on(async {
        let opened = drop_files::open_file(
            &services,
            file.to_path_buf(),
            (Some(file_kind), &name),
            &settings,
        )
        .await
        .map_err(service_error)?
        .map_err(|refusal| anyhow::anyhow!("{}: refused: {refusal}", file.display()))?;
        let mut details = serde_json::Map::new();
        details.insert("file".into(), serde_json::json!(name));
        details.insert("encoding".into(), serde_json::json!(opened.encoding));
        details.insert("sha256".into(), serde_json::json!(opened.sha256));
        let run = drop_files::FileRun {
            enterprise,
            kind: file_kind,
            name: name.clone(),
            source: ImportSource {
                kind: SourceKind::File,
                initiated_by: format!("file:{name}"),
            },
            details,
            settings,
            mode,
            dry_run,
            full_export: None,
            finish: None,
        };
        match drop_files::import_file(&services, opened, run)
            .await
            .map_err(service_error)?
        {
            drop_files::FileOutcome::Ran { report, .. } => Ok(report),
            drop_files::FileOutcome::Unreadable { reason, .. } => {
                Err(anyhow::anyhow!("{name}: {reason}"))
            }
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    db.close();
    result
}
