#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use enterprise_sync::clock::SystemClock;
use enterprise_sync::config::{CliOverrides, Config, ConfigSource};
use enterprise_sync::{cli, server, telemetry};

/// On-premise provisioning of store staff and stores into Retail Performer.
#[derive(Parser)]
#[command(name = "enterprise-sync", version)]
struct Cli {
    /// TOML configuration file (keys: packaging/config.example.toml).
    #[arg(long, global = true, env = "ENTERPRISE_SYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the database and generated secrets.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (HTTP API, background work) until SIGTERM/SIGINT.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 when the running service answers /healthz.
    Healthcheck {
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Validate the configuration and the files it names.
    CheckConfig,
    /// Verify the audit trail's hash chain; names the first broken link.
    VerifyAudit,
    /// Print the REST API's OpenAPI 3.1 document (docs/openapi.json).
    Openapi,
    /// Import a file through the import engine, read as the drop directory reads it:
    /// CSV with a header (any encoding and delimiter it accepts) or a bulk-import
    /// JSON body.
    Import {
        /// The file; its name says its kind (users*, stores*) unless --kind does.
        file: PathBuf,
        /// users or stores, when the name does not say.
        #[arg(long)]
        kind: Option<cli::ImportKind>,
        /// The enterprise account id.
        #[arg(long)]
        enterprise: String,
        /// Overrides the file's mode: create_only, update_only or create_or_update.
        #[arg(long)]
        mode: Option<String>,
        /// Compute the report and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the database, consistent as of one moment, while the service runs:
    /// a new file (mode 0600), checked with integrity_check.
    Backup {
        /// The backup file to create.
        file: PathBuf,
    },
    /// Replace the database with a backup. Stop the service first; the
    /// replaced database is kept beside it.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Required: the current database is replaced.
        #[arg(long)]
        replace_database: bool,
    },
    /// Send a test email now through the configured SMTP server (email.*),
    /// and say what the server answered.
    SendTestEmail {
        /// The address to send it to.
        address: String,
    },
    /// Create an enterprise and its first IT admin, whatever allow_registration
    /// says; prints the admin's invitation link (they set their password there).
    CreateEnterprise {
        #[arg(long)]
        company_name: String,
        #[arg(long)]
        company_email: String,
        /// api, scim or file.
        #[arg(long, default_value = "api")]
        sync_mode: String,
        #[arg(long)]
        admin_name: String,
        #[arg(long)]
        admin_email: String,
        /// Seats purchased (default: accounts.default_seats).
        #[arg(long)]
        seats: Option<i64>,
    },
    /// Print a one-time link with which a person chooses a new password (for
    /// the day the last IT admin is locked out); audited
    ResetPassword {
        /// The person's email.
        email: String,
        /// The enterprise account id, when the email has accounts in several.
        #[arg(long)]
        enterprise: Option<String>,
    },
    /// Set an enterprise's purchased seats (audited; imports apply it at once).
    SetSeats {
        /// The enterprise account id.
        #[arg(long)]
        enterprise: String,
        /// Seats purchased.
        seats: i64,
    },
    /// List the enterprises: seats purchased and used, people, last successful sync.
    Enterprises {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time registration token: with it, one more enterprise may
    /// register while registration is closed (allow_registration).
    RegistrationToken {
        /// Hours the token stays valid.
        #[arg(long, default_value_t = 72)]
        valid_hours: u32,
    },
    /// Set an enterprise's request limits (requests per minute, or "default").
    SetRateLimit {
        /// The enterprise account id.
        #[arg(long)]
        enterprise: String,
        /// Per API key: a number, or "default" for the configured value.
        #[arg(long)]
        per_key: Option<String>,
        /// All the enterprise's keys together: a number, or "default".
        #[arg(long)]
        per_enterprise: Option<String>,
        /// The enterprise's SCIM requests (its identity provider): a number,
        /// or "default".
        #[arg(long)]
        scim: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen } | Command::Healthcheck { listen, .. } => *listen,
        _ => None,
    };
    let overrides = CliOverrides {
        listen,
        data_dir: cli.data_dir.clone(),
    };
    let source = enterprise_sync::config::ConfigSource {
        file: cli.config.clone(),
        overrides,
    };
    let config = match source.load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.command.opens_database() {
        // Before any thread starts: SQLite reads it when it first needs a
        // temporary file, and the environment is the process's to share.
        let temp_dir = config.database_temp_dir();
        if let Err(e) = enterprise_sync::store::prepare_temp_dir(&temp_dir) {
            eprintln!(
                "error: the temporary files folder {} (database.temp_dir) cannot be used: {e}",
                temp_dir.display()
            );
            return ExitCode::from(2);
        }
        std::env::set_var("SQLITE_TMPDIR", &temp_dir);
    }
    telemetry::init(config.log_format, &config.log_level);
    for name in enterprise_sync::config::unknown_env_vars() {
        tracing::warn!(variable = %name, "ignoring an ENTERPRISE_SYNC_* variable that names no configuration key");
    }
    match run(cli.command, config, source) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Whether the command opens the database (and so may need SQLite's
    /// temporary files).
    fn opens_database(&self) -> bool {
        !matches!(
            self,
            Command::Healthcheck { .. }
                | Command::CheckConfig
                | Command::Openapi
                | Command::SendTestEmail { .. }
        )
    }
}

fn run(command: Command, config: Config, source: ConfigSource) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(server::serve(config, SystemClock::shared(), source))
        }
        Command::Migrate => {
            let version = cli::migrate(&config)?;
            println!(
                "database {} is at schema version {version}",
                config.database_path().display()
            );
            Ok(())
        }
        Command::Healthcheck { timeout_secs, .. } => {
            cli::healthcheck(&config, Duration::from_secs(timeout_secs))
        }
        Command::CheckConfig => {
            for line in cli::check_config(&config)? {
                println!("{line}");
            }
            println!("configuration OK");
            Ok(())
        }
        Command::SetRateLimit {
            enterprise,
            per_key,
            per_enterprise,
            scim,
        } => {
            let parse = |raw: Option<String>| {
                raw.as_deref()
                    .map(cli::parse_limit)
                    .transpose()
                    .map_err(anyhow::Error::msg)
            };
            cli::set_rate_limit(
                &config,
                &enterprise,
                parse(per_key)?,
                parse(per_enterprise)?,
                parse(scim)?,
            )?;
            println!("rate limits of {enterprise} updated");
            Ok(())
        }
        Command::Import {
            kind,
            file,
            enterprise,
            mode,
            dry_run,
        } => {
            let report =
                cli::import_file(&config, kind, &file, &enterprise, mode.as_deref(), dry_run)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.success {
                Ok(())
            } else {
                anyhow::bail!(
                    "{} of {} rows failed",
                    report.failed,
                    report.total_processed
                )
            }
        }
        Command::CreateEnterprise {
            company_name,
            company_email,
            sync_mode,
            admin_name,
            admin_email,
            seats,
        } => {
            let input = enterprise_sync::service::accounts::Registration {
                company_name: Some(company_name),
                company_email: Some(company_email),
                sync_mode: Some(sync_mode),
                it_admin_name: Some(admin_name),
                it_admin_email: Some(admin_email),
                it_admin_password: None,
                seats_purchased: seats,
                registration_token: None,
            };
            let (created, link) = cli::create_enterprise(&config, input)?;
            println!("enterprise {}", created.enterprise_account_id);
            println!("IT admin {}", created.it_admin_id);
            println!("invitation link (send it to the admin): {link}");
            Ok(())
        }
        Command::ResetPassword { email, enterprise } => {
            let (link, company) = cli::reset_password(&config, &email, enterprise.as_deref())?;
            println!("{link}");
            eprintln!(
                "a one-time link for {email} at {company}, valid {} minutes: the person opens \
                 it and chooses a new password",
                config.auth.password_reset_ttl_minutes
            );
            Ok(())
        }
        Command::SetSeats { enterprise, seats } => {
            cli::set_seats(&config, &enterprise, seats)?;
            println!("seats of {enterprise}: {seats}");
            Ok(())
        }
        Command::Enterprises { json } => {
            let lines = cli::enterprises(&config)?;
            if json {
                for line in &lines {
                    println!("{}", serde_json::to_string(line)?);
                }
            } else {
                println!(
                    "{:<36}  {:>7}  {:>7}  {:>7}  {:<24}  company",
                    "id", "seats", "used", "people", "last successful sync"
                );
                for line in &lines {
                    println!(
                        "{:<36}  {:>7}  {:>7}  {:>7}  {:<24}  {}",
                        line.id,
                        line.seats_purchased,
                        line.seats_used,
                        line.people,
                        line.last_successful_sync.as_deref().unwrap_or("never"),
                        line.company_name
                    );
                }
            }
            Ok(())
        }
        Command::RegistrationToken { valid_hours } => {
            let token = cli::registration_token(&config, valid_hours)?;
            println!("{token}");
            eprintln!(
                "valid {valid_hours} h, once: send it as registration_token in the body of \
                 POST /api/enterprise/register (or the X-Registration-Token header)"
            );
            Ok(())
        }
        Command::Openapi => {
            println!(
                "{}",
                enterprise_sync::api::openapi::document().to_pretty_json()?
            );
            Ok(())
        }
        Command::SendTestEmail { address } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(enterprise_sync::outbound::email::send_test(
                    &config, &address,
                ))
                .map_err(anyhow::Error::msg)?;
            println!("test email accepted by the SMTP server for {address}");
            Ok(())
        }
        Command::VerifyAudit => {
            let rows = cli::verify_audit(&config.database_path())?;
            println!("audit chain intact: {rows} rows");
            Ok(())
        }
        Command::Backup { file } => {
            let summary = enterprise_sync::store::backup::backup(&config.database_path(), &file)
                .map_err(|e| anyhow::anyhow!("backup failed: {e}"))?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Restore {
            file,
            replace_database,
        } => {
            if !replace_database {
                anyhow::bail!(
                    "restore REPLACES the database {} with {}; stop the service, then run again with --replace-database",
                    config.database_path().display(),
                    file.display()
                );
            }
            let suffix = format!(
                "before-restore-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            );
            let summary =
                enterprise_sync::store::backup::restore(&config.database_path(), &file, &suffix)
                    .map_err(|e| anyhow::anyhow!("restore refused: {e}"))?;
            eprintln!(
                "restored; the replaced database is kept as {}.{suffix}",
                config.database_path().display()
            );
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
    }
}
