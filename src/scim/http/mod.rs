//! The `/scim/v2` routes. Handlers read the request the SCIM way (bodies as
//! `application/scim+json` or `application/json`, query parameters, PATCH
//! operations), call `service::scim`, and answer SCIM JSON; errors become
//! SCIM Errors in [`super::error::scim_errors`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::error::{ScimError, CONTENT_TYPE};
use crate::domain::scim::document::{self, Op};
use crate::domain::scim::filter::{self, Filter};
use crate::domain::scim::schema::{self, GROUP_TYPE, LIST_RESPONSE, USER_TYPE};
use crate::domain::scim::{groups, users, FaultKind};
use crate::domain::Scope;
use crate::http::extract::{client_ip, peer_ip, request_meta, AppState};
use crate::http::observe::Caller;
use crate::http::rate_limit_headers::insert_allowed;
use crate::service::access::Principal;
use crate::service::scim::{self as service, PatchOperation, ScimCaller, ScimGroup};

pub const BASE_PATH: &str = "/scim/v2";

pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route(
            &format!("{BASE_PATH}/Users"),
            get(list_users).post(create_user),
        )
        .route(&format!("{BASE_PATH}/Users/.search"), post(search_users))
        .route(
            &format!("{BASE_PATH}/Users/{{id}}"),
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route(
            &format!("{BASE_PATH}/Groups"),
            get(list_groups).post(create_group),
        )
        .route(&format!("{BASE_PATH}/Groups/.search"), post(search_groups))
        .route(
            &format!("{BASE_PATH}/Groups/{{id}}"),
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route(&format!("{BASE_PATH}/.search"), post(root_search))
        .route_layer(from_fn_with_state(state, authenticate));
    // Discovery describes the schemas, nothing of any enterprise: clients
    // read it before they hold a token.
    Router::new()
        .route(
            &format!("{BASE_PATH}/ServiceProviderConfig"),
            get(service_provider_config),
        )
        .route(&format!("{BASE_PATH}/ResourceTypes"), get(resource_types))
        .route(
            &format!("{BASE_PATH}/ResourceTypes/{{name}}"),
            get(resource_type),
        )
        .route(&format!("{BASE_PATH}/Schemas"), get(schemas))
        .route(&format!("{BASE_PATH}/Schemas/{{urn}}"), get(schema_by_urn))
        .merge(protected)
}

/// `Authorization: Bearer <API key with the scim scope>` (or `X-API-Key`).
async fn authenticate(State(svc): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(
        req.headers(),
        peer_ip(req.extensions()),
        &svc.settings().trusted_proxies,
    );
    let token = crate::http::auth::bearer_token(req.headers()).or_else(|| {
        req.headers()
            .get(crate::http::auth::API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let Some(token) = token else {
        let mut response = ScimError::new(
            FaultKind::Unauthenticated,
            "send an API key with the scim scope as Authorization: Bearer <key>",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    let used_for = crate::http::auth::KeyUse::Scim;
    let (principal, allowed) =
        match crate::http::auth::authenticate_key(&svc, &token, ip, used_for).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let Principal::ApiKey {
        key, enterprise, ..
    } = principal
    else {
        return ScimError::new(FaultKind::Unauthenticated, "not an API key").into_response();
    };
    if let Err(e) = principal.require_scope(Scope::Scim) {
        return e.into_response();
    }
    svc.scim_activity.note(enterprise, svc.clock.now());
    req.extensions_mut().insert(ScimCaller { enterprise, key });
    let mut response = next.run(req).await;
    insert_allowed(response.headers_mut(), &allowed);
    response.extensions_mut().insert(Caller::from(&principal));
    response
}

/// The identity provider [`authenticate`] let in: the SCIM routes' extractor,
/// as `http::extract::Auth` is the REST routes'.
pub struct Scim(pub ScimCaller);

impl FromRequestParts<AppState> for Scim {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ScimError> {
        parts
            .extensions
            .get::<ScimCaller>()
            .copied()
            .map(Scim)
            .ok_or_else(|| ScimError::new(FaultKind::Unauthenticated, "no SCIM token was checked"))
    }
}

/// `https://host/scim/v2`, for `meta.location` and `$ref`: the configured
/// public address, else the Host the client used.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(public) = &state.config.public_base_url {
        return format!("{}{BASE_PATH}", public.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| state.config.listen.to_string());
    format!("http://{host}{BASE_PATH}")
}

fn scim_json(status: StatusCode, value: Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// A JSON body, as `application/scim+json` or `application/json` (or with no
/// content type, as some clients send).
pub struct ScimBody(pub Value);

impl FromRequest<AppState> for ScimBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
        if let Some(ct) = &content_type {
            if ct != CONTENT_TYPE && ct != "application/json" {
                return Err(ScimError::new(
                    FaultKind::UnsupportedMediaType,
                    format!("send {CONTENT_TYPE} or application/json, not {ct}"),
                )
                .into_response());
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ScimError::new(
                FaultKind::InvalidSyntax,
                format!("the body is not JSON: {e}"),
            )
            .into_response()
        })?;
        Ok(ScimBody(value))
    }
}

mod discovery;
mod query;
mod resources;

use discovery::*;
use query::*;
use resources::*;
