//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes by the same router that serves them (utoipa-axum): a route
//! cannot be served without being documented, nor documented without being
//! served. `docs/openapi.json` is this document, checked by a test.

use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::http::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "enterprise-sync",
        description = "Provisions a retailer's store staff and stores into Retail Performer: \
            REST bulk imports, the directory, sync runs and their changes, the drop directory's \
            files and profiles, API keys and the audit trail. Errors share one shape: \
            `{\"error\": {\"code\", \"message\", \"details\"}}`; every answer carries `x-request-id`.",
        license(name = "MIT")
    ),
    modifiers(&Security),
    components(schemas(ErrorBody)),
    tags(
        (name = "accounts", description = "Registering an enterprise"),
        (name = "enterprise", description = "The enterprise's settings and IT administrators (IT admins)"),
        (name = "sessions", description = "Sign-in, tokens and invitations"),
        (name = "api-keys", description = "Keys for the enterprise's systems (IT admins)"),
        (name = "directory", description = "Users and stores"),
        (name = "imports", description = "Bulk imports: the REST adapter of the import engine"),
        (name = "sync", description = "Sync status, runs and their changes"),
        (name = "webhooks", description = "Signed webhooks (Standard Webhooks), their delivery log, and notification settings (IT admins)"),
        (name = "files", description = "The drop directory's files"),
        (name = "drop-config", description = "The enterprise's drop-directory profile"),
        (name = "audit", description = "The audit trail (IT admins)"),
        (name = "operations", description = "Probes, metrics and this document")
    )
)]
pub struct ApiDoc;

/// The answer of list endpoints that are not paginated.
#[derive(Serialize, ToSchema)]
pub struct DataList<T> {
    pub data: Vec<T>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from POST /api/auth/login (15 minutes; refresh with POST /api/auth/refresh)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (`ent_…`); the roles listed are the scopes the route requires",
            ))),
        );
    }
}

/// Answers every authenticated route can give (and the throttled public
/// ones), added once here rather than on each handler.
struct CommonErrors;

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorBody",
                ))))
                .build(),
        )
        .build()
        .into()
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                let located = |place: ParameterIn| {
                    operation.parameters.iter().flatten().any(|p| match p {
                        RefOr::T(parameter) => parameter.parameter_in == place,
                        RefOr::Ref(_) => false,
                    })
                };
                let (in_query, in_path) = (located(ParameterIn::Query), located(ParameterIn::Path));
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                };
                if authenticated {
                    add("401", "No valid access token or API key (`unauthorized`)");
                    add(
                        "403",
                        "The caller may not do this (`admin_only`, `insufficient_scope`)",
                    );
                    add(
                        "429",
                        "A rate limit refused the request (`rate_limited`); see Retry-After and RateLimit",
                    );
                }
                if has_body {
                    add(
                        "400",
                        "The body is not well-formed (`invalid_json`, `invalid_form`)",
                    );
                    add(
                        "413",
                        "The body is larger than the route accepts (`payload_too_large`)",
                    );
                    add(
                        "415",
                        "The body is not of the documented media type (`unsupported_media_type`)",
                    );
                    add(
                        "422",
                        "The body does not have the documented shape or a field is invalid (`validation_failed`; `details.fields` names each)",
                    );
                }
                if in_query {
                    add(
                        "422",
                        "A query parameter is invalid (`validation_failed`; `details.fields` names each)",
                    );
                }
                if in_path {
                    add(
                        "404",
                        "No such object in the caller's enterprise (`not_found`)",
                    );
                }
                add(
                    "503",
                    "The database is unavailable (`unavailable`; retry shortly) or the server's disk is full (`storage_full`: nothing was written; `Retry-After` says when to try again)",
                );
            }
        }
    }
}

/// The document, built from the same router as the application.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = super::routes(&crate::config::Config::default()).into_openapi();
    // After the merge: the derive's modifiers run before the routes are added.
    CommonErrors.modify(&mut document);
    document
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    operation_id = "getOpenApiDocument",
    path = "/api/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json"))
)]
pub async fn serve_document() -> impl IntoResponse {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(
        DOCUMENT
            .get_or_init(|| serde_json::to_value(document()).unwrap_or_default())
            .clone(),
    )
}
