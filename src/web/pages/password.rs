//! A person's own password (changed knowing the current one) and the
//! forgotten-password form (a reset link by email).

use super::*;
use crate::service::password_changes::{self, ForgotPassword, Keep, PasswordChange};

fn password_page(
    user: &WebUser,
    language: Language,
    status: StatusCode,
    (saved, problem): (bool, Option<String>),
) -> Response {
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "password", "/password", Some(user), &csrf);
    render(
        status,
        "password.html",
        &frame,
        json!({ "saved": saved, "problem": problem }),
    )
}

pub async fn password_form(SignedIn { user, language }: SignedIn) -> Result<Response, AppError> {
    Ok(password_page(
        &user,
        language,
        StatusCode::OK,
        (false, None),
    ))
}

pub async fn change_password(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    PersonForm {
        user,
        language,
        fields,
    }: PersonForm,
) -> Result<Response, AppError> {
    let refuse = |problem: String| {
        Ok(password_page(
            &user,
            language,
            StatusCode::UNPROCESSABLE_ENTITY,
            (false, Some(problem)),
        ))
    };
    let new = field(&fields, "new_password");
    if new != field(&fields, "new_password_confirmation") {
        return refuse(crate::web::i18n::word(language, "passwords_differ").into());
    }
    // The service checks the same policy; here it speaks the page's language.
    let context = [
        user.session.email.as_str(),
        &user.session.name,
        &user.session.company_name,
    ];
    if let Some(weakness) = crate::domain::password::problem(new, &context) {
        let label = crate::web::i18n::word(language, "new_password");
        return refuse(format!("{label} : {}", weakness.message(language)));
    }
    let change = PasswordChange {
        current_password: Some(field(&fields, "current_password").to_string()),
        new_password: Some(new.to_string()),
    };
    let id_hash =
        crate::service::web_sessions::hash(cookie(&headers, SESSION_COOKIE).unwrap_or_default());
    let session = (user.session.user, user.session.enterprise);
    match password_changes::change_own(&svc, &meta, session, change, Keep::Dashboard(id_hash)).await
    {
        Ok(_) => Ok(password_page(&user, language, StatusCode::OK, (true, None))),
        Err(AppError::Validation(problems)) => {
            let wrong = problems.iter().any(|p| p.code == "wrong_password");
            if wrong {
                refuse(crate::web::i18n::word(language, "wrong_current_password").into())
            } else {
                refuse(
                    problems
                        .into_iter()
                        .map(|p| p.message)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            }
        }
        Err(other) => Err(other),
    }
}

fn forgot_page(
    svc: &Services,
    language: Language,
    status: StatusCode,
    (sent, problem): (bool, Option<&str>),
) -> Result<Response, AppError> {
    // Like the sign-in form: its token must match a cookie only this site sets.
    let token = sessions::new_refresh_token()?;
    let frame = Frame::new(
        language,
        "forgot_password",
        "/forgot-password",
        None,
        &token,
    );
    let mut response = render(
        status,
        "forgot_password.html",
        &frame,
        json!({ "sent": sent, "problem": problem }),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure(svc), PRESESSION_COOKIE, &token, 3600),
    );
    Ok(response)
}

pub async fn forgot_password_form(
    State(svc): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    forgot_page(&svc, language(&headers), StatusCode::OK, (false, None))
}

/// The same page for every address: the link goes out after the answer.
pub async fn forgot_password(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let fields = form_fields(&body);
    let expected = cookie(&headers, PRESESSION_COOKIE).unwrap_or_default();
    if !same_token(expected, field(&fields, "csrf")) {
        let problem = crate::web::i18n::word(language, "form_expired");
        return forgot_page(
            &svc,
            language,
            StatusCode::FORBIDDEN,
            (false, Some(problem)),
        );
    }
    let request = ForgotPassword {
        email: Some(field(&fields, "email").to_string()),
    };
    password_changes::forgot(svc.clone(), meta, request);
    forgot_page(&svc, language, StatusCode::OK, (true, None))
}
