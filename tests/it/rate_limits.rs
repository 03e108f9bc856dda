use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Auth, TestApp};

#[tokio::test]
async fn the_101st_request_is_refused_while_a_sibling_key_still_works() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let (_, key) = app.key(&admin, &["users:read"]).await;
    let (_, sibling) = app.key(&admin, &["users:read"]).await;
    for i in 0..100 {
        let response = app
            .get("/api/enterprise/users?limit=1", &Auth::Key(&key))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "request {}", i + 1);
        if i == 0 {
            assert_eq!(
                response.headers()["ratelimit-policy"],
                "\"per-key\";q=100;w=60"
            );
            assert_eq!(response.headers()["ratelimit"], "\"per-key\";r=99;t=1");
        }
    }
    let refused = app
        .get("/api/enterprise/users?limit=1", &Auth::Key(&key))
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        refused.headers()["ratelimit-policy"],
        "\"per-key\";q=100;w=60"
    );
    assert!(refused.headers()["ratelimit"]
        .to_str()
        .unwrap()
        .starts_with("\"per-key\";r=0;"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["details"]["policy"], "per-key");

    assert_eq!(
        app.get("/api/enterprise/users?limit=1", &Auth::Key(&sibling))
            .await
            .status(),
        StatusCode::OK
    );

    app.advance(Duration::from_secs(retry_after));
    assert_eq!(
        app.get("/api/enterprise/users?limit=1", &Auth::Key(&key))
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn the_enterprise_ceiling_spans_all_its_keys() {
    let app = TestApp::start_with(|c| c.rate_limit.per_enterprise_per_minute = 6).await;
    let admin = app.admin("Acme").await;
    let other = app.admin("Other").await;
    let (_, a) = app.key(&admin, &["users:read"]).await;
    let (_, b) = app.key(&admin, &["users:read"]).await;
    let (_, c) = app.key(&other, &["users:read"]).await;
    for key in [&a, &b, &a, &b, &a, &b] {
        assert_eq!(
            app.get("/api/enterprise/users", &Auth::Key(key))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let refused = app.get("/api/enterprise/users", &Auth::Key(&a)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["details"]["policy"], "per-enterprise");
    // Another enterprise has its own ceiling.
    assert_eq!(
        app.get("/api/enterprise/users", &Auth::Key(&c))
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn per_enterprise_limits_override_the_defaults() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET rate_limit_per_key_per_minute = 3 WHERE id = ?1",
            [&admin.enterprise_id],
        )
        .unwrap();
    let (_, key) = app.key(&admin, &["users:read"]).await;
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/enterprise/users", &Auth::Key(&key))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let refused = app.get("/api/enterprise/users", &Auth::Key(&key)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "20");
    app.stop().await;
}

#[tokio::test]
async fn login_floods_are_throttled_before_any_hashing() {
    let app = TestApp::start_with(|c| c.rate_limit.login_per_ip_per_minute = 10).await;
    app.register("Acme", "alice@acme.example").await;
    let mut refused = 0;
    for _ in 0..20 {
        let response = app
            .login("alice@acme.example", "wrong wrong wrong wrong")
            .await;
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert!(response.headers().contains_key("retry-after"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refused, 10);
    // One hash at registration, then exactly one verification per admitted login.
    assert_eq!(app.services().passwords.hashes_run(), 1 + 10);
    app.stop().await;
}

#[tokio::test]
async fn registration_is_throttled_per_ip() {
    let app = TestApp::start_with(|c| c.rate_limit.register_per_ip_per_hour = 2).await;
    app.register("One", "one@one.example").await;
    app.register("Two", "two@two.example").await;
    let response = app
        .post(
            "/api/enterprise/register",
            serde_json::json!({ "company_name": "Three" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1800");
    app.stop().await;
}
