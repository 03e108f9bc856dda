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

// ---- Discovery --------------------------------------------------------------

async fn service_provider_config(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    scim_json(StatusCode::OK, schema::service_provider_config(&base))
}

fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let all: Vec<Value> = schema::RESOURCE_TYPES
        .iter()
        .map(|r| r.json(&base))
        .collect();
    let total = all.len();
    scim_json(StatusCode::OK, list_response(all, total, 1))
}

async fn resource_type(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ScimError> {
    let base = base_url(&state, &headers);
    schema::RESOURCE_TYPES
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(&name))
        .map(|r| scim_json(StatusCode::OK, r.json(&base)))
        .ok_or_else(|| ScimError::not_found("ResourceType", &name))
}

async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let all: Vec<Value> = schema::ALL.iter().map(|s| s.json(&base)).collect();
    let total = all.len();
    scim_json(StatusCode::OK, list_response(all, total, 1))
}

async fn schema_by_urn(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ScimError> {
    let base = base_url(&state, &headers);
    schema::ALL
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&urn))
        .map(|s| scim_json(StatusCode::OK, s.json(&base)))
        .ok_or_else(|| ScimError::not_found("Schema", &urn))
}

// ---- Query parameters -------------------------------------------------------

/// What a list or a read asks for: its filter, page and attributes.
struct ListQuery {
    filter: Option<Filter>,
    start_index: usize,
    count: usize,
    attributes: Vec<String>,
    excluded: Vec<String>,
}

fn number(name: &str, text: &str) -> Result<i64, ScimError> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not {text:?}")))
}

impl ListQuery {
    fn read(
        filter: Option<&str>,
        start_index: Option<i64>,
        count: Option<i64>,
        attributes: Vec<String>,
        excluded: Vec<String>,
    ) -> Result<ListQuery, ScimError> {
        let filter = filter
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let filter = filter::parse_filter(f).map_err(|e| {
                    ScimError::new(FaultKind::InvalidFilter, format!("filter {f:?}: {e}"))
                })?;
                if filter.terms() > filter::MAX_FILTER_TERMS {
                    return Err(ScimError::new(
                        FaultKind::TooMany,
                        format!(
                            "the filter makes {} comparisons; at most {} are served",
                            filter.terms(),
                            filter::MAX_FILTER_TERMS
                        ),
                    ));
                }
                Ok(filter)
            })
            .transpose()?;
        Ok(ListQuery {
            filter,
            start_index: start_index.unwrap_or(1).max(1) as usize,
            count: count
                .unwrap_or(schema::DEFAULT_PAGE as i64)
                .clamp(0, schema::MAX_PAGE as i64) as usize,
            attributes,
            excluded,
        })
    }

    fn from_params(params: &[(String, String)]) -> Result<ListQuery, ScimError> {
        let get = |name: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        ListQuery::read(
            get("filter"),
            get("startIndex")
                .map(|v| number("startIndex", v))
                .transpose()?,
            get("count").map(|v| number("count", v)).transpose()?,
            document::attribute_list(get("attributes")),
            document::attribute_list(get("excludedAttributes")),
        )
    }

    fn from_search(body: &Value) -> Result<ListQuery, ScimError> {
        let Value::Object(body) = body else {
            return Err(ScimError::new(
                FaultKind::InvalidSyntax,
                "a SearchRequest is a JSON object",
            ));
        };
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let int = |name: &str| -> Result<Option<i64>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_i64()),
                Some(Value::String(s)) => number(name, s).map(Some),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an integer"
                ))),
            }
        };
        let list = |name: &str| -> Vec<String> {
            match get(name) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                Some(Value::String(s)) => document::attribute_list(Some(s)),
                _ => Vec::new(),
            }
        };
        ListQuery::read(
            get("filter").and_then(Value::as_str),
            int("startIndex")?,
            int("count")?,
            list("attributes"),
            list("excludedAttributes"),
        )
    }

    fn wants_members(&self) -> bool {
        let names = |p: &String| {
            let p = p.rsplit(':').next().unwrap_or(p);
            p.split('.')
                .next()
                .unwrap_or(p)
                .eq_ignore_ascii_case("members")
        };
        (self.attributes.is_empty() || self.attributes.iter().any(names))
            && !self
                .excluded
                .iter()
                .any(|p| p.eq_ignore_ascii_case("members"))
    }
}

