//! Business rules and transactions. Handlers call these; these call `store`.

pub mod access;
pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod backups;
pub mod directory;
pub mod disk_space;
pub mod drop_config;
pub mod drop_files;
pub mod emails;
pub mod enterprise_admins;
pub mod enterprise_settings;
pub mod files;
pub mod import;
pub mod invitations;
pub mod jwt;
pub mod metrics;
pub mod notification_settings;
pub mod notifications;
pub mod operator_settings;
pub mod outbox;
pub mod overview;
pub mod password_changes;
pub mod passwords;
pub mod rate_limit;
pub mod registration_tokens;
pub mod reload;
pub mod scim;
pub mod secrets;
pub mod sessions;
pub mod sync_logs;
pub mod sync_status;
pub mod web_sessions;
pub mod webhooks;

use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::Db;

/// Everything a request may need, built once at start-up.
pub struct Services {
    /// The configuration the service started with. The keys a reload can change
    /// are read through [`Services::settings`] instead.
    pub config: Arc<Config>,
    live: std::sync::RwLock<Arc<Config>>,
    pub clock: SharedClock,
    pub db: Db,
    pub passwords: passwords::PasswordHasher,
    pub tokens: jwt::TokenIssuer,
    pub api_keys: api_keys::ApiKeyService,
    pub limits: rate_limit::RateLimits,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// When each enterprise's identity provider last called SCIM.
    pub scim_activity: scim::ScimActivity,
    /// The drop-directory task, once started (not in `check-config`, nor when disabled).
    pub drop_dir: std::sync::OnceLock<drop_files::DropDirHandle>,
    /// Seals webhook signing secrets at rest.
    pub webhook_secrets: secrets::SealingKey,
    /// Wakes the outbound workers when a transaction queued something.
    pub outbound: outbox::Wakeups,
    /// Accounts shut to one client address after its failed sign-ins.
    pub address_lockouts: sessions::AddressLockouts,
}

impl Services {
    pub fn new(
        config: Arc<Config>,
        db: Db,
        clock: SharedClock,
        secrets: secrets::Secrets,
    ) -> Services {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        Services {
            passwords: passwords::PasswordHasher::new(
                config.auth.max_concurrent_hashes,
                &secrets.api_key_pepper,
            ),
            tokens: jwt::TokenIssuer::new(&secrets.jwt, &config.auth),
            api_keys: api_keys::ApiKeyService::new(&secrets.api_key_pepper, &config.api_keys),
            limits: rate_limit::RateLimits::new(clock.clone(), metrics.clone()),
            metrics,
            scim_activity: scim::ScimActivity::default(),
            address_lockouts: sessions::AddressLockouts::default(),
            drop_dir: std::sync::OnceLock::new(),
            webhook_secrets: secrets::SealingKey::derive(
                &secrets.api_key_pepper,
                "webhook secrets",
            ),
            outbound: outbox::Wakeups::default(),
            live: std::sync::RwLock::new(config.clone()),
            config,
            clock,
            db,
        }
    }
}

impl Services {
    /// After an import committed: its metrics, and the webhooks it queued go out.
    pub fn import_committed(
        &self,
        source: &'static str,
        report: &crate::domain::import::ImportReport,
    ) {
        self.metrics
            .import_recorded(source, import::run_status(report), report);
        self.outbound.wake_webhooks();
        self.outbound.wake_email();
    }

    /// Where people reach this service, for links in emails.
    pub fn public_base_url(&self) -> String {
        self.config
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.config.listen))
            .trim_end_matches('/')
            .to_string()
    }

    /// The configuration as last loaded, for the keys [`reload`] can change.
    pub fn settings(&self) -> Arc<Config> {
        match self.live.read() {
            Ok(live) => live.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace_settings(&self, settings: Config) {
        let settings = Arc::new(settings);
        match self.live.write() {
            Ok(mut live) => *live = settings,
            Err(poisoned) => *poisoned.into_inner() = settings,
        }
    }
}

/// Where a request came from, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}
