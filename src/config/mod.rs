//! Configuration: embedded defaults → TOML file → `ENTERPRISE_SYNC_*` environment
//! variables → command-line flags. Nested keys use a double underscore in the
//! environment: `[rate_limit] per_key_per_minute` is
//! `ENTERPRISE_SYNC_RATE_LIMIT__PER_KEY_PER_MINUTE`.
//! `packaging/config.example.toml` documents every key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod sections;

pub use sections::*;

pub const ENV_PREFIX: &str = "ENTERPRISE_SYNC_";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// What is logged, as a `RUST_LOG` filter (`info`, `debug`,
    /// `info,enterprise_sync::dropdir=debug`); `RUST_LOG` itself wins when set.
    pub log_level: String,
    /// Peers whose `X-Forwarded-For` is believed (a reverse proxy on the same host).
    pub trusted_proxies: Vec<IpAddr>,
    /// Who may register an enterprise through `POST /api/enterprise/register`.
    pub allow_registration: RegistrationPolicy,
    /// The address people reach this service at, for links in invitations.
    /// Defaults to `http://<listen>`.
    pub public_base_url: Option<String>,
    pub http: HttpConfig,
    pub accounts: AccountsConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub api_keys: ApiKeysConfig,
    pub rate_limit: RateLimitConfig,
    pub imports: ImportsConfig,
    pub dropdir: DropDirConfig,
    pub backup: BackupConfig,
    pub metrics: MetricsConfig,
    pub webhooks: WebhooksConfig,
    pub email: EmailConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            trusted_proxies: Vec::new(),
            allow_registration: RegistrationPolicy::First,
            public_base_url: None,
            http: HttpConfig::default(),
            accounts: AccountsConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            api_keys: ApiKeysConfig::default(),
            rate_limit: RateLimitConfig::default(),
            imports: ImportsConfig::default(),
            dropdir: DropDirConfig::default(),
            backup: BackupConfig::default(),
            metrics: MetricsConfig::default(),
            webhooks: WebhooksConfig::default(),
            email: EmailConfig::default(),
        }
    }
}

