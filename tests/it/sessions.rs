use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{Auth, TestApp, PASSWORD};

#[tokio::test]
async fn login_answers_the_contract_shape() {
    let app = TestApp::start().await;
    app.register("Acme", "alice@acme.example").await;
    let response = app.login("  ALICE@acme.example", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    assert_eq!(body["user"]["role"], "it_admin");
    assert_eq!(body["user"]["email"], "alice@acme.example");
    assert!(body["user"].get("password_hash").is_none());

    let me = app
        .get(
            "/api/me",
            &Auth::Bearer(body["access_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "alice@acme.example");
    app.stop().await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = TestApp::start().await;
    app.register("Acme", "alice@acme.example").await;
    let hashes_before = app.services().passwords.hashes_run();
    let wrong = app
        .login("alice@acme.example", "not the right password at all")
        .await;
    let unknown = app
        .login("nobody@acme.example", "not the right password at all")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(
        app.services().passwords.hashes_run() - hashes_before,
        2,
        "an unknown email costs one argon2 verification, like a wrong password"
    );
    let actions = app.audit_actions();
    assert!(actions.contains(&("auth.login".into(), "failure".into())));
    app.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let first = admin.refresh_token.clone();
    let rotated = app
        .post("/api/auth/refresh", json!({ "refresh_token": first }))
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(access)).await.status(),
        StatusCode::OK
    );

    // The first token again: it leaked. Refused, and the live second one dies too.
    let reuse = app
        .post("/api/auth/refresh", json!({ "refresh_token": first }))
        .await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    let after = app
        .post("/api/auth/refresh", json!({ "refresh_token": second }))
        .await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert!(app
        .audit_actions()
        .contains(&("auth.refresh_reuse".into(), "denied".into())));
    app.stop().await;
}

#[tokio::test]
async fn logout_ends_the_refresh_family() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let out = app
        .post(
            "/api/auth/logout",
            json!({ "refresh_token": admin.refresh_token }),
        )
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let refresh = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": admin.refresh_token }),
        )
        .await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn expired_refresh_tokens_are_refused() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    app.advance(Duration::from_secs(15 * 24 * 3600));
    let refresh = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": admin.refresh_token }),
        )
        .await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

fn secret(app: &TestApp) -> Vec<u8> {
    let path = app.services().config.jwt_secret_path();
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .as_bytes()
        .to_vec()
}

