//! Start-up and shutdown: open the database (migrations run before the listener
//! binds), load secrets, serve HTTP, run background work, stop cleanly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod app;

pub use app::app;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::service::secrets::Secrets;
use crate::service::{api_keys, Services};
use crate::store::{Db, DbOptions};

pub fn open_database(config: &Config) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "while creating the data directory {}",
            config.data_dir.display()
        )
    })?;
    let path = config.database_path();
    Db::open(DbOptions {
        path: path.clone(),
        read_connections: config.database.read_connections,
        busy_timeout: Duration::from_millis(config.database.busy_timeout_ms),
        read_budget: Duration::from_millis(config.database.read_budget_ms.max(1)),
    })
    .with_context(|| format!("while opening the database {}", path.display()))
}

/// A running server; tests and `serve` both use it.
pub struct Running {
    pub addr: SocketAddr,
    /// The separate metrics listener's address, when configured.
    pub metrics_addr: Option<SocketAddr>,
    pub services: Arc<Services>,
    shutdown: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    /// Held while running: `restore` refuses a database in use.
    _lock: crate::store::backup::ServiceLock,
}

/// How long systemd waits for the start while the database opens.
const MIGRATIONS_MAY_TAKE: Duration = Duration::from_secs(30 * 60);

/// Opens everything and starts listening on `config.listen` (port 0 picks a free one).
pub async fn start(config: Config, clock: SharedClock) -> anyhow::Result<Running> {
    let started = Instant::now();
    // Migrations run as the database opens, and one that rebuilds a table
    // takes time on a large appliance (V21: 13 s, V22: 9 s for 1,000,000 people):
    // systemd's start timeout (90 s by default) must not kill it halfway.
    crate::systemd::notify(&format!(
        "EXTEND_TIMEOUT_USEC={}",
        MIGRATIONS_MAY_TAKE.as_micros()
    ));
    let db = open_database(&config)?;
    let lock = crate::store::backup::ServiceLock::acquire(&config.database_path())
        .context("while locking the database for this service")?;
    let secrets = Secrets::load(&config, true).context("while loading secrets")?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "while binding {}; is another instance running?",
            config.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let services = Arc::new(Services::new(Arc::new(config), db, clock, secrets));
    let shutdown = CancellationToken::new();

    let mut background = Vec::new();
    if services.config.dropdir.enabled {
        let (drop_dir, task) = crate::dropdir::start(services.clone())
            .await
            .map_err(|e| anyhow::anyhow!("drop directory: {e}"))?;
        let _ = services.drop_dir.set(drop_dir);
        background.push(task);
    }

    let metrics_addr = match services.config.metrics.listen {
        Some(address) if services.config.metrics.enabled => {
            let listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("while binding the metrics address {address}"))?;
            let bound = listener.local_addr()?;
            let app = crate::api::metrics::standalone(services.clone());
            let stop = shutdown.clone();
            let limits = crate::listener::ConnectionLimits::of(
                &services.config.http,
                &services.config.trusted_proxies,
            );
            let metrics = services.metrics.clone();
            background.push(tokio::spawn(async move {
                let served = crate::listener::serve(listener, app, limits, stop, metrics).await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            }));
            tracing::info!(addr = %bound, "metrics listening");
            Some(bound)
        }
        _ => None,
    };
    let app = app(services.clone());
    let stop = shutdown.clone();
    let limits = crate::listener::ConnectionLimits::of(
        &services.config.http,
        &services.config.trusted_proxies,
    );
    let metrics = services.metrics.clone();
    let http = tokio::spawn(crate::listener::serve(listener, app, limits, stop, metrics));
    background.extend([
        spawn_periodic(
            shutdown.clone(),
            Duration::from_secs(services.config.api_keys.usage_flush_secs.max(1)),
            {
                let services = services.clone();
                move || {
                    let services = services.clone();
                    async move {
                        if let Err(e) = api_keys::flush_usage(&services).await {
                            tracing::warn!(error = %e, "flushing API key usage failed");
                        }
                    }
                }
            },
        ),
        spawn_periodic(
            shutdown.clone(),
            Duration::from_secs(services.config.rate_limit.prune_interval_secs.max(1)),
            {
                let services = services.clone();
                move || {
                    let services = services.clone();
                    async move {
                        let pruned = services.limits.prune();
                        tracing::debug!(pruned, "pruned idle rate-limit buckets");
                    }
                }
            },
        ),
        spawn_periodic(shutdown.clone(), Duration::from_secs(3600), {
            let services = services.clone();
            move || {
                let services = services.clone();
                async move {
                    match crate::service::sync_logs::prune_record_logs(&services).await {
                        Ok(0) => {}
                        Ok(pruned) => {
                            tracing::info!(pruned, "pruned old per-record sync-log entries")
                        }
                        Err(e) => tracing::warn!(error = %e, "pruning sync logs failed"),
                    }
                }
            }
        }),
    ]);
    background.push(spawn_periodic(shutdown.clone(), Duration::from_secs(30), {
        let services = services.clone();
        let low = Arc::new(std::sync::atomic::AtomicBool::new(false));
        move || {
            let services = services.clone();
            let low = low.clone();
            async move {
                let was_low = low.load(std::sync::atomic::Ordering::Relaxed);
                let now_low = crate::service::disk_space::watch(&services, was_low).await;
                low.store(now_low, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }));
    if services.config.webhooks.enabled {
        background.push(crate::outbound::webhooks::spawn(
            services.clone(),
            shutdown.clone(),
        ));
    }
    match crate::outbound::email::transport(&services.config) {
        Ok(Some(transport)) => background.push(crate::outbound::email::spawn(
            services.clone(),
            transport,
            shutdown.clone(),
        )),
        Ok(None) => tracing::info!(
            "email is off (no email.smtp_host): invitations and alerts wait in the outbox"
        ),
        Err(e) => anyhow::bail!("email: {e}"),
    }
    background.push(spawn_periodic(
        shutdown.clone(),
        Duration::from_secs(services.config.email.stale_check_interval_secs.max(1)),
        {
            let services = services.clone();
            move || {
                let services = services.clone();
                async move {
                    match crate::service::alerts::check_stale(&services).await {
                        Ok(0) => {}
                        Ok(raised) => tracing::warn!(raised, "no-successful-sync alerts raised"),
                        Err(e) => tracing::warn!(error = %e, "checking for stale syncs failed"),
                    }
                }
            }
        },
    ));
    if services.config.backup.enabled {
        let every = Duration::from_secs(services.config.backup.interval_hours.max(1) * 3600);
        background.push(spawn_periodic(shutdown.clone(), every, {
            let services = services.clone();
            move || {
                let services = services.clone();
                async move {
                    match crate::service::backups::run_scheduled(&services).await {
                        Ok(summary) => tracing::info!(
                            file = %summary.file,
                            bytes = summary.bytes,
                            "scheduled backup written"
                        ),
                        Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
                    }
                }
            }
        }));
    }
    let opened = &services.config.webhooks.allowed_networks;
    if !opened.is_empty() {
        tracing::info!(
            networks = %opened.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            "webhooks may reach these non-public networks (webhooks.allowed_networks)"
        );
    }
    tracing::info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "listening");
    Ok(Running {
        addr,
        metrics_addr,
        services,
        shutdown,
        http,
        background,
        _lock: lock,
    })
}

fn spawn_periodic<F, Fut>(stop: CancellationToken, every: Duration, mut task: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => task().await,
            }
        }
    })
}

