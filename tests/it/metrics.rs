//! `/metrics` after real traffic: requests by route template, imports and rows,
//! rate-limit refusals, the drop directory's queue, the database size, and each
//! enterprise's last successful sync.

use std::time::{Duration, SystemTime};

use enterprise_sync::config::CompletionPolicy;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dropdir::{setup, with_drop_dir};
use crate::support::{Auth, TestApp};

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    })
}

async fn scrape(app: &TestApp, url: &str) -> String {
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_requests_imports_refusals_and_the_drop_queue() {
    let app = TestApp::start_with(|config| {
        with_drop_dir(CompletionPolicy::Marker)(config);
        config.rate_limit.login_per_ip_per_minute = 2;
        config.metrics.per_enterprise = true;
    })
    .await;
    let drop = setup(&app, "Metrics").await;
    let enterprise = drop.admin.enterprise_id.clone();

    // A store by id: the series names the route template, not the id.
    let stores: serde_json::Value = app
        .get("/api/enterprise/stores?limit=1", &Auth::Key(&drop.key))
        .await
        .json()
        .await
        .unwrap();
    let id = stores["data"][0]["id"].as_str().unwrap().to_string();
    let shown = app
        .get(
            &format!("/api/enterprise/stores/{id}"),
            &Auth::Key(&drop.key),
        )
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    let missing = app.get("/no/such/route", &Auth::None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // A partial import: one row applied, one refused.
    let (_, writer) = app.key(&drop.admin, &["stores:write"]).await;
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/stores/bulk-import",
            &Auth::Key(&writer),
            Some(json!({ "stores": [
                { "name": "Nice", "external_id": "S9" },
                { "external_id": "S10" },
            ]})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // Two logins a minute: setup's and the first wrong one pass, two are refused.
    for _ in 0..3 {
        app.login(&drop.admin.email, "not the password at all")
            .await;
    }

    // A file waits for its marker, written ten minutes before the clock's now.
    let waiting = drop.incoming().join("users.csv");
    std::fs::write(&waiting, "external_id,name\nE1,Ann\n").unwrap();
    let written = SystemTime::from(app.clock_now()) - Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&waiting)
        .unwrap()
        .set_modified(written)
        .unwrap();
    // Uploads in progress are not queued.
    std::fs::write(drop.incoming().join("next.csv.filepart"), "external_id").unwrap();

    let text = scrape(&app, &app.url("/metrics")).await;
    let by_id = "enterprise_sync_http_request_duration_seconds_count{method=\"GET\",route=\"/api/enterprise/stores/{id}\",status=\"200\"}";
    assert_eq!(sample(&text, by_id), Some(1.0), "{text}");
    assert!(!text.contains(&id), "a raw path reached the labels");
    let unmatched = "enterprise_sync_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\",status=\"404\"}";
    assert_eq!(sample(&text, unmatched), Some(1.0));
    // setup() imported its stores fully; this test's import was partial.
    for (series, value) in [
        (
            "enterprise_sync_imports_total{source=\"api\",status=\"success\"}",
            1.0,
        ),
        (
            "enterprise_sync_imports_total{source=\"api\",status=\"partial\"}",
            1.0,
        ),
        (
            "enterprise_sync_import_rows_total{source=\"api\",outcome=\"created\"}",
            3.0,
        ),
        (
            "enterprise_sync_import_rows_total{source=\"api\",outcome=\"failed\"}",
            1.0,
        ),
        (
            "enterprise_sync_rate_limited_requests_total{policy=\"login-per-ip\"}",
            2.0,
        ),
        ("enterprise_sync_dropdir_queue_files", 1.0),
        (
            "enterprise_sync_dropdir_oldest_pending_file_age_seconds",
            600.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    let last = format!(
        "enterprise_sync_last_successful_sync_timestamp_seconds{{enterprise_id=\"{enterprise}\"}}"
    );
    assert_eq!(
        sample(&text, &last),
        Some(app.clock_now().timestamp() as f64)
    );
    let size = sample(&text, "enterprise_sync_database_size_bytes").unwrap();
    assert!(size >= 4096.0, "{size}");
    app.stop().await;
}

#[tokio::test]
async fn metrics_can_move_to_their_own_address() {
    let app = TestApp::start_with(|config| {
        config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let elsewhere = app.metrics_url().expect("a metrics listener");
    let text = scrape(&app, &elsewhere).await;
    assert!(text.contains("enterprise_sync_build_info"), "{text}");
    let main = app.get("/metrics", &Auth::None).await;
    assert_eq!(main.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = TestApp::start_with(|config| config.metrics.enabled = false).await;
    let main = app.get("/metrics", &Auth::None).await;
    assert_eq!(main.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
