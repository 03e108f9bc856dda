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

/// Enums are documented with the values the wire carries (`it_admin`, not
/// the Rust name `ItAdmin`), and the sync-log filter's pattern lists every
/// operation the server knows.
#[test]
fn enums_and_patterns_say_what_the_wire_says() {
    let document = generated();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for (name, schema) in schemas {
        for value in schema["enum"].as_array().into_iter().flatten() {
            let text = value.as_str().unwrap_or_default();
            assert!(
                !text.chars().next().is_some_and(char::is_uppercase),
                "{name} documents {text:?}, a Rust name"
            );
        }
    }
    assert_eq!(
        schemas["Role"]["enum"],
        serde_json::json!(["it_admin", "manager", "seller"])
    );
    assert_eq!(
        schemas["RecordSyncMode"]["enum"],
        serde_json::json!(["api_sync", "scim_sync", "file_sync", "manual"])
    );
    let parameters = document["paths"]["/api/enterprise/sync-logs"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let operation = parameters
        .iter()
        .find(|p| p["name"] == "operation")
        .unwrap();
    let pattern = operation["schema"]["pattern"].as_str().unwrap();
    for known in enterprise_sync::domain::import::SyncOperation::ALL
        .iter()
        .map(|operation| operation.as_str())
        .chain(
            enterprise_sync::domain::import::RecordOperation::ALL
                .iter()
                .map(|operation| operation.as_str()),
        )
    {
        assert!(
            pattern.contains(&format!("|{known}|"))
                || pattern.contains(&format!("({known}|"))
                || pattern.contains(&format!("|{known})")),
            "{known} in {pattern}"
        );
    }
}

/// What the document says of bodies and queries is what the server does:
/// a body is an object, a query names only documented parameters, a cursor
/// is one the API handed out.
#[tokio::test]
async fn bodies_queries_and_cursors_are_refused_as_documented() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let token = Auth::Bearer(&admin.access_token);
    // A JSON array would fill a struct's fields in order: refused.
    let response = app
        .call(
            Method::PUT,
            "/api/enterprise/drop-config",
            &token,
            Some(serde_json::json!([null, null])),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "body");
    // A misspelt filter is named, not silently ignored.
    let response = app
        .get("/api/enterprise/sync-logs?statuss=failed", &token)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("statuss"));
    for query in ["cursor=-38", "cursor=%2B5", "cursor=1234567890123456789"] {
        let response = app
            .get(&format!("/api/enterprise/audit-log?{query}"), &token)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
    }
    // A settings field sent as null is refused; left out, it stays.
    let response = app
        .call(
            Method::PATCH,
            "/api/enterprise/settings",
            &token,
            Some(serde_json::json!({ "company_name": null })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .call(
            Method::PATCH,
            "/api/enterprise/settings",
            &token,
            Some(serde_json::json!({ "company_name": "Acme\u{1e}" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}
