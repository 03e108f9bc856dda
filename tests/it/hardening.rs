//! Smaller hardening of the pen test (issue 17, item 7), on the real server.

use reqwest::StatusCode;

use crate::support::{Auth, TestApp};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_language_switch_goes_back_only_to_our_pages() {
    let app = TestApp::start().await;
    let client = no_redirects();
    for (to, expected) in [
        ("/runs%3Fstatus%3Dfailed", "/runs?status=failed"),
        ("/%09/evil.example", "/"),
        ("//evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("/%0a", "/"),
        ("/%0d%0aSet-Cookie:%20x=1", "/"),
        ("/%0B", "/"),
        ("/%7F", "/"),
        ("https://evil.example/", "/"),
    ] {
        let response = client
            .get(app.url(&format!("/lang/en?to={to}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{to}");
        assert_eq!(response.headers()["location"], expected, "{to}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_as_a_plain_token() {
    let app = TestApp::start().await;
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "erp-run.42_a")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "erp-run.42_a");
    for forged in ["forged route=/x status=200", "a\"b", &"a".repeat(65)] {
        let answer = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", forged)
            .send()
            .await
            .unwrap();
        let id = answer.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_ne!(id, forged);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    }
    app.stop().await;
}

#[tokio::test]
async fn hsts_is_sent_when_people_come_over_https() {
    let app = TestApp::start_with(|config| {
        config.public_base_url = Some("https://provisioning.example.com".into())
    })
    .await;
    for path in ["/healthz", "/api/enterprise/users", "/sign-in"] {
        let response = app.get(path, &Auth::None).await;
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains",
            "{path}"
        );
    }
    app.stop().await;
    let plain = TestApp::start().await;
    let response = plain.get("/healthz", &Auth::None).await;
    assert!(response
        .headers()
        .get("strict-transport-security")
        .is_none());
    plain.stop().await;
}

#[tokio::test]
async fn metrics_name_no_enterprise_and_answer_only_this_host() {
    let app = TestApp::start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let admin = app.admin("Acme").await;
    let (_, key) = app.key(&admin, &["stores:write"]).await;
    let response = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/stores/bulk-import",
            &Auth::Key(&key),
            Some(serde_json::json!({ "stores": [{ "name": "Paris" }] })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let local = app.get("/metrics", &Auth::None).await;
    assert_eq!(local.status(), StatusCode::OK);
    let text = local.text().await.unwrap();
    assert!(!text.contains(&admin.enterprise_id), "{text}");
    assert!(!text.contains("enterprise_id="), "{text}");
    // A client from elsewhere, through the (trusted) reverse proxy.
    let remote = app
        .client
        .get(app.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(remote.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
