//! SCIM 2.0 against the real server: the request shapes Okta and Entra ID
//! really send (JSON fixtures in tests/fixtures/scim, from the guide), the
//! protocol's rules, and tenant isolation.

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::support::{Admin, TestApp};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const RETAIL: &str = "urn:ietf:params:scim:schemas:extension:retailperformer:2.0:User";
const CONTENT_TYPE: &str = "application/scim+json";

/// A fixture with its `{{name}}` placeholders filled.
fn fixture(name: &str, values: &[(&str, &str)]) -> Value {
    let path = format!(
        "{}/tests/fixtures/scim/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    serde_json::from_str(&text).unwrap()
}

/// An identity provider's view of the server: one enterprise's SCIM key.
struct Idp<'a> {
    app: &'a TestApp,
    admin: Admin,
    key_id: String,
    key: String,
}

impl<'a> Idp<'a> {
    async fn new(app: &'a TestApp, company: &str) -> Idp<'a> {
        let admin = app.admin(company).await;
        let (key_id, key) = app.key(&admin, &["scim"]).await;
        Idp {
            app,
            admin,
            key_id,
            key,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request
                .header("content-type", CONTENT_TYPE)
                .body(body.to_string());
        }
        request.send().await.unwrap()
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let response = self.send(method, path, body).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        if status != StatusCode::NO_CONTENT {
            assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE), "{text}");
        }
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.json(Method::GET, path, None).await
    }

    async fn create(&self, path: &str, body: Value) -> Value {
        let (status, created) = self.json(Method::POST, path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    async fn patch(&self, path: &str, body: Value) -> Value {
        let (status, patched) = self.json(Method::PATCH, path, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        patched
    }

    async fn filter(&self, resource: &str, filter: &str) -> Value {
        let path = format!("/{resource}?filter={}", urlencode(filter));
        let (status, list) = self.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn assert_scim_error(body: &Value, status: &str, scim_type: Option<&str>) {
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(body["status"], json!(status), "{body}");
    if let Some(t) = scim_type {
        assert_eq!(body["scimType"], json!(t), "{body}");
    }
}

fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn okta_creates_a_user_with_password_and_empty_groups() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let response = idp
        .send(
            Method::POST,
            "/Users",
            Some(fixture("okta_create_user", &[])),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["meta"]["location"], json!(location));
    assert!(location.ends_with(&format!("/scim/v2/Users/{}", id(&user))));
    assert_eq!(user["meta"]["resourceType"], json!("User"));
    assert!(user["meta"]["created"].is_string() && user["meta"]["lastModified"].is_string());
    assert_eq!(user["userName"], json!("ada.lovelace@acme.example"));
    assert_eq!(user["active"], json!(true));
    assert_eq!(user["externalId"], json!("00u1a2b3c4d5e6f7g8h9"));
    assert_eq!(user["name"]["givenName"], json!("Ada"));
    assert!(user.get("password").is_none());
    // Okta set no role: the extension shows none, the product has a seller.
    assert!(user.get(RETAIL).is_none(), "{user}");

    // The person is in the product: same id, name, email, source.
    let (_, key) = app.key(&idp.admin, &["users:read"]).await;
    let listed: Value = app
        .get(
            &format!("/api/enterprise/users/{}", id(&user)),
            &crate::support::Auth::Key(&key),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["email"], json!("ada.lovelace@acme.example"));
    assert_eq!(listed["name"], json!("Ada Lovelace"));
    assert_eq!(listed["sync_mode"], json!("scim_sync"));
    assert_eq!(listed["role"], json!("seller"));

    // The run is logged as a SCIM sync by this key.
    let conn = app.raw_db();
    let (sync_type, initiated_by): (String, String) = conn
        .query_row(
            "SELECT sync_type, initiated_by FROM sync_logs WHERE run_id IS NULL ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(sync_type, "scim");
    assert_eq!(initiated_by, format!("scim:{}", idp.key_id));

    // The sync status shows SCIM on, and when the provider last called.
    let status: Value = app
        .get(
            "/api/enterprise/sync-status",
            &crate::support::Auth::Bearer(&idp.admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["scim_enabled"], json!(true));
    assert_eq!(status["scim_keys"], json!(1));
    assert_eq!(
        status["scim_last_call_at"],
        json!(enterprise_sync::store::ts(app.clock_now()))
    );

    // Okta creates again with the same userName in another case: 409.
    let mut again = fixture("okta_create_user", &[]);
    again["userName"] = json!("ADA.LOVELACE@ACME.EXAMPLE");
    again["externalId"] = json!("other");
    let (status, body) = idp.json(Method::POST, "/Users", Some(again)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_scim_error(&body, "409", Some("uniqueness"));
}

#[tokio::test]
async fn user_name_filters_ignore_case_and_unknown_guids_give_an_empty_list() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let user = idp.create("/Users", fixture("okta_create_user", &[])).await;

    let list = idp
        .filter("Users", r#"userName eq "Ada.Lovelace@ACME.example""#)
        .await;
    assert_eq!(list["totalResults"], json!(1));
    assert_eq!(list["Resources"][0]["id"], user["id"]);
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );

    // Entra's test connection: a random GUID, 200 and an empty list.
    let list = idp
        .filter(
            "Users",
            r#"userName eq "1ca8b8c6-5b2f-4f4b-a7f5-8e9c1e0c2d3b""#,
        )
        .await;
    assert_eq!(list["totalResults"], json!(0));
    assert_eq!(list["Resources"], json!([]));
    assert_eq!(list["startIndex"], json!(1));
    assert_eq!(list["itemsPerPage"], json!(0));

    // Other filters clients send.
    for filter in [
        r#"externalId eq "00u1a2b3c4d5e6f7g8h9""#,
        r#"emails[type eq "work"].value eq "ada.lovelace@acme.example""#,
        r#"(ActiVe eq true) and (name.FamilyName sw "love")"#,
        &format!(r#"id eq "{}""#, id(&user)),
        r#"not (userName eq "someone") and meta.created gt "2020-01-01T00:00:00Z""#,
    ] {
        let list = idp.filter("Users", filter).await;
        assert_eq!(list["totalResults"], json!(1), "{filter}");
    }
    // Values are parameters, never SQL.
    let list = idp.filter("Users", r#"userName eq "x\" OR 1=1 --""#).await;
    assert_eq!(list["totalResults"], json!(0));

    let (status, body) = idp.get("/Users?filter=userName%20eq").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidFilter"));
}

/// A write naming a person by our id (every PUT and PATCH) may not give them
/// an external id another person holds: the identity provider hears 409
/// uniqueness, and neither person changes.
#[tokio::test]
async fn an_external_id_another_user_holds_is_a_uniqueness_conflict() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let first = idp.create("/Users", fixture("okta_create_user", &[])).await;
    let second = idp
        .create("/Users", fixture("entra_create_user", &[]))
        .await;
    let taken = first["externalId"].clone();
    assert!(
        taken.is_string() && taken != second["externalId"],
        "{first}"
    );
    let second_path = format!("/Users/{}", id(&second));
    let (status, body) = idp
        .json(
            Method::PATCH,
            &second_path,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "externalId", "value": taken}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_scim_error(&body, "409", Some("uniqueness"));
    let mut replaced = second.clone();
    replaced["externalId"] = taken.clone();
    let (status, body) = idp.json(Method::PUT, &second_path, Some(replaced)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_scim_error(&body, "409", Some("uniqueness"));
    let (_, unchanged) = idp.get(&second_path).await;
    assert_eq!(unchanged["externalId"], second["externalId"]);
    let (_, holder) = idp.get(&format!("/Users/{}", id(&first))).await;
    assert_eq!(holder["externalId"], taken);
}

#[tokio::test]
async fn okta_deactivates_through_put_and_the_user_stays_visible() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let user = idp.create("/Users", fixture("okta_create_user", &[])).await;
    let user_id = id(&user);
    let (status, put) = idp
        .json(
            Method::PUT,
            &format!("/Users/{user_id}"),
            Some(fixture("okta_put_deactivate", &[("id", &user_id)])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["active"], json!(false));
    let (status, got) = idp.get(&format!("/Users/{user_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["active"], json!(false));
    let list = idp.filter("Users", "active eq false").await;
    assert_eq!(list["totalResults"], json!(1));
    // The product deactivated them.
    let active: bool = app
        .raw_db()
        .query_row("SELECT active FROM users WHERE id = ?1", [&user_id], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!active);
}

#[tokio::test]
async fn entra_patches_string_booleans_capitalized_ops_and_dotted_paths() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let user = idp
        .create("/Users", fixture("entra_create_user", &[]))
        .await;
    let path = format!("/Users/{}", id(&user));
    // Created from Entra's shape: string boolean, roles, no emails.
    assert_eq!(user["active"], json!(true));
    let role: String = app
        .raw_db()
        .query_row("SELECT role FROM users WHERE id = ?1", [id(&user)], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(role, "manager");
    assert_eq!(user[ENTERPRISE]["employeeNumber"], json!("701984"));
    assert_eq!(
        user["emails"][0]["value"],
        json!("grace.hopper@acme.example")
    );

    let patched = idp
        .patch(&path, fixture("entra_patch_string_boolean", &[]))
        .await;
    assert_eq!(patched["active"], json!(false));

    let patched = idp
        .patch(&path, fixture("entra_patch_pathless_dotted", &[]))
        .await;
    assert_eq!(patched["name"]["givenName"], json!("Amazing"));
    assert_eq!(patched["name"]["familyName"], json!("Grace"));
    assert_eq!(patched["displayName"], json!("Amazing Grace"));
    assert_eq!(patched[ENTERPRISE]["department"], json!("Operations"));
    assert_eq!(patched[ENTERPRISE]["employeeNumber"], json!("701984"));
    let (_, got) = idp.get(&path).await;
    assert_eq!(got, patched);
}

#[tokio::test]
async fn entra_adds_a_work_email_to_a_user_without_emails() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let user = idp
        .create("/Users", fixture("entra_create_user", &[]))
        .await;
    let patched = idp
        .patch(
            &format!("/Users/{}", id(&user)),
            fixture("entra_patch_add_work_email", &[]),
        )
        .await;
    let emails = patched["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 1, "{patched}");
    assert_eq!(emails[0]["type"], json!("work"));
    assert_eq!(emails[0]["value"], json!("grace.hopper@mail.acme.example"));
    let email: String = app
        .raw_db()
        .query_row("SELECT email FROM users WHERE id = ?1", [id(&user)], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(email, "grace.hopper@mail.acme.example");
}

#[tokio::test]
async fn entra_sets_the_manager_as_a_bare_string_and_reads_back_an_object() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let manager = idp
        .create("/Users", fixture("entra_create_user", &[]))
        .await;
    let seller = idp.create("/Users", fixture("okta_create_user", &[])).await;
    let patched = idp
        .patch(
            &format!("/Users/{}", id(&seller)),
            fixture("entra_patch_manager_string", &[("manager", &id(&manager))]),
        )
        .await;
    assert_eq!(patched[ENTERPRISE]["manager"]["value"], manager["id"]);
    let manager_id: Option<String> = app
        .raw_db()
        .query_row(
            "SELECT manager_id FROM users WHERE id = ?1",
            [id(&seller)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(manager_id, Some(id(&manager)));

    // An org-chart manager who is not a Retail Performer manager is kept for
    // the round trip but not made the product's manager.
    let patched = idp
        .patch(
            &format!("/Users/{}", id(&manager)),
            fixture("entra_patch_manager_string", &[("manager", &id(&seller))]),
        )
        .await;
    assert_eq!(patched[ENTERPRISE]["manager"]["value"], seller["id"]);
    let manager_id: Option<String> = app
        .raw_db()
        .query_row(
            "SELECT manager_id FROM users WHERE id = ?1",
            [id(&manager)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(manager_id, None);
}

#[tokio::test]
async fn groups_are_stores_with_unique_names_and_members_in_every_shape() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let group = idp
        .create("/Groups", fixture("entra_create_group", &[]))
        .await;
    assert_eq!(group["displayName"], json!("Paris Opéra"));
    assert_eq!(
        group["externalId"],
        json!("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
    );
    let (status, body) = idp
        .json(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "paris opéra"})),
        )
        .await;
    // Case-insensitive on ASCII only (SQLite's NOCASE): é vs É would differ.
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_scim_error(&body, "409", Some("uniqueness"));

    let first = idp.create("/Users", fixture("okta_create_user", &[])).await;
    let second = idp
        .create("/Users", fixture("entra_create_user", &[]))
        .await;
    let group_path = format!("/Groups/{}", id(&group));
    let patched = idp
        .patch(
            &group_path,
            fixture(
                "entra_patch_add_members",
                &[
                    ("first", &id(&first)),
                    ("second", &id(&second)),
                    ("unknown", "01a22ed8-0000-7000-8000-000000000000"),
                ],
            ),
        )
        .await;
    assert_eq!(patched["members"].as_array().unwrap().len(), 2);
    let (_, user) = idp.get(&format!("/Users/{}", id(&first))).await;
    assert_eq!(user["groups"][0]["value"], group["id"]);

    // Entra's default remove: the members to remove as a value list.
    let patched = idp
        .patch(
            &group_path,
            fixture("entra_patch_remove_members", &[("first", &id(&first))]),
        )
        .await;
    assert_eq!(
        patched["members"],
        json!([{
            "value": id(&second),
            "$ref": format!("{}/scim/v2/Users/{}", app.base, id(&second)),
            "type": "User",
        }])
    );
    let (_, user) = idp.get(&format!("/Users/{}", id(&first))).await;
    assert!(user.get("groups").is_none(), "{user}");

    // Remove by value filter, then add back, then remove all.
    let patched = idp
        .patch(
            &group_path,
            json!({"Operations": [
                {"op": "remove", "path": format!("members[value eq \"{}\"]", id(&second))},
                {"op": "add", "path": "members", "value": [{"value": id(&first)}]}
            ]}),
        )
        .await;
    assert_eq!(patched["members"][0]["value"], first["id"]);
    let patched = idp
        .patch(
            &group_path,
            json!({"Operations": [{"op": "remove", "path": "members"}]}),
        )
        .await;
    assert!(patched.get("members").is_none());

    // excludedAttributes=members, as Entra asks.
    let list = idp
        .filter("Groups", r#"displayName eq "PARIS opéra""#)
        .await;
    assert_eq!(list["totalResults"], json!(1));
    let (_, list) = idp
        .get(&format!(
            "/Groups?excludedAttributes=members&filter={}",
            urlencode(r#"displayName eq "Paris Opéra""#)
        ))
        .await;
    assert!(list["Resources"][0].get("members").is_none());
    assert_eq!(list["Resources"][0]["displayName"], json!("Paris Opéra"));
}

#[tokio::test]
async fn okta_renames_and_sets_members_through_put() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let group = idp
        .create("/Groups", fixture("okta_create_group", &[]))
        .await;
    let other = idp
        .create("/Groups", json!({"displayName": "Marseille"}))
        .await;
    let member = idp.create("/Users", fixture("okta_create_user", &[])).await;
    idp.patch(
        &format!("/Groups/{}", id(&other)),
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id(&member)}]}]}),
    )
    .await;
    let (status, put) = idp
        .json(
            Method::PUT,
            &format!("/Groups/{}", id(&group)),
            Some(fixture(
                "okta_put_group_members",
                &[("id", &id(&group)), ("member", &id(&member))],
            )),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["displayName"], json!("Lyon Part-Dieu (renamed)"));
    assert_eq!(put["members"][0]["value"], member["id"]);
    // A person has one store: they moved.
    let (_, other) = idp.get(&format!("/Groups/{}", id(&other))).await;
    assert!(other.get("members").is_none(), "{other}");
    // PUT with an empty list removes them.
    let (_, put) = idp
        .json(
            Method::PUT,
            &format!("/Groups/{}", id(&group)),
            Some(json!({"displayName": "Lyon Part-Dieu (renamed)", "members": []})),
        )
        .await;
    assert!(put.get("members").is_none());
    let store: Option<String> = app
        .raw_db()
        .query_row(
            "SELECT store_id FROM users WHERE id = ?1",
            [id(&member)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(store, None);
}

#[tokio::test]
async fn delete_removes_from_scim_keeps_an_audited_tombstone_and_create_revives() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let user = idp.create("/Users", fixture("okta_create_user", &[])).await;
    let path = format!("/Users/{}", id(&user));
    let response = idp.send(Method::DELETE, &path, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.text().await.unwrap().is_empty());
    let (status, body) = idp.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_scim_error(&body, "404", None);
    let (status, _) = idp.json(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        idp.filter("Users", r#"userName eq "ada.lovelace@acme.example""#)
            .await["totalResults"],
        json!(0)
    );
    let (_, everyone) = idp.get("/Users").await;
    assert_eq!(everyone["totalResults"], json!(0), "{everyone}");
    let (active, deleted): (bool, Option<String>) = app
        .raw_db()
        .query_row(
            "SELECT active, scim_deleted_at FROM users WHERE id = ?1",
            [id(&user)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(!active);
    assert!(deleted.is_some());
    assert!(app
        .audit_actions()
        .contains(&("scim.user.deleted".to_string(), "success".to_string())));

    // Created again: the same person comes back.
    let again = idp.create("/Users", fixture("okta_create_user", &[])).await;
    assert_eq!(again["id"], user["id"]);
    assert_eq!(again["active"], json!(true));
}

#[tokio::test]
async fn it_admins_and_other_enterprises_are_invisible() {
    let app = TestApp::start().await;
    let a = Idp::new(&app, "Acme").await;
    let b = Idp::new(&app, "Globex").await;
    let user = a.create("/Users", fixture("okta_create_user", &[])).await;
    let group = a.create("/Groups", fixture("okta_create_group", &[])).await;

    // A's own listing holds its person, not its IT admin.
    let (_, list) = a.get("/Users").await;
    assert_eq!(list["totalResults"], json!(1));
    let (status, _) = a.get(&format!("/Users/{}", a.admin.user_id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        a.filter("Users", &format!(r#"userName eq "{}""#, a.admin.email))
            .await["totalResults"],
        json!(0)
    );

    // B sees nothing of A: by id, by filter, in lists; and changes nothing.
    for path in [
        format!("/Users/{}", id(&user)),
        format!("/Groups/{}", id(&group)),
    ] {
        let (status, body) = b.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_scim_error(&body, "404", None);
        let (status, _) = b
            .json(
                Method::PATCH,
                &path,
                Some(
                    json!({"Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = b.json(Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    for (resource, filter) in [
        (
            "Users",
            r#"userName eq "ada.lovelace@acme.example""#.to_string(),
        ),
        ("Users", format!(r#"id eq "{}""#, id(&user))),
        ("Groups", r#"displayName eq "Lyon Part-Dieu""#.to_string()),
        ("Groups", format!(r#"id eq "{}""#, id(&group))),
    ] {
        assert_eq!(
            b.filter(resource, &filter).await["totalResults"],
            json!(0),
            "{filter}"
        );
    }
    let (_, list) = b.get("/Groups").await;
    assert_eq!(list["totalResults"], json!(0));
    // B may create its own group of the same name: names are per enterprise.
    b.create("/Groups", fixture("okta_create_group", &[])).await;
    // B adding A's person to its group: unknown member, ignored.
    let (_, b_groups) = b.get("/Groups").await;
    let b_group = id(&b_groups["Resources"][0]);
    let patched = b
        .patch(
            &format!("/Groups/{b_group}"),
            json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id(&user)}]}]}),
        )
        .await;
    assert!(patched.get("members").is_none());
    let (_, still) = a.get(&format!("/Users/{}", id(&user))).await;
    assert_eq!(still["active"], json!(true));
    assert!(still.get("groups").is_none());
}

#[tokio::test]
async fn an_email_of_another_enterprise_is_free_and_never_conflicts() {
    let app = TestApp::start().await;
    let a = Idp::new(&app, "Acme").await;
    let b = Idp::new(&app, "Globex").await;
    let in_a = a.create("/Users", fixture("okta_create_user", &[])).await;
    // B provisions the same address (a person working for both), and one
    // whose email is A's IT admin's: created, as for any new address.
    let in_b = b.create("/Users", fixture("okta_create_user", &[])).await;
    assert_ne!(id(&in_a), id(&in_b));
    let mut admin_email = fixture("okta_create_user", &[]);
    admin_email["userName"] = json!(a.admin.email);
    admin_email["emails"][0]["value"] = json!(a.admin.email);
    admin_email["externalId"] = json!("00u-second");
    b.create("/Users", admin_email).await;
    // Each finds its own by userName; a second one in B is a conflict.
    for idp in [&a, &b] {
        let found = idp
            .filter("Users", r#"userName eq "ada.lovelace@acme.example""#)
            .await;
        assert_eq!(found["totalResults"], json!(1));
    }
    assert_eq!(
        b.filter("Users", r#"userName eq "ada.lovelace@acme.example""#)
            .await["Resources"][0]["id"],
        in_b["id"]
    );
    let mut again = fixture("okta_create_user", &[]);
    again["externalId"] = json!("00u-third");
    let (status, body) = b.json(Method::POST, "/Users", Some(again)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_scim_error(&body, "409", Some("uniqueness"));
}

#[tokio::test]
async fn authentication_and_scope_errors_are_scim_errors() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let response = app
        .client
        .get(app.url("/scim/v2/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["content-type"], CONTENT_TYPE);
    assert_scim_error(&response.json().await.unwrap(), "401", None);
    let response = app
        .client
        .get(app.url("/scim/v2/Users"))
        .bearer_auth("ent_notakey")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_scim_error(&response.json().await.unwrap(), "401", None);
    // A key without the scim scope.
    let (_, reader) = app.key(&idp.admin, &["users:read"]).await;
    let response = app
        .client
        .get(app.url("/scim/v2/Users"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_scim_error(&response.json().await.unwrap(), "403", None);
    // An IT admin's session is not a SCIM credential.
    let response = app
        .client
        .get(app.url("/scim/v2/Users"))
        .bearer_auth(&idp.admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Unknown paths and methods.
    let (status, body) = idp.get("/Nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_scim_error(&body, "404", None);
    let (status, body) = idp
        .json(Method::DELETE, "/ServiceProviderConfig", None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_scim_error(&body, "405", None);
    // Bodies that are not SCIM resources.
    let (status, body) = idp
        .json(
            Method::POST,
            "/Users",
            Some(json!({"name": {"givenName": "x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidValue"));
    let response = idp
        .app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&idp.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_scim_error(
        &response.json().await.unwrap(),
        "400",
        Some("invalidSyntax"),
    );
    // Bodies are bounded like every other input.
    let limit = app.services().config.http.max_body_bytes;
    let huge = json!({"userName": "big@acme.example", "nickName": "x".repeat(limit + 1)});
    let (status, body) = idp.json(Method::POST, "/Users", Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_scim_error(&body, "413", None);
    // A filter is bounded too.
    let long = format!("userName eq \"{}\"", "a".repeat(5000));
    let (status, body) = idp
        .get(&format!("/Users?filter={}", urlencode(&long)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidFilter"));
}

#[tokio::test]
async fn discovery_lists_what_we_serve() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let (status, config) = idp.get("/ServiceProviderConfig").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["patch"]["supported"], json!(true));
    assert_eq!(config["bulk"]["supported"], json!(false));
    let (_, types) = idp.get("/ResourceTypes").await;
    let names: Vec<&str> = types["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User", "Group"]);
    // Every schema a resource type names can be fetched.
    for resource in types["Resources"].as_array().unwrap() {
        let mut urns = vec![resource["schema"].as_str().unwrap().to_string()];
        for extension in resource["schemaExtensions"].as_array().unwrap() {
            urns.push(extension["schema"].as_str().unwrap().to_string());
        }
        for urn in urns {
            let (status, schema) = idp.get(&format!("/Schemas/{urn}")).await;
            assert_eq!(status, StatusCode::OK, "{urn}");
            assert_eq!(schema["id"], json!(urn));
        }
    }
    let (status, _) = idp.get(&format!("/Schemas/{USER}x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_are_stable_and_attributes_are_projected() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let user = idp
            .create(
                "/Users",
                json!({"userName": format!("p{n}@acme.example"), "active": true}),
            )
            .await;
        ids.push(id(&user));
    }
    let mut seen = Vec::new();
    for start in [1, 3, 5] {
        let (_, page) = idp
            .get(&format!(
                "/Users?startIndex={start}&count=2&attributes=userName"
            ))
            .await;
        assert_eq!(page["totalResults"], json!(5));
        assert_eq!(page["startIndex"], json!(start));
        for resource in page["Resources"].as_array().unwrap() {
            assert_eq!(
                resource.as_object().unwrap().keys().collect::<Vec<_>>(),
                ["id", "schemas", "userName"]
            );
            seen.push(id(resource));
        }
    }
    assert_eq!(seen, ids);
    let (_, page) = idp.get("/Users?count=0").await;
    assert_eq!(page["Resources"], json!([]));
    assert_eq!(page["totalResults"], json!(5));
    let (_, page) = idp.get("/Users?startIndex=-4&count=1").await;
    assert_eq!(page["startIndex"], json!(1));
    assert_eq!(page["Resources"][0]["id"], json!(ids[0]));
}

#[tokio::test]
async fn seats_bound_scim_creations_as_any_import() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = 1 WHERE id = ?1",
            [&idp.admin.enterprise_id],
        )
        .unwrap();
    idp.create("/Users", fixture("okta_create_user", &[])).await;
    let (status, body) = idp
        .json(
            Method::POST,
            "/Users",
            Some(json!({"userName": "second@acme.example"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("seat"));
    // An inactive person takes no seat.
    idp.create(
        "/Users",
        json!({"userName": "second@acme.example", "active": false}),
    )
    .await;
    // The refused run is logged as failed.
    let failed: i64 = app
        .raw_db()
        .query_row(
            "SELECT count(*) FROM sync_logs WHERE sync_type = 'scim' AND status = 'failed' AND run_id IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 1);
    // The lack of seats alerts the IT admins; SCIM's ordinary refusals do not.
    let (status, _) = idp
        .json(
            Method::POST,
            "/Users",
            Some(json!({"userName": "second@acme.example", "active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let alerts: Vec<String> = {
        let conn = app.raw_db();
        let mut statement = conn.prepare("SELECT kind FROM alerts").unwrap();
        statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // The one seat taken alerted once (seats_full); the refusal once more.
    assert_eq!(alerts, ["seats_full", "sync_failed"]);
}

#[tokio::test]
async fn staff_counts_follow_every_source() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let (_, key) = app.key(&idp.admin, &["users:write", "stores:write"]).await;
    let store = app
        .call(
            Method::POST,
            "/api/enterprise/stores/bulk-import",
            &crate::support::Auth::Key(&key),
            Some(json!({"stores": [{"name": "Lyon", "external_id": "LYON"}]})),
        )
        .await;
    assert_eq!(store.status(), StatusCode::OK);
    let imported = app
        .call(
            Method::POST,
            "/api/enterprise/users/bulk-import",
            &crate::support::Auth::Key(&key),
            Some(json!({"users": [
                {"email": "a@acme.example", "name": "A", "role": "seller", "store_id": "LYON"},
                {"email": "b@acme.example", "name": "B", "role": "manager"},
                {"email": "c@acme.example", "name": "C", "role": "seller", "store_id": "LYON", "active": false}
            ]})),
        )
        .await;
    assert_eq!(imported.status(), StatusCode::OK);
    let created = idp.create("/Users", fixture("okta_create_user", &[])).await;
    idp.patch(
        &format!("/Users/{}", id(&created)),
        fixture("entra_patch_string_boolean", &[]),
    )
    .await;
    idp.create("/Users", fixture("entra_create_user", &[]))
        .await;
    let counts = |conn: &rusqlite::Connection| -> ((i64, i64), (i64, i64)) {
        let kept = conn
            .query_row(
                "SELECT total, active FROM staff_counts WHERE enterprise_account_id = ?1",
                [&idp.admin.enterprise_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let counted = conn
            .query_row(
                "SELECT count(*), sum(active) FROM users WHERE enterprise_account_id = ?1 AND role <> 'it_admin'",
                [&idp.admin.enterprise_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        (kept, counted)
    };
    let (kept, counted) = counts(&app.raw_db());
    assert_eq!(kept, counted);
    assert_eq!(kept, (5, 3));
    let status: Value = app
        .get(
            "/api/enterprise/sync-status",
            &crate::support::Auth::Bearer(&idp.admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["seats_used"], json!(3));
    assert_eq!(status["total_users"], json!(5));
}

#[tokio::test]
async fn our_extension_sets_the_role_and_the_store_and_patches_are_atomic() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let store = app.seed_store(&idp.admin.enterprise_id, "Nice").await;
    let user = idp
        .create(
            "/Users",
            json!({
                "userName": "okta.custom@acme.example",
                RETAIL: {"role": "manager", "store": "EXT-Nice"}
            }),
        )
        .await;
    assert_eq!(
        user[RETAIL],
        json!({"role": "manager", "store": "EXT-Nice"})
    );
    assert_eq!(user["groups"][0]["value"], json!(store));
    let (role, store_id): (String, Option<String>) = app
        .raw_db()
        .query_row(
            "SELECT role, store_id FROM users WHERE id = ?1",
            [id(&user)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((role.as_str(), store_id), ("manager", Some(store.clone())));

    // An unknown store is refused, naming it.
    let (status, body) = idp
        .json(
            Method::POST,
            "/Users",
            Some(json!({"userName": "x@acme.example", RETAIL: {"store": "NOPE"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("NOPE"), "{body}");

    // Several operations apply together or not at all.
    let path = format!("/Users/{}", id(&user));
    let (status, body) = idp
        .json(
            Method::PATCH,
            &path,
            Some(json!({"Operations": [
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "replace", "path": "active", "value": "perhaps"}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, unchanged) = idp.get(&path).await;
    assert_eq!(unchanged["displayName"], user["displayName"]);
    assert_eq!(
        unchanged["meta"]["lastModified"],
        user["meta"]["lastModified"]
    );

    // Removing the extension's store takes the person out of it.
    let patched = idp
        .patch(
            &path,
            json!({"Operations": [{"op": "remove", "path": format!("{RETAIL}:store")}]}),
        )
        .await;
    assert!(patched.get("groups").is_none(), "{patched}");
    assert_eq!(patched[RETAIL], json!({"role": "manager"}));
}

#[tokio::test]
async fn group_reads_and_patches_honour_excluded_members() {
    let app = TestApp::start().await;
    let idp = Idp::new(&app, "Acme").await;
    let member = idp.create("/Users", fixture("okta_create_user", &[])).await;
    let group = idp
        .create(
            "/Groups",
            json!({"displayName": "Lille", "members": [{"value": id(&member)}]}),
        )
        .await;
    assert_eq!(group["members"][0]["value"], member["id"]);
    let path = format!("/Groups/{}", id(&group));
    let (_, full) = idp.get(&path).await;
    assert_eq!(full["members"].as_array().unwrap().len(), 1);
    let (_, lean) = idp.get(&format!("{path}?excludedAttributes=members")).await;
    assert!(lean.get("members").is_none());
    assert_eq!(lean["displayName"], json!("Lille"));
    let (status, patched) = idp
        .json(
            Method::PATCH,
            &format!("{path}?excludedAttributes=members"),
            Some(json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Lille Europe"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(patched.get("members").is_none());
    assert_eq!(patched["displayName"], json!("Lille Europe"));
    let (_, after) = idp.get(&path).await;
    assert_eq!(after["members"][0]["value"], member["id"]);
    // Root search spans both resource types.
    let (status, found) = idp
        .json(
            Method::POST,
            "/.search",
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": format!("id eq \"{}\"", id(&group))}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["totalResults"], json!(1));
    assert_eq!(found["Resources"][0]["displayName"], json!("Lille Europe"));
}

/// An identity provider's first provisioning, as Okta and Entra ID send it
/// (a lookup by userName, then a create, per person; groups created, then
/// their members patched in), at the appliance's default limits: nothing is
/// throttled. Past the SCIM bucket, the answer is a SCIM 429 with Retry-After.
#[tokio::test]
async fn a_first_provisioning_runs_unthrottled_at_the_default_limits() {
    let app = TestApp::start().await;
    let (ours, default) = (
        &app.services().config.rate_limit,
        enterprise_sync::config::Config::default().rate_limit,
    );
    assert_eq!(
        (
            ours.scim_per_minute,
            ours.per_key_per_minute,
            ours.per_enterprise_per_minute
        ),
        (
            default.scim_per_minute,
            default.per_key_per_minute,
            default.per_enterprise_per_minute
        ),
        "the appliance's default SCIM and key limits"
    );
    let idp = Idp::new(&app, "Acme").await;
    // Seats for everyone.
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = 10000 WHERE id = ?1",
            [&idp.admin.enterprise_id],
        )
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..250 {
        let email = format!("person{n}@acme.example");
        let found = idp
            .filter("Users", &format!(r#"userName eq "{email}""#))
            .await;
        assert_eq!(found["totalResults"], json!(0));
        let mut user = fixture("okta_create_user", &[]);
        user["userName"] = json!(email);
        user["emails"][0]["value"] = json!(email);
        user["externalId"] = json!(format!("00u{n}"));
        ids.push(id(&idp.create("/Users", user).await));
    }
    for (n, chunk) in ids.chunks(25).enumerate() {
        let mut group = fixture("okta_create_group", &[]);
        group["displayName"] = json!(format!("Store {n}"));
        let group = idp.create("/Groups", group).await;
        let members: Vec<Value> = chunk.iter().map(|id| json!({ "value": id })).collect();
        idp.patch(
            &format!("/Groups/{}", id(&group)),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "Add", "path": "members", "value": members}]}),
        )
        .await;
    }
    // 520 SCIM requests in a few seconds: more than the REST keys' 100 a
    // minute, and the REST keys of the enterprise are untouched by them.
    let (_, rest_key) = app.key(&idp.admin, &["users:read"]).await;
    let response = app
        .get(
            "/api/enterprise/users?limit=1",
            &crate::support::Auth::Key(&rest_key),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, list) = idp.get("/Users?count=1").await;
    assert_eq!(list["totalResults"], json!(250));
    app.stop().await;

    // Past the SCIM bucket: a SCIM error, with the wait.
    let app = TestApp::start_with(|c| c.rate_limit.scim_per_minute = 3).await;
    let idp = Idp::new(&app, "Acme").await;
    for _ in 0..3 {
        assert_eq!(idp.get("/Users").await.0, StatusCode::OK);
    }
    let response = idp.send(Method::GET, "/Users", None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = response.json().await.unwrap();
    assert_scim_error(&body, "429", None);
    app.stop().await;
}
