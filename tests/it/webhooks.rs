use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::receiver::{Received, Receiver};
use crate::support::{Admin, Auth, TestApp};

const ALL_EVENTS: [&str; 9] = [
    "user.created",
    "user.updated",
    "user.deactivated",
    "store.created",
    "store.updated",
    "store.deactivated",
    "sync.completed",
    "sync.failed",
    "file.held",
];

async fn setup(app: &TestApp, company: &str) -> (Admin, String) {
    let admin = app.admin(company).await;
    let (_, key) = app.key(&admin, &["users:write", "stores:write"]).await;
    app.seed_store(&admin.enterprise_id, "Lyon").await;
    (admin, key)
}

async fn settings(app: &TestApp, admin: &Admin, change: Value) -> (StatusCode, Value) {
    let response = app
        .call(
            Method::PUT,
            "/api/enterprise/notification-settings",
            &Auth::Bearer(&admin.access_token),
            Some(change),
        )
        .await;
    (response.status(), response.json().await.unwrap())
}

async fn allow_loopback(app: &TestApp, admin: &Admin) {
    let (status, _) = settings(
        app,
        admin,
        json!({ "webhook_allowed_networks": ["127.0.0.1/32"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

async fn register(app: &TestApp, admin: &Admin, url: &str, events: &[&str]) -> (StatusCode, Value) {
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/webhooks",
            &Auth::Bearer(&admin.access_token),
            Some(json!({ "url": url, "events": events, "description": "ERP listener" })),
        )
        .await;
    (response.status(), response.json().await.unwrap())
}

/// Registers an endpoint on the receiver; returns (id, secret).
async fn endpoint(
    app: &TestApp,
    admin: &Admin,
    receiver: &Receiver,
    events: &[&str],
) -> (String, String) {
    let (status, body) = register(app, admin, &receiver.url, events).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
    )
}

async fn import_users(app: &TestApp, key: &str, emails: &[&str]) -> StatusCode {
    let users: Vec<Value> = emails
        .iter()
        .map(|email| json!({ "email": email, "name": "Hook Person", "role": "seller", "store_id": "EXT-Lyon", "external_id": format!("X-{email}") }))
        .collect();
    app.call(
        Method::POST,
        "/api/enterprise/users/bulk-import",
        &Auth::Key(key),
        Some(json!({ "users": users, "mode": "create_or_update" })),
    )
    .await
    .status()
}

/// The receiver's check, written from the documentation alone: base64 of
/// HMAC-SHA256, keyed with the secret's base64-decoded bytes after `whsec_`,
/// over `{webhook-id}.{webhook-timestamp}.{body}`.
fn signature_verifies(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    header.split(' ').any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|sig| b64.decode(sig).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok())
    })
}

fn verifies(secret: &str, delivery: &Received) -> bool {
    signature_verifies(
        secret,
        &delivery.header("webhook-id"),
        &delivery.header("webhook-timestamp"),
        &delivery.body,
        &delivery.header("webhook-signature"),
    )
}

