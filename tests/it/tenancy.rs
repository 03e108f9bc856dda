//! Enterprise isolation and the role/scope matrix.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Auth, TestApp, PASSWORD};
use enterprise_sync::domain::Role;

const SCOPES: [&str; 6] = [
    "users:read",
    "users:write",
    "stores:read",
    "stores:write",
    "sync:read",
    "scim",
];

#[tokio::test]
async fn each_scope_reaches_exactly_its_routes() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let store = app.seed_store(&admin.enterprise_id, "Lyon").await;
    let user = app
        .seed_user(
            &admin.enterprise_id,
            "seller@acme.example",
            Role::Seller,
            Some(&store),
        )
        .await;
    let (admin_key_id, _) = app.key(&admin, &["sync:read"]).await;
    let routes: Vec<(Method, String, &[&str])> = vec![
        (Method::GET, "/api/enterprise/users".into(), &["users:read"]),
        (
            Method::GET,
            format!("/api/enterprise/users/{user}"),
            &["users:read"],
        ),
        (
            Method::GET,
            "/api/enterprise/stores".into(),
            &["stores:read"],
        ),
        (
            Method::GET,
            format!("/api/enterprise/stores/{store}"),
            &["stores:read"],
        ),
        (
            Method::GET,
            "/api/enterprise/sync-status".into(),
            // Keys made for imports follow their own runs (issue 18).
            &[
                "sync:read",
                "users:read",
                "users:write",
                "stores:read",
                "stores:write",
            ],
        ),
        (
            Method::GET,
            "/api/enterprise/sync-logs".into(),
            &[
                "sync:read",
                "users:read",
                "users:write",
                "stores:read",
                "stores:write",
            ],
        ),
        (Method::GET, "/api/enterprise/api-keys".into(), &[]),
        (
            Method::GET,
            format!("/api/enterprise/api-keys/{admin_key_id}"),
            &[],
        ),
        (
            Method::DELETE,
            format!("/api/enterprise/api-keys/{admin_key_id}"),
            &[],
        ),
        (
            Method::POST,
            "/api/enterprise/api-keys/generate".into(),
            &[],
        ),
        (Method::GET, "/api/enterprise/audit-log".into(), &[]),
        (Method::GET, "/api/me".into(), &[]),
    ];
    for scope in SCOPES {
        let (_, key) = app.key(&admin, &[scope]).await;
        for (method, path, needed) in &routes {
            let body =
                (*method == Method::POST).then(|| json!({ "name": "x", "scopes": ["users:read"] }));
            let response = app.call(method.clone(), path, &Auth::Key(&key), body).await;
            let expected = if needed.contains(&scope) {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(response.status(), expected, "{scope} on {method} {path}");
        }
    }
    // The admin key was never revoked by any of those keys.
    let alive: i64 = app
        .raw_db()
        .query_row(
            "SELECT COUNT(*) FROM api_keys WHERE id = ?1 AND revoked_at IS NULL",
            [&admin_key_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(alive, 1);
    app.stop().await;
}

#[tokio::test]
async fn managers_and_sellers_are_kept_out_of_admin_routes() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let store = app.seed_store(&admin.enterprise_id, "Lyon").await;
    for (email, role) in [
        ("manager@acme.example", Role::Manager),
        ("seller@acme.example", Role::Seller),
    ] {
        app.seed_user(&admin.enterprise_id, email, role, Some(&store))
            .await;
        let login: Value = app.login(email, PASSWORD).await.json().await.unwrap();
        let token = login["access_token"].as_str().unwrap();
        let me: Value = app
            .get("/api/me", &Auth::Bearer(token))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], email);
        for path in [
            "/api/enterprise/api-keys",
            "/api/enterprise/audit-log",
            "/api/enterprise/users",
            "/api/enterprise/stores",
            "/api/enterprise/sync-status",
        ] {
            let response = app.get(path, &Auth::Bearer(token)).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{role:?} on {path}"
            );
        }
        let mint = app
            .call(
                Method::POST,
                "/api/enterprise/api-keys/generate",
                &Auth::Bearer(token),
                Some(json!({ "name": "x", "scopes": ["users:read"] })),
            )
            .await;
        assert_eq!(mint.status(), StatusCode::FORBIDDEN);
    }
    app.stop().await;
}

#[tokio::test]
async fn another_enterprise_sees_nothing_and_changes_nothing() {
    let app = TestApp::start().await;
    let a = app.admin("Alpha").await;
    let b = app.admin("Beta").await;
    let a_store = app.seed_store(&a.enterprise_id, "Paris").await;
    let a_user = app
        .seed_user(
            &a.enterprise_id,
            "seller@alpha.example",
            Role::Seller,
            Some(&a_store),
        )
        .await;
    let (a_key_id, a_key) = app.key(&a, &["users:read", "stores:read"]).await;
    let (_, b_key) = app
        .key(&b, &["users:read", "stores:read", "sync:read"])
        .await;

    // B's admin on A's key: 404 for read and revoke, and A's key keeps working.
    let path = format!("/api/enterprise/api-keys/{a_key_id}");
    assert_eq!(
        app.get(&path, &Auth::Bearer(&b.access_token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let revoke = app
        .call(Method::DELETE, &path, &Auth::Bearer(&b.access_token), None)
        .await;
    assert_eq!(revoke.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/enterprise/users", &Auth::Key(&a_key))
            .await
            .status(),
        StatusCode::OK
    );

    // B's key on A's objects: 404, same body as an id that never existed.
    let other = app
        .get(
            &format!("/api/enterprise/users/{a_user}"),
            &Auth::Key(&b_key),
        )
        .await;
    let never = app
        .get(
            &format!("/api/enterprise/users/{}", uuid::Uuid::now_v7()),
            &Auth::Key(&b_key),
        )
        .await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(other.text().await.unwrap(), never.text().await.unwrap());
    assert_eq!(
        app.get(
            &format!("/api/enterprise/stores/{a_store}"),
            &Auth::Key(&b_key)
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &format!("/api/enterprise/users/{a_user}"),
            &Auth::Bearer(&b.access_token)
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );

    // B's lists, filters and status never show A's rows.
    for path in [
        "/api/enterprise/users".to_string(),
        "/api/enterprise/stores".to_string(),
        format!("/api/enterprise/users?store_id={a_store}"),
        "/api/enterprise/users?email=seller@alpha.example".to_string(),
    ] {
        let list: Value = app
            .get(&path, &Auth::Key(&b_key))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["data"], json!([]), "{path}");
    }
    let status: Value = app
        .get("/api/enterprise/sync-status", &Auth::Key(&b_key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["enterprise_account_id"], b.enterprise_id);
    assert_eq!(status["total_users"], 0);
    assert_eq!(status["total_stores"], 0);

    // B's audit trail holds only B's events.
    let audit: Value = app
        .get(
            "/api/enterprise/audit-log?limit=500",
            &Auth::Bearer(&b.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(!text.contains(&a.user_id) && !text.contains(&a.enterprise_id));
    app.stop().await;
}
