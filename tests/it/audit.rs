use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Auth, TestApp};

#[tokio::test]
async fn every_security_action_is_audited_with_who_and_where() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let _ = app.login(&admin.email, "a wrong password for sure").await;
    let (id, _) = app.key(&admin, &["users:read"]).await;
    app.call(
        Method::DELETE,
        &format!("/api/enterprise/api-keys/{id}"),
        &Auth::Bearer(&admin.access_token),
        None,
    )
    .await;
    let first = admin.refresh_token.clone();
    app.post(
        "/api/auth/refresh",
        serde_json::json!({ "refresh_token": first }),
    )
    .await;
    app.post(
        "/api/auth/refresh",
        serde_json::json!({ "refresh_token": first }),
    )
    .await;

    let actions = app.audit_actions();
    for expected in [
        ("enterprise.register", "success"),
        ("auth.login", "success"),
        ("auth.login", "failure"),
        ("api_key.generate", "success"),
        ("api_key.revoke", "success"),
        ("auth.refresh", "success"),
        ("auth.refresh_reuse", "denied"),
    ] {
        assert!(
            actions.contains(&(expected.0.into(), expected.1.into())),
            "missing {expected:?} in {actions:?}"
        );
    }

    // Fresh admin token (the family was revoked by the reuse).
    let login: Value = app
        .login(&admin.email, crate::support::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let page: Value = app
        .get(
            "/api/enterprise/audit-log?action=api_key.revoke",
            &Auth::Bearer(token),
        )
        .await
        .json()
        .await
        .unwrap();
    let entry = &page["data"][0];
    assert_eq!(entry["actor_type"], "user");
    assert_eq!(entry["actor_id"], admin.user_id);
    assert_eq!(entry["source_ip"], "127.0.0.1");
    assert_eq!(entry["target_id"], id);
    assert!(entry["request_id"].as_str().unwrap().len() >= 32);
    assert!(entry["timestamp"].as_str().unwrap().ends_with('Z'));

    let failures: Value = app
        .get(
            "/api/enterprise/audit-log?outcome=failure",
            &Auth::Bearer(token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(failures["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["outcome"] == "failure"));
    // Reading the trail is itself recorded.
    assert!(app
        .audit_actions()
        .contains(&("audit_log.read".into(), "success".into())));
    app.stop().await;
}

#[tokio::test]
async fn the_trail_is_append_only_and_tampering_is_detected() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    app.key(&admin, &["users:read"]).await;
    let (_dir, db) = app.stop_keeping_data().await;

    let conn = rusqlite::Connection::open(&db).unwrap();
    let update = conn.execute("UPDATE audit_log SET outcome = 'failure' WHERE seq = 1", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM audit_log WHERE seq = 2", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));

    assert_eq!(enterprise_sync::cli::verify_audit(&db).unwrap(), 3);

    // Someone with file access drops the trigger and edits the second row.
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET source_ip = '10.9.9.9' WHERE seq = 2;",
    )
    .unwrap();
    let error = enterprise_sync::cli::verify_audit(&db)
        .unwrap_err()
        .to_string();
    assert!(error.contains("seq 2"), "{error}");
}

#[tokio::test]
async fn a_removed_row_breaks_the_chain_at_the_next_one() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    app.key(&admin, &["users:read"]).await;
    let (_dir, db) = app.stop_keeping_data().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 2;")
        .unwrap();
    let error = enterprise_sync::cli::verify_audit(&db)
        .unwrap_err()
        .to_string();
    assert!(error.contains("seq 3"), "{error}");
    let _ = StatusCode::OK;
}