type Params = Query<Vec<(String, String)>>;

fn user_json(
    state: &AppState,
    headers: &HeaderMap,
    user: &crate::store::scim::ScimUser,
    q: &ListQuery,
) -> Value {
    let mut doc = users::render(user, &base_url(state, headers));
    document::project(&USER_TYPE, &mut doc, &q.attributes, &q.excluded);
    Value::Object(doc)
}

fn group_json(state: &AppState, headers: &HeaderMap, group: &ScimGroup, q: &ListQuery) -> Value {
    let mut doc = groups::render(
        &group.store,
        group.members.as_deref(),
        &base_url(state, headers),
    );
    document::project(&GROUP_TYPE, &mut doc, &q.attributes, &q.excluded);
    Value::Object(doc)
}

/// 201 with `Location` = `meta.location`, or 200.
fn resource_response(status: StatusCode, value: Value) -> Response {
    let location = value
        .get("meta")
        .and_then(|m| m.get("location"))
        .and_then(Value::as_str)
        .and_then(|l| HeaderValue::from_str(l).ok());
    let mut response = scim_json(status, value);
    if let (StatusCode::CREATED, Some(location)) = (status, location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn patch_operations(body: &Value) -> Result<Vec<PatchOperation>, ScimError> {
    let operations = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("Operations")))
        .map(|(_, v)| v)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ScimError::new(
                FaultKind::InvalidSyntax,
                "a PatchOp needs an Operations list",
            )
        })?;
    operations
        .iter()
        .enumerate()
        .map(|(i, operation)| {
            let field = |name: &str| {
                operation
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                    .map(|(_, v)| v)
            };
            let op = field("op")
                .and_then(Value::as_str)
                .and_then(Op::parse)
                .ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "Operations[{i}].op must be add, replace or remove"
                    ))
                })?;
            let path = match field("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => Some(p.clone()),
                Some(_) => {
                    return Err(ScimError::invalid_path(format!(
                        "Operations[{i}].path must be a string"
                    )))
                }
            };
            Ok(PatchOperation {
                op,
                path,
                value: field("value").filter(|v| !v.is_null()).cloned(),
            })
        })
        .collect()
}

// ---- Users ------------------------------------------------------------------

async fn list_users(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    users_page(state, caller, headers, q).await
}

async fn search_users(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_search(&body)?;
    users_page(state, caller, headers, q).await
}

async fn users_page(
    state: AppState,
    caller: ScimCaller,
    headers: HeaderMap,
    q: ListQuery,
) -> Result<Response, ScimError> {
    let page =
        service::list_users(&state, caller, q.filter.clone(), q.start_index, q.count).await?;
    let resources = page
        .items
        .iter()
        .map(|u| user_json(&state, &headers, u, &q))
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        list_response(resources, page.total, page.start_index),
    ))
}

async fn get_user(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    let user = service::get_user(&state, caller, &id).await?;
    Ok(resource_response(
        StatusCode::OK,
        user_json(&state, &headers, &user, &q),
    ))
}

async fn create_user(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Query(params): Params,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    let user = service::create_user(&state, caller, body).await?;
    Ok(resource_response(
        StatusCode::CREATED,
        user_json(&state, &headers, &user, &q),
    ))
}

async fn replace_user(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    let user = service::replace_user(&state, caller, &id, body).await?;
    Ok(resource_response(
        StatusCode::OK,
        user_json(&state, &headers, &user, &q),
    ))
}

