//! The dashboard over plain HTTP: sessions, CSRF, roles and tenancy. The
//! browser tests (tests/it/browser.rs) drive the same pages in Chromium.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

use crate::support::{Admin, Auth, TestApp, PASSWORD};

/// A browser's cookie jar, by hand: the test sees every cookie.
#[derive(Default, Clone)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, response: &Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.0.retain(|(n, _)| n != name);
            if !text.contains("Max-Age=0") {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn page(app: &TestApp, jar: &mut Jar, path: &str) -> (StatusCode, String) {
    let response = client()
        .get(app.url(path))
        .header(COOKIE, jar.header())
        .send()
        .await
        .unwrap();
    jar.take(&response);
    (response.status(), response.text().await.unwrap())
}

pub async fn submit(app: &TestApp, jar: &mut Jar, path: &str, form: &[(&str, &str)]) -> Response {
    let response = client()
        .post(app.url(path))
        .header(COOKIE, jar.header())
        .form(form)
        .send()
        .await
        .unwrap();
    jar.take(&response);
    response
}

/// The value of the first `name="csrf"` hidden field of a page.
pub fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

pub async fn sign_in(app: &TestApp, email: &str) -> Jar {
    let mut jar = Jar::default();
    let (status, html) = page(app, &mut jar, "/sign-in").await;
    assert_eq!(status, StatusCode::OK);
    let token = csrf(&html);
    let response = submit(
        app,
        &mut jar,
        "/sign-in",
        &[("csrf", &token), ("email", email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap()
    );
    assert!(jar.get("es_session").is_some());
    jar
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_shows_the_overview() {
    let app = TestApp::start().await;
    let admin: Admin = app.admin("Acme").await;
    let mut jar = Jar::default();
    let (status, _) = page(&app, &mut jar, "/").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "no session: to the sign-in page"
    );

    let (_, html) = page(&app, &mut jar, "/sign-in").await;
    let token = csrf(&html);
    // Without the sign-in cookie's token (login CSRF): refused.
    let mut stranger = Jar::default();
    let refused = submit(
        &app,
        &mut stranger,
        "/sign-in",
        &[
            ("csrf", &token),
            ("email", &admin.email),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // A wrong password: the form again, with the message.
    let wrong = submit(
        &app,
        &mut jar,
        "/sign-in",
        &[
            ("csrf", &token),
            ("email", &admin.email),
            ("password", "nope"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("incorrect"));

    let (_, html) = page(&app, &mut jar, "/sign-in").await;
    let response = submit(
        &app,
        &mut jar,
        "/sign-in",
        &[
            ("csrf", &csrf(&html)),
            ("email", &admin.email),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
    let set: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = set.iter().find(|c| c.starts_with("es_session=")).unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain http here");

    let (status, html) = page(&app, &mut jar, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Vue d&#x27;ensemble") && html.contains("Acme"),
        "{html}"
    );
    assert!(app
        .audit_actions()
        .contains(&("auth.login".into(), "success".into())));

    // Sign out needs the session's CSRF token.
    let forged = submit(&app, &mut jar, "/sign-out", &[("csrf", "forged")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let out = submit(&app, &mut jar, "/sign-out", &[("csrf", &csrf(&html))]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (status, _) = page(&app, &mut jar, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let app =
        TestApp::start_with(|c| c.public_base_url = Some("https://sync.example".into())).await;
    let mut jar = Jar::default();
    let response = client().get(app.url("/sign-in")).send().await.unwrap();
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    jar.take(&response);
    app.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_change_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let mut jar = sign_in(&app, &admin.email).await;
    let (_, html) = page(&app, &mut jar, "/api-keys").await;
    let token = csrf(&html);
    for form in [
        vec![("name", "k"), ("scopes", "users:read")],
        vec![("csrf", "x"), ("name", "k"), ("scopes", "users:read")],
    ] {
        let response = submit(&app, &mut jar, "/api-keys", &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let keys: serde_json::Value = app
        .get(
            "/api/enterprise/api-keys",
            &Auth::Bearer(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["data"].as_array().unwrap().len(), 0);
    // With it: the key, shown once.
    let response = submit(
        &app,
        &mut jar,
        "/api-keys",
        &[
            ("csrf", &token),
            ("name", "ERP"),
            ("scopes", "users:read"),
            ("scopes", "users:write"),
            ("expires_in_days", "30"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await.unwrap();
    assert!(html.contains("ent_"), "the key is on the page once");
    let (_, again) = page(&app, &mut jar, "/api-keys").await;
    let key = html
        .split("id=\"new-key-value\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(!again.contains(key), "and never again");
    assert!(again.contains("users:read, users:write"));
    app.stop().await;
}

#[tokio::test]
async fn an_admin_sees_nothing_of_another_enterprise_and_staff_see_their_profile_only() {
    let app = TestApp::start().await;
    let acme = app.admin("Acme").await;
    let globex = app.admin("Globex").await;
    let (acme_key, _) = app.key(&acme, &["users:read"]).await;
    let mut jar = sign_in(&app, &globex.email).await;
    let (status, html) = page(&app, &mut jar, &format!("/api-keys/{acme_key}/revoke")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let token = csrf(&html);
    let response = submit(
        &app,
        &mut jar,
        &format!("/api-keys/{acme_key}/revoke"),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (_, keys) = page(&app, &mut jar, "/api-keys").await;
    assert!(!keys.contains(&acme_key));
    let state: serde_json::Value = app
        .get(
            &format!("/api/enterprise/api-keys/{acme_key}"),
            &Auth::Bearer(&acme.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["state"], "active");

    let store = app.seed_store(&acme.enterprise_id, "Lyon").await;
    app.seed_user(
        &acme.enterprise_id,
        "seller@acme.example",
        enterprise_sync::domain::Role::Seller,
        Some(&store),
    )
    .await;
    let mut seller = sign_in(&app, "seller@acme.example").await;
    let (status, html) = page(&app, &mut seller, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("seller@acme.example") && html.contains("Vendeur"),
        "{html}"
    );
    assert!(!html.contains("Licences"));
    let (status, _) = page(&app, &mut seller, "/api-keys").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn the_language_follows_the_browser_then_the_switch() {
    let app = TestApp::start().await;
    let response = client()
        .get(app.url("/sign-in"))
        .header("accept-language", "en-US,en;q=0.8")
        .send()
        .await
        .unwrap();
    assert!(response.text().await.unwrap().contains("Sign in"));
    let mut jar = Jar::default();
    let (status, _) = page(&app, &mut jar, "/lang/en?to=/sign-in").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &mut jar, "/sign-in").await;
    assert!(html.contains("<html lang=\"en\">") && html.contains("Email address"));
    // The switch sends back to a page of ours only.
    let response = client()
        .get(app.url("/lang/fr?to=//evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[LOCATION], "/");
    app.stop().await;
}

#[tokio::test]
async fn runs_list_filters_and_a_failed_runs_errors_download_as_safe_csv() {
    let app = TestApp::start().await;
    let acme = app.admin("Acme").await;
    let globex = app.admin("Globex").await;
    let (_, key) = app.key(&acme, &["users:write"]).await;
    let response = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/users/bulk-import",
            &Auth::Key(&key),
            Some(serde_json::json!({ "users": [
                { "email": "x@acme.example", "name": "=HYPERLINK(\"http://evil\")", "role": "seller", "store_id": "NOPE", "external_id": "+33-E1" },
            ]})),
        )
        .await;
    let report: serde_json::Value = response.json().await.unwrap();
    let run = report["sync_log_id"].as_str().unwrap().to_string();

    let mut jar = sign_in(&app, &acme.email).await;
    let (status, html) = page(&app, &mut jar, "/runs?status=failed").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("/runs/{run}")), "{html}");
    let (_, html) = page(&app, &mut jar, "/runs?status=success").await;
    assert!(!html.contains(&format!("/runs/{run}")));
    let (_, html) = page(&app, &mut jar, "/runs?operation=bulk_user_import").await;
    assert!(html.contains(&format!("/runs/{run}")));
    let (_, html) = page(&app, &mut jar, "/runs?operation=file_import").await;
    assert!(!html.contains(&format!("/runs/{run}")));
    let (status, html) = page(&app, &mut jar, "/runs?since=not-a-date").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Date invalide"));

    let (status, html) = page(&app, &mut jar, &format!("/runs/{run}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<table id=\"errors\">") && html.contains("+33-E1"),
        "{html}"
    );
    let csv = client()
        .get(app.url(&format!("/runs/{run}/errors.csv")))
        .header(COOKIE, jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("row,key,field,code,message\n"), "{text}");
    assert!(
        text.contains("'+33-E1"),
        "formula-like cells are neutralised: {text}"
    );

    // Another enterprise's admin: not found, by page or by CSV.
    let mut other = sign_in(&app, &globex.email).await;
    let (status, _) = page(&app, &mut other, &format!("/runs/{run}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = page(&app, &mut other, &format!("/runs/{run}/errors.csv")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("+33-E1"));
    let (_, list) = page(&app, &mut other, "/runs").await;
    assert!(!list.contains(&run));
    app.stop().await;
}

#[tokio::test]
async fn the_overview_counts_runs_per_source_failures_and_rows_per_day() {
    let app = TestApp::start().await;
    let acme = app.admin("Acme").await;
    let (_, key) = app.key(&acme, &["users:write", "stores:write"]).await;
    let import = |body: serde_json::Value, what: &'static str| {
        let (app, key) = (&app, &key);
        async move {
            app.call(
                reqwest::Method::POST,
                &format!("/api/enterprise/{what}/bulk-import"),
                &Auth::Key(key),
                Some(body),
            )
            .await
            .status()
        }
    };
    let stores = serde_json::json!({ "stores": [{ "name": "Lyon", "external_id": "S1" }] });
    assert_eq!(import(stores, "stores").await, StatusCode::OK);
    app.advance(std::time::Duration::from_secs(24 * 3600));
    let users = serde_json::json!({ "users": [
        { "email": "a@acme.example", "name": "Ann", "role": "seller", "store_id": "S1" },
        { "email": "b@acme.example", "name": "Bob", "role": "seller", "store_id": "NOPE" },
    ]});
    assert_eq!(import(users, "users").await, StatusCode::OK);
    let mut jar = sign_in(&app, &acme.email).await;
    let (status, html) = page(&app, &mut jar, "/").await;
    assert_eq!(status, StatusCode::OK);
    let section = |id: &str| {
        let start = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("#{id}"));
        html[start..]
            .split("</table>")
            .next()
            .unwrap()
            .split("</figure>")
            .next()
            .unwrap()
            .to_string()
    };
    let by_source = section("last-by-source");
    assert!(
        by_source.contains("partielle") && by_source.contains("jamais"),
        "{by_source}"
    );
    assert!(section("failed-runs").contains(">0<"));
    assert!(section("held-files").contains(">0<"));
    let chart = section("chart");
    assert_eq!(chart.matches("<g>").count(), 30, "one bar slot per day");
    assert_eq!(
        chart.matches("class=\"bar-created\"").count(),
        2,
        "stores one day, users the next"
    );
    assert_eq!(chart.matches("class=\"bar-failed\"").count(), 1);
    assert!(
        chart.contains("1 créés, 0 modifiés, 0 désactivés, 1 en erreur"),
        "{chart}"
    );
    app.stop().await;
}

#[tokio::test]
async fn users_stores_and_the_audit_trail_are_searchable_paged_and_the_enterprises_own() {
    let app = TestApp::start().await;
    let acme = app.admin("Acme").await;
    let globex = app.admin("Globex").await;
    let store = app.seed_store(&acme.enterprise_id, "Lyon Part-Dieu").await;
    for i in 0..55 {
        app.seed_user(
            &acme.enterprise_id,
            &format!("p{i:02}@acme.example"),
            enterprise_sync::domain::Role::Seller,
            Some(&store),
        )
        .await;
    }
    let other_store = app.seed_store(&globex.enterprise_id, "Marseille").await;
    app.seed_user(
        &globex.enterprise_id,
        "zed@globex.example",
        enterprise_sync::domain::Role::Seller,
        Some(&other_store),
    )
    .await;

    let mut jar = sign_in(&app, &acme.email).await;
    let (status, first) = page(&app, &mut jar, "/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first.matches("<td>Staff Member</td>").count(),
        50,
        "fifty a page"
    );
    assert!(
        !first.contains("zed@globex.example") && !first.contains(&acme.email),
        "no other enterprise, no IT admin"
    );
    // The next page's link (minijinja escapes the slash in attributes).
    let next = first
        .split("users?after=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let (_, second) = page(&app, &mut jar, &format!("/users?after={next}")).await;
    assert_eq!(second.matches("<td>Staff Member</td>").count(), 5);
    let (_, found) = page(&app, &mut jar, "/users?q=P07%40ACME").await;
    assert_eq!(
        found.matches("<td>Staff Member</td>").count(),
        1,
        "search ignores case"
    );
    assert!(found.contains("p07@acme.example"));
    let (_, none) = page(&app, &mut jar, "/users?q=zed").await;
    assert!(!none.contains("zed@globex.example"));

    let (_, stores) = page(&app, &mut jar, "/stores?q=part-dieu").await;
    assert!(stores.contains("Lyon Part-Dieu") && !stores.contains("Marseille"));

    let (status, audit) = page(&app, &mut jar, "/audit?action=auth.login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(audit.contains("<code>auth.login</code>"));
    assert_eq!(
        audit.matches("<code>").count(),
        audit.matches("<code>auth.login</code>").count(),
        "only the action asked for"
    );
    let reads = app
        .audit_actions()
        .iter()
        .filter(|(a, _)| a == "audit_log.read")
        .count();
    assert_eq!(reads, 1, "reading the trail is audited");
    let (_, other) = page(&app, &mut sign_in(&app, &globex.email).await, "/audit").await;
    assert!(!other.contains(&acme.user_id));
    app.stop().await;
}

#[tokio::test]
async fn the_scim_page_gives_the_base_url_and_a_scim_only_token_shown_once() {
    let app =
        TestApp::start_with(|c| c.public_base_url = Some("https://sync.example/".into())).await;
    let acme = app.admin("Acme").await;
    let mut jar = Jar::default();
    // Behind https the cookie is Secure: a plain-http test client sends it anyway.
    let (_, html) = page(&app, &mut jar, "/sign-in").await;
    let response = submit(
        &app,
        &mut jar,
        "/sign-in",
        &[
            ("csrf", &csrf(&html)),
            ("email", &acme.email),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, html) = page(&app, &mut jar, "/scim").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("https:&#x2f;&#x2f;sync.example&#x2f;scim&#x2f;v2")
            || html.contains("https://sync.example/scim/v2"),
        "{html}"
    );
    let response = submit(
        &app,
        &mut jar,
        "/scim",
        &[
            ("csrf", &csrf(&html)),
            ("name", "Okta"),
            ("expires_in_days", "365"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await.unwrap();
    let token = html
        .split("id=\"new-key-value\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    // The token works on SCIM, and only there.
    let scim = app
        .client
        .get(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(scim.status(), StatusCode::OK);
    let rest = app.get("/api/enterprise/users", &Auth::Key(&token)).await;
    assert_eq!(rest.status(), StatusCode::FORBIDDEN);
    let (_, again) = page(&app, &mut jar, "/scim").await;
    assert!(!again.contains(&token) && again.contains("Okta"));
    app.stop().await;
}

#[tokio::test]
async fn webhooks_and_alert_settings_are_managed_from_the_dashboard() {
    let app = TestApp::start().await;
    let acme = app.admin("Acme").await;
    let globex = app.admin("Globex").await;
    let (_, key) = app.key(&acme, &["users:write"]).await;
    let receiver = crate::receiver::Receiver::start().await;
    let mut jar = sign_in(&app, &acme.email).await;
    let (_, html) = page(&app, &mut jar, "/webhooks").await;
    let token = csrf(&html);
    // Refused before its network is allowed, with the guard's reason.
    let refused = submit(
        &app,
        &mut jar,
        "/webhooks",
        &[
            ("csrf", &token),
            ("url", &receiver.url),
            ("events", "sync.failed"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("loopback"));
    let saved = submit(
        &app,
        &mut jar,
        "/webhooks/settings",
        &[
            ("csrf", &token),
            ("language", "en"),
            ("alert_recipients", "ops@acme.example\nit@acme.example"),
            ("alert_on_partial", "true"),
            ("stale_after_hours", "26"),
            ("webhook_allowed_networks", "127.0.0.1/32"),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let settings: serde_json::Value = app
        .get(
            "/api/enterprise/notification-settings",
            &Auth::Bearer(&acme.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        settings["alert_recipients"],
        serde_json::json!(["ops@acme.example", "it@acme.example"])
    );
    assert_eq!(settings["stale_after_hours"], 26);
    assert_eq!(settings["language"], "en");
    let bad = submit(
        &app,
        &mut jar,
        "/webhooks/settings",
        &[
            ("csrf", &token),
            ("language", "en"),
            ("stale_after_hours", "lots"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let created = submit(
        &app,
        &mut jar,
        "/webhooks",
        &[
            ("csrf", &token),
            ("url", &receiver.url),
            ("events", "sync.failed"),
        ],
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    let secret = html
        .split("id=\"new-secret-value\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(secret.starts_with("whsec_"));
    let (_, listed) = page(&app, &mut jar, "/webhooks").await;
    assert!(!listed.contains(&secret));
    let id: String = app
        .raw_db()
        .query_row("SELECT id FROM webhook_endpoints", [], |r| r.get(0))
        .unwrap();
    assert!(listed.contains(&id));

    let status = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/users/bulk-import",
            &Auth::Key(&key),
            Some(serde_json::json!({ "users": [{ "email": "x@acme.example", "name": "X", "role": "seller", "store_id": "NOPE" }] })),
        )
        .await
        .status();
    assert_eq!(status, StatusCode::OK);
    let delivered = receiver.wait_for(1).await;
    let mut logged = false;
    for _ in 0..500 {
        let (_, log) = page(&app, &mut jar, &format!("/webhooks/{id}")).await;
        if log.contains(&delivered[0].header("webhook-id")) {
            assert!(log.contains("sync.failed"));
            logged = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        logged,
        "the delivery log shows the attempt and its webhook-id"
    );

    let mut other = sign_in(&app, &globex.email).await;
    let (status, _) = page(&app, &mut other, &format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, other_page) = page(&app, &mut other, "/webhooks").await;
    let gone = submit(
        &app,
        &mut other,
        &format!("/webhooks/{id}/delete"),
        &[("csrf", &csrf(&other_page))],
    )
    .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    let deleted = submit(
        &app,
        &mut jar,
        &format!("/webhooks/{id}/delete"),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    let (_, listed) = page(&app, &mut jar, "/webhooks").await;
    assert!(!listed.contains(&receiver.url));
    app.stop().await;
}

#[tokio::test]
async fn an_upload_completes_itself_under_the_marker_policy() {
    use crate::dropdir::{active_count, setup, staff_csv, with_drop_dir};
    use enterprise_sync::config::CompletionPolicy;
    use enterprise_sync::service::access::Principal;
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Marker)).await;
    let drop = setup(&app, "Acme").await;
    let admin = Principal::User {
        user: drop.admin.user_id.parse().unwrap(),
        enterprise: drop.admin.enterprise_id.parse().unwrap(),
        role: enterprise_sync::domain::Role::ItAdmin,
    }
    .require_admin()
    .unwrap();
    let uploaded = enterprise_sync::service::files::upload(
        app.services(),
        &admin,
        &Default::default(),
        "../../etc/staff.csv",
        enterprise_sync::dropfile::formats::Kind::Users,
        staff_csv(0..3, None).into_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(
        uploaded.name, "users_staff.csv",
        "named by its kind, never outside incoming/"
    );
    // Its marker came with it: the drop directory takes it (the watcher may
    // already have).
    app.drop_dir().scan_now().await;
    let files = crate::dropdir::files(&app, &drop).await;
    assert_eq!(files[0]["name"], "users_staff.csv");
    assert_eq!(files[0]["state"], "applied", "{files:?}");
    assert_eq!(active_count(&app, &drop).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn the_sign_in_throttle_is_a_page_in_the_persons_language() {
    let app = TestApp::start_with(|c| c.rate_limit.login_per_ip_per_minute = 2).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut last = None;
    for _ in 0..3 {
        last = Some(
            client
                .post(app.url("/sign-in"))
                .header("accept-language", "fr-FR,fr;q=0.9")
                .form(&[
                    ("email", "nobody@acme.example"),
                    ("password", "wrong wrong wrong"),
                ])
                .send()
                .await
                .unwrap(),
        );
    }
    let refused = last.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = refused.text().await.unwrap();
    assert!(page.contains("Trop de tentatives"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_password_opening_several_enterprises_asks_which_one() {
    let app = TestApp::start().await;
    let email = "sam@consultant.example";
    app.register("Acme", email).await;
    let beta = app.register("Beta Stores", email).await;
    let beta = beta["enterprise_account_id"].as_str().unwrap().to_string();
    let mut jar = Jar::default();
    let (_, html) = page(&app, &mut jar, "/sign-in").await;
    let response = submit(
        &app,
        &mut jar,
        "/sign-in",
        &[
            ("csrf", &csrf(&html)),
            ("email", email),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(jar.get("es_session").is_none(), "not signed in yet");
    assert!(html.contains(&format!("value=\"{beta}\"")), "{html}");
    assert!(html.contains("Acme") && html.contains("Beta Stores"));
    assert!(
        !html.contains(PASSWORD),
        "the password never goes back into a page"
    );
    let response = submit(
        &app,
        &mut jar,
        "/sign-in",
        &[
            ("csrf", &csrf(&html)),
            ("email", email),
            ("password", PASSWORD),
            ("enterprise_id", &beta),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, overview) = page(&app, &mut jar, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(overview.contains("Beta Stores"), "{overview}");
    app.stop().await;
}

#[tokio::test]
async fn the_settings_page_changes_the_enterprise_and_invites_admins() {
    let app = TestApp::start().await;
    let admin: Admin = app.admin("Acme").await;
    let mut jar = sign_in(&app, &admin.email).await;
    let (status, html) = page(&app, &mut jar, "/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("value=\"Acme\""), "{html}");
    let token = csrf(&html);
    let saved = submit(
        &app,
        &mut jar,
        "/settings",
        &[
            ("csrf", &token),
            ("company_name", "Acme Retail"),
            ("company_email", "it@acme.example"),
            ("sync_mode", "file"),
            ("time_zone", "America/Martinique"),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let html = saved.text().await.unwrap();
    // (the template escapes the slash)
    assert!(
        html.contains("value=\"America&#x2f;Martinique\" list"),
        "{html}"
    );
    assert!(html.contains("value=\"Acme Retail\""));
    assert!(html.contains("<option value=\"file\" selected"), "{html}");
    let invited = submit(
        &app,
        &mut jar,
        "/settings/admins",
        &[
            ("csrf", &token),
            ("name", "Bea Backup"),
            ("email", "bea@acme.example"),
        ],
    )
    .await;
    assert_eq!(invited.status(), StatusCode::OK);
    let html = invited.text().await.unwrap();
    assert!(html.contains("bea@acme.example"), "{html}");
    // Alone able to sign in, the admin cannot deactivate themself.
    let refused = submit(
        &app,
        &mut jar,
        &format!("/settings/admins/{}/deactivate", admin.user_id),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.text().await.unwrap().contains("role=\"alert\""));
    // Without the form's token: nothing changes.
    let forged = submit(
        &app,
        &mut jar,
        "/settings",
        &[("csrf", "forged"), ("company_name", "Forged")],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let name: String = app
        .raw_db()
        .query_row(
            "SELECT company_name FROM enterprise_accounts WHERE id = ?1",
            [&admin.enterprise_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "Acme Retail");
    app.stop().await;
}

#[tokio::test]
async fn a_person_changes_their_password_in_the_dashboard_and_keeps_this_session() {
    let app = TestApp::start().await;
    let admin: Admin = app.admin("Acme").await;
    let mut jar = sign_in(&app, &admin.email).await;
    let mut elsewhere = sign_in(&app, &admin.email).await;
    let (status, html) = page(&app, &mut jar, "/password").await;
    assert_eq!(status, StatusCode::OK);
    let token = csrf(&html);
    let new = "quatre chevaux dans le pré";
    // French page, French policy.
    page(&app, &mut jar, "/lang/fr?to=/password").await;
    let weak = submit(
        &app,
        &mut jar,
        "/password",
        &[
            ("csrf", &token),
            ("current_password", PASSWORD),
            ("new_password", "court"),
            ("new_password_confirmation", "court"),
        ],
    )
    .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak
        .text()
        .await
        .unwrap()
        .contains("au moins 15 caractères"));
    let wrong = submit(
        &app,
        &mut jar,
        "/password",
        &[
            ("csrf", &token),
            ("current_password", "not my password at all"),
            ("new_password", new),
            ("new_password_confirmation", new),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let changed = submit(
        &app,
        &mut jar,
        "/password",
        &[
            ("csrf", &token),
            ("current_password", PASSWORD),
            ("new_password", new),
            ("new_password_confirmation", new),
        ],
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    // This session goes on; the other one ended.
    assert_eq!(page(&app, &mut jar, "/").await.0, StatusCode::OK);
    assert_eq!(
        page(&app, &mut elsewhere, "/").await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.login(&admin.email, new).await.status(), StatusCode::OK);

    // The forgotten-password form answers the same for anyone.
    let mut answers = Vec::new();
    for email in [admin.email.as_str(), "nobody@nowhere.example"] {
        let mut stranger = Jar::default();
        let (status, html) = page(&app, &mut stranger, "/forgot-password").await;
        assert_eq!(status, StatusCode::OK);
        let token = csrf(&html);
        let response = submit(
            &app,
            &mut stranger,
            "/forgot-password",
            &[("csrf", &token), ("email", email)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        answers.push(text[..text.find("name=\"csrf\"").unwrap_or(text.len())].to_string());
    }
    assert_eq!(answers[0], answers[1]);
    app.stop().await;
}

#[tokio::test]
async fn runs_read_in_words_and_in_the_enterprise_time_zone() {
    let app = TestApp::start().await;
    let admin: Admin = app.admin("Acme").await;
    let (_, key) = app.key(&admin, &["stores:write"]).await;
    let response = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/stores/bulk-import",
            &Auth::Key(&key),
            Some(serde_json::json!({ "stores": [{ "name": "Lyon", "external_id": "S1" }] })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let stored: String = app
        .raw_db()
        .query_row("SELECT timestamp FROM sync_logs", [], |r| r.get(0))
        .unwrap();
    let mut jar = sign_in(&app, &admin.email).await;
    page(&app, &mut jar, "/lang/fr?to=/runs").await;
    let (status, html) = page(&app, &mut jar, "/runs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Import de magasins"), "{html}");
    assert!(!html.contains(">bulk_store_import<"), "{html}");
    assert!(!html.contains(&stored), "no raw UTC time: {html}");
    let paris = enterprise_sync::web::i18n::when(
        enterprise_sync::domain::notifications::Language::Fr,
        "Europe/Paris",
        &stored,
    );
    assert!(html.contains(&paris), "{paris} in {html}");
    // Another time zone, another hour.
    let response = app
        .call(
            reqwest::Method::PATCH,
            "/api/enterprise/settings",
            &Auth::Bearer(&admin.access_token),
            Some(serde_json::json!({ "time_zone": "America/Martinique" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, html) = page(&app, &mut jar, "/runs").await;
    let martinique = enterprise_sync::web::i18n::when(
        enterprise_sync::domain::notifications::Language::Fr,
        "America/Martinique",
        &stored,
    );
    assert!(martinique.ends_with("AST"), "{martinique}");
    assert!(html.contains(&martinique), "{martinique} in {html}");
    app.stop().await;
}
