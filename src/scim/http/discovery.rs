//! What the service provider offers, for clients before they hold a token:
//! ServiceProviderConfig, ResourceTypes and Schemas.

use super::*;

pub(super) async fn service_provider_config(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&state, &headers);
    scim_json(StatusCode::OK, schema::service_provider_config(&base))
}

pub(super) fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

pub(super) async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let all: Vec<Value> = schema::RESOURCE_TYPES
        .iter()
        .map(|r| r.json(&base))
        .collect();
    let total = all.len();
    scim_json(StatusCode::OK, list_response(all, total, 1))
}

pub(super) async fn resource_type(
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

pub(super) async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let all: Vec<Value> = schema::ALL.iter().map(|s| s.json(&base)).collect();
    let total = all.len();
    scim_json(StatusCode::OK, list_response(all, total, 1))
}

pub(super) async fn schema_by_urn(
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
