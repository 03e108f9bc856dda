//! Configuration: embedded defaults → TOML file → `ENTERPRISE_SYNC_*` environment
//! variables → command-line flags. Nested keys use a double underscore in the
//! environment: `[rate_limit] per_key_per_minute` is
//! `ENTERPRISE_SYNC_RATE_LIMIT__PER_KEY_PER_MINUTE`.
//! `packaging/config.example.toml` documents every key.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

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

/// Who may register an enterprise: `"first"` (open until one enterprise
/// exists), `true` (anyone who reaches the API) or `false` (no one). Past
/// those, an operator's one-time registration token still lets one through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RegistrationSetting", into = "RegistrationSetting")]
pub enum RegistrationPolicy {
    First,
    Open,
    Closed,
}

/// How the setting is written: a boolean, or the word `first`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RegistrationSetting {
    Flag(bool),
    Word(String),
}

impl TryFrom<RegistrationSetting> for RegistrationPolicy {
    type Error = String;
    fn try_from(setting: RegistrationSetting) -> Result<Self, String> {
        match setting {
            RegistrationSetting::Flag(true) => Ok(RegistrationPolicy::Open),
            RegistrationSetting::Flag(false) => Ok(RegistrationPolicy::Closed),
            RegistrationSetting::Word(word) => match word.trim().to_ascii_lowercase().as_str() {
                "first" => Ok(RegistrationPolicy::First),
                "true" | "open" => Ok(RegistrationPolicy::Open),
                "false" | "closed" => Ok(RegistrationPolicy::Closed),
                other => Err(format!(
                    "allow_registration must be \"first\", true or false, not {other:?}"
                )),
            },
        }
    }
}

impl From<RegistrationPolicy> for RegistrationSetting {
    fn from(policy: RegistrationPolicy) -> Self {
        match policy {
            RegistrationPolicy::First => RegistrationSetting::Word("first".into()),
            RegistrationPolicy::Open => RegistrationSetting::Flag(true),
            RegistrationPolicy::Closed => RegistrationSetting::Flag(false),
        }
    }
}

/// Enterprise accounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Seats an enterprise registered without `seats_purchased` gets (the
    /// specification's registration body has none); the operator changes an
    /// enterprise's seats with `enterprise-sync set-seats`.
    pub default_seats: i64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            default_seats: 1000,
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the first byte (SMTPS), usually port 465.
    Tls,
    /// No encryption: only for a relay on this host or a trusted network.
    None,
}

/// Invitation and alert emails.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The SMTP server; without it no email is sent (they wait in the outbox).
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    /// A file holding the SMTP password (or the systemd credential `smtp-password`).
    pub smtp_password_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for the SMTP server, besides the
    /// system's (an internal relay with the company's own CA).
    pub smtp_ca_file: Option<PathBuf>,
    /// The sender, e.g. `Retail Performer <no-reply@example.com>`.
    pub from: String,
    /// Longest wait for the SMTP server, per command.
    pub timeout_secs: u64,
    /// How often emails whose retry fell due are looked for.
    pub poll_interval_ms: u64,
    /// How often enterprises are checked for the no-successful-sync alert.
    pub stale_check_interval_secs: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_host: None,
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password_file: None,
            smtp_ca_file: None,
            from: "Retail Performer <no-reply@localhost>".into(),
            timeout_secs: 30,
            poll_interval_ms: 5000,
            stale_check_interval_secs: 900,
        }
    }
}

/// Webhook deliveries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Whether this service delivers webhooks (messages queue either way).
    pub enabled: bool,
    /// Longest wait for a receiver's answer.
    pub timeout_secs: u64,
    /// Deliveries in flight at once, across endpoints.
    pub max_concurrent: usize,
    /// How often due retries are looked for; new events go out at once.
    pub poll_interval_ms: u64,
    /// Non-public networks webhooks may reach (receivers on the company's
    /// network); enterprises choose among these. Loopback and link-local
    /// addresses open only when named exactly (`127.0.0.1/32`).
    pub allowed_networks: Vec<crate::domain::net_guard::Network>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            enabled: true,
            timeout_secs: 10,
            max_concurrent: 4,
            poll_interval_ms: 1000,
            allowed_networks: Vec::new(),
        }
    }
}

/// Prometheus metrics at `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Serve `/metrics` on this address (say `127.0.0.1:9464`) instead of the
    /// main listener.
    pub listen: Option<SocketAddr>,
    /// Series per enterprise (its id as a label); off, the metrics name no
    /// enterprise.
    pub per_enterprise: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: None,
            per_enterprise: false,
        }
    }
}

