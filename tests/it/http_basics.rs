use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Auth, TestApp};

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::start().await;
    let health = app.get("/healthz", &Auth::None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let ready: Value = app.get("/readyz", &Auth::None).await.json().await.unwrap();
    assert_eq!(ready["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_when_the_drop_root_is_gone() {
    let app = TestApp::start_with(|c| c.dropdir.enabled = true).await;
    let ready: Value = app.get("/readyz", &Auth::None).await.json().await.unwrap();
    assert_eq!(ready["checks"]["drop_root"], "ok");
    let root = app.services().config.drop_root();
    std::fs::rename(&root, root.with_extension("moved")).unwrap();
    let ready = app.get("/readyz", &Auth::None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        (
            body["checks"]["drop_root"].as_str(),
            body["checks"]["database"].as_str()
        ),
        (Some("unavailable"), Some("ok"))
    );
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_once_the_database_is_closed() {
    let app = TestApp::start().await;
    app.services().db.close();
    let ready = app.get("/readyz", &Auth::None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let login = app.login("a@b.example", "whatever whatever").await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
}

#[tokio::test]
async fn errors_share_one_shape_and_carry_a_request_id() {
    let app = TestApp::start().await;
    let missing = app.get("/api/nowhere", &Auth::None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers().contains_key("x-request-id"));
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let no_auth = app.get("/api/enterprise/users", &Auth::None).await;
    assert_eq!(no_auth.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        no_auth.headers()["www-authenticate"],
        "Bearer realm=\"enterprise-sync\""
    );
    let body: Value = no_auth.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let wrong_method = app
        .client
        .put(app.url("/api/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-123");
    assert_eq!(given.headers()["x-content-type-options"], "nosniff");
    app.stop().await;
}
