use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Admin, Auth, TestApp};

async fn import(app: &TestApp, key: &str, what: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .call(
            Method::POST,
            &format!("/api/enterprise/{what}/bulk-import"),
            &Auth::Key(key),
            Some(body),
        )
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn seed_stores() -> Value {
    json!({
        "stores": [
            { "name": "Magasin Paris Centre", "location": "Paris 75001", "address": "123 rue de Rivoli",
              "phone": "+33123456789", "external_id": "SAP-STORE-001" },
            { "name": "Magasin Lyon Part-Dieu", "location": "Lyon 69003", "address": "456 rue de la Part-Dieu",
              "phone": "+33456789012", "external_id": "SAP-STORE-002" }
        ],
        "mode": "create_or_update"
    })
}

fn seed_users() -> Value {
    json!({
        "users": [
            { "email": "manager1@enterprise.com", "name": "Jean Dupont", "role": "manager",
              "store_id": "SAP-STORE-001", "external_id": "SAP-EMP-12345" },
            { "email": "seller1@enterprise.com", "name": "Marie Martin", "role": "seller",
              "store_id": "SAP-STORE-001", "manager_id": "SAP-EMP-12345", "external_id": "SAP-EMP-67890" }
        ],
        "mode": "create_or_update",
        "send_invitations": false
    })
}

async fn setup(app: &TestApp, company: &str) -> (Admin, String) {
    let admin = app.admin(company).await;
    let (_, key) = app
        .key(
            &admin,
            &[
                "users:read",
                "users:write",
                "stores:read",
                "stores:write",
                "sync:read",
            ],
        )
        .await;
    (admin, key)
}

/// An enterprise with the seed stores and `seats` seats; its key.
async fn setup_with_stores(app: &TestApp, seats: i64) -> String {
    let (_, key) = setup(app, "Acme").await;
    import(app, &key, "stores", seed_stores()).await;
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = ?1",
            [seats],
        )
        .unwrap();
    key
}

/// Sends `body` as it is to the users import (bodies `import` cannot make:
/// malformed JSON).
fn post_users_body(app: &TestApp, key: &str, body: String) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(app.url("/api/enterprise/users/bulk-import"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body)
}