/// Where the configuration came from, to read it again on reload.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub file: Option<PathBuf>,
    pub overrides: CliOverrides,
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(self.file.as_deref(), &self.overrides)
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CliOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &CliOverrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(
                Env::prefixed(ENV_PREFIX)
                    .filter(|key| {
                        // Unknown variables are reported by `unknown_env_vars`, not
                        // fatal: the environment is shared with other tools.
                        known_env_vars()
                            .contains(&format!("{ENV_PREFIX}{}", key.as_str().to_uppercase()))
                    })
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(0..=crate::domain::records::MAX_SEATS).contains(&self.accounts.default_seats) {
            return Err(ConfigError::Invalid(format!(
                "accounts.default_seats must be 0 to {}",
                crate::domain::records::MAX_SEATS
            )));
        }
        if let Some(broad) = self
            .webhooks
            .allowed_networks
            .iter()
            .find(|network| network.is_too_broad())
        {
            return Err(ConfigError::Invalid(format!(
                "webhooks.allowed_networks: {broad} is too broad (IPv4 networks need a prefix of \
                 /8 or longer, IPv6 /16 or longer); name the networks your receivers are in"
            )));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(ConfigError::Invalid(format!(
                "log_level {:?} is not a log filter: {e}",
                self.log_level
            )));
        }
        let positive = [
            (
                "rate_limit.per_key_per_minute",
                self.rate_limit.per_key_per_minute,
            ),
            (
                "rate_limit.per_enterprise_per_minute",
                self.rate_limit.per_enterprise_per_minute,
            ),
            (
                "rate_limit.scim_per_minute",
                self.rate_limit.scim_per_minute,
            ),
            (
                "rate_limit.per_person_per_minute",
                self.rate_limit.per_person_per_minute,
            ),
            (
                "rate_limit.login_per_ip_per_minute",
                self.rate_limit.login_per_ip_per_minute,
            ),
            (
                "rate_limit.register_per_ip_per_hour",
                self.rate_limit.register_per_ip_per_hour,
            ),
            ("auth.lockout_threshold", self.auth.lockout_threshold),
            (
                "api_keys.default_expiry_days",
                self.api_keys.default_expiry_days,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        if self.api_keys.default_expiry_days > self.api_keys.max_expiry_days {
            return Err(ConfigError::Invalid(
                "api_keys.default_expiry_days exceeds api_keys.max_expiry_days".into(),
            ));
        }
        if self.auth.max_concurrent_hashes == 0 || self.database.read_connections == 0 {
            return Err(ConfigError::Invalid(
                "auth.max_concurrent_hashes and database.read_connections must be at least 1"
                    .into(),
            ));
        }
        if self.auth.access_token_ttl_secs < 60 || self.auth.access_token_ttl_secs > 3600 {
            return Err(ConfigError::Invalid(
                "auth.access_token_ttl_secs must be between 60 and 3600".into(),
            ));
        }
        if self.dropdir.scan_interval_secs == 0 || self.dropdir.max_file_bytes == 0 {
            return Err(ConfigError::Invalid(
                "dropdir.scan_interval_secs and dropdir.max_file_bytes must be at least 1".into(),
            ));
        }
        if encoding_rs::Encoding::for_label(self.dropdir.fallback_encoding.as_bytes()).is_none() {
            return Err(ConfigError::Invalid(format!(
                "dropdir.fallback_encoding {:?} is not an encoding this service knows (try windows-1252, iso-8859-15, utf-8)",
                self.dropdir.fallback_encoding
            )));
        }
        self.dropdir.check_profiles()?;
        if let Err(e) = self.email.from.parse::<lettre::message::Mailbox>() {
            return Err(ConfigError::Invalid(format!(
                "email.from {:?} is not an address (\"Name <user@example.com>\" or user@example.com): {e}",
                self.email.from
            )));
        }
        if self
            .email
            .smtp_host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err(ConfigError::Invalid(
                "email.smtp_host is empty; remove it to turn email off".into(),
            ));
        }
        if self.backup.enabled && (self.backup.interval_hours == 0 || self.backup.keep == 0) {
            return Err(ConfigError::Invalid(
                "backup.interval_hours and backup.keep must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.database
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("enterprise-sync.db"))
    }

    /// Where SQLite's temporary files go: `database.temp_dir`, else `tmp/`
    /// beside the database — on the filesystem the operator sized for it and
    /// the service watches, not wherever the system's `/var/tmp` lies.
    pub fn database_temp_dir(&self) -> PathBuf {
        self.database.temp_dir.clone().unwrap_or_else(|| {
            let database = self.database_path();
            database
                .parent()
                .map_or_else(|| self.data_dir.clone(), Path::to_path_buf)
                .join("tmp")
        })
    }

    /// Where a secret lives: the configured file, else a systemd credential of
    /// that name, else `<data_dir>/secrets/<name>`.
    pub fn secret_path(&self, configured: Option<&Path>, name: &str) -> PathBuf {
        if let Some(path) = configured {
            return path.to_path_buf();
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let candidate = Path::new(&dir).join(name);
            if candidate.exists() {
                return candidate;
            }
        }
        self.data_dir.join("secrets").join(name)
    }

    pub fn drop_root(&self) -> PathBuf {
        self.dropdir
            .root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("drop"))
    }

    pub fn drop_work_root(&self) -> PathBuf {
        self.dropdir
            .work_root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("drop-work"))
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }

    pub fn jwt_secret_path(&self) -> PathBuf {
        self.secret_path(self.auth.jwt_secret_file.as_deref(), "jwt-secret")
    }

    pub fn pepper_path(&self) -> PathBuf {
        self.secret_path(self.api_keys.pepper_file.as_deref(), "api-key-pepper")
    }

    /// The SMTP password's file, when there is one: the configured file, else
    /// the systemd credential `smtp-password`.
    pub fn smtp_password_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.email.smtp_password_file {
            return Some(path.clone());
        }
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
        let candidate = Path::new(&dir).join("smtp-password");
        candidate.exists().then_some(candidate)
    }
}

/// `ENTERPRISE_SYNC_*` variables that name no configuration key: almost always a
/// typo that would otherwise be ignored without a word.
pub fn unknown_env_vars() -> Vec<String> {
    let known = known_env_vars();
    std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| {
            name.starts_with(ENV_PREFIX) && !known.contains(name) && name != CONFIG_FILE_VAR
        })
        .collect()
}

/// Read by the command line itself (`--config`), not a configuration key.
pub const CONFIG_FILE_VAR: &str = "ENTERPRISE_SYNC_CONFIG";

fn known_env_vars() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(serde_json::Value::Object(top)) = serde_json::to_value(Config::default()) {
        for (key, value) in top {
            names.push(format!("{ENV_PREFIX}{}", key.to_uppercase()));
            if let serde_json::Value::Object(section) = value {
                for sub in section.keys() {
                    names.push(format!(
                        "{ENV_PREFIX}{}__{}",
                        key.to_uppercase(),
                        sub.to_uppercase()
                    ));
                }
            }
        }
    }
    // Nested optional keys are absent from the serialised defaults.
    for extra in [
        "DATABASE__PATH",
        "AUTH__JWT_SECRET_FILE",
        "API_KEYS__PEPPER_FILE",
        "METRICS__LISTEN",
    ] {
        names.push(format!("{ENV_PREFIX}{extra}"));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[rate_limit]\nper_key_per_minute = 50\n",
        )
        .unwrap();
        let overrides = CliOverrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            data_dir: None,
        };
        let config = Config::load(Some(&file), &overrides).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.rate_limit.per_key_per_minute, 50);
        assert_eq!(config.rate_limit.per_enterprise_per_minute, 600);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[rate_limit]\nper_key_per_minit = 50\n").unwrap();
        let err = Config::load(Some(&file), &CliOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("per_key_per_minit"), "{err}");
    }

    #[test]
    fn zero_limits_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[rate_limit]\nper_key_per_minute = 0\n").unwrap();
        assert!(Config::load(Some(&file), &CliOverrides::default()).is_err());
    }
}
