//! One enterprise's expensive reads never leave another without a reader,
//! stop when their client hangs up, and stop at their time budget.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{Admin, Auth, TestApp};

const PEOPLE: usize = 200_000;

/// The most expensive filter the service accepts: ten comparisons, five
/// passes over every person's emails.
fn worst_filter() -> String {
    let terms: Vec<String> = (0..5)
        .map(|n| format!("emails[value co \"nobody{n}\"]"))
        .collect();
    terms.join(" or ")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn enterprise_with_people(app: &TestApp, company: &str) -> (Admin, String) {
    let admin = app.admin(company).await;
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = 1000000 WHERE id = ?1",
            [&admin.enterprise_id],
        )
        .unwrap();
    let (_, key) = app.key(&admin, &["users:write", "scim"]).await;
    for chunk in 0..PEOPLE / 20_000 {
        let users: Vec<Value> = (0..20_000)
            .map(|n| {
                let n = chunk * 20_000 + n;
                json!({ "email": format!("p{n}@{company}.example"), "name": format!("Person {n}"),
                        "role": "manager", "external_id": format!("E{n}") })
            })
            .collect();
        let response = app
            .call(
                reqwest::Method::POST,
                "/api/enterprise/users/bulk-import",
                &Auth::Key(&key),
                Some(json!({ "users": users })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let report: Value = response.json().await.unwrap();
        assert_eq!(report["created"], 20_000, "{}", report["errors"][0]);
    }
    (admin, key)
}

fn scim_filter_url(app: &TestApp, filter: &str) -> String {
    app.url(&format!("/scim/v2/Users?count=1&filter={}", encode(filter)))
}

#[tokio::test]
async fn one_tenants_worst_filters_leave_the_others_fast_and_stop_when_it_hangs_up() {
    // A long budget: what stops the queries below is their clients leaving.
    // Two readers: A's share is one of them, so its six filters queue behind
    // each other (seconds of work) unless hanging up cancels them.
    let app = TestApp::start_with(|config| {
        config.database.read_budget_ms = 120_000;
        config.database.read_connections = 2;
    })
    .await;
    let (_, key_a) = enterprise_with_people(&app, "a").await;
    let b = app.admin("Other").await;
    // A's six worst filters, each client giving up after 0.3 s.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut attackers = Vec::new();
    for _ in 0..6 {
        let request = impatient
            .get(scim_filter_url(&app, &worst_filter()))
            .bearer_auth(&key_a);
        attackers.push(tokio::spawn(async move { request.send().await }));
    }
    // Let them reach the readers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let response = app
        .get(
            "/api/enterprise/users?limit=50",
            &Auth::Bearer(&b.access_token),
        )
        .await;
    let waited = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        waited < Duration::from_secs(1),
        "tenant B waited {waited:?}"
    );
    let mut gave_up = 0;
    for attacker in attackers {
        if attacker.await.unwrap().is_err() {
            gave_up += 1;
        }
    }
    // The filters are slow enough that their clients hung up (or the test
    // proves nothing about cancellation).
    assert_eq!(gave_up, 6, "A's filters ended before their clients hung up");
    // The interrupted queries free A's share at once.
    let started = Instant::now();
    let response = app
        .client
        .get(app.url("/scim/v2/Users?count=1"))
        .bearer_auth(&key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "A's own read waited {:?} after its clients hung up",
        started.elapsed()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_read_past_its_budget_stops_with_503_and_a_long_filter_is_refused() {
    // The worst filter takes seconds over 200,000 people and a one-item page
    // tens of milliseconds: 500 ms keeps both far from the line, even on a
    // loaded CI machine (150 ms once stopped the cheap page there).
    let app = TestApp::start_with(|config| config.database.read_budget_ms = 500).await;
    let (_, key) = enterprise_with_people(&app, "a").await;
    let response = app
        .client
        .get(scim_filter_url(&app, &worst_filter()))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "503");
    assert!(
        body["detail"].as_str().unwrap().contains("time budget"),
        "{body}"
    );
    // Eleven comparisons: refused before it runs.
    let long: Vec<String> = (0..11).map(|n| format!("title eq \"t{n}\"")).collect();
    let response = app
        .client
        .get(scim_filter_url(&app, &long.join(" or ")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scimType"], "tooMany");
    // The REST list is budgeted too, and says so in its own shape.
    let cheap = app
        .client
        .get(app.url("/scim/v2/Users?count=1"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(cheap.status(), StatusCode::OK);
    app.stop().await;
}