/// Change events written so far, across every batch.
fn event_count(app: &TestApp) -> i64 {
    app.raw_db()
        .query_row(
            "SELECT COALESCE(SUM(event_count), 0) FROM change_batches",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

fn codes(report: &Value) -> Vec<(u64, String)> {
    keyed_codes(report)
        .into_iter()
        .map(|(row, _, code)| (row, code))
        .collect()
}

/// Each error's row, key (empty when it has none) and code.
fn keyed_codes(report: &Value) -> Vec<(u64, String, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["key"].as_str().unwrap_or("").to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_seed_examples_give_the_seed_counts() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let (status, stores) = import(&app, &key, "stores", seed_stores()).await;
    assert_eq!(status, StatusCode::OK, "{stores}");
    assert_eq!(
        (
            stores["success"].clone(),
            stores["total_processed"].clone(),
            stores["created"].clone(),
            stores["updated"].clone(),
            stores["failed"].clone()
        ),
        (json!(true), json!(2), json!(2), json!(0), json!(0))
    );

    // The manager exists already under another spelling of the name.
    let mut first = seed_users();
    first["users"] = json!([{ "email": "manager1@enterprise.com", "name": "J. Dupont", "role": "manager", "store_id": "SAP-STORE-001", "external_id": "SAP-EMP-12345" }]);
    import(&app, &key, "users", first).await;
    let (status, users) = import(&app, &key, "users", seed_users()).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    assert_eq!(users["success"], true);
    assert_eq!(users["total_processed"], 2);
    assert_eq!(users["created"], 1);
    assert_eq!(users["updated"], 1);
    assert_eq!(users["failed"], 0);
    assert_eq!(users["errors"], json!([]));

    let seller: Value = app
        .get(
            "/api/enterprise/users?external_id=SAP-EMP-67890",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    let manager: Value = app
        .get(
            "/api/enterprise/users?external_id=SAP-EMP-12345",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    let store: Value = app
        .get(
            "/api/enterprise/stores?external_id=SAP-STORE-001",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seller["data"][0]["manager_id"], manager["data"][0]["id"]);
    assert_eq!(seller["data"][0]["store_id"], store["data"][0]["id"]);
    assert_eq!(seller["data"][0]["sync_mode"], "api_sync");

    let status: Value = app
        .get(
            "/api/enterprise/sync-status",
            &Auth::Bearer(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["last_sync_status"], "success");
    assert_eq!(status["recent_logs"][0]["operation"], "bulk_user_import");
    assert_eq!(status["total_users"], 2);
    assert_eq!(status["total_stores"], 2);
    // The run's changes: the manager created, the seller created, then the
    // manager updated (its store resolved after the seller was placed).
    let run_id = users["sync_log_id"].as_str().unwrap().to_string();
    let run: Value = app
        .get(
            &format!("/api/enterprise/sync-logs/{run_id}"),
            &Auth::Bearer(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["operation"], "bulk_user_import");
    assert_eq!(run["details"]["created"], 1);
    let changes: Value = app
        .get(
            &format!("/api/enterprise/sync-logs/{run_id}/changes"),
            &Auth::Bearer(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<(String, Value)> = changes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_string(),
                c["external_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("user.updated".to_string(), json!("SAP-EMP-12345")),
            ("user.created".to_string(), json!("SAP-EMP-67890")),
        ]
    );
    assert_eq!(changes["data"][1]["id"], seller["data"][0]["id"]);
    // The same changes as per-record sync-log entries, linked to their run.
    let created: Value = app
        .get(
            "/api/enterprise/sync-logs?operation=user_created&status=success",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    let created = created["data"].as_array().unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[0]["run_id"], run_id.as_str());
    assert_eq!(created[0]["resource_id"], seller["data"][0]["id"]);
    assert_eq!(created[0]["initiated_by"], run["initiated_by"]);
    let newest: Value = app
        .get("/api/enterprise/sync-logs?limit=3", &Auth::Key(&key))
        .await
        .json()
        .await
        .unwrap();
    let operations: Vec<&str> = newest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        operations,
        ["user_created", "user_updated", "bulk_user_import"]
    );
    assert_eq!(
        event_count(&app),
        2 + 1 + 2,
        "stores created, manager created, seller created + manager updated"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_repeated_request_changes_nothing() {
    let app = TestApp::start().await;
    let (_, key) = setup(&app, "Acme").await;
    import(&app, &key, "stores", seed_stores()).await;
    import(&app, &key, "users", seed_users()).await;
    let before: String = app
        .raw_db()
        .query_row("SELECT MAX(updated_at) FROM users", [], |r| r.get(0))
        .unwrap();
    let events_before = event_count(&app);
    app.advance(std::time::Duration::from_secs(60));
    let (_, again) = import(&app, &key, "users", seed_users()).await;
    assert_eq!(
        (
            again["created"].clone(),
            again["updated"].clone(),
            again["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(2))
    );
    let (_, stores) = import(&app, &key, "stores", seed_stores()).await;
    assert_eq!(stores["unchanged"], 2);
    let after: String = app
        .raw_db()
        .query_row("SELECT MAX(updated_at) FROM users", [], |r| r.get(0))
        .unwrap();
    let events_after = event_count(&app);
    assert_eq!(before, after);
    assert_eq!(events_before, events_after);
    app.stop().await;
}

#[tokio::test]
async fn modes_against_existing_and_missing_records() {
    let app = TestApp::start().await;
    let (_, key) = setup(&app, "Acme").await;
    let one = |name: &str, mode: &str| json!({ "stores": [{ "name": name, "external_id": "S1" }], "mode": mode });
    let (_, r) = import(&app, &key, "stores", one("A", "update_only")).await;
    assert_eq!(codes(&r), [(0, "not_found".to_string())]);
    let (_, r) = import(&app, &key, "stores", one("A", "create_only")).await;
    assert_eq!(r["created"], 1);
    let (_, r) = import(&app, &key, "stores", one("B", "create_only")).await;
    assert_eq!(codes(&r), [(0, "already_exists".to_string())]);
    let (_, r) = import(&app, &key, "stores", one("B", "update_only")).await;
    assert_eq!(r["updated"], 1);
    let (_, r) = import(&app, &key, "stores", one("C", "create_or_update")).await;
    assert_eq!(r["updated"], 1);
    let (_, r) = import(
        &app,
        &key,
        "stores",
        json!({ "stores": [{ "name": "D", "external_id": "S2" }] }),
    )
    .await;
    assert_eq!(r["created"], 1, "create_or_update is the default");
    let (status, r) = import(&app, &key, "stores", one("E", "upsert")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    app.stop().await;
}

#[tokio::test]
async fn every_row_error_is_named_and_valid_rows_still_apply() {
    let app = TestApp::start_with(|_| {}).await;
    let (admin, key) = setup(&app, "Acme").await;
    import(&app, &key, "stores", seed_stores()).await;
    let body = json!({ "users": [
        { "email": "ok@acme.example", "name": "Fine", "role": "manager", "external_id": "E0" },
        { "email": "not-an-email", "name": "X", "role": "seller", "store_id": "SAP-STORE-001", "external_id": "E1" },
        { "email": "r@acme.example", "name": "X", "role": "boss", "store_id": "SAP-STORE-001", "external_id": "E2" },
        { "email": "a@acme.example", "name": "X", "role": "it_admin", "external_id": "E3" },
        { "email": "d@acme.example", "name": "X", "role": "seller", "store_id": "SAP-STORE-001", "external_id": "DUP" },
        { "email": "e@acme.example", "name": "X", "role": "seller", "store_id": "SAP-STORE-001", "external_id": "DUP" },
        { "email": "s@acme.example", "name": "X", "role": "seller", "store_id": "NOPE", "external_id": "E6" },
        { "email": "m@acme.example", "name": "X", "role": "seller", "store_id": "SAP-STORE-001", "manager_id": "GHOST", "external_id": "E7" },
        { "email": "n@acme.example", "name": "X", "role": "seller", "store_id": "SAP-STORE-001", "manager_id": "E9", "external_id": "E8" },
        { "email": "o@acme.example", "name": "X", "role": "seller", "store_id": "SAP-STORE-001", "external_id": "E9" },
        { "email": "p@acme.example", "name": "X", "role": "seller", "external_id": "E10" },
        { "email": "q@acme.example", "name": "X", "role": "seller", "store_id": "SAP-STORE-001", "external_id": "E11", "password_hash": "x" },
        { "email": admin.email, "name": "X", "role": "manager" },
        { "email": "t@acme.example", "name": "X", "role": "seller", "store_id": "SAP-STORE-001", "external_id": "E13", "favourite_colour": "blue" },
    ]});
    let (status, report) = import(&app, &key, "users", body).await;
    assert_eq!(status, StatusCode::OK);
    let expected = [
        (1, "invalid_email"),
        (2, "invalid_role"),
        (3, "forbidden_role"),
        (4, "duplicate_key"),
        (5, "duplicate_key"),
        (6, "unknown_store"),
        (7, "unknown_manager"),
        (8, "not_a_manager"),
        (10, "store_required"),
        (11, "forbidden_field"),
        (12, "forbidden_role"),
    ];
    let expected: Vec<(u64, String)> = expected.iter().map(|(r, c)| (*r, c.to_string())).collect();
    assert_eq!(codes(&report), expected, "{report}");
    for error in report["errors"].as_array().unwrap() {
        assert!(
            error["field"].is_string() && error["message"].is_string(),
            "{error}"
        );
    }
    assert_eq!(report["errors"][0]["key"], "E1");
    assert_eq!(report["errors"][5]["field"], "store_id");
    assert_eq!(report["created"], 3, "rows 0, 9 and 13");
    assert_eq!(report["failed"], 11);
    assert_eq!(report["success"], false);
    assert_eq!(
        report["warnings"],
        json!(["ignored unknown fields: favourite_colour"])
    );
    let logs: Value = app
        .get(
            "/api/enterprise/sync-logs?operation=bulk_user_import",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(logs["data"][0]["status"], "partial");
    let admins: i64 = app
        .raw_db()
        .query_row(
            "SELECT COUNT(*) FROM users WHERE role = 'it_admin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(admins, 1);
    app.stop().await;
}

#[tokio::test]
async fn managers_may_come_later_in_the_same_request() {
    let app = TestApp::start().await;
    let (_, key) = setup(&app, "Acme").await;
    import(&app, &key, "stores", seed_stores()).await;
    let body = json!({ "users": [
        { "email": "s1@acme.example", "name": "S1", "role": "seller", "store_id": "SAP-STORE-002", "manager_id": "boss@acme.example" },
        { "email": "s2@acme.example", "name": "S2", "role": "seller", "store_id": "SAP-STORE-002", "manager_id": "M-1" },
        { "email": "boss@acme.example", "name": "Boss", "role": "manager", "external_id": "M-1" },
    ]});
    let (_, report) = import(&app, &key, "users", body).await;
    assert_eq!(report["created"], 3, "{report}");
    let ids: i64 = app
        .raw_db()
        .query_row(
            "SELECT COUNT(DISTINCT manager_id) FROM users WHERE manager_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ids, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_dry_run_reports_in_full_and_writes_nothing() {
    let app = TestApp::start().await;
    let (_, key) = setup(&app, "Acme").await;
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/stores/bulk-import?dry_run=true",
            &Auth::Key(&key),
            Some(seed_stores()),
        )
        .await;
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["created"], 2);
    assert_eq!(report["dry_run"], true);
    let conn = app.raw_db();
    for table in ["stores", "sync_logs", "change_batches"] {
        let count: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0, "{table}");
    }
    app.stop().await;
}

#[tokio::test]
async fn seats_deactivation_and_reactivation() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = 2 WHERE id = ?1",
            [&admin.enterprise_id],
        )
        .unwrap();
    import(&app, &key, "stores", seed_stores()).await;
    let person = |i: u32, active: bool| json!({ "email": format!("p{i}@acme.example"), "name": "P", "role": "seller", "store_id": "SAP-STORE-001", "external_id": format!("P{i}"), "active": active });
    let (_, report) = import(
        &app,
        &key,
        "users",
        json!({ "users": [person(1, true), person(2, true), person(3, true)] }),
    )
    .await;
    assert_eq!(report["created"], 2);
    assert_eq!(codes(&report), [(2, "seat_limit_reached".to_string())]);
    // Deactivating one frees its seat for another in the same request.
    let (_, report) = import(
        &app,
        &key,
        "users",
        json!({ "users": [person(1, false), person(3, true)] }),
    )
    .await;
    assert_eq!(
        (
            report["deactivated"].clone(),
            report["created"].clone(),
            report["failed"].clone()
        ),
        (json!(1), json!(1), json!(0)),
        "{report}"
    );
    let status: Value = app
        .get("/api/enterprise/sync-status", &Auth::Key(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["seats_used"], 2);
    assert_eq!(status["total_users"], 3, "deactivation is never a deletion");
    let (_, report) = import(&app, &key, "users", json!({ "users": [person(1, true)] })).await;
    assert_eq!(codes(&report), [(0, "seat_limit_reached".to_string())]);
    app.stop().await;
}

#[tokio::test]
async fn another_enterprise_store_is_an_unknown_store() {
    let app = TestApp::start().await;
    let (a, a_key) = setup(&app, "Alpha").await;
    let (_, b_key) = setup(&app, "Beta").await;
    let a_store = app.seed_store(&a.enterprise_id, "Paris").await;
    // Its own enterprise finds the store by our id and by its external id
    // (a small request looks each reference up once).
    let body = json!({ "users": [
        { "email": "p@alpha.example", "name": "P", "role": "seller", "store_id": a_store },
        { "email": "q@alpha.example", "name": "Q", "role": "seller", "store_id": "EXT-Paris" },
        { "email": "r@alpha.example", "name": "R", "role": "seller", "store_id": "EXT-Paris" },
    ] });
    let (_, report) = import(&app, &a_key, "users", body).await;
    assert_eq!(report["created"], 3, "{report}");
    let in_store: i64 = app
        .raw_db()
        .query_row(
            "SELECT count(*) FROM users WHERE store_id = ?1",
            [&a_store],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_store, 3);
    let body = json!({ "users": [{ "email": "x@beta.example", "name": "X", "role": "seller", "store_id": a_store }] });
    let (_, report) = import(&app, &b_key, "users", body).await;
    assert_eq!(codes(&report), [(0, "unknown_store".to_string())]);
    let body = json!({ "users": [{ "email": "y@beta.example", "name": "Y", "role": "seller", "store_id": "EXT-Paris" }] });
    let (_, report) = import(&app, &b_key, "users", body).await;
    assert_eq!(
        codes(&report),
        [(0, "unknown_store".to_string())],
        "external ids are per enterprise too"
    );
    app.stop().await;
}

#[tokio::test]
async fn imports_need_their_write_scope_and_a_well_formed_body() {
    let app = TestApp::start_with(|c| c.imports.max_rows = 3).await;
    let admin = app.admin("Acme").await;
    let (_, reader) = app
        .key(&admin, &["users:read", "stores:read", "stores:write"])
        .await;
    let (status, _) = import(&app, &reader, "users", seed_users()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin_try = app
        .call(
            Method::POST,
            "/api/enterprise/stores/bulk-import",
            &Auth::Bearer(&admin.access_token),
            Some(seed_stores()),
        )
        .await;
    assert_eq!(
        admin_try.status(),
        StatusCode::FORBIDDEN,
        "imports come from keys, not admin sessions"
    );
    let (status, body) = import(
        &app,
        &reader,
        "stores",
        json!({ "stores": [{}, {}, {}, {}] }),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "too_many_rows");
    let (status, body) = import(&app, &reader, "stores", json!({ "shops": [] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "stores");
    app.stop().await;
}

#[tokio::test]
async fn a_database_refusal_mid_import_leaves_nothing_half_written() {
    let app = TestApp::start().await;
    let (_, key) = setup(&app, "Acme").await;
    import(&app, &key, "stores", seed_stores()).await;
    app.raw_db()
        .execute_batch(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON users WHEN NEW.email = 'boom@acme.example'
             BEGIN SELECT RAISE(ABORT, 'refused by test'); END;",
        )
        .unwrap();
    let count = |table: &str| -> i64 {
        app.raw_db()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let before = (count("users"), count("change_batches"), count("sync_logs"));
    let body = json!({ "users": [
        { "email": "first@acme.example", "name": "F", "role": "manager" },
        { "email": "boom@acme.example", "name": "B", "role": "manager" },
        { "email": "last@acme.example", "name": "L", "role": "manager" },
    ]});
    let (status, answer) = import(&app, &key, "users", body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !answer.to_string().contains("refused by test"),
        "no database detail leaks: {answer}"
    );
    assert_eq!(
        (count("users"), count("change_batches"), count("sync_logs")),
        before
    );
    // The writer is healthy afterwards.
    let (status, report) = import(
        &app,
        &key,
        "users",
        json!({ "users": [{ "email": "after@acme.example", "name": "A", "role": "manager" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["created"], 1);
    app.stop().await;
}

async fn reissue(app: &TestApp, admin: &Admin, user_id: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        &format!("/api/enterprise/users/{user_id}/invitation"),
        &Auth::Bearer(&admin.access_token),
        None,
    )
    .await
}

#[tokio::test]
async fn invited_people_set_a_password_once_and_can_sign_in() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let (other, _) = setup(&app, "Other").await;
    import(&app, &key, "stores", seed_stores()).await;
    let mut body = seed_users();
    body["send_invitations"] = json!(true);
    let (_, report) = import(&app, &key, "users", body).await;
    assert_eq!(report["invited"], 2, "{report}");
    // Email is off here: the two invitations wait in the outbox, without a
    // token yet (one is made when an email goes out).
    assert!(report["warnings"][0]
        .as_str()
        .unwrap()
        .contains("no SMTP server configured"));
    let (queued, tokens): (i64, i64) = app
        .raw_db()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM email_outbox WHERE kind = 'invitation' AND state = 'pending'),
                    (SELECT COUNT(*) FROM invitations)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((queued, tokens), (2, 0));
    let seller: Value = app
        .get(
            "/api/enterprise/users?external_id=SAP-EMP-67890",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    let seller_id = seller["data"][0]["id"].as_str().unwrap().to_string();

    assert_eq!(
        reissue(&app, &other, &seller_id).await.status(),
        StatusCode::NOT_FOUND,
        "another enterprise's person"
    );
    let first: Value = reissue(&app, &admin, &seller_id)
        .await
        .json()
        .await
        .unwrap();
    let second = reissue(&app, &admin, &seller_id).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second: Value = second.json().await.unwrap();
    assert!(second["invitation_url"]
        .as_str()
        .unwrap()
        .contains("/invitations/accept?token="));
    let token = second["token"].as_str().unwrap();

    let accept = |token: &str, password: &str| {
        app.post(
            "/api/auth/accept-invitation",
            json!({ "token": token, "password": password }),
        )
    };
    let replaced = accept(
        first["token"].as_str().unwrap(),
        "a long and unusual passphrase",
    )
    .await;
    assert_eq!(
        crate::support::error_code(replaced).await,
        "invitation_replaced"
    );
    let weak = accept(token, "short").await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.login("seller1@enterprise.com", "a long and unusual passphrase")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let accepted = accept(token, "a long and unusual passphrase").await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let again = accept(token, "another long unusual passphrase").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(crate::support::error_code(again).await, "invitation_used");

    let login = app
        .login("seller1@enterprise.com", "a long and unusual passphrase")
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    let me: Value = app
        .get(
            "/api/me",
            &Auth::Bearer(login["access_token"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], seller_id);
    assert_eq!(
        reissue(&app, &admin, &seller_id).await.status(),
        StatusCode::CONFLICT
    );
    let hash: String = app
        .raw_db()
        .query_row(
            "SELECT password_hash FROM users WHERE id = ?1",
            [&seller_id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(app
        .audit_actions()
        .contains(&("user.invitation.accept".into(), "success".into())));
    app.stop().await;
}

#[tokio::test]
async fn expired_and_unknown_invitations_are_refused_clearly() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    import(&app, &key, "stores", seed_stores()).await;
    import(&app, &key, "users", seed_users()).await;
    let manager: Value = app
        .get(
            "/api/enterprise/users?external_id=SAP-EMP-12345",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    let issued: Value = reissue(&app, &admin, manager["data"][0]["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    app.advance(std::time::Duration::from_secs(8 * 24 * 3600));
    let expired = app
        .post(
            "/api/auth/accept-invitation",
            json!({ "token": issued["token"], "password": "a long and unusual passphrase" }),
        )
        .await;
    assert_eq!(expired.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        crate::support::error_code(expired).await,
        "invitation_expired"
    );
    let unknown = app
        .post(
            "/api/auth/accept-invitation",
            json!({ "token": "nope", "password": "a long and unusual passphrase" }),
        )
        .await;
    assert_eq!(
        crate::support::error_code(unknown).await,
        "invitation_invalid"
    );
    app.stop().await;
}

#[tokio::test]
async fn old_change_batches_are_pruned_and_runs_kept() {
    let app = TestApp::start_with(|c| c.imports.record_log_retention_days = 20).await;
    let (_, key) = setup(&app, "Acme").await;
    let (_, old) = import(&app, &key, "stores", seed_stores()).await;
    // 21 days: past the retention, within the key's 30-day life.
    app.advance(std::time::Duration::from_secs(21 * 24 * 3600));
    let (_, new) = import(
        &app,
        &key,
        "stores",
        json!({ "stores": [{ "name": "Nice", "external_id": "S3" }] }),
    )
    .await;
    let pruned = enterprise_sync::service::sync_logs::prune_record_logs(app.services())
        .await
        .unwrap();
    assert_eq!(pruned, 1, "the old run's one batch");
    let changes = |run: &Value| {
        let path = format!(
            "/api/enterprise/sync-logs/{}/changes",
            run["sync_log_id"].as_str().unwrap()
        );
        let (app, key) = (&app, &key);
        async move {
            let page: Value = app.get(&path, &Auth::Key(key)).await.json().await.unwrap();
            page["data"].as_array().unwrap().len()
        }
    };
    assert_eq!((changes(&old).await, changes(&new).await), (0, 1));
    let runs: i64 = app
        .raw_db()
        .query_row("SELECT COUNT(*) FROM sync_logs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2, "run entries stay");
    app.stop().await;
}

#[tokio::test]
async fn emails_are_unique_per_enterprise_and_say_nothing_of_other_enterprises() {
    let app = TestApp::start().await;
    let (alpha, a_key) = setup(&app, "Alpha").await;
    let (_, b_key) = setup(&app, "Beta").await;
    let person = |email: &str, external: &str| json!({ "email": email, "name": "M", "role": "manager", "external_id": external });
    import(
        &app,
        &a_key,
        "users",
        json!({ "users": [person("shared@retail.example", "M1")] }),
    )
    .await;
    // Beta's dry run of a list holding Alpha's people (its IT admin too)
    // and its own: every row would be created, none is "taken".
    let mut rows: Vec<Value> = (0..50)
        .map(|n| person(&format!("b{n}@beta.example"), &format!("B{n}")))
        .collect();
    rows.push(person("shared@retail.example", "S1"));
    rows.push(person(&alpha.email, "S2"));
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/users/bulk-import?dry_run=true",
            &Auth::Key(&b_key),
            Some(json!({ "users": rows.clone() })),
        )
        .await;
    let status = response.status();
    let report: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(codes(&report), [], "{report}");
    assert_eq!(report["created"], json!(52));
    let (_, report) = import(&app, &b_key, "users", json!({ "users": rows })).await;
    assert_eq!(report["created"], json!(52), "{report}");
    // Within Beta, an email still names one person: for creates and updates.
    let (status, report) = import(
        &app,
        &b_key,
        "users",
        json!({ "users": [person("shared@retail.example", "S9")] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a clean row error");
    assert_eq!(codes(&report), [(0, "email_taken".to_string())]);
    let (_, report) = import(
        &app,
        &b_key,
        "users",
        json!({ "users": [person("b1@beta.example", "B0")] }),
    )
    .await;
    assert_eq!(codes(&report), [(0, "email_taken".to_string())]);
    // Alpha's person is as it was.
    let alphas: i64 = app
        .raw_db()
        .query_row(
            "SELECT COUNT(*) FROM users WHERE email = 'shared@retail.example' AND enterprise_account_id = ?1",
            [&alpha.enterprise_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(alphas, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_large_run_pages_through_its_changes_in_order() {
    let app = TestApp::start().await;
    let (admin, key) = setup(&app, "Acme").await;
    let count: i64 = 1_234;
    let stores: Vec<Value> = (0..count)
        .map(|i| json!({ "name": format!("Store {i}"), "external_id": format!("S{i:05}") }))
        .collect();
    let (_, report) = import(&app, &key, "stores", json!({ "stores": stores })).await;
    assert_eq!(report["created"], count);
    let batches: i64 = app
        .raw_db()
        .query_row("SELECT COUNT(*) FROM change_batches", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        batches,
        (count as usize).div_ceil(enterprise_sync::service::import::EVENTS_PER_BATCH) as i64
    );
    let run = report["sync_log_id"].as_str().unwrap();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get(
                &format!("/api/enterprise/sync-logs/{run}/changes?limit=300&cursor={cursor}"),
                &Auth::Bearer(&admin.access_token),
            )
            .await
            .json()
            .await
            .unwrap();
        for change in page["data"].as_array().unwrap() {
            assert_eq!(change["type"], "store.created");
            seen.push(change["external_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..count).map(|i| format!("S{i:05}")).collect();
    assert_eq!(seen, expected);

    // The sync-log list pages through the same records, newest first, then the run.
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get(
                &format!("/api/enterprise/sync-logs?limit=300&cursor={cursor}"),
                &Auth::Bearer(&admin.access_token),
            )
            .await
            .json()
            .await
            .unwrap();
        for entry in page["data"].as_array().unwrap() {
            listed.push((
                entry["operation"].as_str().unwrap().to_string(),
                entry["details"]["external_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                entry["id"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(listed.len(), count as usize + 1);
    assert_eq!(listed.last().unwrap().0, "bulk_store_import");
    let records: Vec<String> = listed[..count as usize]
        .iter()
        .map(|l| l.1.clone())
        .collect();
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(records, reversed);
    let ids: std::collections::HashSet<&String> = listed.iter().map(|l| &l.2).collect();
    assert_eq!(ids.len(), listed.len(), "entry ids are unique");
    let failed_only: Value = app
        .get(
            "/api/enterprise/sync-logs?status=failed",
            &Auth::Bearer(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed_only["data"], json!([]));

    // Another enterprise's admin cannot read the run or its changes.
    let (other, _) = setup(&app, "Other").await;
    for path in [
        format!("/api/enterprise/sync-logs/{run}"),
        format!("/api/enterprise/sync-logs/{run}/changes"),
    ] {
        let response = app.get(&path, &Auth::Bearer(&other.access_token)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let bad = app
        .get(
            &format!("/api/enterprise/sync-logs/{run}/changes?cursor=zzz"),
            &Auth::Bearer(&admin.access_token),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn many_users_land_whole_across_multi_row_inserts() {
    let app = TestApp::start().await;
    let key = setup_with_stores(&app, 1000).await;
    // 64 rows per statement: two full statements and a remainder of 3.
    let count = 131;
    let users: Vec<Value> = (0..count)
        .map(|i| {
            json!({ "email": format!("Person.{i}@Acme.example"), "name": format!("Person {i}"),
                    "role": "seller", "store_id": "SAP-STORE-001", "external_id": format!("E{i:03}"),
                    "active": i != 130 })
        })
        .collect();
    let (_, report) = import(&app, &key, "users", json!({ "users": users })).await;
    assert_eq!(
        (report["created"].clone(), report["failed"].clone()),
        (json!(count), json!(0))
    );
    for i in [0, 63, 64, 127, 128, 130] {
        let page: Value = app
            .get(
                &format!("/api/enterprise/users?external_id=E{i:03}"),
                &Auth::Key(&key),
            )
            .await
            .json()
            .await
            .unwrap();
        let user = &page["data"][0];
        assert_eq!(user["email"], format!("person.{i}@acme.example"), "row {i}");
        assert_eq!(user["name"], format!("Person {i}"));
        assert_eq!(user["active"], i != 130, "row {i}");
    }
    let stamped: i64 = app
        .raw_db()
        .query_row(
            "SELECT COUNT(*) FROM users WHERE deactivated_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        stamped, 1,
        "only the inactive row carries a deactivation time"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_small_request_into_a_large_enterprise_sees_everyone_it_names() {
    // A request much smaller than the enterprise looks people up by the keys it
    // names instead of reading everyone: matching, manager references by id,
    // external id and email, emails taken, demotions and seats must not notice.
    let app = TestApp::start().await;
    let key = setup_with_stores(&app, 43).await;
    let mut staff: Vec<Value> = (0..40)
        .map(|i| json!({ "email": format!("s{i}@acme.example"), "name": format!("S {i}"), "role": "seller",
                         "store_id": "SAP-STORE-001", "external_id": format!("S{i}"), "manager_id": "M1" }))
        .collect();
    staff.push(json!({ "email": "boss@acme.example", "name": "Boss", "role": "manager", "external_id": "M1" }));
    staff.push(json!({ "email": "other@acme.example", "name": "Other", "role": "manager", "external_id": "M2" }));
    let (_, report) = import(&app, &key, "users", json!({ "users": staff })).await;
    assert_eq!(report["created"], 42, "{report}");
    let boss: Value = app
        .get("/api/enterprise/users?external_id=M2", &Auth::Key(&key))
        .await
        .json()
        .await
        .unwrap();
    let other_id = boss["data"][0]["id"].as_str().unwrap().to_string();

    let (_, report) = import(
        &app,
        &key,
        "users",
        json!({ "users": [
            { "external_id": "S1", "name": "S one", "manager_id": other_id },
            { "external_id": "S2", "manager_id": "OTHER@acme.example" },
            { "email": "s3@acme.example", "external_id": "S4" },
            { "external_id": "M1", "role": "seller", "store_id": "SAP-STORE-001" },
            { "email": "new@acme.example", "name": "New", "role": "seller", "store_id": "SAP-STORE-001" },
            { "external_id": "S5", "active": false },
            { "email": "new2@acme.example", "name": "New 2", "role": "seller", "store_id": "SAP-STORE-001" },
            { "email": "new3@acme.example", "name": "New 3", "role": "seller", "store_id": "SAP-STORE-001" },
        ]}),
    )
    .await;
    assert_eq!(
        codes(&report),
        [
            (2, "email_taken".to_string()),
            (3, "manager_has_staff".to_string()),
            (7, "seat_limit_reached".to_string()),
        ],
        "{report}"
    );
    assert_eq!(
        (
            report["updated"].clone(),
            report["created"].clone(),
            report["deactivated"].clone()
        ),
        (json!(2), json!(2), json!(1))
    );
    let s1: Value = app
        .get("/api/enterprise/users?external_id=S1", &Auth::Key(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s1["data"][0]["manager_id"], other_id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn unknown_sync_log_filters_answer_422_with_the_known_values() {
    let app = crate::support::TestApp::start().await;
    let admin = app.admin("Acme").await;
    for (query, field, known) in [
        ("status=bogus", "status", "success, partial, failed"),
        (
            "operation=bulk_import_users",
            "operation",
            "bulk_user_import",
        ),
        ("sync_type=ftp", "sync_type", "api, file, scim"),
    ] {
        let response = app
            .get(
                &format!("/api/enterprise/sync-logs?{query}"),
                &Auth::Bearer(&admin.access_token),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        let body: Value = response.json().await.unwrap();
        let error = &body["error"]["details"]["fields"][0];
        assert_eq!(error["field"], field, "{body}");
        assert!(error["message"].as_str().unwrap().contains(known), "{body}");
    }
    let fine = app
        .get(
            "/api/enterprise/sync-logs?status=failed&operation=user_created&sync_type=api",
            &Auth::Bearer(&admin.access_token),
        )
        .await;
    assert_eq!(fine.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn keys_made_for_one_kind_read_the_sync_status_and_their_kinds_runs() {
    let app = crate::support::TestApp::start().await;
    let admin = app.admin("Acme").await;
    // As the specification's integrator makes them: no sync:read.
    let (_, users_key) = app.key(&admin, &["users:read", "users:write"]).await;
    let (_, stores_key) = app.key(&admin, &["stores:write"]).await;
    let (_, sync_key) = app.key(&admin, &["sync:read"]).await;
    let (_, store_report) = import(
        &app,
        &stores_key,
        "stores",
        json!({ "stores": [{ "name": "Paris", "external_id": "S1" }] }),
    )
    .await;
    let (_, user_report) = import(
        &app,
        &users_key,
        "users",
        json!({ "users": [{ "email": "m@acme.example", "name": "M", "role": "manager", "external_id": "M1", "store_id": "S1" }] }),
    )
    .await;
    let store_run = store_report["sync_log_id"].as_str().unwrap();
    let user_run = user_report["sync_log_id"].as_str().unwrap();
    let read = |key: &str, path: &str| {
        let (app, key, path) = (&app, key.to_string(), path.to_string());
        async move {
            let response = app.get(&path, &Auth::Key(&key)).await;
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let runs = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["operation"].as_str().unwrap().to_string())
            .collect()
    };
    for (key, own, other, operations, kind) in [
        (
            &users_key,
            user_run,
            store_run,
            vec!["user_created", "bulk_user_import"],
            "user",
        ),
        (
            &stores_key,
            store_run,
            user_run,
            vec!["store_created", "bulk_store_import"],
            "store",
        ),
    ] {
        let (status, sync) = read(key, "/api/enterprise/sync-status").await;
        assert_eq!(status, StatusCode::OK, "{sync}");
        assert_eq!(sync["recent_logs"].as_array().unwrap().len(), 1, "{sync}");
        assert_eq!(sync["recent_logs"][0]["id"], own);
        assert_eq!(sync["recent_logs"][0]["resource_type"], kind);
        let (status, page) = read(key, "/api/enterprise/sync-logs").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(runs(&page), operations);
        for path in [
            format!("/api/enterprise/sync-logs/{own}"),
            format!("/api/enterprise/sync-logs/{own}/changes"),
        ] {
            assert_eq!(read(key, &path).await.0, StatusCode::OK, "{path}");
        }
        for path in [
            format!("/api/enterprise/sync-logs/{other}"),
            format!("/api/enterprise/sync-logs/{other}/changes"),
        ] {
            assert_eq!(read(key, &path).await.0, StatusCode::NOT_FOUND, "{path}");
        }
    }
    // sync:read reads them all.
    let (_, page) = read(&sync_key, "/api/enterprise/sync-logs").await;
    assert_eq!(
        runs(&page),
        [
            "user_created",
            "bulk_user_import",
            "store_created",
            "bulk_store_import"
        ]
    );
    // A key without any of these scopes still reads nothing.
    let (_, scim_key) = app.key(&admin, &["scim"]).await;
    let (status, body) = read(&scim_key, "/api/enterprise/sync-status").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "insufficient_scope");
    app.stop().await;
}

#[tokio::test]
async fn seats_alert_once_at_90_percent_and_once_when_full() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = 10 WHERE id = ?1",
            [&admin.enterprise_id],
        )
        .unwrap();
    let (_, key) = app.key(&admin, &["users:write"]).await;
    let import = |people: Vec<(usize, bool)>| {
        let users: Vec<Value> = people
            .into_iter()
            .map(|(n, active)| {
                json!({ "email": format!("p{n}@acme.example"), "name": format!("Person {n}"),
                        "role": "manager", "external_id": format!("E{n}"), "active": active })
            })
            .collect();
        let (app, key) = (&app, key.clone());
        async move {
            let response = app
                .call(
                    Method::POST,
                    "/api/enterprise/users/bulk-import",
                    &Auth::Key(&key),
                    Some(json!({ "users": users })),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    let alerts = |kind: &str| -> i64 {
        app.raw_db()
            .query_row("SELECT COUNT(*) FROM alerts WHERE kind = ?1", [kind], |r| {
                r.get(0)
            })
            .unwrap()
    };
    import((0..8).map(|n| (n, true)).collect()).await;
    assert_eq!((alerts("seats_high"), alerts("seats_full")), (0, 0));
    import(vec![(8, true)]).await;
    assert_eq!((alerts("seats_high"), alerts("seats_full")), (1, 0));
    import(vec![(9, true)]).await;
    assert_eq!((alerts("seats_high"), alerts("seats_full")), (1, 1));
    // Nothing new: no new alert.
    import(vec![(9, true)]).await;
    assert_eq!((alerts("seats_high"), alerts("seats_full")), (1, 1));
    // Leavers free seats; crossing 90 % again alerts again.
    import(vec![(0, false), (1, false), (2, false)]).await;
    import(vec![(0, true), (1, true)]).await;
    assert_eq!((alerts("seats_high"), alerts("seats_full")), (2, 1));
    app.stop().await;
}

#[tokio::test]
async fn a_large_body_runs_the_same_with_people_read_while_it_parses() {
    // A body large enough to hold a bulk import has the enterprise's people
    // read while it is parsed: whatever its rows turn out to be (a re-sync, a
    // create-only run that needs other reads, JSON broken at its end), the
    // run is the one any body gets.
    let app = TestApp::start().await;
    let key = setup_with_stores(&app, 20000).await;
    // Long names take 12,000 rows past the 2.56 MB a body starts it from.
    let person = |i: usize, name: &str| {
        json!({ "email": format!("p{i}@acme.example"), "name": format!("{name} {i} {}", "x".repeat(150)),
                "role": "seller", "store_id": "SAP-STORE-001", "external_id": format!("E{i:05}") })
    };
    let staff: Vec<Value> = (0..12_000).map(|i| person(i, "Person")).collect();
    assert!(
        serde_json::to_vec(&json!({ "users": staff }))
            .unwrap()
            .len()
            > 2_560_000
    );
    let (status, report) = import(&app, &key, "users", json!({ "users": staff })).await;
    assert_eq!(
        (status, report["created"].clone()),
        (StatusCode::OK, json!(12_000)),
        "{}",
        report["errors"][0]
    );

    // 100 renamed, 20 leave, 30 new.
    let mut again: Vec<Value> = (0..12_000)
        .map(|i| person(i, if i % 120 == 7 { "Renamed" } else { "Person" }))
        .collect();
    for leaver in again.iter_mut().step_by(600) {
        leaver["active"] = json!(false);
    }
    again.extend((12_000..12_030).map(|i| person(i, "Person")));
    let (status, report) = import(&app, &key, "users", json!({ "users": again.clone() })).await;
    assert_eq!(status, StatusCode::OK);
    let counts = |report: &Value| {
        ["created", "updated", "deactivated", "unchanged", "failed"]
            .map(|k| report[k].as_u64().unwrap())
    };
    assert_eq!(
        counts(&report),
        [30, 100, 20, 11_880, 0],
        "{}",
        report["errors"][0]
    );
    let renamed: Value = app
        .get("/api/enterprise/users?external_id=E00007", &Auth::Key(&key))
        .await
        .json()
        .await
        .unwrap();
    assert!(renamed["data"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("Renamed 7 "));

    // Create-only: every known row is refused, the one new row created.
    let mut create_only = again.clone();
    create_only.push(person(12_030, "Person"));
    let (_, report) = import(
        &app,
        &key,
        "users",
        json!({ "users": create_only, "mode": "create_only" }),
    )
    .await;
    assert_eq!(
        counts(&report),
        [1, 0, 0, 0, 12_030],
        "{}",
        report["errors"][0]
    );
    assert_eq!(report["errors"][0]["code"], "already_exists");

    // Broken at its end: refused whole, nothing written.
    let events = event_count(&app);
    again[7]["name"] = json!("Never written");
    let mut text = serde_json::to_string(&json!({ "users": again })).unwrap();
    text.truncate(text.len() - 3);
    let response = post_users_body(&app, &key, text).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json", "{body}");
    assert_eq!(event_count(&app), events);
    let renamed: Value = app
        .get("/api/enterprise/users?external_id=E00007", &Auth::Key(&key))
        .await
        .json()
        .await
        .unwrap();
    assert!(renamed["data"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("Renamed 7 "));
    app.stop().await;
}

#[tokio::test]
async fn a_large_body_reports_rows_it_cannot_read_as_a_small_one_does() {
    // A large body's rows are read as the import stages them, not before:
    // rows that are not objects, fields of the wrong type or forbidden, and
    // unknown fields are reported as a small body's are, under the key the
    // row gave (its external_id, else email, else name, as written).
    let app = TestApp::start().await;
    let key = setup_with_stores(&app, 20000).await;
    let mut rows: Vec<Value> = (0..12_000)
        .map(|i| {
            json!({ "email": format!("p{i}@acme.example"), "name": format!("P {i} {}", "x".repeat(190)),
                    "role": "seller", "store_id": "SAP-STORE-001", "external_id": format!("E{i:05}") })
        })
        .collect();
    rows[3] = json!({ "name": "Only A Name", "id": "forged" });
    rows[5]["role"] = json!(true);
    rows[9]["shoe_size"] = json!(44);
    rows[11]["email"] = json!("MIXED@Acme.example");
    rows[11]["external_id"] = Value::Null;
    rows[11]["password_hash"] = json!("x");
    rows[11_999] = json!("not a row");
    assert!(serde_json::to_vec(&json!({ "users": rows })).unwrap().len() > 2_560_000);
    let (status, large) = import(&app, &key, "users", json!({ "users": rows })).await;
    assert_eq!(status, StatusCode::OK);
    let small_rows = rows[..12].to_vec();
    let (status, small) = import(&app, &key, "users", json!({ "users": small_rows })).await;
    assert_eq!(status, StatusCode::OK);
    let from_small = keyed_codes(&small);
    let from_large = keyed_codes(&large);
    assert_eq!(from_large[..from_small.len()], from_small[..]);
    for expected in [
        (3, "Only A Name", "forbidden_field"),
        (5, "E00005", "invalid_type"),
        (11, "MIXED@Acme.example", "forbidden_field"),
        (11_999, "", "invalid_row"),
    ] {
        let expected = (expected.0, expected.1.to_string(), expected.2.to_string());
        assert!(
            from_large.contains(&expected),
            "{expected:?} in {from_large:?}"
        );
    }
    assert_eq!(
        large["warnings"],
        json!(["ignored unknown fields: shoe_size"])
    );
    assert_eq!(small["warnings"], large["warnings"]);
    assert_eq!(large["failed"], 4);
    assert_eq!(large["created"], 11_996);
    app.stop().await;
}

#[tokio::test]
async fn a_body_the_parser_refuses_is_answered_while_the_writer_is_busy() {
    // The body is parsed beside the writer's work: a malformed one is refused
    // at once, not once the writer is free, and leaves nothing behind.
    let app = TestApp::start().await;
    let (_, key) = setup(&app, "Acme").await;
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, writer_busy) = tokio::sync::oneshot::channel::<()>();
    let db = app.services().db.clone();
    let busy = tokio::spawn(async move {
        db.write(move |_txn| {
            let _ = started.send(());
            // Held until the refusal has come back.
            let _ = held.recv();
            Ok::<_, enterprise_sync::AppError>(())
        })
        .await
    });
    writer_busy.await.unwrap();
    let events = event_count(&app);
    // A small body, parsed before the writer is asked for, and a large one,
    // parsed while the writer would begin on the enterprise.
    let rows: Vec<Value> = (0..14_000)
        .map(|i| json!({ "email": format!("p{i}@acme.example"), "name": format!("P {i} {}", "x".repeat(190)) }))
        .collect();
    let mut large = serde_json::to_string(&json!({ "users": rows })).unwrap();
    large.truncate(large.len() - 3);
    assert!(large.len() > 2_560_000);
    for body in [
        r#"{"users": [{"email": "a@acme.example", "name": "A"}"#.to_string(),
        large,
    ] {
        let refused = post_users_body(&app, &key, body).send();
        // Without the early answer this would wait for the held writer
        // forever: the bound turns that into a failure.
        let response = tokio::time::timeout(std::time::Duration::from_secs(60), refused)
            .await
            .expect("the refusal waited for the writer")
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_json", "{body}");
    }
    release.send(()).unwrap();
    busy.await.unwrap().unwrap();
    assert_eq!(event_count(&app), events);
    let users: Value = app
        .get(
            "/api/enterprise/users?email=a@acme.example",
            &Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users["data"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_bulk_import_links_people_to_managers_whose_rows_come_later() {
    // An export sorted by name names managers before their own rows: each
    // tenth person here names the manager five rows on, in a body large
    // enough for the bulk ways (the users' indexes rebuilt after the insert).
    let app = TestApp::start().await;
    let key = setup_with_stores(&app, 20000).await;
    let staff: Vec<Value> = (0..10_000)
        .map(|i| {
            let mut person = json!({ "email": format!("p{i}@acme.example"), "name": format!("Person {i}"),
                                     "role": if i % 10 == 5 { "manager" } else { "seller" },
                                     "store_id": "SAP-STORE-001", "external_id": format!("E{i:05}") });
            if i % 10 == 0 {
                person["manager_id"] = json!(format!("E{:05}", i + 5));
            }
            person
        })
        .collect();
    let (status, report) = import(&app, &key, "users", json!({ "users": staff })).await;
    assert_eq!(
        (status, report["created"].clone(), report["failed"].clone()),
        (StatusCode::OK, json!(10_000), json!(0)),
        "{}",
        report["errors"][0]
    );
    let linked: i64 = app
        .raw_db()
        .query_row(
            "SELECT count(*) FROM users u JOIN users m ON m.id = u.manager_id
              WHERE m.enterprise_account_id = u.enterprise_account_id
                AND m.external_id = printf('E%05d', CAST(substr(u.external_id, 2) AS INTEGER) + 5)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(linked, 1_000);
}
