use std::time::Duration;

use enterprise_sync::config::{Config, SmtpSecurity};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::smtp::{free_port, Mail, SmtpServer};
use crate::support::{Admin, Auth, TestApp};

pub(crate) fn with_smtp(port: u16) -> impl FnOnce(&mut Config) {
    move |config| {
        config.email.smtp_host = Some("127.0.0.1".into());
        config.email.smtp_port = port;
        config.email.smtp_security = SmtpSecurity::None;
        config.email.from = "Retail Performer <no-reply@sync.example>".into();
        config.public_base_url = Some("https://sync.example".into());
    }
}

pub(crate) async fn setup(app: &TestApp, company: &str, language: &str) -> (Admin, String) {
    let admin = app.admin(company).await;
    let (_, key) = app.key(&admin, &["users:write", "stores:write"]).await;
    app.seed_store(&admin.enterprise_id, "Lyon").await;
    let response = app
        .call(
            Method::PUT,
            "/api/enterprise/notification-settings",
            &Auth::Bearer(&admin.access_token),
            Some(json!({ "language": language })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    (admin, key)
}

async fn import(app: &TestApp, key: &str, users: Value, invite: bool) -> Value {
    let response = app
        .call(
            Method::POST,
            "/api/enterprise/users/bulk-import",
            &Auth::Key(key),
            Some(json!({ "users": users, "mode": "create_or_update", "send_invitations": invite })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn people(emails: &[&str]) -> Value {
    Value::Array(
        emails
            .iter()
            .map(|e| json!({ "email": e, "name": "Camille Martin", "role": "seller", "store_id": "EXT-Lyon" }))
            .collect(),
    )
}

fn to(mail: &Mail) -> String {
    mail.header("To")
}

/// Turns the link's host into the test server's (the emails name the public URL).
fn local(app: &TestApp, link: &str) -> String {
    app.url(link.strip_prefix("https://sync.example").unwrap())
}

pub(crate) async fn open_link(app: &TestApp, link: &str) -> (StatusCode, String) {
    let response = app.client.get(local(app, link)).send().await.unwrap();
    let status = response.status();
    assert!(response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    (status, response.text().await.unwrap())
}

/// Posts the form of the link's page (an invitation's or a reset's).
pub(crate) async fn choose_password(
    app: &TestApp,
    link: &str,
    password: &str,
    confirmation: &str,
) -> (StatusCode, String) {
    let token = link.split("token=").nth(1).unwrap().to_string();
    let path = local(app, link.split('?').next().unwrap());
    let response = app
        .client
        .post(path)
        .form(&[
            ("token", token.as_str()),
            ("password", password),
            ("password_confirmation", confirmation),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

const NEW_PASSWORD: &str = "quatre chevaux dans le pré";

#[tokio::test]
async fn an_import_with_invitations_emails_each_new_user_a_link_that_works_once() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::start_with(with_smtp(smtp.port)).await;
    let (_, key) = setup(&app, "Acme", "en").await;
    let report = import(
        &app,
        &key,
        people(&["ann@acme.example", "bob@acme.example", "cat@acme.example"]),
        true,
    )
    .await;
    assert_eq!(report["invited"], 3);
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{report}"
    );

    let mails = smtp.wait_for(3).await;
    let mut recipients: Vec<String> = mails.iter().map(to).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["ann@acme.example", "bob@acme.example", "cat@acme.example"]
    );
    let ann = mails.iter().find(|m| to(m) == "ann@acme.example").unwrap();
    assert!(ann.header("From").contains("no-reply@sync.example"));
    assert_eq!(
        ann.header("Subject"),
        "Acme invites you to Retail Performer"
    );
    assert!(ann.raw.contains("text/plain") && ann.raw.contains("text/html"));
    // The outbox never held the token: it was made when the email went out.
    let link = ann.link_containing("/invitations/accept?token=");
    let token = link.split("token=").nth(1).unwrap();
    let outbox: String = app
        .raw_db()
        .query_row(
            "SELECT group_concat(payload || recipient) FROM email_outbox",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!outbox.contains(token));

    // Follow the link: the form, then the password, then sign in.
    let (status, page) = open_link(&app, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Choose your password") && page.contains("Camille Martin"),
        "{page}"
    );
    let (status, page) = choose_password(&app, &link, NEW_PASSWORD, "something else").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("differ"), "{page}");
    let (status, page) = choose_password(&app, &link, "short", "short").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("password"), "{page}");
    let (status, page) = choose_password(&app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("sign in"));
    let login = app.login("ann@acme.example", NEW_PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);

    // The link works once.
    let (status, page) = open_link(&app, &link).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("already been used"), "{page}");
    let (status, _) = choose_password(&app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A link that names no enterprise speaks the browser's language.
    let (status, page) =
        open_link(&app, "https://sync.example/invitations/accept?token=forged").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("pas valide"), "{page}");
    let english = app
        .client
        .get(app.url("/invitations/accept?token=forged"))
        .header("accept-language", "en-GB,en;q=0.9,fr;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(english.text().await.unwrap().contains("not valid"));
    app.stop().await;
}

#[tokio::test]
async fn resent_invitations_replace_the_old_link_and_expired_ones_say_so() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::start_with(with_smtp(smtp.port)).await;
    let (admin, key) = setup(&app, "Acme", "fr").await;
    let report = import(&app, &key, people(&["ann@acme.example"]), true).await;
    let first = smtp.wait_for(1).await[0].clone();
    assert!(
        first.text().contains("vous a créé un compte"),
        "{}",
        first.text()
    );
    let old_link = first.link_containing("token=");
    let ann: String = app
        .raw_db()
        .query_row(
            "SELECT id FROM users WHERE email = 'ann@acme.example'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(report["invited"], 1);

    // The admin sends it again: a new link, the old one replaced.
    let response = app
        .call(
            Method::POST,
            &format!("/api/enterprise/users/{ann}/invitation/send"),
            &Auth::Bearer(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let second = smtp.wait_for(2).await[1].clone();
    let new_link = second.link_containing("token=");
    assert_ne!(new_link, old_link);
    let (status, page) = open_link(&app, &old_link).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("plus récente"), "{page}");
    assert!(app
        .audit_actions()
        .contains(&("user.invitation.send".into(), "success".into())));

    // A week and a day later the new link has expired.
    app.advance(Duration::from_secs(8 * 24 * 3600));
    let (status, page) = open_link(&app, &new_link).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("expiré"), "{page}");
    let api = app
        .post(
            "/api/auth/accept-invitation",
            json!({ "token": new_link.split("token=").nth(1).unwrap(), "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(api.status(), StatusCode::BAD_REQUEST);
    let body: Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invitation_expired");

    // Another enterprise's admin cannot send it.
    let other = app.admin("Globex").await;
    let response = app
        .call(
            Method::POST,
            &format!("/api/enterprise/users/{ann}/invitation/send"),
            &Auth::Bearer(&other.access_token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn emails_wait_for_the_mail_server_and_arrive_when_it_is_back() {
    let port = free_port();
    let app = TestApp::start_with(with_smtp(port)).await;
    let (_, key) = setup(&app, "Acme", "en").await;
    import(
        &app,
        &key,
        people(&["ann@acme.example", "bob@acme.example"]),
        true,
    )
    .await;
    // Both attempts fail (nothing listens) and are scheduled again.
    for _ in 0..2000 {
        let failed: i64 = app
            .raw_db()
            .query_row(
                "SELECT COUNT(*) FROM email_outbox WHERE attempts = 1 AND state = 'pending' AND last_error IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if failed == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let error: String = app
        .raw_db()
        .query_row("SELECT last_error FROM email_outbox LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(error.contains("sending failed"), "{error}");

    let smtp = SmtpServer::start_on(port).await;
    app.services().outbound.wake_email();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty(), "retried before its time");
    app.advance(Duration::from_secs(75));
    app.services().outbound.wake_email();
    let mails = smtp.wait_for(2).await;
    let mut recipients: Vec<String> = mails.iter().map(to).collect();
    recipients.sort();
    assert_eq!(recipients, ["ann@acme.example", "bob@acme.example"]);
    let link = mails[0].link_containing("token=");
    let (status, _) = choose_password(&app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_run_alerts_the_admins_once_and_partial_runs_only_when_asked() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::start_with(with_smtp(smtp.port)).await;
    let (admin, key) = setup(&app, "Acme", "en").await;
    // Five bad rows, one run: one email, not five.
    let bad: Vec<Value> = (0..5)
        .map(|i| json!({ "email": format!("p{i}@acme.example"), "name": "X Y", "role": "seller", "store_id": "NOPE" }))
        .collect();
    let report = import(&app, &key, Value::Array(bad), false).await;
    assert_eq!(report["failed"], 5);
    let mails = smtp.wait_for(1).await;
    assert_eq!(to(&mails[0]), admin.email);
    assert_eq!(mails[0].header("Subject"), "[Acme] Sync failed");
    assert!(
        mails[0].text().contains("5 of 5 rows failed"),
        "{}",
        mails[0].text()
    );
    let run = report["sync_log_id"].as_str().unwrap();
    assert!(mails[0].text().contains(&format!(
        "https://sync.example/api/enterprise/sync-logs/{run}"
    )));
    assert!(app
        .audit_actions()
        .contains(&("alert.raise".into(), "success".into())));

    // Partial: no alert by default…
    let mixed = json!([
        { "email": "ok@acme.example", "name": "Ok Person", "role": "seller", "store_id": "EXT-Lyon" },
        { "email": "ko@acme.example", "name": "Ko Person", "role": "seller", "store_id": "NOPE" },
    ]);
    import(&app, &key, mixed.clone(), false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.services().outbound.wake_email();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 1);
    // …and one when the enterprise opts in, to its own list of recipients.
    let response = app
        .call(
            Method::PUT,
            "/api/enterprise/notification-settings",
            &Auth::Bearer(&admin.access_token),
            Some(json!({ "alert_on_partial": true, "alert_recipients": ["ops@acme.example", "it@acme.example"] })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    import(&app, &key, mixed, false).await;
    let mails = smtp.wait_for(3).await;
    let mut recipients: Vec<String> = mails[1..].iter().map(to).collect();
    recipients.sort();
    assert_eq!(recipients, ["it@acme.example", "ops@acme.example"]);
    assert!(mails[1].header("Subject").contains("Partial sync"));
    app.stop().await;
}

#[tokio::test]
async fn alerts_are_capped_per_hour_and_the_rest_recorded() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::start_with(with_smtp(smtp.port)).await;
    let (_, key) = setup(&app, "Acme", "en").await;
    let bad =
        json!([{ "email": "x@acme.example", "name": "X Y", "role": "seller", "store_id": "NOPE" }]);
    for _ in 0..12 {
        import(&app, &key, bad.clone(), false).await;
    }
    smtp.wait_for(10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.messages().len(), 10);
    let (raised, suppressed): (i64, i64) = app
        .raw_db()
        .query_row("SELECT COUNT(*), SUM(suppressed) FROM alerts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((raised, suppressed), (12, 2));
    // An hour later alerts go out again.
    app.advance(Duration::from_secs(3601));
    import(&app, &key, bad, false).await;
    smtp.wait_for(11).await;
    app.stop().await;
}

#[tokio::test]
async fn no_successful_sync_for_too_long_alerts_once_per_silence() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::start_with(with_smtp(smtp.port)).await;
    let (admin, key) = setup(&app, "Acme", "fr").await;
    let response = app
        .call(
            Method::PUT,
            "/api/enterprise/notification-settings",
            &Auth::Bearer(&admin.access_token),
            Some(json!({ "stale_after_hours": 24 })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let check = || enterprise_sync::service::alerts::check_stale(app.services());
    // Never synced yet: being set up, no alert.
    app.advance(Duration::from_secs(48 * 3600));
    assert_eq!(check().await.unwrap(), 0);
    import(&app, &key, people(&["ann@acme.example"]), false).await;
    app.advance(Duration::from_secs(23 * 3600));
    assert_eq!(check().await.unwrap(), 0);
    app.advance(Duration::from_secs(2 * 3600));
    assert_eq!(check().await.unwrap(), 1);
    let mails = smtp.wait_for(1).await;
    assert!(
        mails[0].text().contains("plus de 24 heures"),
        "{}",
        mails[0].text()
    );
    // The same silence alerts once…
    app.advance(Duration::from_secs(24 * 3600));
    assert_eq!(check().await.unwrap(), 0);
    // …a new success starts a new one.
    import(&app, &key, people(&["bob@acme.example"]), false).await;
    app.advance(Duration::from_secs(25 * 3600));
    assert_eq!(check().await.unwrap(), 1);
    smtp.wait_for(2).await;
    app.stop().await;
}

#[tokio::test]
async fn a_french_alert_is_french_throughout() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::start_with(with_smtp(smtp.port)).await;
    let (_, key) = setup(&app, "Acme", "fr").await;
    let bad: Vec<Value> = (0..2)
        .map(|i| json!({ "email": format!("p{i}@acme.example"), "name": "X Y", "role": "seller", "store_id": "NOPE" }))
        .collect();
    let report = import(&app, &key, Value::Array(bad), false).await;
    assert_eq!(report["failed"], 2);
    let mails = smtp.wait_for(1).await;
    let text = mails[0].text();
    assert!(text.contains("2 ligne(s) sur 2 en erreur"), "{text}");
    assert!(!text.contains("rows failed"), "{text}");
    app.stop().await;
}
