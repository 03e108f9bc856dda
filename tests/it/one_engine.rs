//! One import engine, whatever the source: the same rows go through a REST
//! body, a drop file read whole, a drop file streamed (people matched in
//! memory) and a drop file streamed into a large enterprise's way (people
//! matched in SQL), each on a server of its own, and the runs, their row
//! errors, their change events and the resulting people are compared.

use std::collections::BTreeSet;

use enterprise_sync::config::{CompletionPolicy, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::dropdir::{files, setup, with_drop_dir, Drop};
use crate::support::{Auth, TestApp};

struct Side {
    app: TestApp,
    drop: Drop,
    source: Source,
    /// A key that imports users (the drop folder's key reads only).
    writer: String,
}

/// Where a side's rows come from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// A REST bulk-import body (a full export, which REST has not, comes as
    /// a drop file read whole).
    Rest,
    WholeFile,
    /// Streamed, rows matched in memory while staged (small enterprises).
    Streamed,
    /// Streamed, rows matched by a pass over the staged rows (large ones).
    StreamedMatchedInSql,
}

async fn side(source: Source) -> Side {
    let app = TestApp::start_with(|config: &mut Config| {
        with_drop_dir(CompletionPolicy::Rename)(config);
        config.dropdir.stream_from_bytes = match source {
            Source::Rest | Source::WholeFile => u64::MAX,
            _ => 0,
        };
        if let Source::StreamedMatchedInSql = source {
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
    let (_, writer) = app.key(&drop.admin, &["users:write"]).await;
    Side {
        app,
        drop,
        source,
        writer,
    }
}

/// A CSV text of the test's own (no quoted fields) as a REST body's users:
/// blank cells are left out, `active` is a boolean.
fn rest_body(text: &str) -> Value {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let users: Vec<Value> = lines
        .map(|line| {
            let mut user = serde_json::Map::new();
            for (field, cell) in header.iter().zip(line.split(',')) {
                if cell.is_empty() {
                    continue;
                }
                let value = match *field {
                    "active" => json!(cell == "true"),
                    _ => json!(cell),
                };
                user.insert(field.to_string(), value);
            }
            Value::Object(user)
        })
        .collect();
    json!({ "users": users })
}

/// Sends the rows the side's way; answers what the run did, without ids or
/// times, and (files only) what became of the file.
async fn send(side: &Side, name: &str, text: &str) -> (Value, Value) {
    if matches!(side.source, Source::Rest) && !name.contains("full") {
        let response = side
            .app
            .call(
                Method::POST,
                "/api/enterprise/users/bulk-import",
                &Auth::Key(&side.writer),
                Some(rest_body(text)),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let report: Value = response.json().await.unwrap();
        let run = report["sync_log_id"].as_str().unwrap().to_string();
        // A body's rows are numbered from 0, a file's records from 1.
        return (outcome(side, &run, 1).await, Value::Null);
    }
    std::fs::write(side.drop.incoming().join(name), text).unwrap();
    side.app.drop_dir().scan_now().await;
    let file = files(&side.app, &side.drop).await[0].clone();
    let run = file["sync_log_id"].as_str().unwrap_or("none").to_string();
    (
        outcome(side, &run, 0).await,
        json!({"state": file["state"], "reason": file["reason"], "rows": file["row_count"]}),
    )
}

/// What a run did, without ids or times: counts, row errors (rows numbered
/// from 1: `shift` is added) and change events.
async fn outcome(side: &Side, run: &str, shift: u64) -> Value {
    let run_id = run;
    let run: Value = side
        .app
        .get(
            &format!("/api/enterprise/sync-logs/{run_id}"),
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
            &format!("/api/enterprise/sync-logs/{run_id}/changes?limit=200"),
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
                    let code = e["code"].as_str().unwrap();
                    // Its message names the other rows, in the source's numbering.
                    let message = match code {
                        "duplicate_key" => "",
                        _ => e["message"].as_str().unwrap(),
                    };
                    (
                        e["row"].as_u64().unwrap() + shift,
                        e["key"].as_str().unwrap_or_default().to_string(),
                        e["field"].as_str().unwrap_or_default().to_string(),
                        format!("{code}: {message}"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "rows": details["total_processed"], "created": details["created"], "updated": details["updated"],
        "unchanged": details["unchanged"], "deactivated": details["deactivated"],
        "failed": details["failed"], "errors": errors.into_iter().collect::<Vec<_>>(),
        "not_applied": details["not_applied"],
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

#[tokio::test]
async fn every_source_gets_the_same_answers_from_the_one_engine() {
    let sides = [
        side(Source::Rest).await,
        side(Source::WholeFile).await,
        side(Source::Streamed).await,
        side(Source::StreamedMatchedInSql).await,
    ];
    let admin_email = sides[0].drop.admin.email.clone();
    assert!(sides.iter().all(|s| s.drop.admin.email == admin_email));
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
    // Large imports let rows that change nothing skip staging (streamed
    // files here): the rows they let through must still be reported when
    // another row repeats their external id (M1) or email (m3@, N3).
    let fourth = "external_id,email,name,role,store_id,manager_id
M1,boss@acme.example,Boss One,manager,S1,
M2,m2@acme.example,Boss Two,manager,S2,
M3,m3@acme.example,Boss Three,manager,S2,
M1,boss@acme.example,Boss One,manager,S1,
N1,n1@acme.example,New One,seller,S2,
N3,m3@acme.example,Three Again,seller,S2,
";
    // Whole rows the filter compares: unchanged giving `active`, a move to
    // another store, a rename, a reactivation, a deactivation given as a value.
    let fifth = "external_id,email,name,role,store_id,manager_id,active
M1,boss@acme.example,Boss One,manager,S1,,true
M2,e12@acme.example,Boss Two,manager,S2,,
M3,m3@acme.example,Boss Three,manager,S1,,true
E16,e16@acme.example,Sixteen,manager,S1,,true
E15,e15@acme.example,Fifteen,seller,S1,,false
N1,n1@acme.example,New One Renamed,seller,S2,,
";
    let mut outcomes = Vec::new();
    for (name, text) in [
        ("users_1.csv", first.as_str()),
        ("users_2.csv", second),
        ("users_full_3.csv", third),
        ("users_full_4.csv", fourth),
        ("users_5.csv", fifth),
    ] {
        let mut results = Vec::new();
        for side in &sides {
            results.push(send(side, name, text).await);
        }
        let (expected, expected_file) = &results[1];
        let expected_people = people(&sides[1]).await;
        for (side, (outcome, file)) in sides.iter().zip(&results) {
            assert_eq!(
                outcome, expected,
                "{name}: {:?} (left) and a file read whole (right)",
                side.source
            );
            if !file.is_null() {
                assert_eq!(file, expected_file, "{name}: {:?}", side.source);
            }
            // The records' sync mode names their source; the rest is the same.
            let without_mode = |facts: Vec<Value>| -> Vec<Value> {
                facts
                    .into_iter()
                    .map(|mut fact| {
                        fact.as_object_mut().unwrap().remove("sync_mode");
                        fact
                    })
                    .collect()
            };
            assert_eq!(
                without_mode(people(side).await),
                without_mode(expected_people.clone()),
                "after {name}: {:?}",
                side.source
            );
        }
        match name {
            "users_full_3.csv" => {
                assert_eq!(expected_file["state"], "applied", "{expected_file}")
            }
            "users_full_4.csv" => {
                assert_eq!(expected_file["state"], "failed", "{expected_file}");
                let rows: BTreeSet<u64> = expected["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e[0].as_u64().unwrap())
                    .collect();
                assert_eq!(rows, BTreeSet::from([1, 3, 4, 6]), "{expected}");
            }
            "users_5.csv" => {
                // A person taking another's email is refused.
                let errors = expected["errors"].as_array().unwrap();
                assert_eq!(errors.len(), 1, "{expected}");
                assert_eq!(errors[0][1], "M2");
                assert!(errors[0][3].as_str().unwrap().starts_with("email_taken"));
            }
            _ => {}
        }
        outcomes.push(expected.clone());
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
    assert_eq!(outcomes[2]["not_applied"], Value::Null, "{}", outcomes[2]);
    assert!(outcomes[2]["changes"]
        .as_array()
        .unwrap()
        .contains(&json!(["user.deactivated", "E16"])));
    // Every source keeps the staff counts (V9) true to the users table.
    for side in &sides {
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
    for side in &sides {
        assert_eq!(indexes(side).len(), 6, "{:?}", side.source);
        assert_eq!(indexes(side), indexes(&sides[0]), "{:?}", side.source);
    }
    for side in sides {
        side.app.stop().await;
    }
}

/// What one row does, whatever the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Does {
    Creates,
    Updates,
    /// Refused: the error's code and field.
    Fails(&'static str, &'static str),
}

/// One case of the table: a row sent into an enterprise that has stores S1
/// and S2, a manager M1 (boss@acme.example) and a seller E1
/// (p1@acme.example) reporting to them.
struct Case {
    name: &'static str,
    row: &'static [(&'static str, &'static str)],
    /// Seats purchased (the enterprise has 2 active people).
    seats: i64,
    does: Does,
    /// SCIM's status for the same person created by `POST /Users`, where
    /// SCIM can say the row (it names managers by our id only).
    scim: Option<u16>,
}

const CASES: &[Case] = &[
    Case {
        name: "a new seller",
        row: &[
            ("external_id", "N1"),
            ("email", "n1@acme.example"),
            ("name", "New"),
            ("role", "seller"),
            ("store_id", "S1"),
        ],
        seats: 10,
        does: Does::Creates,
        scim: Some(201),
    },
    Case {
        name: "a new seller reporting to a manager named by external id",
        row: &[
            ("external_id", "N1"),
            ("email", "n1@acme.example"),
            ("name", "New"),
            ("role", "seller"),
            ("store_id", "S2"),
            ("manager_id", "M1"),
        ],
        seats: 10,
        does: Does::Creates,
        scim: None,
    },
    Case {
        name: "a person renamed",
        row: &[
            ("external_id", "E1"),
            ("email", "p1@acme.example"),
            ("name", "Renamed"),
            ("role", "seller"),
            ("store_id", "S1"),
        ],
        seats: 10,
        does: Does::Updates,
        // SCIM creates with POST: the external id is someone's already.
        scim: Some(409),
    },
    Case {
        name: "an email another person has",
        row: &[
            ("external_id", "N1"),
            ("email", "p1@acme.example"),
            ("name", "New"),
            ("role", "seller"),
            ("store_id", "S1"),
        ],
        seats: 10,
        does: Does::Fails("email_taken", "email"),
        scim: Some(409),
    },
    Case {
        name: "the IT admin's email",
        row: &[
            ("email", "admin"),
            ("name", "Admin"),
            ("role", "seller"),
            ("store_id", "S1"),
        ],
        seats: 10,
        does: Does::Fails("forbidden_role", "email"),
        scim: Some(409),
    },
    Case {
        name: "a store that does not exist",
        row: &[
            ("external_id", "N1"),
            ("email", "n1@acme.example"),
            ("name", "New"),
            ("role", "seller"),
            ("store_id", "S9"),
        ],
        seats: 10,
        does: Does::Fails("unknown_store", "store_id"),
        scim: Some(400),
    },
    Case {
        name: "a seller without a store",
        row: &[
            ("external_id", "N1"),
            ("email", "n1@acme.example"),
            ("name", "New"),
            ("role", "seller"),
        ],
        seats: 10,
        does: Does::Fails("store_required", "store_id"),
        // Identity providers add people to their group after creating them.
        scim: Some(201),
    },
    Case {
        name: "an email that is not one",
        row: &[
            ("external_id", "N1"),
            ("email", "not-an-email"),
            ("name", "New"),
            ("role", "seller"),
            ("store_id", "S1"),
        ],
        seats: 10,
        does: Does::Fails("invalid_email", "email"),
        scim: Some(400),
    },
    Case {
        name: "a role we do not have",
        row: &[
            ("external_id", "N1"),
            ("email", "n1@acme.example"),
            ("name", "New"),
            ("role", "director"),
            ("store_id", "S1"),
        ],
        seats: 10,
        does: Does::Fails("invalid_role", "role"),
        scim: Some(400),
    },
    Case {
        name: "a name too long",
        row: &[
            ("external_id", "N1"),
            ("email", "n1@acme.example"),
            ("name", "long"),
            ("role", "seller"),
            ("store_id", "S1"),
        ],
        seats: 10,
        does: Does::Fails("too_long", "name"),
        scim: Some(400),
    },
    Case {
        name: "a manager nobody is",
        row: &[
            ("external_id", "N1"),
            ("email", "n1@acme.example"),
            ("name", "New"),
            ("role", "seller"),
            ("store_id", "S1"),
            ("manager_id", "NOBODY"),
        ],
        seats: 10,
        does: Does::Fails("unknown_manager", "manager_id"),
        scim: None,
    },
    Case {
        name: "no seat left",
        row: &[
            ("external_id", "N1"),
            ("email", "n1@acme.example"),
            ("name", "New"),
            ("role", "seller"),
            ("store_id", "S1"),
        ],
        seats: 2,
        does: Does::Fails("seat_limit_reached", "active"),
        scim: Some(403),
    },
];

/// An enterprise set up for a case: its drop folder, stores and two people.
async fn case_enterprise(app: &TestApp, company: &str, case: &Case) -> (Drop, String) {
    let drop = setup(app, company).await;
    let (_, writer) = app.key(&drop.admin, &["users:write"]).await;
    let people = json!({"users": [
        {"external_id": "M1", "email": "boss@acme.example", "name": "Boss", "role": "manager", "store_id": "S1"},
        {"external_id": "E1", "email": "p1@acme.example", "name": "Emp", "role": "seller", "store_id": "S1", "manager_id": "M1"},
    ]});
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/users/bulk-import",
            &Auth::Key(&writer),
            Some(people),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = ?2 WHERE id = ?1",
            rusqlite::params![&drop.admin.enterprise_id, case.seats],
        )
        .unwrap();
    (drop, writer)
}

/// The row's fields, the admin's email put in for `admin` and a name of 201
/// characters (one over the limit) for `long`.
fn case_row(case: &Case, admin_email: &str) -> Vec<(&'static str, String)> {
    case.row
        .iter()
        .map(|(field, value)| {
            let value = match *value {
                "admin" => admin_email.to_string(),
                "long" => "N".repeat(201),
                other => other.to_string(),
            };
            (*field, value)
        })
        .collect()
}

/// What a run's counts and first error say the row did.
fn does(details: &Value) -> (u64, u64, Option<(String, String)>) {
    let error = details["errors"]
        .as_array()
        .and_then(|e| e.first())
        .map(|e| {
            (
                e["code"].as_str().unwrap_or_default().to_string(),
                e["field"].as_str().unwrap_or_default().to_string(),
            )
        });
    (
        details["created"].as_u64().unwrap_or(0),
        details["updated"].as_u64().unwrap_or(0),
        error,
    )
}

fn expected(case: &Case) -> (u64, u64, Option<(String, String)>) {
    match case.does {
        Does::Creates => (1, 0, None),
        Does::Updates => (0, 1, None),
        Does::Fails(code, field) => (0, 0, Some((code.to_string(), field.to_string()))),
    }
}

#[tokio::test]
async fn a_table_of_cases_answers_alike_through_rest_files_and_scim() {
    let whole = TestApp::start_with(|config: &mut Config| {
        with_drop_dir(CompletionPolicy::Rename)(config);
        config.dropdir.stream_from_bytes = u64::MAX;
    })
    .await;
    let streamed = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    for (number, case) in CASES.iter().enumerate() {
        let want = expected(case);
        // REST: the row as a body's only user.
        let (drop, writer) = case_enterprise(&whole, &format!("Rest{number}"), case).await;
        let row = case_row(case, &drop.admin.email);
        let user: serde_json::Map<String, Value> =
            row.iter().map(|(f, v)| (f.to_string(), json!(v))).collect();
        let response = whole
            .call(
                Method::POST,
                "/api/enterprise/users/bulk-import",
                &Auth::Key(&writer),
                Some(json!({ "users": [user] })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{}", case.name);
        let report: Value = response.json().await.unwrap();
        assert_eq!(does(&report), want, "{} through REST: {report}", case.name);

        // Files: read whole, and streamed.
        for (app, how) in [(&whole, "whole"), (&streamed, "streamed")] {
            let (drop, _) = case_enterprise(app, &format!("File{how}{number}"), case).await;
            let row = case_row(case, &drop.admin.email);
            let header: Vec<&str> = row.iter().map(|(f, _)| *f).collect();
            let values: Vec<&str> = row.iter().map(|(_, v)| v.as_str()).collect();
            let text = format!("{}\n{}\n", header.join(","), values.join(","));
            std::fs::write(drop.incoming().join("users.csv"), text).unwrap();
            app.drop_dir().scan_now().await;
            let file = files(app, &drop).await[0].clone();
            let run: Value = app
                .get(
                    &format!(
                        "/api/enterprise/sync-logs/{}",
                        file["sync_log_id"].as_str().unwrap()
                    ),
                    &Auth::Key(&drop.key),
                )
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(
                run["details"]["streamed"].as_bool().unwrap_or(false),
                how == "streamed",
                "{}: {run}",
                case.name
            );
            assert_eq!(
                does(&run["details"]),
                want,
                "{} through a file read {how}: {run}",
                case.name
            );
        }

        // SCIM: the same person created by the identity provider.
        let Some(scim_status) = case.scim else {
            continue;
        };
        let (drop, _) = case_enterprise(&whole, &format!("Scim{number}"), case).await;
        let (_, token) = whole.key(&drop.admin, &["scim"]).await;
        let mut user = serde_json::Map::new();
        let mut retail = serde_json::Map::new();
        for (field, value) in case_row(case, &drop.admin.email) {
            match field {
                "email" => user.insert("userName".into(), json!(value)),
                "external_id" => user.insert("externalId".into(), json!(value)),
                "name" => user.insert("displayName".into(), json!(value)),
                "role" => retail.insert("role".into(), json!(value)),
                "store_id" => retail.insert("store".into(), json!(value)),
                other => panic!("{other} has no SCIM attribute here"),
            };
        }
        user.insert(SCIM_RETAIL.into(), Value::Object(retail));
        let response = whole
            .client
            .post(whole.url("/scim/v2/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(Value::Object(user).to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, scim_status, "{} through SCIM: {body}", case.name);
    }
    whole.stop().await;
    streamed.stop().await;
}

const SCIM_RETAIL: &str = "urn:ietf:params:scim:schemas:extension:retailperformer:2.0:User";