/// Backups the service takes by itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    pub enabled: bool,
    /// Hours between two backups (the first one this long after start).
    pub interval_hours: u64,
    /// Backups kept; older ones are removed after each new one.
    pub keep: usize,
    /// Defaults to `<data_dir>/backups`.
    pub dir: Option<PathBuf>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            enabled: true,
            interval_hours: 24,
            keep: 7,
            dir: None,
        }
    }
}

pub use crate::domain::drop_profile::CompletionPolicy;
use crate::domain::drop_profile::DropProfile;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropDirConfig {
    pub enabled: bool,
    /// One folder per enterprise below it, each with `incoming/` (the SFTP
    /// upload target) and `results/`. Defaults to `<data_dir>/drop`.
    pub root: Option<PathBuf>,
    /// `processing/`, `archive/`, `failed/`, `held/` per enterprise, where the
    /// SFTP accounts cannot write; same filesystem as `root`. Defaults to
    /// `<data_dir>/drop-work`.
    pub work_root: Option<PathBuf>,
    /// Seconds between scans even when no file-system event arrived.
    pub scan_interval_secs: u64,
    pub completion: CompletionPolicy,
    /// `quiet` policy: seconds a file must stay unchanged.
    pub quiet_secs: u64,
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Encoding of files that are neither valid UTF-8 nor carry a BOM.
    pub fallback_encoding: String,
    /// File names starting with one of these (case-insensitive) hold users…
    pub users_file_prefixes: Vec<String>,
    /// …and with one of these, stores.
    pub stores_file_prefixes: Vec<String>,
    /// A users file whose name contains this (case-insensitive) is a full
    /// export: active people missing from it are deactivated. Empty: never.
    pub full_export_name_contains: String,
    /// A full export deactivating more than this share of the active staff is held…
    pub full_export_max_deactivate_percent: u32,
    /// …and so is one deactivating more than this many people.
    pub full_export_max_deactivate_count: u32,
    /// Users CSV files from this size on are streamed into the import engine's
    /// staged mode (bounded memory, set-based checks) instead of read whole.
    pub stream_from_bytes: u64,
    /// Per-enterprise profiles by enterprise id (completion, delimiter,
    /// column mapping, …; see docs/drop-directory.md). A profile an IT admin
    /// sets through the API replaces the one written here.
    pub profiles: BTreeMap<String, DropProfile>,
    /// Folder names below the drop root by enterprise id (default: the id),
    /// e.g. to match the SFTP account's name. Only the operator sets these.
    pub folder_names: BTreeMap<String, String>,
}

impl DropDirConfig {
    /// The folder name of an enterprise below the drop root.
    pub fn folder_name(&self, enterprise: &str) -> String {
        self.folder_names
            .get(enterprise)
            .cloned()
            .unwrap_or_else(|| enterprise.to_string())
    }

