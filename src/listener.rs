//! The HTTP listeners' accept loop. It is ours rather than `axum::serve`'s so
//! that a slow or hostile client cannot hold what others need: a header must
//! arrive within `http.header_read_timeout_secs` (an idle keep-alive connection
//! is closed after the same time), one client address holds at most
//! `http.max_connections_per_client` connections, and the whole listener at
//! most `http.max_connections`, well under the file-descriptor limit.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::Service;

use crate::config::HttpConfig;

/// What one listener lets its clients hold.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// Reverse proxies carry many clients on their connections: no per-address cap.
    pub trusted_proxies: Vec<IpAddr>,
    /// How long a shutdown waits for requests in flight.
    pub drain: Duration,
}

impl ConnectionLimits {
    pub fn of(http: &HttpConfig, trusted_proxies: &[IpAddr]) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(http.header_read_timeout_secs.max(1)),
            max_connections: http.max_connections.max(1),
            max_connections_per_client: http.max_connections_per_client.max(1),
            trusted_proxies: trusted_proxies.to_vec(),
            drain: Duration::from_secs(http.request_timeout_secs.saturating_add(5)),
        }
    }
}

/// How many of something (connections, requests in flight) each client
/// address holds, with a ceiling per address.
#[derive(Default)]
pub struct PerAddress {
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One place in a [`PerAddress`] table, given back when dropped.
pub struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    /// A place for `ip`, unless it holds `max` already.
    pub fn take(table: &Arc<PerAddress>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut held = table.held.lock().ok()?;
        let count = held.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.table.held.lock() {
            if let Some(count) = held.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    held.remove(&self.ip);
                }
            }
        }
    }
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets requests in
/// flight end (at most `limits.drain`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
    metrics: Arc<crate::metrics::Metrics>,
) -> std::io::Result<()> {
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let per_client = Arc::new(PerAddress::default());
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors or memory: wait rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(total_slot) = total.clone().try_acquire_owned() else {
            metrics.connection_refused("listener_full");
            continue;
        };
        let client_slot = if limits.trusted_proxies.contains(&peer.ip()) {
            None
        } else {
            match PerAddress::take(&per_client, peer.ip(), limits.max_connections_per_client) {
                Some(slot) => Some(slot),
                None => {
                    metrics.connection_refused("per_client");
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let tower_service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(tower_service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is no error of ours.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(client_slot);
            drop(total_slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            waited_secs = limits.drain.as_secs(),
            "requests still in flight at shutdown were cut"
        );
    }
    Ok(())
}
