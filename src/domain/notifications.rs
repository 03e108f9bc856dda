//! What an enterprise chose about its notifications.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::net_guard::Network;

/// Language of the emails an enterprise's people and admins receive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Fr,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Fr => "fr",
            Language::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Language> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fr" => Some(Language::Fr),
            "en" => Some(Language::En),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationSettings {
    pub language: Language,
    /// `None`: the enterprise's active IT admins.
    pub alert_recipients: Option<Vec<String>>,
    /// Alert on runs where some rows failed, not only on failed runs.
    pub alert_on_partial: bool,
    /// Alert when no sync succeeded for this many hours; `None`: never.
    pub stale_after_hours: Option<u32>,
    /// Networks webhooks may reach although the SSRF guard refuses them.
    pub webhook_allowed_networks: Vec<Network>,
}

impl NotificationSettings {
    pub fn allows(&self, address: std::net::IpAddr) -> bool {
        self.webhook_allowed_networks
            .iter()
            .any(|network| network.contains(address))
    }
}

/// Why a run failed, as facts an email puts in its own language (the run's
/// `error` text is English).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureCause {
    /// Every row failed; `first_code` is the first row's error code.
    RowsFailed {
        failed: usize,
        total: usize,
        first_code: Option<String>,
    },
    /// The run as a whole was not applied (`rows_rejected`,
    /// `full_export_rejected`, …), with this many failed rows.
    NotApplied { code: String, failed: usize },
}

/// What an alert email says, stored with it in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertFacts {
    SyncFailed {
        run_id: Option<String>,
        source: String,
        file: Option<String>,
        error: String,
        /// Absent for a file that failed before its import, and in alerts
        /// queued before causes were kept.
        #[serde(default)]
        cause: Option<FailureCause>,
        at: DateTime<Utc>,
    },
    SyncPartial {
        run_id: String,
        source: String,
        file: Option<String>,
        failed: usize,
        total: usize,
        at: DateTime<Utc>,
    },
    FileHeld {
        file: String,
        file_id: Option<String>,
        reason: String,
        would_deactivate: usize,
        at: DateTime<Utc>,
    },
    SyncStale {
        hours: u32,
        last_success_at: DateTime<Utc>,
    },
    /// The appliance's disk is under `database.min_free_mb`: imports will
    /// soon fail or wait.
    DiskLow {
        free_mib: u64,
        min_free_mb: u64,
        at: DateTime<Utc>,
    },
    /// 90 % of the purchased seats are used (`full`: all of them).
    Seats {
        used: i64,
        purchased: i64,
        full: bool,
        at: DateTime<Utc>,
    },
}
