//! The import engine's two modes give the same answers: the same users files
//! go through the in-memory planner (files read whole) on one server and the
//! staged, set-based mode (files streamed) on another, and the runs, their
//! row errors and the resulting people are compared.

use std::collections::BTreeSet;

use enterprise_sync::config::{CompletionPolicy, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::dropdir::{files, setup, with_drop_dir, Drop};
use crate::support::{Auth, TestApp};

struct Side {
    app: TestApp,
    drop: Drop,
}

/// How a side reads users files.
#[derive(Clone, Copy)]
enum Mode {
    WholeFile,
    /// Streamed, rows matched in memory while staged (small enterprises).
    Staged,
    /// Streamed, rows matched by a pass over the staged rows (large ones).
    StagedMatchedInSql,
}

async fn side(mode: Mode) -> Side {
    let app = TestApp::start_with(|config: &mut Config| {
        with_drop_dir(CompletionPolicy::Rename)(config);
        config.dropdir.stream_from_bytes = match mode {
            Mode::WholeFile => u64::MAX,
            _ => 0,
        };
        if let Mode::StagedMatchedInSql = mode {
            config.imports.match_in_memory_up_to = 0;
        }
    })
    .await;
    let drop = setup(&app, "Acme").await;
    // Someone of another enterprise owns an email the files use: it is free
    // here (emails are unique per enterprise).
    let globex = app.admin("Globex").await;
    let (_, key) = app.key(&globex, &["users:write", "stores:write"]).await;
    let store = json!({"stores": [{"name": "G", "external_id": "G1"}]});
    app.call(
        Method::POST,
        "/api/enterprise/stores/bulk-import",
        &Auth::Key(&key),
        Some(store),
    )
    .await;
    let user = json!({"users": [{"email": "taken@globex.example", "name": "T", "role": "seller", "store_id": "G1"}]});
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/users/bulk-import",
            &Auth::Key(&key),
            Some(user),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Seats for the seat rule: 13 active people at most.
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = 13 WHERE id = ?1",
            [&drop.admin.enterprise_id],
        )
        .unwrap();
    let profile =
        json!({"full_export_max_deactivate_percent": 60, "full_export_max_deactivate_count": 100});
    let response = app
        .call(
            Method::PUT,
            "/api/enterprise/drop-config",
            &Auth::Bearer(&drop.admin.access_token),
            Some(profile),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    Side { app, drop }
}

/// What a file did, without ids or times: its state, counts and row errors.
async fn outcome(side: &Side) -> Value {
    let file = files(&side.app, &side.drop).await[0].clone();
    let run: Value = side
        .app
        .get(
            &format!(
                "/api/enterprise/sync-logs/{}",
                file["sync_log_id"].as_str().unwrap_or("none")
            ),
            &Auth::Key(&side.drop.key),
        )
        .await
        .json()
        .await
        .unwrap();
    let details = &run["details"];
    // The events by type and external id (ids differ between the servers); the
    // leavers of a full export come in id order, so compare as a set.
    let changes: Value = side
        .app
        .get(
            &format!(
                "/api/enterprise/sync-logs/{}/changes?limit=200",
                file["sync_log_id"].as_str().unwrap_or("none")
            ),
            &Auth::Key(&side.drop.key),
        )
        .await
        .json()
        .await
        .unwrap();
    let events: BTreeSet<(String, String)> = changes["data"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    (
                        e["type"].as_str().unwrap_or_default().to_string(),
                        e["external_id"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let errors: BTreeSet<(u64, String, String, String)> = details["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["row"].as_u64().unwrap(),
                        e["key"].as_str().unwrap_or_default().to_string(),
                        e["field"].as_str().unwrap_or_default().to_string(),
                        format!(
                            "{}: {}",
                            e["code"].as_str().unwrap(),
                            e["message"].as_str().unwrap()
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "state": file["state"], "reason": file["reason"], "rows": file["row_count"],
        "created": details["created"], "updated": details["updated"],
        "unchanged": details["unchanged"], "deactivated": details["deactivated"],
        "failed": details["failed"], "errors": errors.into_iter().collect::<Vec<_>>(),
        "changes": events.into_iter().collect::<Vec<_>>(),
    })
}

/// The enterprise's people as comparable facts: references by external id.
async fn people(side: &Side) -> Vec<Value> {
    let page: Value = side
        .app
        .get(
            "/api/enterprise/users?limit=200",
            &Auth::Key(&side.drop.key),
        )
        .await
        .json()
        .await
        .unwrap();
    let users = page["data"].as_array().unwrap().clone();
    let external_of = |id: &Value| {
        users
            .iter()
            .find(|u| u["id"] == *id)
            .map(|u| u["external_id"].clone())
            .unwrap_or(Value::Null)
    };
    let stores: Value = side
        .app
        .get(
            "/api/enterprise/stores?limit=200",
            &Auth::Key(&side.drop.key),
        )
        .await
        .json()
        .await
        .unwrap();
    let store_of = |id: &Value| {
        stores["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == *id)
            .map(|s| s["external_id"].clone())
            .unwrap_or(Value::Null)
    };
    let mut facts: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "external_id": u["external_id"], "email": u["email"], "name": u["name"],
                "role": u["role"], "active": u["active"], "sync_mode": u["sync_mode"],
                "store": store_of(&u["store_id"]), "manager": external_of(&u["manager_id"]),
            })
        })
        .collect();
    facts.sort_by_key(|f| f["email"].as_str().unwrap_or_default().to_string());
    facts
}

async fn drop_file(side: &Side, name: &str, text: &str) {
    std::fs::write(side.drop.incoming().join(name), text).unwrap();
    side.app.drop_dir().scan_now().await;
}

#[tokio::test]
async fn the_staged_mode_gives_the_in_memory_planners_answers() {
    let (memory, staged, in_sql) = (
        side(Mode::WholeFile).await,
        side(Mode::Staged).await,
        side(Mode::StagedMatchedInSql).await,
    );
    let admin_email = memory.drop.admin.email.clone();
    assert_eq!(admin_email, staged.drop.admin.email);
    let first = format!(
        "external_id,email,name,role,store_id,manager_id,active
M1,boss@acme.example,Boss One,manager,S1,,
E1,e1@acme.example,Emp One,seller,S1,M1,
E2,E2@Acme.example,Emp Two,seller,S2,boss@acme.example,
E3,e3@acme.example,Emp Three,seller,S9,,
E4,not-an-email,Emp Four,seller,S1,,
E5,e5@acme.example,Emp Five,seller,,,
E6,e6@acme.example,Emp Six,seller,S1,E1,
E7,e7@acme.example,Emp Seven,seller,S1,NOBODY,
D1,d1@acme.example,Dup A,seller,S1,,
D1,d2@acme.example,Dup B,seller,S1,,
E8,taken@globex.example,Taken,seller,S1,,
,{admin_email},Admin,seller,S1,,
E9,e9@acme.example,,seller,S1,,
E10,e10@acme.example,Ten,director,S1,,
M2,m2@acme.example,Boss Two,manager,S2,M3,
M3,m3@acme.example,Boss Three,manager,S2,,
E12,e12@acme.example,Emp Twelve,seller,S1,M2,false
X1,x1@acme.example,Bad Boss,manager,S404,,
E13,e13@acme.example,Chain,seller,S1,X1,
E14,e14@acme.example,Self,manager,S1,E14,
E15,e15@acme.example,Fifteen,seller,S1,M3,
E16,e16@acme.example,Sixteen,seller,S1,,
E17,e17@acme.example,Seventeen,seller,S1,,
E18,e18@acme.example,Eighteen,seller,S1,,
E19,e19@acme.example,Nineteen,seller,S1,,
E20,e20@acme.example,Twenty,seller,S1,,
E21,e21@acme.example,Twenty-one,seller,S1,,
E22,e22@acme.example,Twenty-two,seller,S1,,
E23,e23@acme.example,Over the seats,seller,S1,,
"
    );
    let second = "external_id,email,name,role,store_id,manager_id,active
E1,e1@acme.example,Emp One Renamed,seller,S1,M1,
E2,e2@acme.example,Emp Two,seller,S2,M1,false
M3,m3@acme.example,Boss Three,seller,S2,,
E12,,,,,,true
M2,m2@acme.example,Boss Two,manager,S2,M3,
N1,n1@acme.example,New One,seller,S2,m3@acme.example,
E16,e16@acme.example,Sixteen,manager,S1,,
N2,boss@acme.example,Not the Boss,seller,S1,,
";
    let third = "external_id,email,name,role,store_id,manager_id
M1,boss@acme.example,Boss One,manager,S1,
E1,e1@acme.example,Emp One Renamed,seller,S1,M1
M2,m2@acme.example,Boss Two,manager,S2,M3
M3,m3@acme.example,Boss Three,manager,S2,
E12,e12@acme.example,Emp Twelve,seller,S1,M2
E15,e15@acme.example,Fifteen,seller,S1,M3
N1,n1@acme.example,New One,seller,S2,M3
";
    let mut outcomes = Vec::new();
    for (name, text) in [
        ("users_1.csv", first.as_str()),
        ("users_2.csv", second),
        ("users_full_3.csv", third),
    ] {
        drop_file(&memory, name, text).await;
        drop_file(&staged, name, text).await;
        drop_file(&in_sql, name, text).await;
        let (a, b, c) = (
            outcome(&memory).await,
            outcome(&staged).await,
            outcome(&in_sql).await,
        );
        assert_eq!(a, b, "{name}: in memory (left) and staged (right)");
        assert_eq!(
            a, c,
            "{name}: in memory (left) and staged, matched in SQL (right)"
        );
        let expected = people(&memory).await;
        assert_eq!(expected, people(&staged).await, "after {name}");
        assert_eq!(
            expected,
            people(&in_sql).await,
            "after {name}, matched in SQL"
        );
        outcomes.push(a);
    }
    // The scenario exercised what it means to: errors of every kind, updates,
    // deactivations, and a full export's leavers.
    let codes: BTreeSet<String> = outcomes
        .iter()
        .flat_map(|outcome| outcome["errors"].as_array().unwrap().clone())
        .map(|e| {
            e[3].as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    for code in [
        "duplicate_key",
        "email_taken",
        "forbidden_role",
        "invalid_email",
        "invalid_role",
        "not_a_manager",
        "required",
        "seat_limit_reached",
        "store_required",
        "unknown_manager",
        "unknown_store",
    ] {
        assert!(codes.contains(code), "{code} in {codes:?}");
    }
    assert!(
        outcomes[1]["updated"].as_u64().unwrap() > 0,
        "{}",
        outcomes[1]
    );
    assert!(
        outcomes[1]["deactivated"].as_u64().unwrap() > 0,
        "{}",
        outcomes[1]
    );
    assert!(
        outcomes[2]["deactivated"].as_u64().unwrap() > 0,
        "{}",
        outcomes[2]
    );
    assert_eq!(outcomes[2]["state"], "applied", "{}", outcomes[2]);
    assert!(outcomes[2]["changes"]
        .as_array()
        .unwrap()
        .contains(&json!(["user.deactivated", "E16"])));
    // Every mode keeps the staff counts (V9) true to the users table.
    for side in [&memory, &staged, &in_sql] {
        let conn = side.app.raw_db();
        let (kept, counted): ((i64, i64), (i64, i64)) = (
            conn.query_row(
                "SELECT sum(total), sum(active) FROM staff_counts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap(),
            conn.query_row(
                "SELECT count(*), coalesce(sum(active), 0) FROM users WHERE role <> 'it_admin'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap(),
        );
        assert_eq!(kept, counted);
    }
    // The staged mode rebuilds the users indexes after a bulk insert: all there.
    let indexes = |side: &Side| -> Vec<(String, String)> {
        let conn = side.app.raw_db();
        let mut statement = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'users' AND type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(indexes(&memory).len(), 6);
    assert_eq!(indexes(&memory), indexes(&staged));
    assert_eq!(indexes(&memory), indexes(&in_sql));
    memory.app.stop().await;
    staged.app.stop().await;
    in_sql.app.stop().await;
}
