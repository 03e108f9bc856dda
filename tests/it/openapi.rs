//! The OpenAPI document: committed, served, and describing exactly the routes
//! the router serves.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Auth, TestApp};

fn generated() -> Value {
    serde_json::to_value(enterprise_sync::api::openapi::document()).unwrap()
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        committed == generated(),
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json`"
    );
    assert_eq!(committed["openapi"], "3.1.0");
}

/// The document's (method, path) pairs.
fn documented(document: &Value) -> Vec<(Method, String)> {
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                routes.push((method.to_uppercase().parse().unwrap(), path.clone()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_routes() {
    let app = TestApp::start().await;
    let served: Value = app
        .get("/api/openapi.json", &Auth::None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(served, generated());
    let routes = documented(&served);
    assert!(routes.len() >= 30, "{routes:?}");

    // Every documented route is routed: neither the fallback's 404 nor a 405.
    let any_id = "0193c5a2-0000-7000-8000-000000000000";
    for (method, path) in &routes {
        let concrete = path.replace("{id}", any_id);
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(
            body["error"]["message"], "No such route",
            "{method} {path} is documented but not routed"
        );
    }
    // And an undocumented one is not.
    let missing = app.get("/api/enterprise/not-a-route", &Auth::None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

/// The router is built only from documented handlers (`routes!`): a plain
/// `.route(` would serve a path the document does not describe.
#[test]
fn no_route_bypasses_the_document() {
    let api = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    for entry in std::fs::read_dir(api).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        for needle in [".route(\"", ".route_service(", ".nest(", ".nest_service("] {
            assert!(
                !source.contains(needle),
                "{} registers a route outside routes!(): {needle}",
                path.display()
            );
        }
    }
}

#[test]
fn every_authenticated_operation_names_its_security_and_errors() {
    let document = generated();
    for (method, path) in documented(&document) {
        let operation = &document["paths"][&path][method.as_str().to_lowercase()];
        let public = path.starts_with("/api/auth/")
            || path == "/invitations/accept"
            || path == "/password-reset"
            || path == "/api/enterprise/register"
            || path == "/api/openapi.json"
            || ["/healthz", "/readyz", "/metrics"].contains(&path.as_str());
        let security = operation["security"].as_array().map_or(0, Vec::len);
        assert_eq!(
            security == 0,
            public,
            "{method} {path}: security {security}"
        );
        if !public {
            for status in ["401", "403", "429"] {
                assert_eq!(
                    operation["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
}