async fn patch_user(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    let operations = patch_operations(&body)?;
    let base = base_url(&state, &headers);
    let user = service::patch_user(&state, caller, &id, operations, base).await?;
    Ok(resource_response(
        StatusCode::OK,
        user_json(&state, &headers, &user, &q),
    ))
}

async fn delete_user(
    State(state): State<AppState>,
    Scim(caller): Scim,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ScimError> {
    let meta = request_meta(request.headers(), request.extensions(), &state);
    service::delete_user(&state, caller, &id, meta).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Groups -----------------------------------------------------------------

async fn list_groups(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    groups_page(state, caller, headers, q).await
}

async fn search_groups(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_search(&body)?;
    groups_page(state, caller, headers, q).await
}

async fn groups_page(
    state: AppState,
    caller: ScimCaller,
    headers: HeaderMap,
    q: ListQuery,
) -> Result<Response, ScimError> {
    let page = service::list_groups(
        &state,
        caller,
        q.filter.clone(),
        q.start_index,
        q.count,
        q.wants_members(),
    )
    .await?;
    let resources = page
        .items
        .iter()
        .map(|g| group_json(&state, &headers, g, &q))
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        list_response(resources, page.total, page.start_index),
    ))
}

async fn get_group(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    let group = service::get_group(&state, caller, &id, q.wants_members()).await?;
    Ok(resource_response(
        StatusCode::OK,
        group_json(&state, &headers, &group, &q),
    ))
}

async fn create_group(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Query(params): Params,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    let group = service::create_group(&state, caller, body).await?;
    Ok(resource_response(
        StatusCode::CREATED,
        group_json(&state, &headers, &group, &q),
    ))
}

async fn replace_group(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    let group = service::replace_group(&state, caller, &id, body).await?;
    Ok(resource_response(
        StatusCode::OK,
        group_json(&state, &headers, &group, &q),
    ))
}

async fn patch_group(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    let operations = patch_operations(&body)?;
    let base = base_url(&state, &headers);
    let mut group = service::patch_group(&state, caller, &id, operations, base).await?;
    if !q.wants_members() {
        group.members = None;
    }
    Ok(resource_response(
        StatusCode::OK,
        group_json(&state, &headers, &group, &q),
    ))
}

async fn delete_group(
    State(state): State<AppState>,
    Scim(caller): Scim,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ScimError> {
    let meta = request_meta(request.headers(), request.extensions(), &state);
    service::delete_group(&state, caller, &id, meta).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /.search` across both resource types: people first, then stores, one
/// page over the two. A filter naming an attribute one type lacks matches
/// nothing of that type.
async fn root_search(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_search(&body)?;
    let offset = q.start_index - 1;
    let people = service::list_users(&state, caller, q.filter.clone(), 1, 0).await;
    let stores = service::list_groups(&state, caller, q.filter.clone(), 1, 0, false).await;
    let (people_total, stores_total) = match (&people, &stores) {
        (Err(e), Err(_)) => return Err(super::error::clone_fault(e)),
        (p, s) => (
            p.as_ref().map(|p| p.total).unwrap_or(0),
            s.as_ref().map(|s| s.total).unwrap_or(0),
        ),
    };
    let mut resources = Vec::new();
    if offset < people_total && q.count > 0 {
        let page =
            service::list_users(&state, caller, q.filter.clone(), q.start_index, q.count).await?;
        resources.extend(
            page.items
                .iter()
                .map(|u| user_json(&state, &headers, u, &q)),
        );
    }
    let room = q.count.saturating_sub(resources.len());
    if room > 0 && stores_total > 0 && offset + resources.len() < people_total + stores_total {
        let from = offset.saturating_sub(people_total) + 1;
        let page = service::list_groups(
            &state,
            caller,
            q.filter.clone(),
            from,
            room,
            q.wants_members(),
        )
        .await?;
        resources.extend(
            page.items
                .iter()
                .map(|g| group_json(&state, &headers, g, &q)),
        );
    }
    Ok(scim_json(
        StatusCode::OK,
        list_response(resources, people_total + stores_total, q.start_index),
    ))
}
