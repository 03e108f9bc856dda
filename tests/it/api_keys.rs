use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{error_code, Auth, TestApp};

#[tokio::test]
async fn generate_shows_the_key_once() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/api-keys/generate",
            &Auth::Bearer(&admin.access_token),
            Some(json!({ "name": "SAP Production Key", "scopes": ["users:read", "users:write", "stores:read", "stores:write"], "expires_in_days": 365 })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    for field in [
        "id",
        "key",
        "name",
        "scopes",
        "created_at",
        "expires_at",
        "warning",
    ] {
        assert!(body.get(field).is_some(), "missing {field}");
    }
    let key = body["key"].as_str().unwrap();
    assert!(key.starts_with("ent_") && key.len() == 50, "{key}");
    assert_eq!(
        body["scopes"],
        json!(["users:read", "users:write", "stores:read", "stores:write"])
    );

    let list = app
        .get(
            "/api/enterprise/api-keys",
            &Auth::Bearer(&admin.access_token),
        )
        .await;
    let text = list.text().await.unwrap();
    assert!(!text.contains(key), "the list never shows the key");
    assert!(!text.contains("secret_hash"));
    let list: Value = serde_json::from_str(&text).unwrap();
    let listed = &list["data"][0];
    assert_eq!(listed["prefix"], key[4..12]);
    assert_eq!(listed["state"], "active");
    assert_eq!(listed["request_count"], 0);
    app.stop().await;
}

#[tokio::test]
async fn unknown_scopes_and_bad_expiry_are_refused() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/api-keys/generate",
            &Auth::Bearer(&admin.access_token),
            Some(
                json!({ "name": "k", "scopes": ["users:read", "admin:all"], "expires_in_days": 0 }),
            ),
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
    assert_eq!(fields, ["scopes[1]", "expires_in_days"]);
    let count: i64 = app
        .raw_db()
        .query_row("SELECT COUNT(*) FROM api_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);
    app.stop().await;
}

#[tokio::test]
async fn revoked_keys_stop_working_at_once() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let (id, key) = app.key(&admin, &["users:read"]).await;
    // Warm the cache first: revocation must evict it.
    assert_eq!(
        app.get("/api/enterprise/users", &Auth::Key(&key))
            .await
            .status(),
        StatusCode::OK
    );
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/enterprise/api-keys/{id}"),
            &Auth::Bearer(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let body: Value = revoked.json().await.unwrap();
    assert_eq!(body["state"], "revoked");
    let refused = app.get("/api/enterprise/users", &Auth::Key(&key)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(refused).await, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let (_, key) = app.key(&admin, &["users:read"]).await;
    app.advance(Duration::from_secs(29 * 24 * 3600));
    assert_eq!(
        app.get("/api/enterprise/users", &Auth::Key(&key))
            .await
            .status(),
        StatusCode::OK
    );
    app.advance(Duration::from_secs(2 * 24 * 3600));
    assert_eq!(
        app.get("/api/enterprise/users", &Auth::Key(&key))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let login: Value = app
        .login(&admin.email, crate::support::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let list: Value = app
        .get("/api/enterprise/api-keys", &Auth::Bearer(token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["state"], "expired");
    assert_eq!(list["data"][0]["is_active"], false);
    app.stop().await;
}

#[tokio::test]
async fn malformed_keys_are_refused_without_touching_the_database() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let (_, key) = app.key(&admin, &["users:read"]).await;
    let mut wrong_checksum = key.clone();
    let last = wrong_checksum.pop().unwrap();
    wrong_checksum.push(if last == 'A' { 'B' } else { 'A' });
    let candidates = [
        "".to_string(),
        "ent_".to_string(),
        "sk_live_abcdef".to_string(),
        key[..49].to_string(),
        format!("{key}x"),
        wrong_checksum,
        key.replace("ent_", "ENT_"),
    ];
    for bad in &candidates {
        let before = app.services().db.operation_count();
        let response = app.get("/api/enterprise/users", &Auth::Key(bad)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(
            app.services().db.operation_count(),
            before,
            "no database work for {bad:?}"
        );
    }
    app.stop().await;
}

fn with_checksum(body: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = u64::from(crc32fast::hash(body.as_bytes()));
    let mut sum = [b'0'; 6];
    for slot in sum.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    format!("{body}{}", String::from_utf8(sum.to_vec()).unwrap())
}

#[tokio::test]
async fn well_formed_keys_with_a_wrong_secret_get_the_same_401() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let (_, key) = app.key(&admin, &["users:read"]).await;
    // The real key's public id with another secret, and a correct checksum.
    let twisted = with_checksum(&format!("{}{}", &key[..12], "Z".repeat(32)));
    let unknown = with_checksum(&format!("ent_{}", "Q".repeat(40)));
    assert!(enterprise_sync::domain::api_key_token::ApiKeyToken::parse(&twisted).is_ok());
    let a = app.get("/api/enterprise/users", &Auth::Key(&twisted)).await;
    let b = app.get("/api/enterprise/users", &Auth::Key(&unknown)).await;
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(a.text().await.unwrap(), b.text().await.unwrap());
    assert_eq!(
        app.get("/api/enterprise/users", &Auth::Key(&key))
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn usage_is_counted_without_a_write_per_request() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let (id, key) = app.key(&admin, &["users:read"]).await;
    for _ in 0..5 {
        assert_eq!(
            app.get("/api/enterprise/users", &Auth::Key(&key))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let stored: i64 = app
        .raw_db()
        .query_row(
            "SELECT request_count FROM api_keys WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0, "counted in memory, not written per request");
    let listed: Value = app
        .get(
            &format!("/api/enterprise/api-keys/{id}"),
            &Auth::Bearer(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["request_count"], 5);
    assert_eq!(listed["last_used_ip"], "127.0.0.1");
    enterprise_sync::service::api_keys::flush_usage(app.services())
        .await
        .unwrap();
    let stored: i64 = app
        .raw_db()
        .query_row(
            "SELECT request_count FROM api_keys WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 5);
    app.stop().await;
}

#[tokio::test]
async fn an_api_key_cannot_manage_keys() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let all = [
        "users:read",
        "users:write",
        "stores:read",
        "stores:write",
        "sync:read",
        "scim",
    ];
    let (id, key) = app.key(&admin, &all).await;
    let mint = app
        .call(
            Method::POST,
            "/api/enterprise/api-keys/generate",
            &Auth::Key(&key),
            Some(json!({ "name": "x", "scopes": ["users:read"] })),
        )
        .await;
    assert_eq!(mint.status(), StatusCode::FORBIDDEN);
    let revoke = app
        .call(
            Method::DELETE,
            &format!("/api/enterprise/api-keys/{id}"),
            &Auth::Key(&key),
            None,
        )
        .await;
    assert_eq!(revoke.status(), StatusCode::FORBIDDEN);
    let count: i64 = app
        .raw_db()
        .query_row(
            "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 1);
    app.stop().await;
}