async fn deliveries(app: &TestApp, admin: &Admin, id: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/api/enterprise/webhooks/{id}/deliveries"),
            &Auth::Bearer(&admin.access_token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

/// Waits until the delivery log holds `count` attempts (the worker records an
/// attempt just after the receiver answered).
async fn wait_for_attempts(app: &TestApp, admin: &Admin, id: &str, count: usize) -> Vec<Value> {
    for _ in 0..1000 {
        let attempts = deliveries(app, admin, id).await;
        if attempts.len() >= count {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the delivery log never reached {count} attempts");
}

async fn webhook(app: &TestApp, admin: &Admin, id: &str) -> Value {
    let response = app
        .get(
            &format!("/api/enterprise/webhooks/{id}"),
            &Auth::Bearer(&admin.access_token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn deliveries_are_signed_batched_per_type_and_verify() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let receiver = Receiver::start().await;
    allow_loopback(&app, &admin).await;
    let (id, secret) = endpoint(&app, &admin, &receiver, &["user.created", "sync.completed"]).await;
    assert!(secret.starts_with("whsec_"));

    assert_eq!(
        import_users(
            &app,
            &key,
            &["a@acme.example", "b@acme.example", "c@acme.example"]
        )
        .await,
        StatusCode::OK
    );
    let received = receiver.wait_for(2).await;
    let by_type = |t: &str| {
        received
            .iter()
            .find(|r| r.json()["type"] == t)
            .unwrap()
            .clone()
    };
    let created = by_type("user.created");
    assert_eq!(created.header("content-type"), "application/json");
    assert!(created.header("webhook-id").starts_with("msg_"));
    assert!(verifies(&secret, &created), "the signature does not verify");
    let body = created.json();
    assert_eq!(body["data"]["count"], 3);
    assert_eq!(body["data"]["enterprise_id"], admin.enterprise_id.as_str());
    let events = body["data"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| e["type"] == "user.created" && e["id"].is_string()));
    assert_eq!(events[0]["external_id"], "X-a@acme.example");
    assert_eq!(
        created.header("webhook-timestamp").parse::<i64>().unwrap(),
        app.clock_now().timestamp()
    );

    // One flipped byte anywhere in the body, or another timestamp, fails.
    let mut tampered = created.clone();
    let mut bytes = tampered.body.to_vec();
    bytes[10] ^= 0x01;
    tampered.body = bytes.into();
    assert!(!verifies(&secret, &tampered));
    assert!(!signature_verifies(
        &secret,
        &created.header("webhook-id"),
        &(app.clock_now().timestamp() + 1).to_string(),
        &created.body,
        &created.header("webhook-signature"),
    ));
    // Signed with this endpoint's secret, not with any other.
    let (_, other_secret) = endpoint(&app, &admin, &receiver, &["user.created"]).await;
    assert!(!verifies(&other_secret, &created));

    let completed = by_type("sync.completed").json();
    assert_eq!(completed["data"]["status"], "success");
    assert_eq!(completed["data"]["created"], 3);
    assert_eq!(completed["data"]["source"], "api");
    assert!(verifies(&secret, &by_type("sync.completed")));

    let attempts = wait_for_attempts(&app, &admin, &id, 2).await;
    assert!(attempts
        .iter()
        .all(|a| a["status_code"] == 200 && a["message_state"] == "delivered"));
    let view = webhook(&app, &admin, &id).await;
    assert_eq!(view["delivered_messages"], 2);
    assert!(view.get("secret").is_none());
    // The secret is sealed at rest: the database file never holds it in clear.
    let file = std::fs::read(app.db_path()).unwrap();
    let wal = std::fs::read(app.db_path().with_extension("db-wal")).unwrap_or_default();
    for bytes in [file, wal] {
        assert!(!bytes.windows(6).any(|w| w == b"whsec_"));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_large_import_sends_batches_not_one_request_per_record() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let receiver = Receiver::start().await;
    allow_loopback(&app, &admin).await;
    let (id, secret) = endpoint(&app, &admin, &receiver, &["user.created"]).await;
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = 5000 WHERE id = ?1",
            [&admin.enterprise_id],
        )
        .unwrap();
    let emails: Vec<String> = (0..1200).map(|i| format!("p{i}@acme.example")).collect();
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    assert_eq!(import_users(&app, &key, &refs).await, StatusCode::OK);
    let received = receiver.wait_for(3).await;
    wait_for_attempts(&app, &admin, &id, 3).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "500 events per delivery at most"
    );
    let mut counts: Vec<u64> = received
        .iter()
        .map(|r| r.json()["data"]["count"].as_u64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, [200, 500, 500]);
    assert!(received.iter().all(|r| verifies(&secret, r)));
    app.stop().await;
}

#[tokio::test]
async fn failures_retry_on_schedule_with_the_same_id_and_410_disables() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let receiver = Receiver::start().await;
    allow_loopback(&app, &admin).await;
    let (id, _) = endpoint(&app, &admin, &receiver, &["sync.completed"]).await;
    receiver.answer(&[500, 503]);
    let start = app.clock_now();
    assert_eq!(
        import_users(&app, &key, &["a@acme.example"]).await,
        StatusCode::OK
    );

    receiver.wait_for(1).await;
    let attempts = wait_for_attempts(&app, &admin, &id, 1).await;
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["message_state"], "pending");
    // A receiver inside an allowed (non-public) network tells the tenant its
    // status and timing only, never its body.
    assert!(attempts[0]["response_snippet"].is_null(), "{}", attempts[0]);
    let next: chrono::DateTime<chrono::Utc> = attempts[0]["next_attempt_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let wait = next - start;
    assert!(
        wait >= chrono::Duration::seconds(5) && wait <= chrono::Duration::seconds(6),
        "{wait}"
    );

    // Nothing is sent before the time comes…
    app.advance(Duration::from_secs(4));
    app.services().outbound.wake_webhooks();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    // …and the second attempt goes out once it has.
    app.advance(Duration::from_secs(3));
    app.services().outbound.wake_webhooks();
    receiver.wait_for(2).await;
    let attempts = wait_for_attempts(&app, &admin, &id, 2).await;
    assert_eq!(attempts[0]["attempt"], 2);
    assert_eq!(attempts[0]["status_code"], 503);
    let next: chrono::DateTime<chrono::Utc> = attempts[0]["next_attempt_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let wait = next - app.clock_now();
    assert!(
        wait >= chrono::Duration::minutes(5) && wait <= chrono::Duration::minutes(6),
        "{wait}"
    );

    app.advance(Duration::from_secs(6 * 60 + 1));
    app.services().outbound.wake_webhooks();
    let received = receiver.wait_for(3).await;
    let attempts = wait_for_attempts(&app, &admin, &id, 3).await;
    assert_eq!(attempts[0]["status_code"], 200);
    assert!(attempts.iter().all(|a| a["message_state"] == "delivered"));
    let ids: Vec<String> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "retries keep their webhook-id: {ids:?}"
    );

    // 410 Gone disables the endpoint at once, audited.
    receiver.answer(&[410]);
    assert_eq!(
        import_users(&app, &key, &["b@acme.example"]).await,
        StatusCode::OK
    );
    receiver.wait_for(4).await;
    wait_for_attempts(&app, &admin, &id, 4).await;
    let view = webhook(&app, &admin, &id).await;
    assert_eq!(view["state"], "disabled");
    assert!(view["disabled_reason"].as_str().unwrap().contains("410"));
    assert!(app
        .audit_actions()
        .contains(&("webhook.disable".into(), "success".into())));
    // Disabled: later events are not queued for it.
    assert_eq!(
        import_users(&app, &key, &["c@acme.example"]).await,
        StatusCode::OK
    );
    app.services().outbound.wake_webhooks();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 4);
    // Turned back on, it receives new events again.
    let response = app
        .call(
            Method::POST,
            &format!("/api/enterprise/webhooks/{id}/enable"),
            &Auth::Bearer(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        import_users(&app, &key, &["d@acme.example"]).await,
        StatusCode::OK
    );
    receiver.wait_for(5).await;
    app.stop().await;
}

#[tokio::test]
async fn an_endpoint_dead_for_the_whole_window_is_disabled_and_redirects_are_not_followed() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let receiver = Receiver::start().await;
    let canary = Receiver::start().await;
    allow_loopback(&app, &admin).await;
    let (id, _) = endpoint(&app, &admin, &receiver, &["sync.completed"]).await;
    // Every attempt is answered with a redirect to the canary.
    for _ in 0..10 {
        receiver.answer_with_headers(302, vec![("location", canary.url.clone())]);
    }
    assert_eq!(
        import_users(&app, &key, &["a@acme.example"]).await,
        StatusCode::OK
    );
    for attempt in 1..=10 {
        receiver.wait_for(attempt).await;
        // Read from the database: a day later the admin's session has expired.
        for _ in 0..1000 {
            let logged: i64 = app
                .raw_db()
                .query_row("SELECT COUNT(*) FROM webhook_attempts", [], |r| r.get(0))
                .unwrap();
            if logged >= attempt as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Past the longest wait (24 h) and its jitter.
        app.advance(Duration::from_secs(30 * 3600));
        app.services().outbound.wake_webhooks();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 10, "ten attempts, then no more");
    let admin = app.login_admin(&admin).await;
    let attempts = deliveries(&app, &admin, &id).await;
    assert_eq!(attempts.len(), 10);
    assert!(attempts[0]["error"]
        .as_str()
        .unwrap()
        .contains("redirects are not followed"));
    assert_eq!(attempts[0]["message_state"], "failed");
    assert!(attempts[0]["next_attempt_at"].is_null());
    let view = webhook(&app, &admin, &id).await;
    assert_eq!(view["state"], "disabled");
    assert_eq!(view["failed_messages"], 1);
    assert!(canary.received().is_empty(), "a redirect was followed");
    app.stop().await;
}

#[tokio::test]
async fn a_restart_mid_schedule_resumes_with_the_same_webhook_id() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let receiver = Receiver::start().await;
    allow_loopback(&app, &admin).await;
    let (id, secret) = endpoint(&app, &admin, &receiver, &["user.created"]).await;
    receiver.answer(&[500]);
    assert_eq!(
        import_users(&app, &key, &["a@acme.example"]).await,
        StatusCode::OK
    );
    receiver.wait_for(1).await;
    wait_for_attempts(&app, &admin, &id, 1).await;
    let (dir, _) = app.stop_keeping_data().await;

    let app = TestApp::start_in(dir, |_| {}).await;
    // The restarted service's clock starts where the first one did.
    app.advance(Duration::from_secs(7));
    app.services().outbound.wake_webhooks();
    let received = receiver.wait_for(2).await;
    assert_eq!(
        received[1].header("webhook-id"),
        received[0].header("webhook-id")
    );
    assert_eq!(received[1].body, received[0].body);
    assert!(verifies(&secret, &received[1]));
    app.stop().await;
}

#[tokio::test]
async fn a_rolled_back_import_emits_nothing() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let receiver = Receiver::start().await;
    allow_loopback(&app, &admin).await;
    endpoint(&app, &admin, &receiver, &ALL_EVENTS).await;
    // The import fails after its events were queued, inside its transaction.
    app.raw_db()
        .execute_batch(
            "CREATE TRIGGER fail_late AFTER INSERT ON change_batches
             BEGIN SELECT RAISE(ABORT, 'simulated failure at the end of the import'); END;",
        )
        .unwrap();
    let status = import_users(&app, &key, &["a@acme.example", "b@acme.example"]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let queued: i64 = app
        .raw_db()
        .query_row("SELECT COUNT(*) FROM webhook_messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 0);
    app.services().outbound.wake_webhooks();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());

    app.raw_db()
        .execute_batch("DROP TRIGGER fail_late")
        .unwrap();
    assert_eq!(
        import_users(&app, &key, &["a@acme.example"]).await,
        StatusCode::OK
    );
    let received = receiver.wait_for(2).await;
    let mut types: Vec<String> = received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    types.sort();
    assert_eq!(types, ["sync.completed", "user.created"]);
    app.stop().await;
}

#[tokio::test]
async fn internal_destinations_are_refused_in_every_spelling() {
    let app = TestApp::start().await;
    let (admin, _) = setup(&app, "Acme").await;
    let canary = Receiver::start().await;
    let port = canary
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for url in [
        format!("http://127.0.0.1:{port}/hooks"),
        format!("https://2130706433:{port}/"),
        format!("https://0x7f.1:{port}/"),
        format!("https://0177.0.0.1:{port}/"),
        format!("https://127.1:{port}/"),
        format!("https://0:{port}/"),
        format!("https://[::1]:{port}/"),
        format!("https://[::ffff:127.0.0.1]:{port}/"),
        format!("https://localhost:{port}/"),
        format!("https://localhost.:{port}/"),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://10.0.0.8/".into(),
        "https://192.168.1.20/".into(),
        "https://172.20.0.1/".into(),
        "https://[fe80::1]/".into(),
        "https://[fd00::1]/".into(),
        // IPv6 translation prefixes carrying internal IPv4 addresses.
        format!("https://[::ffff:0:127.0.0.1]:{port}/"),
        "https://[::ffff:0:a9fe:a9fe]/".into(),
        format!("https://[64:ff9b:1::7f00:1]:{port}/"),
        "https://[64:ff9b:1::a9fe:a9fe]/".into(),
        format!("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}/"),
    ] {
        let (status, body) = register(&app, &admin, &url, &["user.created"]).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url} was accepted: {body}"
        );
        assert_eq!(
            body["error"]["details"]["fields"][0]["code"], "destination_refused",
            "{url}"
        );
    }
    for (url, code) in [
        ("ftp://example.com/", "invalid_url"),
        ("https://user:pw@example.com/", "invalid_url"),
        ("not a url", "invalid_url"),
    ] {
        let (status, body) = register(&app, &admin, url, &["user.created"]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["details"]["fields"][0]["code"], code, "{url}");
    }
    let (status, body) = register(&app, &admin, "https://example.com/", &["user.deleted"]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "events[0]");
    assert!(canary.received().is_empty());
    assert!(app
        .audit_actions()
        .contains(&("webhook.create".into(), "denied".into())));

    // Allowed networks open exactly what they name, and plain http only there.
    allow_loopback(&app, &admin).await;
    assert_eq!(
        register(&app, &admin, &canary.url, &["user.created"])
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, _) = register(
        &app,
        &admin,
        &format!("http://[::1]:{port}/"),
        &["user.created"],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = register(&app, &admin, "http://10.0.0.8/", &["user.created"]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn delivery_checks_the_address_again() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let receiver = Receiver::start().await;
    allow_loopback(&app, &admin).await;
    let (id, _) = endpoint(&app, &admin, &receiver, &["sync.completed"]).await;
    // The allowed network is withdrawn after registration: deliveries stop.
    let (status, _) = settings(&app, &admin, json!({ "webhook_allowed_networks": [] })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        import_users(&app, &key, &["a@acme.example"]).await,
        StatusCode::OK
    );
    let attempts = wait_for_attempts(&app, &admin, &id, 1).await;
    assert!(attempts[0]["status_code"].is_null());
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("loopback"),
        "{}",
        attempts[0]
    );
    assert!(receiver.received().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn webhooks_are_the_enterprise_admins_alone() {
    let app = TestApp::start().await;
    let (admin_a, key_a) = setup(&app, "Acme").await;
    let (admin_b, _) = setup(&app, "Globex").await;
    let receiver = Receiver::start().await;
    allow_loopback(&app, &admin_a).await;
    let (id, _) = endpoint(&app, &admin_a, &receiver, &["user.created"]).await;
    let b = Auth::Bearer(&admin_b.access_token);
    for (method, path) in [
        (Method::GET, format!("/api/enterprise/webhooks/{id}")),
        (
            Method::GET,
            format!("/api/enterprise/webhooks/{id}/deliveries"),
        ),
        (
            Method::POST,
            format!("/api/enterprise/webhooks/{id}/enable"),
        ),
        (Method::DELETE, format!("/api/enterprise/webhooks/{id}")),
    ] {
        let response = app.call(method.clone(), &path, &b, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let listed: Value = app
        .get("/api/enterprise/webhooks", &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]));
    // B's allowed networks do not open A's, nor the reverse.
    let (status, _) = register(&app, &admin_b, &receiver.url, &["user.created"]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // An API key, whatever its scopes, cannot manage webhooks.
    for (method, path) in [
        (Method::GET, "/api/enterprise/webhooks".to_string()),
        (Method::POST, "/api/enterprise/webhooks".to_string()),
        (
            Method::GET,
            "/api/enterprise/notification-settings".to_string(),
        ),
    ] {
        let response = app
            .call(method.clone(), &path, &Auth::Key(&key_a), Some(json!({})))
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    let listed: Value = app
        .get(
            "/api/enterprise/webhooks",
            &Auth::Bearer(&admin_a.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let response = app
        .call(
            Method::DELETE,
            &format!("/api/enterprise/webhooks/{id}"),
            &Auth::Bearer(&admin_a.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(app
        .audit_actions()
        .contains(&("webhook.delete".into(), "success".into())));
    app.stop().await;
}

#[tokio::test]
async fn notification_settings_validate_and_are_audited() {
    let app = TestApp::start().await;
    let (admin, _) = setup(&app, "Acme").await;
    let current: Value = app
        .get(
            "/api/enterprise/notification-settings",
            &Auth::Bearer(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["language"], "fr");
    assert!(current["alert_recipients"].is_null());
    let (status, body) = settings(
        &app,
        &admin,
        json!({
            "language": "de",
            "alert_recipients": ["ops@acme.example", "nope"],
            "stale_after_hours": 0,
            "webhook_allowed_networks": ["0.0.0.0/0", "127.0.0.1/32"],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "language",
            "alert_recipients[1]",
            "stale_after_hours",
            "webhook_allowed_networks[0]"
        ]
    );
    let (status, body) = settings(
        &app,
        &admin,
        json!({ "language": "en", "alert_recipients": ["Ops@Acme.example"], "alert_on_partial": true, "stale_after_hours": 26 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["alert_recipients"], json!(["ops@acme.example"]));
    assert_eq!(body["stale_after_hours"], 26);
    // null brings a default back; absent fields stay.
    let (_, body) = settings(&app, &admin, json!({ "alert_recipients": null })).await;
    assert!(body["alert_recipients"].is_null());
    assert_eq!(body["language"], "en");
    let (status, body) = settings(&app, &admin, json!({ "colour": "blue" })).await;
    assert!(status.is_client_error(), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    let updates = app
        .audit_actions()
        .iter()
        .filter(|(a, _)| a == "notification_settings.update")
        .count();
    assert_eq!(updates, 2);
    app.stop().await;
}

#[tokio::test]
async fn finished_messages_are_pruned_with_the_record_logs_and_pending_ones_kept() {
    let app = TestApp::start_with(|c| c.imports.record_log_retention_days = 20).await;
    let (admin, key) = setup(&app, "Acme").await;
    let receiver = Receiver::start().await;
    allow_loopback(&app, &admin).await;
    let (id, _) = endpoint(&app, &admin, &receiver, &["sync.completed", "sync.failed"]).await;
    assert_eq!(
        import_users(&app, &key, &["a@acme.example"]).await,
        StatusCode::OK
    );
    let delivered = wait_for_attempts(&app, &admin, &id, 1).await[0]["message_id"].clone();
    // A failed run: its alert email waits (email is off here), as does its
    // webhook, which the receiver refuses for now.
    receiver.answer(&[500]);
    let bad = app
        .call(
            Method::POST,
            "/api/enterprise/users/bulk-import",
            &Auth::Key(&key),
            Some(json!({ "users": [{ "email": "b@acme.example", "name": "B", "role": "seller", "store_id": "NOPE" }] })),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::OK);
    wait_for_attempts(&app, &admin, &id, 2).await;
    let count = |sql: &str| -> i64 { app.raw_db().query_row(sql, [], |r| r.get(0)).unwrap() };
    app.advance(Duration::from_secs(21 * 24 * 3600));
    enterprise_sync::service::sync_logs::prune_record_logs(app.services())
        .await
        .unwrap();
    // The delivered message went with its attempt; the one still retrying
    // when the clock moved (it may have been retried since) stays.
    let kept: Vec<String> = {
        let conn = app.raw_db();
        let mut statement = conn.prepare("SELECT id FROM webhook_messages").unwrap();
        statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(kept.len(), 1);
    assert_ne!(kept[0], delivered.as_str().unwrap());
    assert_eq!(
        count("SELECT COUNT(*) FROM webhook_attempts WHERE message_seq NOT IN (SELECT seq FROM webhook_messages)"),
        0,
        "attempts go with their message"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM email_outbox WHERE state = 'pending'"),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn only_the_operator_opens_non_public_networks_and_exactly_for_this_host() {
    let app = TestApp::start_with(|config| {
        config.webhooks.allowed_networks = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.20.0.0/16".parse().unwrap(),
        ]
    })
    .await;
    let (admin, _) = setup(&app, "Acme").await;
    for (network, code) in [
        ("169.254.169.254/32", "network_not_allowed"),
        ("0.0.0.0/8", "network_not_allowed"),
        ("0.0.0.0/1", "network_not_allowed"),
        ("128.0.0.0/1", "network_not_allowed"),
        ("::/1", "network_not_allowed"),
        ("8000::/1", "network_not_allowed"),
        ("10.0.0.0/8", "network_not_allowed"),
    ] {
        let (status, body) = settings(
            &app,
            &admin,
            json!({ "webhook_allowed_networks": [network] }),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{network}: {body}"
        );
        assert_eq!(
            body["error"]["details"]["fields"][0]["code"], code,
            "{network}"
        );
    }
    // Inside the operator's networks: the tenant may choose them.
    let (status, _) = settings(
        &app,
        &admin,
        json!({ "webhook_allowed_networks": ["127.0.0.0/8", "10.20.1.0/24"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let canary = Receiver::start().await;
    // Loopback opens only when the operator names the exact address.
    let (status, body) = register(&app, &admin, &canary.url, &["user.created"]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["details"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("only the appliance's operator"),
        "{body}"
    );
    app.stop().await;
    assert!(canary.received().is_empty());

    // No operator network: nothing non-public for anyone.
    let app = TestApp::start_with(|config| config.webhooks.allowed_networks = vec![]).await;
    let (admin, _) = setup(&app, "Acme").await;
    let (status, body) = settings(
        &app,
        &admin,
        json!({ "webhook_allowed_networks": ["127.0.0.1/32"] }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "network_not_allowed"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_cannot_be_reached_is_could_not_deliver() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    allow_loopback(&app, &admin).await;
    // A port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, body) = register(
        &app,
        &admin,
        &format!("http://127.0.0.1:{port}/hooks"),
        &["sync.completed"],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        import_users(&app, &key, &["a@acme.example"]).await,
        StatusCode::OK
    );
    let attempts = wait_for_attempts(&app, &admin, &id, 1).await;
    let error = attempts[0]["error"].as_str().unwrap();
    assert_eq!(error, "could not deliver: no answer from the receiver");
    app.stop().await;
}
