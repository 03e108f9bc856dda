//! The pages an invitation email and a password reset email link to: the
//! person chooses a password. Plain server-rendered HTML (no script, no
//! style), in the enterprise's language; the token in the form is the only
//! credential, so there is no session to forge a request for.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::html::escape;
use crate::domain::notifications::Language;
use crate::http::extract::{AppState, Meta, QueryParams};
use crate::service::invitations::{self, Acceptance, LinkHolder, LinkPurpose};
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, submit))
        .routes(routes!(show_reset, submit_reset))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TokenQuery {
    /// The token of the link.
    token: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ChosenPassword {
    token: Option<String>,
    password: Option<String>,
    password_confirmation: Option<String>,
}

struct Words {
    title: &'static str,
    hello: &'static str,
    password: &'static str,
    confirmation: &'static str,
    rules: &'static str,
    submit: &'static str,
    mismatch: &'static str,
    done: &'static str,
    invalid: &'static str,
    used: &'static str,
    replaced: &'static str,
    expired: &'static str,
}

fn words(purpose: LinkPurpose, language: Language) -> Words {
    match (purpose, language) {
        (LinkPurpose::PasswordReset, Language::Fr) => Words {
            title: "Choisir un nouveau mot de passe",
            hello: "Bonjour",
            password: "Nouveau mot de passe",
            confirmation: "Confirmez le mot de passe",
            rules: "Au moins 15 caractères ; une phrase de plusieurs mots est idéale.",
            submit: "Enregistrer",
            mismatch: "Les deux mots de passe ne sont pas identiques.",
            done: "Votre nouveau mot de passe est enregistré ; vos autres sessions sont fermées. Connectez-vous avec votre adresse email.",
            invalid: "Ce lien de réinitialisation n'est pas valide.",
            used: "Ce lien a déjà été utilisé : demandez-en un nouveau si besoin.",
            replaced: "Un lien plus récent a remplacé celui-ci : utilisez le dernier reçu.",
            expired: "Ce lien a expiré : demandez-en un nouveau.",
        },
        (LinkPurpose::PasswordReset, Language::En) => Words {
            title: "Choose a new password",
            hello: "Hello",
            password: "New password",
            confirmation: "Confirm the password",
            rules: "At least 15 characters; a phrase of several words is ideal.",
            submit: "Save",
            mismatch: "The two passwords differ.",
            done: "Your new password is saved and your other sessions are ended. Sign in with your email address.",
            invalid: "This password reset link is not valid.",
            used: "This link has already been used: ask for a new one if needed.",
            replaced: "A newer link replaced this one: use the latest you received.",
            expired: "This link has expired: ask for a new one.",
        },
        (LinkPurpose::Invitation, Language::Fr) => Words {
            title: "Choisir votre mot de passe",
            hello: "Bonjour",
            password: "Mot de passe",
            confirmation: "Confirmez le mot de passe",
            rules: "Au moins 15 caractères ; une phrase de plusieurs mots est idéale.",
            submit: "Enregistrer",
            mismatch: "Les deux mots de passe ne sont pas identiques.",
            done: "Votre mot de passe est enregistré. Vous pouvez vous connecter à Retail Performer avec votre adresse email.",
            invalid: "Ce lien d'invitation n'est pas valide.",
            used: "Cette invitation a déjà été utilisée : connectez-vous avec votre mot de passe.",
            replaced: "Une invitation plus récente a remplacé celle-ci : utilisez le dernier lien reçu.",
            expired: "Cette invitation a expiré : demandez-en une nouvelle à votre administrateur.",
        },
        (LinkPurpose::Invitation, Language::En) => Words {
            title: "Choose your password",
            hello: "Hello",
            password: "Password",
            confirmation: "Confirm the password",
            rules: "At least 15 characters; a phrase of several words is ideal.",
            submit: "Save",
            mismatch: "The two passwords differ.",
            done: "Your password is saved. You can sign in to Retail Performer with your email address.",
            invalid: "This invitation link is not valid.",
            used: "This invitation has already been used: sign in with your password.",
            replaced: "A newer invitation replaced this one: use the latest link you received.",
            expired: "This invitation has expired: ask your administrator for a new one.",
        },
    }
}

/// The reader's language from `Accept-Language`, for links that name no
/// enterprise: the first of French or English it lists, else French.
fn browser_language(headers: &HeaderMap) -> Language {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(',')
        .filter_map(|tag| {
            let tag = tag.split(';').next()?.trim();
            Language::parse(tag.get(..2)?)
        })
        .next()
        .unwrap_or_default()
}

fn html(
    status: StatusCode,
    (purpose, language): (LinkPurpose, Language),
    body: String,
) -> Response {
    let w = words(purpose, language);
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title></head>\n<body>\n<h1>{}</h1>\n{body}</body></html>\n",
        language.as_str(),
        w.title,
        w.title
    );
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn form(
    (purpose, language): (LinkPurpose, Language),
    token: &str,
    person: &str,
    problem: Option<&str>,
) -> String {
    let w = words(purpose, language);
    let problem = problem
        .map(|p| format!("<p role=\"alert\"><strong>{}</strong></p>\n", escape(p)))
        .unwrap_or_default();
    format!(
        "<p>{} {},</p>\n{problem}<form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\n\
         <p><label>{}<br><input type=\"password\" name=\"password\" autocomplete=\"new-password\" minlength=\"15\" required></label></p>\n\
         <p><label>{}<br><input type=\"password\" name=\"password_confirmation\" autocomplete=\"new-password\" minlength=\"15\" required></label></p>\n\
         <p>{}</p>\n<p><button type=\"submit\">{}</button></p>\n</form>\n",
        w.hello,
        escape(person),
        purpose.path(),
        escape(token),
        w.password,
        w.confirmation,
        w.rules,
        w.submit
    )
}

/// The message for a link that cannot be used.
fn refusal((purpose, language): (LinkPurpose, Language), error: &AppError) -> String {
    let w = words(purpose, language);
    let message = match error.code() {
        "invitation_used" | "reset_link_used" => w.used,
        "invitation_replaced" | "reset_link_replaced" => w.replaced,
        "invitation_expired" | "reset_link_expired" => w.expired,
        _ => w.invalid,
    };
    format!("<p role=\"alert\">{message}</p>\n")
}

/// The link's page: a form to choose a password, or why the link cannot be used.
async fn show_page(
    svc: &AppState,
    purpose: LinkPurpose,
    headers: &HeaderMap,
    token: String,
) -> Result<Response, AppError> {
    let page = invitations::page(svc, purpose, &token).await?;
    let language = page.language.unwrap_or_else(|| browser_language(headers));
    let shown = (purpose, language);
    Ok(match page.state {
        Ok(holder) => html(
            StatusCode::OK,
            shown,
            form(shown, &token, &holder.name, None),
        ),
        Err(why) => html(StatusCode::BAD_REQUEST, shown, refusal(shown, &why)),
    })
}

/// The form's answer: the password is set, or the form again with the
/// problem in the page's language.
async fn submit_page(
    svc: &AppState,
    purpose: LinkPurpose,
    (meta, headers): (&crate::service::RequestMeta, &HeaderMap),
    input: ChosenPassword,
) -> Result<Response, AppError> {
    let token = input.token.unwrap_or_default();
    let page = invitations::page(svc, purpose, &token).await?;
    let language = page.language.unwrap_or_else(|| browser_language(headers));
    let shown = (purpose, language);
    let w = words(purpose, language);
    let holder: LinkHolder = match page.state {
        Ok(holder) => holder,
        Err(why) => return Ok(html(StatusCode::BAD_REQUEST, shown, refusal(shown, &why))),
    };
    let password = input.password.unwrap_or_default();
    let again = |problem: &str| {
        let body = form(shown, &token, &holder.name, Some(problem));
        Ok(html(StatusCode::UNPROCESSABLE_ENTITY, shown, body))
    };
    if input.password_confirmation.as_deref() != Some(password.as_str()) {
        return again(w.mismatch);
    }
    // The service checks the same policy; here it speaks the page's language.
    let context = [holder.email.as_str(), &holder.name, &holder.company];
    if let Some(weakness) = crate::domain::password::problem(&password, &context) {
        return again(&format!("{} {}", w.password, weakness.message(language)));
    }
    let accepted = invitations::accept(
        svc,
        purpose,
        meta,
        Acceptance {
            token: Some(token.clone()),
            password: Some(password),
        },
    )
    .await;
    Ok(match accepted {
        Ok(_) => html(StatusCode::OK, shown, format!("<p>{}</p>\n", w.done)),
        Err(AppError::Validation(problems)) => {
            let message: Vec<String> = problems.into_iter().map(|p| p.message).collect();
            return again(&message.join(" "));
        }
        // Used in between, by another tab or person.
        Err(refused @ AppError::BadRequest { .. }) => {
            html(StatusCode::BAD_REQUEST, shown, refusal(shown, &refused))
        }
        Err(other) => return Err(other),
    })
}

/// The invitation page: a form to choose a password, or why the link cannot be used.
#[utoipa::path(
    get,
    operation_id = "invitationPage",
    path = "/invitations/accept",
    tag = "sessions",
    params(TokenQuery),
    responses(
        (status = 200, description = "The form (HTML)", content_type = "text/html"),
        (status = 400, description = "The link is unknown, used, replaced or expired (HTML, says which)", content_type = "text/html"),
    )
)]
async fn show(
    State(svc): State<AppState>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<TokenQuery>,
) -> Result<Response, AppError> {
    let token = query.token.unwrap_or_default();
    show_page(&svc, LinkPurpose::Invitation, &headers, token).await
}