fn claims(admin: &crate::support::Admin, iat: i64) -> Value {
    json!({
        "sub": admin.user_id, "tid": admin.enterprise_id, "role": "it_admin", "tv": 0,
        "jti": "x", "iat": iat, "exp": iat + 900, "iss": "enterprise-sync", "aud": "enterprise-sync",
    })
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let now = app.clock_now().timestamp();
    let key = EncodingKey::from_secret(&secret(&app));
    let sign = |alg: Algorithm, claims: &Value, key: &EncodingKey| {
        encode(&Header::new(alg), claims, key).unwrap()
    };

    // Control: a token we sign with the real secret and correct claims works.
    let genuine = sign(Algorithm::HS256, &claims(&admin, now), &key);
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&genuine)).await.status(),
        StatusCode::OK
    );

    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = engine.encode(claims(&admin, now).to_string());
    let alg_none = format!(
        "{}.{payload}.",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    let wrong_key = sign(
        Algorithm::HS256,
        &claims(&admin, now),
        &EncodingKey::from_secret(b"another secret of thirty-two bytes!!"),
    );
    let hs384 = sign(Algorithm::HS384, &claims(&admin, now), &key);
    let expired = sign(Algorithm::HS256, &claims(&admin, now - 3600), &key);
    let mut wrong_aud = claims(&admin, now);
    wrong_aud["aud"] = json!("someone-else");
    let wrong_aud = sign(Algorithm::HS256, &wrong_aud, &key);
    let mut wrong_iss = claims(&admin, now);
    wrong_iss["iss"] = json!("evil");
    let wrong_iss = sign(Algorithm::HS256, &wrong_iss, &key);
    let mut no_exp = claims(&admin, now);
    no_exp.as_object_mut().unwrap().remove("exp");
    let no_exp = sign(Algorithm::HS256, &no_exp, &key);
    let mut other_role = claims(&admin, now);
    other_role["tid"] = json!(uuid::Uuid::now_v7().to_string());
    let other_tenant = sign(Algorithm::HS256, &other_role, &key);

    for (name, token) in [
        ("alg none", alg_none),
        ("wrong signature", wrong_key),
        ("HS384", hs384),
        ("expired", expired),
        ("wrong audience", wrong_aud),
        ("wrong issuer", wrong_iss),
        ("no exp", no_exp),
        ("tenant not the user's", other_tenant),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        let response = app
            .get("/api/enterprise/api-keys", &Auth::Bearer(&token))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{name}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn access_tokens_expire_with_the_clock() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    app.advance(Duration::from_secs(14 * 60));
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&admin.access_token))
            .await
            .status(),
        StatusCode::OK
    );
    app.advance(Duration::from_secs(2 * 60));
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&admin.access_token))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn a_token_version_bump_or_deactivation_kills_live_tokens() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    app.raw_db()
        .execute(
            "UPDATE users SET token_version = token_version + 1 WHERE id = ?1",
            [&admin.user_id],
        )
        .unwrap();
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&admin.access_token))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let again = app
        .login(&admin.email, PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let token = again["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(token)).await.status(),
        StatusCode::OK
    );
    app.raw_db()
        .execute(
            "UPDATE users SET active = 0 WHERE id = ?1",
            [&admin.user_id],
        )
        .unwrap();
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&admin.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

/// A sign-in from another client address (loopback has all of 127/8).
async fn login_from(app: &TestApp, from: &str, email: &str, password: &str) -> StatusCode {
    reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

fn audit_reasons(app: &TestApp) -> Vec<String> {
    let conn = app.raw_db();
    let mut st = conn
        .prepare("SELECT reason_code FROM audit_log WHERE reason_code IS NOT NULL")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn repeated_failures_shut_out_their_address_not_the_person() {
    let app = TestApp::start_with(|c| c.auth.lockout_threshold = 3).await;
    let admin = app.admin("Acme").await;
    for _ in 0..3 {
        assert_eq!(
            login_from(&app, "127.0.0.9", &admin.email, "wrong wrong wrong wrong").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // That address is shut out of the account: even the right password is
    // refused, with the same work (one argon2 run) and the same answer.
    let hashes = app.services().passwords.hashes_run();
    assert_eq!(
        login_from(&app, "127.0.0.9", &admin.email, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.services().passwords.hashes_run(), hashes + 1);
    // The person, from their own address, is not.
    assert_eq!(
        login_from(&app, "127.0.0.1", &admin.email, PASSWORD).await,
        StatusCode::OK
    );
    app.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(
        login_from(&app, "127.0.0.9", &admin.email, PASSWORD).await,
        StatusCode::OK
    );
    let reasons = audit_reasons(&app);
    assert!(reasons.contains(&"lockout_started".to_string()));
    assert!(reasons.contains(&"address_locked".to_string()));
    app.stop().await;
}

#[tokio::test]
async fn many_addresses_meet_an_account_wide_ceiling() {
    let app = TestApp::start_with(|c| c.auth.lockout_threshold = 2).await;
    let admin = app.admin("Acme").await;
    // Twenty failures (ten times the address threshold), two per address.
    for n in 0..10 {
        for _ in 0..2 {
            assert_eq!(
                login_from(
                    &app,
                    &format!("127.0.1.{n}"),
                    &admin.email,
                    "wrong wrong wrong wrong"
                )
                .await,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    assert_eq!(
        login_from(&app, "127.0.0.1", &admin.email, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    app.advance(Duration::from_secs(61));
    assert_eq!(
        login_from(&app, "127.0.0.1", &admin.email, PASSWORD).await,
        StatusCode::OK
    );
    assert!(audit_reasons(&app).contains(&"account_locked".to_string()));
    app.stop().await;
}

#[tokio::test]
async fn locked_unknown_and_wrong_password_answers_take_the_same_time() {
    let app = TestApp::start_with(|c| c.auth.lockout_threshold = 3).await;
    let locked = app.admin("Locked").await;
    let other = app.admin("Other").await;
    for _ in 0..3 {
        app.login(&locked.email, "wrong wrong wrong wrong").await;
    }
    async fn median(app: &TestApp, email: &str) -> (Duration, String) {
        let mut times = Vec::new();
        let mut body = String::new();
        for _ in 0..20 {
            let started = std::time::Instant::now();
            let response = app.login(email, "wrong wrong wrong wrong").await;
            times.push(started.elapsed());
            body = response.text().await.unwrap();
        }
        times.sort();
        (times[10], body)
    }
    let (locked_time, locked_body) = median(&app, &locked.email).await;
    let (unknown_time, unknown_body) = median(&app, "nobody@nowhere.example").await;
    let (wrong_time, wrong_body) = median(&app, &other.email).await;
    assert_eq!(locked_body, unknown_body);
    assert_eq!(unknown_body, wrong_body);
    let times = [locked_time, unknown_time, wrong_time];
    let (fastest, slowest) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    // Generous: the password hash dominates every answer, so they stay close.
    assert!(
        slowest.as_secs_f64() < fastest.as_secs_f64() * 2.5,
        "medians locked {locked_time:?}, unknown {unknown_time:?}, wrong {wrong_time:?}"
    );
    app.stop().await;
}

async fn refresh_status(app: &TestApp, refresh_token: &str) -> StatusCode {
    app.post(
        "/api/auth/refresh",
        json!({ "refresh_token": refresh_token }),
    )
    .await
    .status()
}

async fn sign_in(app: &TestApp, email: &str) -> (String, String) {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    (
        tokens["access_token"].as_str().unwrap().to_string(),
        tokens["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn import_user(app: &TestApp, key: &str, user: Value) {
    let response = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/users/bulk-import",
            &Auth::Key(key),
            Some(json!({ "users": [user] })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["failed"], 0, "{report}");
}

#[tokio::test]
async fn sessions_end_with_deactivation_role_change_and_logout() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let store = app.seed_store(&admin.enterprise_id, "Paris").await;
    let (_, key) = app.key(&admin, &["users:write"]).await;
    let email = "marie@acme.example";
    app.seed_user(
        &admin.enterprise_id,
        email,
        enterprise_sync::domain::Role::Manager,
        Some(&store),
    )
    .await;

    // Deactivated, then back: the refresh token from before is dead.
    let (_, before_leaving) = sign_in(&app, email).await;
    import_user(&app, &key, json!({ "email": email, "active": false })).await;
    import_user(&app, &key, json!({ "email": email, "active": true })).await;
    assert_eq!(
        refresh_status(&app, &before_leaving).await,
        StatusCode::UNAUTHORIZED
    );

    // A role change: the old refresh token does not refresh into the new role.
    let (_, as_manager) = sign_in(&app, email).await;
    import_user(
        &app,
        &key,
        json!({ "email": email, "role": "seller", "store_id": store }),
    )
    .await;
    assert_eq!(
        refresh_status(&app, &as_manager).await,
        StatusCode::UNAUTHORIZED
    );

    // Logout ends the access token of that sign-in too, not another one.
    let (access, refresh) = sign_in(&app, email).await;
    let (other_access, _) = sign_in(&app, email).await;
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&access)).await.status(),
        StatusCode::OK
    );
    let out = app
        .post("/api/auth/logout", json!({ "refresh_token": refresh }))
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&access)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&other_access))
            .await
            .status(),
        StatusCode::OK
    );
    let reasons = audit_reasons(&app);
    assert!(
        reasons.contains(&"sessions_ended".to_string()),
        "{reasons:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_signed_in_person_has_a_rate_limit_too() {
    let app = TestApp::start_with(|c| c.rate_limit.per_person_per_minute = 5).await;
    let admin = app.admin("Acme").await;
    for _ in 0..5 {
        let response = app.get("/api/me", &Auth::Bearer(&admin.access_token)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = app.get("/api/me", &Auth::Bearer(&admin.access_token)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn logout_everywhere_ends_every_session_of_the_person_only() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let other = app.admin("Other").await;
    let (laptop_access, laptop_refresh) = sign_in(&app, &admin.email).await;
    let (phone_access, phone_refresh) = sign_in(&app, &admin.email).await;
    let response = app
        .call(
            reqwest::Method::POST,
            "/api/me/logout-everywhere",
            &Auth::Bearer(&phone_access),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for access in [&laptop_access, &phone_access] {
        assert_eq!(
            app.get("/api/me", &Auth::Bearer(access)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for refresh in [&laptop_refresh, &phone_refresh] {
        assert_eq!(
            refresh_status(&app, refresh).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Another person's session goes on; the person signs in again.
    assert_eq!(
        app.get("/api/me", &Auth::Bearer(&other.access_token))
            .await
            .status(),
        StatusCode::OK
    );
    sign_in(&app, &admin.email).await;
    assert!(app
        .audit_actions()
        .contains(&("auth.logout_everywhere".into(), "success".into())));
    app.stop().await;
}

/// Registers `company` with its admin `email` and `password`; its id.
async fn register_with(app: &TestApp, company: &str, email: &str, password: &str) -> String {
    let response = app
        .post(
            "/api/enterprise/register",
            json!({
                "company_name": company,
                "company_email": "it@company.example",
                "sync_mode": "api",
                "it_admin_name": "Sam Admin",
                "it_admin_email": email,
                "it_admin_password": password,
            }),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["enterprise_account_id"].as_str().unwrap().to_string()
}

async fn login_to(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let response = app.post("/api/auth/login", body).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

const OTHER_PASSWORD: &str = "a different passphrase entirely";

#[tokio::test]
async fn one_email_in_several_enterprises_signs_in_by_its_password_or_a_choice() {
    let app = TestApp::start().await;
    let email = "sam@consultant.example";
    let acme = register_with(&app, "Acme", email, PASSWORD).await;
    let beta = register_with(&app, "Beta", email, PASSWORD).await;
    let gamma = register_with(&app, "Gamma", email, OTHER_PASSWORD).await;

    // Gamma's password opens Gamma's account only.
    let (status, body) =
        login_to(&app, json!({ "email": email, "password": OTHER_PASSWORD })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["enterprise_account_id"], json!(gamma));

    // The shared password opens two: the person chooses, among those only.
    let (status, body) = login_to(&app, json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "enterprise_required");
    assert_eq!(
        body["error"]["details"]["enterprises"],
        json!([
            { "id": acme, "company_name": "Acme" },
            { "id": beta, "company_name": "Beta" },
        ])
    );
    assert!(body.get("access_token").is_none());
    let (status, body) = login_to(
        &app,
        json!({ "email": email, "password": PASSWORD, "enterprise_id": beta }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["enterprise_account_id"], json!(beta));
    let me = app
        .get(
            "/api/me",
            &Auth::Bearer(body["access_token"].as_str().unwrap()),
        )
        .await;
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["enterprise_account_id"], json!(beta));

    // Naming an enterprise whose account the password does not open, or
    // none at all: the answer of a wrong password.
    let (_, wrong) = login_to(
        &app,
        json!({ "email": email, "password": "not the password at all" }),
    )
    .await;
    for enterprise in [gamma.clone(), uuid::Uuid::now_v7().to_string()] {
        let (status, body) = login_to(
            &app,
            json!({ "email": email, "password": PASSWORD, "enterprise_id": enterprise }),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, wrong);
    }
    let (status, body) = login_to(
        &app,
        json!({ "email": email, "password": PASSWORD, "enterprise_id": "acme" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["details"]["fields"][0]["field"],
        "enterprise_id"
    );
    // A wrong password counts against each account the email names, each
    // audited in its own enterprise.
    let failures: Vec<(String, i64)> = app
        .raw_db()
        .prepare(
            "SELECT enterprise_account_id, failed_login_count FROM users
              WHERE email = ?1 ORDER BY enterprise_account_id",
        )
        .unwrap()
        .query_map([email], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(failures.len(), 3);
    assert!(
        failures.iter().all(|(_, count)| *count >= 1),
        "{failures:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn checking_an_email_costs_one_hash_however_many_enterprises_know_it() {
    let app = TestApp::start().await;
    let shared = "sam@consultant.example";
    for (company, password) in [
        ("Acme", PASSWORD),
        ("Beta", OTHER_PASSWORD),
        ("Gamma", "yet another long passphrase"),
    ] {
        register_with(&app, company, shared, password).await;
    }
    register_with(&app, "Solo", "solo@solo.example", PASSWORD).await;
    let runs = |app: &TestApp| app.services().passwords.hashes_run();
    for (email, password) in [
        ("nobody@nowhere.example", "wrong wrong wrong wrong"),
        ("solo@solo.example", "wrong wrong wrong wrong"),
        (shared, "wrong wrong wrong wrong"),
        (shared, OTHER_PASSWORD),
        ("solo@solo.example", PASSWORD),
    ] {
        let before = runs(&app);
        app.login(email, password).await;
        assert_eq!(runs(&app) - before, 1, "{email} with {password:?}");
    }

    // And the answers take the same time (medians; generous bounds).
    async fn median(app: &TestApp, email: &str) -> (Duration, String) {
        let mut times = Vec::new();
        let mut body = String::new();
        for _ in 0..15 {
            let started = std::time::Instant::now();
            let response = app.login(email, "wrong wrong wrong wrong").await;
            times.push(started.elapsed());
            body = response.text().await.unwrap();
        }
        times.sort();
        (times[7], body)
    }
    let (unknown_time, unknown_body) = median(&app, "nobody@nowhere.example").await;
    let (one_time, one_body) = median(&app, "solo@solo.example").await;
    let (three_time, three_body) = median(&app, shared).await;
    assert_eq!(unknown_body, one_body);
    assert_eq!(one_body, three_body);
    let times = [unknown_time, one_time, three_time];
    let (fastest, slowest) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(
        slowest.as_secs_f64() < fastest.as_secs_f64() * 2.0,
        "medians unknown {unknown_time:?}, one enterprise {one_time:?}, three {three_time:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_hash_made_before_salts_came_from_emails_is_replaced_at_sign_in() {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let app = TestApp::start().await;
    let email = "old@acme.example";
    register_with(&app, "Acme", email, PASSWORD).await;
    // A hash of before V15: today's parameters, a random salt.
    let legacy = argon2::Argon2::default()
        .hash_password(
            PASSWORD.as_bytes(),
            &SaltString::encode_b64(b"random old salt!").unwrap(),
        )
        .unwrap()
        .to_string();
    app.raw_db()
        .execute(
            "UPDATE users SET password_hash = ?1 WHERE email = ?2",
            [&legacy, email],
        )
        .unwrap();
    assert_eq!(app.login(email, PASSWORD).await.status(), StatusCode::OK);
    let stored: String = app
        .raw_db()
        .query_row(
            "SELECT password_hash FROM users WHERE email = ?1",
            [email],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(stored, legacy, "replaced by the email-salted hash");
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    // Now a second enterprise knowing the email adds no argon2 run.
    register_with(&app, "Beta", email, OTHER_PASSWORD).await;
    let before = app.services().passwords.hashes_run();
    assert_eq!(app.login(email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.services().passwords.hashes_run() - before, 1);
    app.stop().await;
}
