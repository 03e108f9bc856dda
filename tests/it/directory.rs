use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Auth, TestApp};
use enterprise_sync::domain::Role;

#[tokio::test]
async fn users_page_with_a_cursor_and_filter() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let lyon = app.seed_store(&admin.enterprise_id, "Lyon").await;
    let nice = app.seed_store(&admin.enterprise_id, "Nice").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let store = if i % 2 == 0 { &lyon } else { &nice };
        let role = if i == 0 { Role::Manager } else { Role::Seller };
        ids.push(
            app.seed_user(
                &admin.enterprise_id,
                &format!("p{i}@acme.example"),
                role,
                Some(store),
            )
            .await,
        );
    }
    let (_, key) = app.key(&admin, &["users:read", "stores:read"]).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/enterprise/users?limit=2&cursor={c}"),
            None => "/api/enterprise/users?limit=2".to_string(),
        };
        let page: Value = app.get(&path, &Auth::Key(&key)).await.json().await.unwrap();
        for user in page["data"].as_array().unwrap() {
            seen.push(user["id"].as_str().unwrap().to_string());
            assert!(user.get("password_hash").is_none());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "every staff member once, in creation order, admin excluded"
    );

    let lyon_staff: Value = app
        .get(
            &format!("/api/enterprise/users?store_id={lyon}"),
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lyon_staff["data"].as_array().unwrap().len(), 3);
    let managers: Value = app
        .get("/api/enterprise/users?role=manager", &Auth::Key(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(managers["data"].as_array().unwrap().len(), 1);
    let by_email: Value = app
        .get(
            "/api/enterprise/users?email=P3@Acme.Example",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_email["data"][0]["id"], ids[3]);
    let by_external: Value = app
        .get(
            "/api/enterprise/users?external_id=EMP-p4@acme.example",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_external["data"][0]["id"], ids[4]);

    let stores: Value = app
        .get("/api/enterprise/stores?active=true", &Auth::Key(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stores["data"].as_array().unwrap().len(), 2);
    assert_eq!(stores["data"][0]["gerant_id"], Value::Null);

    let status: Value = app
        .get(
            "/api/enterprise/sync-status",
            &Auth::Bearer(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["total_users"], 5);
    assert_eq!(status["active_users"], 5);
    assert_eq!(status["seats_used"], 5);
    assert_eq!(status["seats_purchased"], 100);
    assert_eq!(status["total_stores"], 2);
    assert_eq!(status["last_sync_at"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn bad_list_parameters_are_named() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let (_, key) = app.key(&admin, &["users:read"]).await;
    let response = app
        .get(
            "/api/enterprise/users?limit=0&role=it_admin&cursor=zzz",
            &Auth::Key(&key),
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
    assert_eq!(fields, ["limit", "cursor", "role"]);
    let not_bool = app
        .get("/api/enterprise/users?active=maybe", &Auth::Key(&key))
        .await;
    assert_eq!(not_bool.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}
