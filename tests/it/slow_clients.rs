//! Slow and greedy clients hold their own share of the service, never
//! everyone's: real sockets against the real server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestApp;

/// Another client: loopback has every 127.0.0.0/8 address.
const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn addr_of(app: &TestApp) -> SocketAddr {
    app.url("").trim_start_matches("http://").parse().unwrap()
}

/// The service's defaults for clients, as an operator runs it.
async fn start_with_default_client_limits(
    adjust: impl FnOnce(&mut enterprise_sync::config::Config),
) -> TestApp {
    TestApp::start_with(|config| {
        let defaults = enterprise_sync::config::HttpConfig::default();
        config.http.max_requests_per_client = defaults.max_requests_per_client;
        config.http.max_connections_per_client = defaults.max_connections_per_client;
        adjust(config);
    })
    .await
}

/// Opens a connection and sends a POST that promises `length` bytes of body
/// and sends one.
async fn slow_body(addr: SocketAddr, path: &str, length: usize, extra: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let content_type = if path.starts_with("/api/") {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
         {extra}Content-Length: {length}\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    Some(stream)
}

fn client_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn slow_bodies_from_one_address_leave_the_others_served() {
    let app = start_with_default_client_limits(|_| {}).await;
    let admin = app.admin("Acme").await;
    let addr = addr_of(&app);
    let mut held = Vec::new();
    for _ in 0..600 {
        if let Some(stream) = slow_body(addr, "/api-keys", 500_000, "").await {
            held.push(stream);
        }
    }
    // Also through the API, authenticated: the attacker's own share only.
    for _ in 0..100 {
        let auth = format!("Authorization: Bearer {}\r\n", admin.access_token);
        if let Some(stream) =
            slow_body(addr, "/api/enterprise/api-keys/generate", 500_000, &auth).await
        {
            held.push(stream);
        }
    }
    let other = client_from(OTHER_CLIENT);
    let started = Instant::now();
    let health = other.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let users = other
        .get(app.url("/api/enterprise/users"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "another client waited {:?}",
        started.elapsed()
    );
    // The probes answer the attacking address too: they are outside every limit.
    let probe = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    // Its connections are capped: a new one may be refused; it is never queued.
    if let Ok(probe) = probe {
        assert_eq!(probe.status(), StatusCode::OK);
    }
    let metrics = other
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The dashboard forms were answered without their bodies; the API calls
    // beyond the client's share were refused at once, not queued.
    assert!(
        metrics.contains("route=\"/api-keys\",status=\"303\"} 600"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "enterprise_sync_rate_limited_requests_total{policy=\"per-client-in-flight\"} 68"
        ),
        "{metrics}"
    );
    drop(held);
    app.stop().await;
}

#[tokio::test]
async fn a_dashboard_form_without_a_session_is_refused_before_its_body() {
    let app = start_with_default_client_limits(|_| {}).await;
    let mut stream = slow_body(addr_of(&app), "/api-keys", 500_000, "")
        .await
        .unwrap();
    // The answer comes at once, while 499,999 bytes are still "on their way".
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer))
        .await
        .expect("the server waited for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    assert!(
        answer.to_lowercase().contains("location: /sign-in"),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_trickling_body_gets_408_and_its_connection_closed() {
    let app = start_with_default_client_limits(|config| {
        config.http.body_idle_timeout_secs = 1;
        config.http.body_min_bytes_per_sec = 1024;
    })
    .await;
    let admin = app.admin("Acme").await;
    let auth = format!("Authorization: Bearer {}\r\n", admin.access_token);
    let mut stream = slow_body(
        addr_of(&app),
        "/api/enterprise/api-keys/generate",
        1000,
        &auth,
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the connection stayed open")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    app.stop().await;
}

#[tokio::test]
async fn half_sent_headers_are_closed_within_the_timeout() {
    let app = TestApp::start_with(|config| config.http.header_read_timeout_secs = 1).await;
    let addr = addr_of(&app);
    let mut streams = Vec::new();
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x")
            .await
            .unwrap();
        streams.push(stream);
    }
    let started = Instant::now();
    let mut closed = 0;
    for stream in &mut streams {
        let mut rest = Vec::new();
        let ended =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        if ended.is_ok() {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000, "connections left open");
    assert!(started.elapsed() < Duration::from_secs(5));
    // An idle keep-alive connection is closed after the same time.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = vec![0u8; 1024];
    let read = idle.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..read]).starts_with("HTTP/1.1 200"));
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("an idle keep-alive connection stayed open");
    app.stop().await;
}

#[tokio::test]
async fn one_client_has_a_bounded_number_of_requests_in_flight() {
    let app = start_with_default_client_limits(|config| {
        config.http.max_requests_per_client = 4;
        config.http.body_idle_timeout_secs = 30;
    })
    .await;
    let admin = app.admin("Acme").await;
    let auth = format!("Authorization: Bearer {}\r\n", admin.access_token);
    let addr = addr_of(&app);
    // Four requests whose bodies are still coming hold the client's share.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            slow_body(addr, "/api/enterprise/api-keys/generate", 1000, &auth)
                .await
                .unwrap(),
        );
    }
    // Give the server the time to take them in (their headers are complete).
    let client = reqwest::Client::new();
    let mut refused = None;
    for _ in 0..50 {
        let response = client
            .get(app.url("/api/enterprise/users"))
            .bearer_auth(&admin.access_token)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        tokio::task::yield_now().await;
    }
    let refused = refused.expect("a fifth request in flight was served");
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
    // Another client is not concerned.
    let other = client_from(OTHER_CLIENT)
        .get(app.url("/api/enterprise/users"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    drop(held);
    app.stop().await;
}

#[tokio::test]
async fn one_address_holds_a_bounded_number_of_connections() {
    // Long enough that no held connection times out while they are counted.
    let app = start_with_default_client_limits(|config| {
        config.http.header_read_timeout_secs = 60;
    })
    .await;
    let addr = addr_of(&app);
    let cap = enterprise_sync::config::HttpConfig::default().max_connections_per_client;
    // Silent connections: each holds a place until the header timeout.
    let mut streams = Vec::new();
    for _ in 0..cap + 36 {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut closed_at_once = 0;
    for stream in &mut streams {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed_at_once += 1,
            _ => {}
        }
    }
    assert_eq!(closed_at_once, 36);
    let health = client_from(OTHER_CLIENT)
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let metrics = client_from(OTHER_CLIENT)
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("enterprise_sync_http_connections_refused_total{reason=\"per_client\"} 36"),
        "{metrics}"
    );
    drop(streams);
    app.stop().await;
}

#[tokio::test]
async fn api_and_scim_calls_without_credentials_are_refused_before_their_body() {
    let app = start_with_default_client_limits(|_| {}).await;
    for path in [
        "/api/enterprise/users/bulk-import",
        "/scim/v2/Users",
        "/api/enterprise/api-keys/generate",
    ] {
        let mut stream = slow_body(addr_of(&app), path, 500_000, "").await.unwrap();
        let mut answer = vec![0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{path}: the server waited for the body"))
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
    }
    app.stop().await;
}