impl Running {
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets requests in flight finish, flushes counters and
    /// closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(drop_dir) = self.services.drop_dir.get() {
            drop_dir.stop().await;
        }
        let served = self.http.await.context("the HTTP task failed")?;
        for task in self.background {
            let _ = task.await;
        }
        if let Err(e) = api_keys::flush_usage(&self.services).await {
            tracing::warn!(error = %e, "final flush of API key usage failed");
        }
        let db = self.services.db.clone();
        tokio::task::spawn_blocking(move || db.close()).await?;
        served.context("the HTTP server failed")?;
        tracing::info!("stopped; database closed");
        Ok(())
    }
}

/// `enterprise-sync serve`: runs until SIGTERM or SIGINT; SIGHUP reads the
/// configuration again (`systemctl reload`).
pub async fn serve(
    config: Config,
    clock: SharedClock,
    source: crate::config::ConfigSource,
) -> anyhow::Result<()> {
    let running = start(config, clock).await?;
    crate::systemd::notify("READY=1");
    wait_for_signal(&running, &source).await?;
    crate::systemd::notify("STOPPING=1");
    tracing::info!("shutting down");
    running.stop().await
}

async fn wait_for_signal(
    running: &Running,
    source: &crate::config::ConfigSource,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let stop = running.shutdown_token();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = stop.cancelled() => break,
            _ = hup.recv() => reload(running, source).await,
        }
    }
    Ok(())
}

/// Reads the configuration file again; a file that no longer loads changes
/// nothing (the service keeps running on what it has).
pub async fn reload(running: &Running, source: &crate::config::ConfigSource) {
    crate::systemd::notify_reloading();
    let file = source.clone();
    let loaded = tokio::task::spawn_blocking(move || file.load()).await;
    match loaded {
        Ok(Ok(config)) => {
            let reloaded = crate::service::reload::apply(&running.services, &config);
            // Renamed drop folders are watched from this scan on.
            if let Some(drop_dir) = running.services.drop_dir.get() {
                drop_dir.wake();
            }
            tracing::info!(
                applied = ?reloaded.applied,
                need_restart = ?reloaded.need_restart,
                "configuration reloaded"
            );
            if !reloaded.need_restart.is_empty() {
                tracing::warn!(
                    keys = ?reloaded.need_restart,
                    "these changed keys take effect at the next restart"
                );
            }
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "configuration not reloaded: the file does not load; nothing changed")
        }
        Err(e) => tracing::error!(error = %e, "configuration not reloaded"),
    }
    crate::systemd::notify("READY=1");
}
