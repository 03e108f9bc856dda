use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{error_code, TestApp, PASSWORD};

fn registration(email: &str) -> Value {
    json!({
        "company_name": "Acme Retail",
        "company_email": "it@acme.example",
        "sync_mode": "api",
        "it_admin_name": "Alice Admin",
        "it_admin_email": email,
        "it_admin_password": PASSWORD,
    })
}

#[tokio::test]
async fn register_creates_the_enterprise_and_its_admin() {
    let app = TestApp::start().await;
    let response = app
        .post(
            "/api/enterprise/register",
            registration("Alice@Acme.Example "),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let enterprise = body["enterprise_account_id"].as_str().unwrap();
    let admin = body["it_admin_id"].as_str().unwrap();
    let conn = app.raw_db();
    let (email, role, hash): (String, String, String) = conn
        .query_row(
            "SELECT email, role, password_hash FROM users WHERE id = ?1 AND enterprise_account_id = ?2",
            [admin, enterprise],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(email, "alice@acme.example");
    assert_eq!(role, "it_admin");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_email_of_another_enterprise_registers_a_new_one() {
    let app = TestApp::start().await;
    let first = app.register("Acme", "alice@acme.example").await;
    // The same person starts a second enterprise: nothing says the email is
    // known elsewhere, and both enterprises have their own admin.
    let response = app
        .post(
            "/api/enterprise/register",
            registration("ALICE@acme.example"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let second: Value = response.json().await.unwrap();
    assert_ne!(
        first["enterprise_account_id"],
        second["enterprise_account_id"]
    );
    let admins: i64 = app
        .raw_db()
        .query_row(
            "SELECT COUNT(DISTINCT enterprise_account_id) FROM users WHERE email = 'alice@acme.example'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(admins, 2);
    app.stop().await;
}

#[tokio::test]
async fn every_bad_field_is_named() {
    let app = TestApp::start().await;
    let response = app
        .post(
            "/api/enterprise/register",
            json!({ "company_name": " ", "company_email": "nope", "sync_mode": "ftp",
                    "it_admin_email": "a@b.example", "it_admin_password": "short" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "company_name",
            "company_email",
            "sync_mode",
            "it_admin_name",
            "it_admin_password"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn common_or_personal_passwords_are_refused() {
    let app = TestApp::start().await;
    for password in [
        "password1234567890",
        "alice-acme-2026-secret",
        "aaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let mut body = registration("alice@acme.example");
        body["it_admin_password"] = json!(password);
        let response = app.post("/api/enterprise/register", body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{password}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_structured_errors() {
    let app = TestApp::start().await;
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url("/api/enterprise/register"))
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    let broken = raw("{\"company_name\": ", Some("application/json"))
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(broken).await, "invalid_json");

    let no_type = raw("{}", None).await.unwrap();
    assert_eq!(no_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(no_type).await, "unsupported_media_type");

    let wrong_type = raw("{\"company_name\": 5}", Some("application/json"))
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(
        body["error"]["details"]["fields"][0]["field"],
        "company_name"
    );

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep = app
        .client
        .post(app.url("/api/enterprise/register"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert!(deep.status().is_client_error(), "{}", deep.status());
    let nested_object = format!(
        "{{\"company_name\": {}1{}}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    let nested = app
        .client
        .post(app.url("/api/enterprise/register"))
        .header("content-type", "application/json")
        .body(nested_object)
        .send()
        .await
        .unwrap();
    assert!(nested.status().is_client_error(), "{}", nested.status());
    // Still alive.
    assert_eq!(
        app.get("/healthz", &crate::support::Auth::None)
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = TestApp::start_with(|c| c.http.max_body_bytes = 4096).await;
    let mut body = registration("alice@acme.example");
    body["company_name"] = json!("x".repeat(10_000));
    let response = app.post("/api/enterprise/register", body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(response).await, "payload_too_large");
    let hashes = app.services().passwords.hashes_run();
    assert_eq!(hashes, 0, "nothing was hashed for a refused body");
    app.stop().await;
}

#[tokio::test]
async fn registration_can_be_closed() {
    let app = TestApp::start_with(|c| {
        c.allow_registration = enterprise_sync::config::RegistrationPolicy::Closed
    })
    .await;
    let response = app
        .post(
            "/api/enterprise/register",
            registration("alice@acme.example"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(response).await, "registration_closed");
    app.stop().await;
}

#[tokio::test]
async fn registration_is_open_for_the_first_enterprise_then_takes_an_operator_token() {
    use enterprise_sync::config::RegistrationPolicy;
    let app = TestApp::start_with(|c| c.allow_registration = RegistrationPolicy::First).await;
    let first = app
        .post(
            "/api/enterprise/register",
            registration("alice@acme.example"),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = app
        .post("/api/enterprise/register", registration("bob@beta.example"))
        .await;
    assert_eq!(second.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(second).await, "registration_closed");

    // The operator's one-time token lets one more through, in the body...
    let issue = || async {
        enterprise_sync::service::registration_tokens::issue(
            &app.services().db,
            app.clock_now(),
            72,
        )
        .await
        .unwrap()
    };
    let token = issue().await;
    let mut body = registration("bob@beta.example");
    body["registration_token"] = serde_json::json!(token);
    let with_token = app.post("/api/enterprise/register", body.clone()).await;
    assert_eq!(with_token.status(), StatusCode::CREATED);
    // ...once.
    body["it_admin_email"] = serde_json::json!("carol@gamma.example");
    let again = app.post("/api/enterprise/register", body).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    // In the header too; an expired one is refused like a wrong one.
    let token = issue().await;
    let by_header = app
        .client
        .post(app.url("/api/enterprise/register"))
        .header("x-registration-token", &token)
        .json(&registration("dave@delta.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), StatusCode::CREATED);
    let expiring = issue().await;
    app.advance(std::time::Duration::from_secs(73 * 3600));
    let mut late = registration("erin@epsilon.example");
    late["registration_token"] = serde_json::json!(expiring);
    let late = app.post("/api/enterprise/register", late).await;
    assert_eq!(late.status(), StatusCode::FORBIDDEN);
    let mut forged = registration("erin@epsilon.example");
    forged["registration_token"] = serde_json::json!("reg_not-a-token");
    let forged = app.post("/api/enterprise/register", forged).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn the_specifications_registration_body_gets_seats_that_let_its_examples_import() {
    let app = TestApp::start().await;
    // The specification's body: no seats field.
    let mut body = registration("alice@acme.example");
    body.as_object_mut().unwrap().remove("seats_purchased");
    let response = app.post("/api/enterprise/register", body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let registered: Value = response.json().await.unwrap();
    assert_eq!(registered["seats_purchased"], 1000);
    let login: Value = app
        .login("alice@acme.example", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let key: Value = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/api-keys/generate",
            &crate::support::Auth::Bearer(token),
            Some(json!({ "name": "SAP", "scopes": ["users:write", "stores:write"], "expires_in_days": 365 })),
        )
        .await
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap();
    let stores = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/stores/bulk-import",
            &crate::support::Auth::Key(key),
            Some(json!({ "stores": [{ "name": "Paris Opéra", "location": "Paris", "address": "1 rue Auber", "phone": "+33 1 00 00 00 00", "external_id": "ST-001" }], "mode": "create_or_update" })),
        )
        .await;
    assert_eq!(stores.status(), StatusCode::OK);
    let users: Value = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/users/bulk-import",
            &crate::support::Auth::Key(key),
            Some(json!({ "users": [
                { "email": "jean@acme.example", "name": "Jean Dupont", "role": "manager", "store_id": "ST-001", "external_id": "EMP-1" },
                { "email": "marie@acme.example", "name": "Marie Curie", "role": "seller", "store_id": "ST-001", "manager_id": "EMP-1", "external_id": "EMP-2" },
            ], "mode": "create_or_update", "send_invitations": false })),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users["created"], 2, "{users}");
    assert_eq!(users["failed"], 0, "{users}");
    // The integrator follows its sync with the same key (no sync:read).
    for path in [
        "/api/enterprise/sync-status",
        "/api/enterprise/sync-logs?limit=50",
    ] {
        let response = app.get(path, &crate::support::Auth::Key(key)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    app.stop().await;
}