    fn check_profiles(&self) -> Result<(), ConfigError> {
        for (enterprise, profile) in &self.profiles {
            if let Err(errors) = profile.validate() {
                let why: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                return Err(ConfigError::Invalid(format!(
                    "dropdir.profiles.{enterprise:?}: {}",
                    why.join("; ")
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (enterprise, folder) in &self.folder_names {
            let safe = !folder.is_empty()
                && folder.len() <= 64
                && folder != "."
                && folder != ".."
                && folder
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !safe {
                return Err(ConfigError::Invalid(format!(
                    "dropdir.folder_names.{enterprise:?}: {folder:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
                )));
            }
            if !seen.insert(folder.to_ascii_lowercase()) {
                return Err(ConfigError::Invalid(format!(
                    "dropdir.folder_names: {folder:?} is given to two enterprises"
                )));
            }
        }
        Ok(())
    }
}

impl Default for DropDirConfig {
    fn default() -> Self {
        DropDirConfig {
            enabled: true,
            root: None,
            work_root: None,
            scan_interval_secs: 60,
            completion: CompletionPolicy::Quiet,
            quiet_secs: 30,
            max_file_bytes: 512 * 1024 * 1024,
            fallback_encoding: "windows-1252".into(),
            users_file_prefixes: vec!["users".into()],
            stores_file_prefixes: vec!["stores".into()],
            full_export_name_contains: "full".into(),
            full_export_max_deactivate_percent: 10,
            full_export_max_deactivate_count: 50,
            stream_from_bytes: 8 * 1024 * 1024,
            profiles: BTreeMap::new(),
            folder_names: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportsConfig {
    /// Largest bulk-import request body, in bytes.
    pub max_body_bytes: usize,
    /// Most rows in one bulk-import request (and in a file read whole).
    pub max_rows: usize,
    /// Most records in a streamed drop file (dropdir.stream_from_bytes).
    pub max_file_rows: usize,
    /// A streamed file's rows are matched in memory against enterprises of at
    /// most this many people (a few MiB), else by a pass over the staged rows.
    pub match_in_memory_up_to: usize,
    /// Days a run's change events are kept; the run entries are kept for good.
    pub record_log_retention_days: u32,
}

impl Default for ImportsConfig {
    fn default() -> Self {
        // A 50,000-person company syncs in one request (~250 bytes a row).
        ImportsConfig {
            max_body_bytes: 64 * 1024 * 1024,
            max_rows: 100_000,
            max_file_rows: 5_000_000,
            match_in_memory_up_to: 50_000,
            record_log_retention_days: 90,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    pub max_concurrent_requests: usize,
    /// A request's header must arrive within this; an idle keep-alive
    /// connection is closed after it too.
    pub header_read_timeout_secs: u64,
    /// A request body that sends nothing for this long is cut (408).
    pub body_idle_timeout_secs: u64,
    /// Past its first `body_idle_timeout_secs`, a body must keep this average rate.
    pub body_min_bytes_per_sec: u64,
    /// Connections open at once on a listener.
    pub max_connections: usize,
    /// Connections one client address may hold (trusted proxies excepted).
    pub max_connections_per_client: usize,
    /// Requests one client (after `X-Forwarded-For` from trusted proxies) may
    /// have in flight; more get 429.
    pub max_requests_per_client: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Defaults to `<data_dir>/enterprise-sync.db`.
    pub path: Option<PathBuf>,
    pub read_connections: usize,
    pub busy_timeout_ms: u64,
    /// How long one enterprise's read (a SCIM filter, a list) may run before
    /// it is interrupted.
    pub read_budget_ms: u64,
    /// Free space (MiB) the database's and the drop work root's filesystems
    /// must keep; below it readiness fails and the log says so.
    pub min_free_mb: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// 32+ random bytes. Defaults to `$CREDENTIALS_DIRECTORY/jwt-secret` when
    /// systemd provides it, else `<data_dir>/secrets/jwt-secret` (created on first start).
    pub jwt_secret_file: Option<PathBuf>,
    /// Argon2 hashes running at once; each holds ~19 MiB.
    pub max_concurrent_hashes: usize,
    /// Consecutive failed logins before an account is locked for a while.
    pub lockout_threshold: u32,
    pub lockout_max_secs: u64,
    /// How long an invitation link stays valid.
    pub invitation_ttl_hours: u32,
    /// How long a password reset link stays valid.
    pub password_reset_ttl_minutes: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// HMAC pepper for stored key hashes; same lookup rules as `jwt_secret_file`
    /// with the name `api-key-pepper`.
    pub pepper_file: Option<PathBuf>,
    pub default_expiry_days: u32,
    pub max_expiry_days: u32,
    pub usage_flush_secs: u64,
    pub cache_ttl_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub per_key_per_minute: u32,
    pub per_enterprise_per_minute: u32,
    /// SCIM requests of an enterprise per minute (its identity provider's
    /// bucket, apart from the REST keys').
    pub scim_per_minute: u32,
    /// Requests a signed-in person (an access token) may make per minute.
    pub per_person_per_minute: u32,
    pub login_per_ip_per_minute: u32,
    pub register_per_ip_per_hour: u32,
    pub prune_interval_secs: u64,
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

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            max_concurrent_requests: 512,
            header_read_timeout_secs: 10,
            body_idle_timeout_secs: 10,
            body_min_bytes_per_sec: 1024,
            max_connections: 4096,
            max_connections_per_client: 64,
            max_requests_per_client: 32,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: None,
            read_connections: 4,
            busy_timeout_ms: 5000,
            read_budget_ms: 10_000,
            min_free_mb: 512,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "enterprise-sync".into(),
            audience: "enterprise-sync".into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 14 * 24 * 3600,
            jwt_secret_file: None,
            max_concurrent_hashes: 2,
            lockout_threshold: 10,
            lockout_max_secs: 3600,
            invitation_ttl_hours: 168,
            password_reset_ttl_minutes: 60,
        }
    }
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        ApiKeysConfig {
            pepper_file: None,
            default_expiry_days: 90,
            max_expiry_days: 730,
            usage_flush_secs: 60,
            cache_ttl_secs: 5,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_key_per_minute: 100,
            per_enterprise_per_minute: 600,
            scim_per_minute: 1200,
            per_person_per_minute: 600,
            login_per_ip_per_minute: 10,
            register_per_ip_per_hour: 5,
            prune_interval_secs: 300,
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
