//! Per-enterprise drop-directory profiles: set through the API (IT admins,
//! validated, audited), previewed on a sample without importing, and used by
//! the watcher for completion, mapping, dated rows and full-export rules.

use std::time::Duration;

use enterprise_sync::config::CompletionPolicy;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::dropdir::{active_count, entries, files, setup, staff_csv, user, with_drop_dir};
use crate::support::{error_code, Auth, TestApp};

fn sap_profile() -> Value {
    json!({
        "delimiter": ";",
        "skip_bottom_lines": 1,
        "users": {
            "columns": {
                "external_id": {"column": "PERNR", "strip_leading_zeros": true},
                "name": {"columns": ["VORNA", "NACHN"]},
                "email": "MAIL",
                "role": {"column": "STELL", "values": {"M01": "manager"}, "otherwise": "seller"},
                "store_id": "WERKS"
            },
            "dated_rows": {"valid_from": "BEGDA", "valid_to": "ENDDA", "date_format": "%d.%m.%Y"}
        }
    })
}

/// An SAP-style export in Windows-1252 with CRLF and a trailer line. The test
/// clock's today is 2026-03-01.
fn sap_file() -> Vec<u8> {
    let text = "PERNR;VORNA;NACHN;MAIL;STELL;WERKS;BEGDA;ENDDA\r\n\
        00001001;Zoë;Lefèvre;zoe@acme.example;M01;S1;01.01.2020;31.12.9999\r\n\
        00001002;Jean;Dupont;jean@acme.example;S01;S1;01.01.2020;31.12.2025\r\n\
        00001002;Jean;Dupont;jean@acme.example;S01;S2;01.01.2026;31.12.9999\r\n\
        00001003;Old;Leaver;old@acme.example;S01;S1;01.01.2020;31.01.2026\r\n\
        00001004;Future;Hire;future@acme.example;S01;S1;01.04.2026;31.12.9999\r\n\
        00001005;Bad;Date;bad@acme.example;S01;S1;2026-01-01;31.12.9999\r\n\
        EOF;6\r\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

async fn put_profile(app: &TestApp, token: &str, profile: Value) -> reqwest::Response {
    app.call(
        Method::PUT,
        "/api/enterprise/drop-config",
        &Auth::Bearer(token),
        Some(profile),
    )
    .await
}

#[tokio::test]
async fn a_sap_profile_is_previewed_then_maps_columns_and_keeps_the_row_valid_today() {
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    let drop = setup(&app, "Acme").await;
    let response = put_profile(&app, &drop.admin.access_token, sap_profile()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["source"], "api");
    assert_eq!(view["effective"]["delimiter"], ";");

    // The preview reads the sample as a dropped file would be read, and writes nothing.
    let preview = app
        .client
        .post(app.url("/api/enterprise/drop-config/preview?file_name=users_sap.csv"))
        .header("x-api-key", &drop.key)
        .header("content-type", "text/csv")
        .body(sap_file())
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), StatusCode::OK);
    let preview: Value = preview.json().await.unwrap();
    assert_eq!(preview["encoding"], "windows-1252", "{preview}");
    assert_eq!(preview["delimiter"], ";");
    assert_eq!(preview["kind"], "users");
    assert_eq!(
        preview["records"], 4,
        "one row per person, future hire left out"
    );
    assert_eq!(
        preview["rows"][0],
        json!({"record": 1, "external_id": "1001", "name": "Zoë Lefèvre", "email": "zoe@acme.example", "role": "manager", "store_id": "S1"})
    );
    assert_eq!(preview["rows"][1]["record"], 3, "Jean's current row");
    assert_eq!(preview["rows"][1]["store_id"], "S2");
    assert_eq!(
        preview["rows"][2]["active"], false,
        "an ended row is a leaver"
    );
    assert_eq!(preview["would"]["created"], 3, "{preview}");
    assert_eq!(preview["would"]["failed"], 1);
    assert_eq!(preview["would"]["errors"][0]["row"], 6);
    assert_eq!(preview["would"]["errors"][0]["field"], "BEGDA");
    assert!(preview["columns"]
        .as_array()
        .unwrap()
        .contains(&json!("pernr")));
    assert!(
        user(&app, &drop, "1001").await.is_null(),
        "a preview imports nothing"
    );

    std::fs::write(drop.incoming().join("users_sap.csv"), sap_file()).unwrap();
    app.drop_dir().scan_now().await;
    let file = files(&app, &drop).await[0].clone();
    assert_eq!(file["state"], "applied", "{file}");
    assert_eq!(file["encoding"], "windows-1252");
    let zoe = user(&app, &drop, "1001").await;
    assert_eq!(zoe["name"], "Zoë Lefèvre");
    assert_eq!(zoe["role"], "manager");
    assert_eq!(user(&app, &drop, "1003").await["active"], false);
    assert!(user(&app, &drop, "1004").await.is_null());
    let errors_csv = entries(&drop.folder.join("results"))
        .into_iter()
        .find(|n| n.ends_with(".errors.csv"))
        .unwrap();
    let errors = std::fs::read_to_string(drop.folder.join("results").join(errors_csv)).unwrap();
    assert!(
        errors.contains("\n6,1005,BEGDA,invalid_date,"),
        "record numbers of the file, not of the kept rows: {errors}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_profile_is_set_by_it_admins_only_validated_audited_and_per_enterprise() {
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    let acme = setup(&app, "Acme").await;
    let globex = setup(&app, "Globex").await;

    let by_key = app
        .call(
            Method::PUT,
            "/api/enterprise/drop-config",
            &Auth::Key(&acme.key),
            Some(sap_profile()),
        )
        .await;
    assert_eq!(by_key.status(), StatusCode::FORBIDDEN);

    let wrong = put_profile(
        &app,
        &acme.admin.access_token,
        json!({"delimiter": "#", "users": {"columns": {"password": "PW", "shoe_size": "S"}}}),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = wrong.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for field in [
        "delimiter",
        "users.columns.password",
        "users.columns.shoe_size",
    ] {
        assert!(fields.contains(&field), "{field} in {body}");
    }
    let typo = put_profile(&app, &acme.admin.access_token, json!({"delimitter": ";"})).await;
    assert_eq!(typo.status(), StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(
        put_profile(&app, &acme.admin.access_token, sap_profile())
            .await
            .status(),
        StatusCode::OK
    );
    let theirs: Value = app
        .get("/api/enterprise/drop-config", &Auth::Key(&globex.key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        theirs["source"], "defaults",
        "another enterprise keeps its own"
    );
    assert_eq!(theirs["effective"]["delimiter"], "detected");
    let ours: Value = app
        .get("/api/enterprise/drop-config", &Auth::Key(&acme.key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ours["profile"]["users"]["columns"]["email"], "MAIL");
    assert_eq!(ours["updated_by"], acme.admin.user_id.as_str());

    let reset = app
        .call(
            Method::DELETE,
            "/api/enterprise/drop-config",
            &Auth::Bearer(&acme.admin.access_token),
            None,
        )
        .await;
    assert_eq!(reset.status(), StatusCode::OK);
    let reset: Value = reset.json().await.unwrap();
    assert_eq!(reset["source"], "defaults");
    let actions: Vec<String> = app
        .audit_actions()
        .into_iter()
        .map(|(action, _)| action)
        .filter(|a| a.starts_with("drop_config."))
        .collect();
    assert_eq!(actions, ["drop_config.update", "drop_config.reset"]);
    app.stop().await;
}

#[tokio::test]
async fn each_enterprise_has_its_completion_policy() {
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Quiet)).await;
    let acme = setup(&app, "Acme").await;
    let globex = setup(&app, "Globex").await;
    let response = put_profile(
        &app,
        &acme.admin.access_token,
        json!({"completion": "marker"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let csv = "external_id,email,name,role,store_id\nM1,m1@x.example,M,seller,S1\n";
    std::fs::write(acme.incoming().join("users.csv"), csv).unwrap();
    std::fs::write(
        globex.incoming().join("users.csv"),
        csv.replace("x.example", "globex.example"),
    )
    .unwrap();
    app.drop_dir().scan_now().await;
    app.advance(Duration::from_secs(31));
    app.drop_dir().scan_now().await;
    assert!(
        files(&app, &acme).await.is_empty(),
        "acme waits for its marker"
    );
    assert_eq!(files(&app, &globex).await[0]["state"], "applied");
    std::fs::write(acme.incoming().join("users.csv.done"), "").unwrap();
    app.drop_dir().scan_now().await;
    assert_eq!(files(&app, &acme).await[0]["state"], "applied");
    assert!(
        !acme.incoming().join("users.csv.done").exists(),
        "the marker is consumed"
    );
    app.stop().await;
}

fn write_with_mtime(path: &std::path::Path, text: &str, age: Duration) {
    std::fs::write(path, text).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

#[tokio::test]
async fn full_export_rules_come_from_the_profile_and_an_older_export_is_held() {
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    let drop = setup(&app, "Acme").await;
    let response = put_profile(
        &app,
        &drop.admin.access_token,
        json!({"users_files_are_full_exports": true, "full_export_max_deactivate_percent": 50}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    write_with_mtime(
        &drop.incoming().join("users_monday.csv"),
        &staff_csv(0..10, None),
        Duration::from_secs(3600),
    );
    app.drop_dir().scan_now().await;
    assert_eq!(active_count(&app, &drop).await, 10);
    // Three leavers of ten (30 %) pass this profile's guard (50 %), not the default (10 %).
    write_with_mtime(
        &drop.incoming().join("users_tuesday.csv"),
        &staff_csv(0..7, None),
        Duration::from_secs(60),
    );
    app.drop_dir().scan_now().await;
    assert_eq!(active_count(&app, &drop).await, 7);
    // Sunday's export arrives late: applying it would bring back Tuesday's leavers.
    write_with_mtime(
        &drop.incoming().join("users_sunday.csv"),
        &staff_csv(0..9, None),
        Duration::from_secs(86_400),
    );
    app.drop_dir().scan_now().await;
    let held = files(&app, &drop).await[0].clone();
    assert_eq!(held["state"], "held", "{held}");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .contains("before the last applied one"),
        "{held}"
    );
    assert_eq!(active_count(&app, &drop).await, 7);
    app.stop().await;
}

#[tokio::test]
async fn a_profile_may_reject_a_delta_file_with_any_row_error() {
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    let drop = setup(&app, "Acme").await;
    let response = put_profile(
        &app,
        &drop.admin.access_token,
        json!({"delta_row_errors": "reject_file", "skip_top_lines": 1}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    std::fs::write(
        drop.incoming().join("users.csv"),
        format!(
            "Export of 2026-03-01, HR system\n{}",
            staff_csv(0..3, Some(1))
        ),
    )
    .unwrap();
    app.drop_dir().scan_now().await;
    let file = files(&app, &drop).await[0].clone();
    assert_eq!(file["state"], "failed", "{file}");
    assert!(user(&app, &drop, "P0").await.is_null(), "nothing applied");
    // The preview with a tried profile says the same, and the error's record.
    let preview = app
        .call(
            Method::POST,
            "/api/enterprise/drop-config/preview",
            &Auth::Key(&drop.key),
            Some(json!({
                "file_name": "users.csv",
                "content": staff_csv(0..3, Some(1)),
                "profile": {"delta_row_errors": "apply_valid_rows"}
            })),
        )
        .await;
    assert_eq!(preview.status(), StatusCode::OK);
    let preview: Value = preview.json().await.unwrap();
    assert_eq!(preview["profile"], "request");
    assert_eq!(preview["would"]["created"], 2, "{preview}");
    assert_eq!(preview["would"]["errors"][0]["row"], 2);
    let unreadable = app
        .call(
            Method::POST,
            "/api/enterprise/drop-config/preview",
            &Auth::Key(&drop.key),
            Some(json!({"file_name": "notes.csv", "content": "a,b\n"})),
        )
        .await;
    assert_eq!(unreadable.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(unreadable).await, "validation_failed");
    app.stop().await;
}
