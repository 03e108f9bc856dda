//! What one client may hold of the service: requests in flight per client
//! address, and a request body that must keep coming. Together with the
//! listener's header timeout and connection caps, a client that sends slowly or
//! opens many requests holds its own share, not everyone's.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Frame;
use tokio::time::{Instant, Sleep};

use super::error::error_body;
use super::extract::{client_ip, peer_ip, AppState};
use crate::listener::PerAddress;

/// At most `http.max_requests_per_client` requests of one client at once; the
/// next gets 429 at once, before it waits for a global slot or sends its body.
pub async fn limit_per_client(
    State((state, in_flight)): State<(AppState, Arc<PerAddress>)>,
    request: Request,
    next: Next,
) -> Response {
    let settings = state.settings();
    let ip = client_ip(
        request.headers(),
        peer_ip(request.extensions()),
        &settings.trusted_proxies,
    );
    let Some(ip) = ip else {
        return next.run(request).await;
    };
    let max = state.config.http.max_requests_per_client.max(1);
    let Some(slot) = PerAddress::take(&in_flight, ip, max) else {
        state.metrics.rate_limited("per-client-in-flight");
        let mut response = error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            &format!("this client has {max} requests in flight already; wait for one to end"),
            serde_json::Value::Null,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let response = next.run(request).await;
    drop(slot);
    response
}

/// How fast a request body must come.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    /// Longest wait for the next bytes.
    pub idle: Duration,
    /// Average rate required once `idle` has passed since the body began.
    pub min_bytes_per_sec: u64,
}

/// Cuts a request body that stalls or trickles: the handler reading it gets an
/// error, and the answer becomes 408 with the connection closed.
pub async fn pace_bodies(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let http = &state.config.http;
    let pace = BodyPace {
        idle: Duration::from_secs(http.body_idle_timeout_secs.max(1)),
        min_bytes_per_sec: http.body_min_bytes_per_sec,
    };
    let tripped = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = Body::new(PacedBody::new(body, pace, tripped.clone()));
    let response = next.run(Request::from_parts(parts, body)).await;
    if !tripped.load(Ordering::Relaxed) {
        return response;
    }
    state.metrics.slow_body();
    let mut response = error_body(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        &format!(
            "the request body came too slowly (nothing for {} s, or under {} bytes/s on \
             average)",
            pace.idle.as_secs(),
            pace.min_bytes_per_sec
        ),
        serde_json::Value::Null,
    );
    // The rest of the body may still be on its way: end the connection.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The error a cut body gives its reader.
#[derive(Debug, thiserror::Error)]
#[error("the request body came too slowly")]
pub struct BodyTooSlow;

/// A body with a deadline: the next bytes within `idle`, and an average rate
/// of `min_bytes_per_sec` once `idle` has passed.
pub struct PacedBody {
    inner: Body,
    pace: BodyPace,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
    tripped: Arc<AtomicBool>,
}

impl PacedBody {
    pub fn new(inner: Body, pace: BodyPace, tripped: Arc<AtomicBool>) -> PacedBody {
        let started = Instant::now();
        PacedBody {
            inner,
            pace,
            started,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + pace.idle)),
            tripped,
        }
    }

    /// The earlier of "nothing for `idle`" and "under the average rate".
    fn next_deadline(&self, now: Instant) -> Instant {
        let idle = now + self.pace.idle;
        if self.pace.min_bytes_per_sec == 0 {
            return idle;
        }
        let paid_for =
            Duration::from_secs_f64(self.received as f64 / self.pace.min_bytes_per_sec as f64);
        let by_rate = self.started + self.pace.idle.max(paid_for);
        idle.min(by_rate.max(now))
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.tripped.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                let now = Instant::now();
                let deadline = this.next_deadline(now);
                this.deadline.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.tripped.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))))
                }
                Poll::Pending => Poll::Pending,
            },
            done => done,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One byte every `every`, `left` times: a client that trickles.
    struct Trickle {
        left: usize,
        every: Duration,
        next: Pin<Box<Sleep>>,
    }

    impl Trickle {
        fn body(left: usize, every: Duration) -> Body {
            Body::new(Trickle {
                left,
                every,
                next: Box::pin(tokio::time::sleep(every)),
            })
        }
    }

    impl http_body::Body for Trickle {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            match self.next.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    self.left -= 1;
                    let at = Instant::now() + self.every;
                    self.next.as_mut().reset(at);
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
                }
            }
        }
    }

    /// Reads a whole body the way an extractor does.
    async fn collect(mut body: PacedBody) -> Result<u64, axum::Error> {
        use http_body::Body as _;
        let mut total = 0;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            if let Some(data) = frame?.data_ref() {
                total += data.len() as u64;
            }
        }
        Ok(total)
    }

    fn pace(idle_secs: u64, min_bytes_per_sec: u64) -> BodyPace {
        BodyPace {
            idle: Duration::from_secs(idle_secs),
            min_bytes_per_sec,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_is_cut() {
        let tripped = Arc::new(AtomicBool::new(false));
        let body = PacedBody::new(
            Trickle::body(2, Duration::from_secs(11)),
            pace(10, 0),
            tripped.clone(),
        );
        assert!(collect(body).await.is_err());
        assert!(tripped.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_trickles_is_cut_once_its_grace_is_over() {
        let tripped = Arc::new(AtomicBool::new(false));
        // One byte every 5 s never stalls for 10 s, but is far under 1 KiB/s.
        let body = PacedBody::new(
            Trickle::body(100, Duration::from_secs(5)),
            pace(10, 1024),
            tripped.clone(),
        );
        let started = Instant::now();
        assert!(collect(body).await.is_err());
        assert!(started.elapsed() <= Duration::from_secs(11));
        assert!(tripped.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_goes_through() {
        let tripped = Arc::new(AtomicBool::new(false));
        let body = PacedBody::new(
            Trickle::body(30, Duration::from_millis(900)),
            pace(10, 1),
            tripped.clone(),
        );
        assert_eq!(collect(body).await.ok(), Some(30));
        assert!(!tripped.load(Ordering::Relaxed));
    }
}
