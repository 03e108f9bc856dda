//! Signing in and out, and the language switch.

use super::*;

fn sign_in_page(
    svc: &Services,
    status: StatusCode,
    language: Language,
    email: &str,
    problem: Option<&str>,
) -> Result<Response, AppError> {
    sign_in_page_with_choices(svc, status, language, email, problem, &[])
}

/// The sign-in form; with `choices`, the enterprises whose accounts the
/// email and password opened, one to pick (the password is typed again: it
/// never goes back into a page).
fn sign_in_page_with_choices(
    svc: &Services,
    status: StatusCode,
    language: Language,
    email: &str,
    problem: Option<&str>,
    choices: &[crate::error::EnterpriseChoice],
) -> Result<Response, AppError> {
    // Login CSRF: the form's token must match a cookie only this site can set.
    let token = sessions::new_refresh_token()?;
    let frame = Frame::new(language, "sign_in", "/sign-in", None, &token);
    let mut response = render(
        status,
        "sign_in.html",
        &frame,
        json!({ "email": email, "problem": problem, "choices": choices }),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure(svc), PRESESSION_COOKIE, &token, 3600),
    );
    Ok(response)
}

pub async fn sign_in_form(
    State(svc): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if signed_in(&svc, &headers).await?.is_some() {
        return Ok(redirect("/"));
    }
    sign_in_page(&svc, StatusCode::OK, language(&headers), "", None)
}

pub async fn sign_in(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let fields = form_fields(&body);
    let email = field(&fields, "email").to_string();
    let expected = cookie(&headers, PRESESSION_COOKIE).unwrap_or_default();
    if !same_token(expected, field(&fields, "csrf")) {
        let problem = crate::web::i18n::word(language, "form_expired");
        return sign_in_page(&svc, StatusCode::FORBIDDEN, language, &email, Some(problem));
    }
    let credentials = sessions::Credentials {
        email: Some(email.clone()),
        password: Some(field(&fields, "password").to_string()),
        enterprise_id: Some(field(&fields, "enterprise_id").to_string()),
    };
    match web_sessions::sign_in(&svc, &meta, credentials).await {
        Ok(started) => {
            let mut response = redirect("/");
            let secure = secure(&svc);
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                set_cookie(
                    secure,
                    SESSION_COOKIE,
                    &started.cookie,
                    SESSION_HOURS * 3600,
                ),
            );
            headers.append(
                header::SET_COOKIE,
                set_cookie(secure, PRESESSION_COOKIE, "", 0),
            );
            Ok(response)
        }
        // A malformed enterprise id comes only from a forged form: it is
        // answered as a wrong password.
        Err(AppError::Unauthenticated { .. } | AppError::Validation(_)) => {
            let problem = crate::web::i18n::word(language, "invalid_credentials");
            sign_in_page(
                &svc,
                StatusCode::UNAUTHORIZED,
                language,
                &email,
                Some(problem),
            )
        }
        Err(AppError::EnterpriseRequired(choices)) => {
            let problem = crate::web::i18n::word(language, "choose_enterprise");
            sign_in_page_with_choices(
                &svc,
                StatusCode::CONFLICT,
                language,
                &email,
                Some(problem),
                &choices,
            )
        }
        Err(other) => Err(other),
    }
}

pub async fn sign_out(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    PersonForm { user, .. }: PersonForm,
) -> Result<Response, AppError> {
    let id = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    web_sessions::sign_out(&svc, &meta, &user, id).await?;
    let mut response = redirect("/sign-in");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure(&svc), SESSION_COOKIE, "", 0),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct Back {
    to: Option<String>,
}

/// The dashboard's own pages, as the language switch may send people back
/// to: a known first segment, and only characters that cannot turn the path
/// into another site (no `//`, backslash, whitespace or control character).
fn is_dashboard_path(to: &str) -> bool {
    const PAGES: [&str; 15] = [
        "",
        "sign-in",
        "forgot-password",
        "password",
        "password-reset",
        "settings",
        "api-keys",
        "runs",
        "files",
        "users",
        "stores",
        "audit",
        "scim",
        "webhooks",
        "invitations",
    ];
    let Some(rest) = to.strip_prefix('/') else {
        return false;
    };
    let safe = to.len() <= 512
        && to
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.?=&%+".contains(&b))
        && !to.contains("//");
    let first = rest.split(['/', '?']).next().unwrap_or_default();
    safe && PAGES.contains(&first)
}

pub async fn switch_language(
    State(svc): State<AppState>,
    Path(code): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let language = Language::parse(&code).unwrap_or_default();
    // Back to a page of ours only; anything else goes home.
    let to = back
        .to
        .filter(|to| is_dashboard_path(to))
        .unwrap_or_else(|| "/".into());
    let mut response = redirect(&to);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            secure(&svc),
            crate::web::LANGUAGE_COOKIE,
            language.as_str(),
            365 * 24 * 3600,
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::is_dashboard_path;

    #[test]
    fn only_our_pages_are_places_to_go_back_to() {
        for ours in [
            "/",
            "/runs?status=failed&page=2",
            "/files/0190-ab",
            "/api-keys",
        ] {
            assert!(is_dashboard_path(ours), "{ours}");
        }
        for other in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "/%09/evil.example",
            "/\n",
            "/\r\nSet-Cookie: x",
            "/\u{b}",
            "/\u{7f}",
            "https://evil.example",
            "/evil",
            "",
        ] {
            assert!(!is_dashboard_path(other), "{other:?}");
        }
    }
}
