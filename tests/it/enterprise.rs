//! An IT admin's own enterprise: settings, and more IT administrators.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Admin, Auth, TestApp, PASSWORD};
use enterprise_sync::domain::Role;

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = app.call(method, path, &Auth::Bearer(token), body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_admin_reads_and_changes_the_enterprise_settings_audited() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let other = app.admin("Globex").await;
    let token = admin.access_token.as_str();
    let (status, settings) = send(&app, Method::GET, "/api/enterprise/settings", token, None).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["company_name"], "Acme");
    assert_eq!(settings["company_email"], "it@acme.example");
    assert_eq!(settings["sync_mode"], "api");
    assert_eq!(settings["seats_purchased"], 100);
    assert_eq!(settings["seats_used"], 0);
    assert_eq!(settings["time_zone"], "Europe/Paris");

    let change = json!({ "company_name": "Acme Retail", "company_email": "IT@Acme-Retail.example", "sync_mode": "scim" });
    let (status, settings) = send(
        &app,
        Method::PATCH,
        "/api/enterprise/settings",
        token,
        Some(change),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["company_name"], "Acme Retail");
    assert_eq!(settings["company_email"], "it@acme-retail.example");
    assert_eq!(settings["sync_mode"], "scim");
    // Only what is sent changes.
    let (_, settings) = send(
        &app,
        Method::PATCH,
        "/api/enterprise/settings",
        token,
        Some(json!({ "sync_mode": "file" })),
    )
    .await;
    assert_eq!(
        (
            settings["company_name"].clone(),
            settings["sync_mode"].clone()
        ),
        (json!("Acme Retail"), json!("file"))
    );
    let (_, audit) = send(
        &app,
        Method::GET,
        "/api/enterprise/audit-log?action=enterprise.settings.update",
        token,
        None,
    )
    .await;
    let entries = audit["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    let first = entries
        .iter()
        .find(|e| e["changes"]["company_name"].is_array())
        .unwrap();
    assert_eq!(
        first["changes"]["company_name"],
        json!(["Acme", "Acme Retail"])
    );
    assert_eq!(first["changes"]["sync_mode"], json!(["api", "scim"]));

    // Bad input: every field named; seats are the operator's.
    let (status, body) = send(
        &app,
        Method::PATCH,
        "/api/enterprise/settings",
        token,
        Some(json!({ "company_name": " ", "company_email": "nope", "sync_mode": "ftp", "seats_purchased": 5000, "time_zone": "Mars/Olympus" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<(String, String)> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().into(),
                f["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("seats_purchased", "read_only"),
        ("company_name", "required"),
        ("company_email", "invalid_email"),
        ("sync_mode", "invalid_value"),
        ("time_zone", "invalid_value"),
    ] {
        assert!(
            fields.contains(&(expected.0.into(), expected.1.into())),
            "{fields:?}"
        );
    }
    let (_, unchanged) = send(&app, Method::GET, "/api/enterprise/settings", token, None).await;
    assert_eq!(unchanged["seats_purchased"], 100);

    // The other enterprise is untouched, and keys or staff cannot come here.
    let (_, theirs) = send(
        &app,
        Method::GET,
        "/api/enterprise/settings",
        &other.access_token,
        None,
    )
    .await;
    assert_eq!(theirs["company_name"], "Globex");
    let (_, key) = app.key(&admin, &["users:read", "sync:read"]).await;
    let response = app.get("/api/enterprise/settings", &Auth::Key(&key)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let store = app.seed_store(&admin.enterprise_id, "Lyon").await;
    app.seed_user(
        &admin.enterprise_id,
        "manager@acme.example",
        Role::Manager,
        Some(&store),
    )
    .await;
    let login: Value = app
        .login("manager@acme.example", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let (status, _) = send(
        &app,
        Method::PATCH,
        "/api/enterprise/settings",
        login["access_token"].as_str().unwrap(),
        Some(json!({ "company_name": "Mine" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

/// Invites an admin and has them set their password; their session.
async fn second_admin(app: &TestApp, admin: &Admin, email: &str) -> (String, Value) {
    let token = admin.access_token.as_str();
    let (status, invited) = send(
        app,
        Method::POST,
        "/api/enterprise/admins",
        token,
        Some(json!({ "name": "Bea Backup", "email": email })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    assert_eq!(invited["admin"]["invitation_pending"], true);
    let id = invited["admin"]["id"].as_str().unwrap().to_string();
    // The invitation email is queued like anyone's.
    let queued: i64 = app
        .raw_db()
        .query_row(
            "SELECT count(*) FROM email_outbox WHERE kind = 'invitation' AND user_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(queued, 1);
    let (status, link) = send(
        app,
        Method::POST,
        &format!("/api/enterprise/users/{id}/invitation"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let accepted = app
        .post(
            "/api/auth/accept-invitation",
            json!({ "token": link["token"], "password": "lighthouse meadow pebble river" }),
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let login: Value = app
        .login(email, "lighthouse meadow pebble river")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["role"], "it_admin");
    (id, login)
}

#[tokio::test]
async fn admins_invite_admins_and_the_last_one_who_can_sign_in_stays() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let other = app.admin("Globex").await;
    let token = admin.access_token.as_str();
    // Alone: the admin cannot deactivate themself.
    let (status, body) = send(
        &app,
        Method::POST,
        &format!("/api/enterprise/admins/{}/deactivate", admin.user_id),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "last_admin");

    // A person of another enterprise may have the email; one of this one may not.
    let (bea, bea_login) = second_admin(&app, &admin, &other.email).await;
    let (status, body) = send(
        &app,
        Method::POST,
        "/api/enterprise/admins",
        token,
        Some(json!({ "name": "Again", "email": other.email })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "email_taken");
    let (status, body) = send(
        &app,
        Method::POST,
        "/api/enterprise/admins",
        token,
        Some(json!({ "name": "", "email": "not an email" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (_, list) = send(&app, Method::GET, "/api/enterprise/admins", token, None).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    // Another enterprise's admin sees neither, and changes nothing.
    let (_, theirs) = send(
        &app,
        Method::GET,
        "/api/enterprise/admins",
        &other.access_token,
        None,
    )
    .await;
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/api/enterprise/admins/{bea}/deactivate"),
        &other.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bea deactivates the first admin: their token and refresh token stop.
    let bea_token = bea_login["access_token"].as_str().unwrap();
    let (status, gone) = send(
        &app,
        Method::POST,
        &format!("/api/enterprise/admins/{}/deactivate", admin.user_id),
        bea_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(gone["active"], false);
    let (status, _) = send(&app, Method::GET, "/api/me", token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let refreshed = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": admin.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    // Now Bea is the last one who can sign in.
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/api/enterprise/admins/{bea}/deactivate"),
        bea_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, back) = send(
        &app,
        Method::POST,
        &format!("/api/enterprise/admins/{}/reactivate", admin.user_id),
        bea_token,
        None,
    )
    .await;
    assert_eq!(
        (status, back["active"].clone()),
        (StatusCode::OK, json!(true))
    );
    assert_eq!(
        app.login(&admin.email, PASSWORD).await.status(),
        StatusCode::OK
    );
    let actions: Vec<String> = app
        .audit_actions()
        .into_iter()
        .map(|(action, _)| action)
        .collect();
    for action in [
        "enterprise.admin.invite",
        "enterprise.admin.deactivate",
        "enterprise.admin.reactivate",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    // Admins take no seats.
    let (_, settings) = send(
        &app,
        Method::GET,
        "/api/enterprise/settings",
        bea_token,
        None,
    )
    .await;
    assert_eq!(settings["seats_used"], 0);
    app.stop().await;
}
