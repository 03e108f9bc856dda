//! Passwords: changed by their owner, reset by email when forgotten, reset
//! by the operator's link; the policy speaks the page's language.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::emails::{choose_password, open_link, setup, with_smtp};
use crate::smtp::SmtpServer;
use crate::support::{Auth, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "quatre chevaux dans le pré";

async fn change(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .call(
            Method::POST,
            "/api/me/password",
            &Auth::Bearer(token),
            Some(body),
        )
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_person_changes_their_password_and_every_other_session_ends() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let laptop = app.login_admin(&admin).await;

    let (status, body) = change(
        &app,
        &admin.access_token,
        json!({ "current_password": "not the current one at all", "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "wrong_password"
    );
    let (status, body) = change(
        &app,
        &admin.access_token,
        json!({ "current_password": PASSWORD, "new_password": "acme acme acme acme" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "weak_password"
    );

    let (status, pair) = change(
        &app,
        &admin.access_token,
        json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    // The caller goes on with its new tokens; every other session ended.
    let new_token = pair["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(new_token)).await.status(),
        StatusCode::OK
    );
    for old in [&admin.access_token, &laptop.access_token] {
        assert_eq!(
            app.get("/api/me", &Auth::Bearer(old)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for old in [&admin.refresh_token, &laptop.refresh_token] {
        let refreshed = app
            .post("/api/auth/refresh", json!({ "refresh_token": old }))
            .await;
        assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    }
    let refreshed = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": pair["refresh_token"] }),
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert_eq!(
        app.login(&admin.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&admin.email, NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    let actions = app.audit_actions();
    assert!(actions.contains(&("user.password.change".into(), "failure".into())));
    assert!(actions.contains(&("user.password.change".into(), "success".into())));
    // A key has no password.
    let signed_in = crate::support::Admin {
        access_token: new_token.to_string(),
        refresh_token: String::new(),
        enterprise_id: admin.enterprise_id.clone(),
        user_id: admin.user_id.clone(),
        email: admin.email.clone(),
    };
    let (_, key) = app.key(&signed_in, &["users:read"]).await;
    let response = app
        .call(
            Method::POST,
            "/api/me/password",
            &Auth::Key(&key),
            Some(json!({ "current_password": "x", "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn a_forgotten_password_is_reset_by_an_email_link_without_telling_who_exists() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::start_with(with_smtp(smtp.port)).await;
    let (admin, _) = setup(&app, "Acme", "fr").await;
    // The same person is an admin of a second enterprise.
    let response = app
        .post(
            "/api/enterprise/register",
            json!({
                "company_name": "Globex", "company_email": "it@globex.example", "sync_mode": "api",
                "it_admin_name": "Admin Person", "it_admin_email": admin.email,
                "it_admin_password": "another long passphrase here",
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let ask = |email: &str| app.post("/api/auth/forgot-password", json!({ "email": email }));
    let unknown = ask("nobody@nowhere.example").await;
    let unknown_status = unknown.status();
    let unknown_body = unknown.text().await.unwrap();
    let known = ask(&admin.email.to_uppercase()).await;
    assert_eq!(
        (unknown_status, known.status()),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_eq!(unknown_body, known.text().await.unwrap(), "the same answer");
    // One email per enterprise that knows the address, each naming its company.
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    let french = mails.iter().find(|m| m.text().contains("Acme")).unwrap();
    assert!(
        french.text().contains("nouveau mot de passe"),
        "{}",
        french.text()
    );
    assert!(mails.iter().any(|m| m.text().contains("Globex")));
    let link = french.link_containing("/password-reset?token=");

    let (status, page) = open_link(&app, &link).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("nouveau mot de passe"), "{page}");
    // The policy in the page's language.
    let (status, page) = choose_password(&app, &link, "court", "court").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("au moins 15 caractères"), "{page}");
    let (status, page) =
        choose_password(&app, &link, "acme acme acme acme!", "acme acme acme acme!").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("ni votre email"), "{page}");
    let (status, page) = choose_password(&app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The old tokens ended; the new password opens Acme's account only.
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&admin.access_token))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let login: Value = app
        .login(&admin.email, NEW_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        login["user"]["enterprise_account_id"],
        json!(admin.enterprise_id)
    );
    // Once only.
    let (status, page) = choose_password(&app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("déjà été utilisé"), "{page}");

    // Three emails an hour per account, whoever asks: the fourth sends nothing.
    for _ in 0..3 {
        assert_eq!(ask(&admin.email).await.status(), StatusCode::ACCEPTED);
    }
    let mails = smtp.wait_for(6).await;
    assert_eq!(mails.len(), 6, "two more per account, then the ceiling");
    let throttled: i64 = app
        .raw_db()
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'user.password.reset_requested' AND reason_code = 'throttled'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(throttled, 2, "one refusal per account");
    app.stop().await;
}