/// The invitation form's answer: the password is set, or the form again with the problem.
#[utoipa::path(
    post,
    operation_id = "invitationPageSubmit",
    path = "/invitations/accept",
    tag = "sessions",
    request_body(content = ChosenPassword, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The password is set (HTML)", content_type = "text/html"),
        (status = 400, description = "The link cannot be used (HTML)", content_type = "text/html"),
        (status = 422, description = "The passwords differ or break the policy: the form again (HTML)", content_type = "text/html"),
        (status = 429, description = "Too many attempts from this address"),
    )
)]
async fn submit(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(input): Form<ChosenPassword>,
) -> Result<Response, AppError> {
    submit_page(&svc, LinkPurpose::Invitation, (&meta, &headers), input).await
}

/// The password reset page (the link of a reset email, or one an operator
/// printed): a form to choose a new password, or why the link cannot be used.
#[utoipa::path(
    get,
    operation_id = "passwordResetPage",
    path = "/password-reset",
    tag = "sessions",
    params(TokenQuery),
    responses(
        (status = 200, description = "The form (HTML)", content_type = "text/html"),
        (status = 400, description = "The link is unknown, used, replaced or expired (HTML, says which)", content_type = "text/html"),
    )
)]
async fn show_reset(
    State(svc): State<AppState>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<TokenQuery>,
) -> Result<Response, AppError> {
    let token = query.token.unwrap_or_default();
    show_page(&svc, LinkPurpose::PasswordReset, &headers, token).await
}

/// The reset form's answer: the new password is set (every session of the
/// person ends), or the form again with the problem.
#[utoipa::path(
    post,
    operation_id = "passwordResetPageSubmit",
    path = "/password-reset",
    tag = "sessions",
    request_body(content = ChosenPassword, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The password is set (HTML)", content_type = "text/html"),
        (status = 400, description = "The link cannot be used (HTML)", content_type = "text/html"),
        (status = 422, description = "The passwords differ or break the policy: the form again (HTML)", content_type = "text/html"),
        (status = 429, description = "Too many attempts from this address"),
    )
)]
async fn submit_reset(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    Form(input): Form<ChosenPassword>,
) -> Result<Response, AppError> {
    submit_page(&svc, LinkPurpose::PasswordReset, (&meta, &headers), input).await
}
