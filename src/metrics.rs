//! Prometheus metrics: counters and histograms kept as things happen, and the
//! gauges read at scrape time (database size, drop-directory queue, last
//! successful sync per enterprise).
//!
//! Label values come from a closed set (route templates, not paths; sources,
//! statuses, policy names, enterprise ids), so no caller can grow the series
//! without bound.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::import::ImportReport;

/// What the `/metrics` answer is: OpenMetrics text, which Prometheus asks for
/// first and every recent scraper reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request latencies from sub-millisecond reads to imports of a minute.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImportLabels {
    source: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RowLabels {
    source: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EffectLabels {
    effect: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FilesystemLabels {
    filesystem: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnterpriseLabels {
    enterprise_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The appliance's metrics; one per process, shared by every layer.
pub struct Metrics {
    registry: Registry,
    http_requests: HistogramFamily<HttpLabels>,
    imports: Family<ImportLabels, Counter>,
    import_rows: Family<RowLabels, Counter>,
    rate_limited: Family<PolicyLabels, Counter>,
    database_bytes: Gauge,
    drop_queue_files: Gauge,
    drop_oldest_pending: Gauge<f64, AtomicU64>,
    last_success: Family<EnterpriseLabels, Gauge>,
    drop_events: Family<EffectLabels, Counter>,
    drop_wakeups: Family<ReasonLabels, Counter>,
    drop_scans: Counter,
    connections_refused: Family<ReasonLabels, Counter>,
    slow_bodies: Counter,
    free_bytes: Family<FilesystemLabels, Gauge>,
    low_space: Gauge,
}

/// Why the drop-directory scanner woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeReason {
    /// A file-system event that means a file arrived.
    Event,
    /// The periodic safety scan.
    Timer,
    /// A file under the quiet policy reached its quiet period.
    Due,
    /// Asked for: an API call, a new enterprise, the CLI.
    Request,
}

impl WakeReason {
    fn label(self) -> &'static str {
        match self {
            WakeReason::Event => "event",
            WakeReason::Timer => "timer",
            WakeReason::Due => "due",
            WakeReason::Request => "request",
        }
    }
}

/// What a scrape reads from the database and the disk.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub database_bytes: u64,
    pub drop_queue_files: u64,
    /// Age of the oldest file waiting in an `incoming/` folder.
    pub drop_oldest_pending: Option<Duration>,
    /// Per enterprise: the time of its last run that ended `success`.
    pub last_success: Vec<(String, i64)>,
    /// Free bytes per filesystem the service writes to (`data`, `drop_work`, `temp`).
    pub free_bytes: Vec<(&'static str, u64)>,
    /// Whether one of them is under `database.min_free_mb`.
    pub low_space: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("enterprise_sync");
        let http_requests = HistogramFamily::<HttpLabels>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP requests by route template, method and status, with their latency",
            Unit::Seconds,
            http_requests.clone(),
        );
        let imports = Family::<ImportLabels, Counter>::default();
        registry.register(
            "imports",
            "Import runs recorded, by source (api, file, scim) and status (success, partial, failed)",
            imports.clone(),
        );
        let import_rows = Family::<RowLabels, Counter>::default();
        registry.register(
            "import_rows",
            "Rows of recorded import runs, by source and outcome",
            import_rows.clone(),
        );
        let rate_limited = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "rate_limited_requests",
            "Requests refused by a rate limit, by policy",
            rate_limited.clone(),
        );
        let database_bytes = Gauge::default();
        registry.register_with_unit(
            "database_size",
            "The database with its write-ahead log, on disk",
            Unit::Bytes,
            database_bytes.clone(),
        );
        let drop_queue_files = Gauge::default();
        registry.register(
            "dropdir_queue_files",
            "Files waiting in the drop directory (incoming/ and processing/, every enterprise)",
            drop_queue_files.clone(),
        );
        let drop_oldest_pending = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "dropdir_oldest_pending_file_age",
            "Age of the oldest file waiting in the drop directory (0 when none waits)",
            Unit::Seconds,
            drop_oldest_pending.clone(),
        );
        let last_success = Family::<EnterpriseLabels, Gauge>::default();
        registry.register(
            "last_successful_sync_timestamp_seconds",
            "Unix time of each enterprise's last import run that ended success",
            last_success.clone(),
        );
        let drop_events = Family::<EffectLabels, Counter>::default();
        registry.register(
            "dropdir_fs_events",
            "File-system events on the drop folders, by effect: wake (a file arrived) or ignored \
             (reads, writes in progress, the scanner's own moves)",
            drop_events.clone(),
        );
        let drop_wakeups = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "dropdir_wakeups",
            "Times the drop-directory scanner woke, by reason (event, timer, due, request)",
            drop_wakeups.clone(),
        );
        let drop_scans = Counter::default();
        registry.register(
            "dropdir_scans",
            "Scans of every enterprise's incoming/ folder",
            drop_scans.clone(),
        );
        let connections_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_connections_refused",
            "Connections closed as they arrived, by reason (per_client: the address holds its \
             share; listener_full)",
            connections_refused.clone(),
        );
        let slow_bodies = Counter::default();
        registry.register(
            "http_slow_bodies",
            "Request bodies cut for sending too slowly (408)",
            slow_bodies.clone(),
        );
        let free_bytes = Family::<FilesystemLabels, Gauge>::default();
        registry.register_with_unit(
            "filesystem_free",
            "Free space on the filesystems the service writes to (data: the database; \
             drop_work: files being imported; temp: SQLite's temporary files, when apart)",
            Unit::Bytes,
            free_bytes.clone(),
        );
        let low_space = Gauge::default();
        registry.register(
            "filesystem_low_space",
            "1 when a filesystem the service writes to is under database.min_free_mb",
            low_space.clone(),
        );
        registry.register(
            "build",
            "The running version",
            Info::new(VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Metrics {
            registry,
            http_requests,
            imports,
            import_rows,
            rate_limited,
            database_bytes,
            drop_queue_files,
            drop_oldest_pending,
            last_success,
            drop_events,
            drop_wakeups,
            drop_scans,
            connections_refused,
            slow_bodies,
            free_bytes,
            low_space,
        }
    }

    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn slow_body(&self) {
        self.slow_bodies.inc();
    }

    /// A file-system event seen by the drop-directory watcher.
    pub fn dropdir_event(&self, woke: bool) {
        let effect = if woke { "wake" } else { "ignored" };
        self.drop_events
            .get_or_create(&EffectLabels { effect })
            .inc();
    }

    pub fn dropdir_wakeup(&self, reason: WakeReason) {
        self.drop_wakeups
            .get_or_create(&ReasonLabels {
                reason: reason.label(),
            })
            .inc();
    }

    pub fn dropdir_scan(&self) {
        self.drop_scans.inc();
    }

    /// Scans so far (tests and benchmarks read it).
    pub fn dropdir_scans(&self) -> u64 {
        self.drop_scans.get()
    }

    /// `route` is the matched route template (`/api/enterprise/users/{id}`),
    /// never the raw path, or `unmatched`.
    pub fn http_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .observe(latency.as_secs_f64());
    }

    /// A committed import run; `status` as in its sync log.
    pub fn import_recorded(
        &self,
        source: &'static str,
        status: &'static str,
        report: &ImportReport,
    ) {
        self.imports
            .get_or_create(&ImportLabels { source, status })
            .inc();
        // A run that applied nothing (a held or rejected file) counts only
        // as a run: its row counts say what it would have done.
        if report.not_applied.is_some() {
            return;
        }
        for (outcome, rows) in [
            ("created", report.created),
            ("updated", report.updated),
            ("deactivated", report.deactivated),
            ("unchanged", report.unchanged),
            ("failed", report.failed),
        ] {
            self.import_rows
                .get_or_create(&RowLabels { source, outcome })
                .inc_by(rows as u64);
        }
    }

    pub fn rate_limited(&self, policy: &'static str) {
        self.rate_limited
            .get_or_create(&PolicyLabels { policy })
            .inc();
    }

    /// Sets the scrape-time gauges from `snapshot` and renders everything.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        self.database_bytes
            .set(i64::try_from(snapshot.database_bytes).unwrap_or(i64::MAX));
        self.drop_queue_files
            .set(i64::try_from(snapshot.drop_queue_files).unwrap_or(i64::MAX));
        self.drop_oldest_pending.set(
            snapshot
                .drop_oldest_pending
                .map_or(0.0, |age| age.as_secs_f64()),
        );
        // An enterprise removed since the last scrape must not linger.
        self.last_success.clear();
        for (enterprise_id, at) in &snapshot.last_success {
            self.last_success
                .get_or_create(&EnterpriseLabels {
                    enterprise_id: enterprise_id.clone(),
                })
                .set(*at);
        }
        for (filesystem, free) in &snapshot.free_bytes {
            self.free_bytes
                .get_or_create(&FilesystemLabels { filesystem })
                .set(i64::try_from(*free).unwrap_or(i64::MAX));
        }
        self.low_space.set(i64::from(snapshot.low_space));
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            // Writing into a String cannot fail; an empty answer is still valid.
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_labels() {
        let metrics = Metrics::new();
        metrics.http_request(
            "GET",
            "/api/enterprise/users/{id}",
            200,
            Duration::from_millis(3),
        );
        let report = ImportReport {
            created: 3,
            failed: 1,
            ..ImportReport::default()
        };
        metrics.import_recorded("file", "partial", &report);
        metrics.rate_limited("per-key");
        let text = metrics.render(&Snapshot {
            database_bytes: 4096,
            drop_queue_files: 2,
            drop_oldest_pending: Some(Duration::from_secs(90)),
            last_success: vec![("e1".into(), 1_700_000_000)],
            free_bytes: vec![("data", 1 << 30)],
            low_space: false,
        });
        for expected in [
            "enterprise_sync_http_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/api/enterprise/users/{id}\",status=\"200\"} 1",
            "enterprise_sync_imports_total{source=\"file\",status=\"partial\"} 1",
            "enterprise_sync_import_rows_total{source=\"file\",outcome=\"created\"} 3",
            "enterprise_sync_import_rows_total{source=\"file\",outcome=\"failed\"} 1",
            "enterprise_sync_rate_limited_requests_total{policy=\"per-key\"} 1",
            "enterprise_sync_database_size_bytes 4096",
            "enterprise_sync_dropdir_queue_files 2",
            "enterprise_sync_dropdir_oldest_pending_file_age_seconds 90.0",
            "enterprise_sync_filesystem_free_bytes{filesystem=\"data\"} 1073741824",
            "enterprise_sync_filesystem_low_space 0",
            "enterprise_sync_last_successful_sync_timestamp_seconds{enterprise_id=\"e1\"} 1700000000",
            "# EOF",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
        // A later scrape forgets an enterprise that is gone.
        let text = metrics.render(&Snapshot::default());
        assert!(!text.contains("enterprise_id=\"e1\""));
    }
}
