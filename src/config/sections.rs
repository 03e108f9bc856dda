//! The configuration's sections (`[http]`, `[dropdir]`, `[email]`, …) with
//! their embedded defaults; `packaging/config.example.toml` documents each key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

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

    pub(super) fn check_profiles(&self) -> Result<(), ConfigError> {
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
    /// Where SQLite writes its temporary files (a large import's staging
    /// table and index sorts). Defaults to `tmp/` beside the database.
    pub temp_dir: Option<PathBuf>,
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
            temp_dir: None,
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
