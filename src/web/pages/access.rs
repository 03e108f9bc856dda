//! Who calls the dashboard, found the one way every page uses: extractors.
//! `SignedIn` is any signed-in person and `DashboardAdmin` a signed-in IT
//! admin; `PersonForm` and `AdminForm` are those plus a form whose CSRF token
//! matches the session's. Their rejection is the page to answer instead: the
//! sign-in redirect, or the 403 page in the person's language.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{field, form_fields, message, same_token, signed_in};
use crate::domain::notifications::Language;
use crate::http::AppState;
use crate::service::access::AdminCtx;
use crate::service::web_sessions::WebUser;
use crate::web::{language, redirect};

/// A signed-in person (IT admin, manager or seller) and the language they read.
pub struct SignedIn {
    pub user: WebUser,
    pub language: Language,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &AppState) -> Result<Self, Response> {
        let language = language(&parts.headers);
        match signed_in(svc, &parts.headers).await {
            Ok(Some(user)) => Ok(SignedIn { user, language }),
            Ok(None) => Err(redirect("/sign-in")),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A signed-in IT admin, with what they may do and the language they read.
pub struct DashboardAdmin {
    pub user: WebUser,
    pub ctx: AdminCtx,
    pub language: Language,
}

/// The page a refusal is shown on, which its language switch comes back to:
/// a page itself, or for a form's POST the part of the dashboard it belongs
/// to (`/webhooks/{id}/delete` → `/webhooks`), since a POST route has no page.
fn page_path(parts: &Parts) -> String {
    let path = parts.uri.path();
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return path.to_string();
    }
    match path.trim_start_matches('/').split('/').next().unwrap_or("") {
        // Signing out has no page of its own.
        "sign-out" => "/".to_string(),
        part => format!("/{part}"),
    }
}

impl FromRequestParts<AppState> for DashboardAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &AppState) -> Result<Self, Response> {
        let SignedIn { user, language } = SignedIn::from_request_parts(parts, svc).await?;
        match user.principal().require_admin() {
            Ok(ctx) => Ok(DashboardAdmin {
                user,
                ctx,
                language,
            }),
            Err(_) => Err(message(
                StatusCode::FORBIDDEN,
                language,
                &page_path(parts),
                Some(&user),
                "forbidden",
            )),
        }
    }
}

/// A signed-in person's form post, its CSRF token checked; `fields` keeps
/// repeated fields in order.
pub struct PersonForm {
    pub user: WebUser,
    pub language: Language,
    pub fields: Vec<(String, String)>,
}

/// An IT admin's form post, its CSRF token checked.
pub struct AdminForm {
    pub user: WebUser,
    pub ctx: AdminCtx,
    pub language: Language,
    pub fields: Vec<(String, String)>,
}

/// The form's fields, once its CSRF token is the session's.
async fn checked_form(
    parts: Parts,
    body: axum::body::Body,
    svc: &AppState,
    (user, language): (&WebUser, Language),
) -> Result<Vec<(String, String)>, Response> {
    let path = page_path(&parts);
    let body = Bytes::from_request(Request::from_parts(parts, body), svc)
        .await
        .map_err(IntoResponse::into_response)?;
    let fields = form_fields(&body);
    if !same_token(&user.session.csrf_token, field(&fields, "csrf")) {
        return Err(message(
            StatusCode::FORBIDDEN,
            language,
            &path,
            Some(user),
            "form_expired",
        ));
    }
    Ok(fields)
}

impl FromRequest<AppState> for PersonForm {
    type Rejection = Response;

    async fn from_request(request: Request, svc: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let SignedIn { user, language } = SignedIn::from_request_parts(&mut parts, svc).await?;
        let fields = checked_form(parts, body, svc, (&user, language)).await?;
        Ok(PersonForm {
            user,
            language,
            fields,
        })
    }
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(request: Request, svc: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let DashboardAdmin {
            user,
            ctx,
            language,
        } = DashboardAdmin::from_request_parts(&mut parts, svc).await?;
        let fields = checked_form(parts, body, svc, (&user, language)).await?;
        Ok(AdminForm {
            user,
            ctx,
            language,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, path: &str) -> Parts {
        let (parts, ()) = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    #[test]
    fn a_refused_post_is_shown_on_its_part_of_the_dashboard() {
        assert_eq!(
            page_path(&parts(Method::GET, "/webhooks/abc")),
            "/webhooks/abc"
        );
        assert_eq!(
            page_path(&parts(Method::POST, "/webhooks/abc/delete")),
            "/webhooks"
        );
        assert_eq!(page_path(&parts(Method::POST, "/settings")), "/settings");
        assert_eq!(page_path(&parts(Method::POST, "/sign-out")), "/");
    }
}
