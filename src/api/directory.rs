use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::records::{Store, User};
use crate::http::error::ErrorBody;
use crate::service::invitations::IssuedInvitation;

use super::pagination::{self, PageBody};
use crate::domain::{Role, Scope};
use crate::error::FieldError;
use crate::http::extract::{parse_id, AppState, Auth, Meta, QueryParams};
use crate::service::directory;
use crate::store::{stores::StoreFilter, users::UserFilter};
use crate::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(show_user))
        .routes(routes!(issue_invitation))
        .routes(routes!(send_invitation))
        .routes(routes!(list_stores))
        .routes(routes!(show_store))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UserQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    cursor: Option<String>,
    active: Option<bool>,
    /// `manager` or `seller` (IT admins are not listed).
    #[param(pattern = "^(manager|seller)$")]
    role: Option<String>,
    /// A store id.
    #[param(value_type = Option<uuid::Uuid>)]
    store_id: Option<String>,
    external_id: Option<String>,
    email: Option<String>,
}

/// The enterprise's staff (IT admins excepted), by id.
#[utoipa::path(
    get,
    operation_id = "listUsers",
    path = "/api/enterprise/users",
    tag = "directory",
    security(("api_key" = ["users:read"]), ("bearer" = [])),
    params(UserQuery),
    responses(
        (status = 200, description = "A page of people", body = PageBody<User>),
        (status = 422, description = "A filter is invalid", body = ErrorBody),
    )
)]
async fn list_users(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<UserQuery>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::UsersRead)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors);
    let after = pagination::cursor(query.cursor.as_deref(), &mut errors);
    let role = query.role.as_deref().and_then(|r| {
        let role = Role::parse(r).filter(|role| *role != Role::ItAdmin);
        if role.is_none() {
            errors.push(FieldError::new(
                "role",
                "invalid_value",
                "role must be manager or seller",
            ));
        }
        role
    });
    let store_id = query.store_id.as_deref().and_then(|s| {
        let id = s.parse().ok();
        if id.is_none() {
            errors.push(FieldError::new(
                "store_id",
                "invalid_id",
                "store_id must be a store id",
            ));
        }
        id
    });
    pagination::finish(errors)?;
    let filter = UserFilter {
        active: query.active,
        role,
        store_id,
        external_id: query.external_id,
        email: query.email.map(|e| crate::domain::email::normalize(&e)),
        search: None,
    };
    let page = directory::list_users(&svc, &ctx, filter, after, limit).await?;
    Ok(Json(PageBody {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get,
    operation_id = "getUser",
    path = "/api/enterprise/users/{id}",
    tag = "directory",
    security(("api_key" = ["users:read"]), ("bearer" = [])),
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, description = "The person", body = User),
        (status = 404, description = "No such person in this enterprise", body = ErrorBody),
    )
)]
async fn show_user(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::UsersRead)?;
    let id = parse_id(&id, "user")?;
    Ok(Json(directory::get_user(&svc, &ctx, id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StoreQuery {
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    cursor: Option<String>,
    active: Option<bool>,
    external_id: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "listStores",
    path = "/api/enterprise/stores",
    tag = "directory",
    security(("api_key" = ["stores:read"]), ("bearer" = [])),
    params(StoreQuery),
    responses(
        (status = 200, description = "A page of stores", body = PageBody<Store>),
        (status = 422, description = "A filter is invalid", body = ErrorBody),
    )
)]
async fn list_stores(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    QueryParams(query): QueryParams<StoreQuery>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::StoresRead)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(query.limit, &mut errors);
    let after = pagination::cursor(query.cursor.as_deref(), &mut errors);
    pagination::finish(errors)?;
    let filter = StoreFilter {
        active: query.active,
        external_id: query.external_id,
        search: None,
    };
    let page = directory::list_stores(&svc, &ctx, filter, after, limit).await?;
    Ok(Json(PageBody {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get,
    operation_id = "getStore",
    path = "/api/enterprise/stores/{id}",
    tag = "directory",
    security(("api_key" = ["stores:read"]), ("bearer" = [])),
    params(("id" = String, Path, description = "The store's id")),
    responses(
        (status = 200, description = "The store", body = Store),
        (status = 404, description = "No such store in this enterprise", body = ErrorBody),
    )
)]
async fn show_store(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::StoresRead)?;
    let id = parse_id(&id, "store")?;
    Ok(Json(directory::get_store(&svc, &ctx, id).await?))
}

/// (Re)issues a person's invitation link; the IT admin passes it on. Any
/// earlier link of theirs stops working.
#[utoipa::path(
    post,
    operation_id = "issueInvitation",
    path = "/api/enterprise/users/{id}/invitation",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 201, description = "The one-time link", body = IssuedInvitation),
        (status = 404, description = "No such person in this enterprise", body = ErrorBody),
        (status = 409, description = "The person has already set a password, or is inactive", body = ErrorBody),
    )
)]
async fn issue_invitation(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id = parse_id(&id, "user")?;
    let issued = crate::service::invitations::reissue(&svc, &admin, &meta, id).await?;
    Ok((axum::http::StatusCode::CREATED, Json(issued)))
}

/// Sends a person's invitation email again, with a new link (earlier links
/// stop working when it goes out). Audited.
#[utoipa::path(
    post,
    operation_id = "sendInvitation",
    path = "/api/enterprise/users/{id}/invitation/send",
    tag = "directory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 202, description = "Queued in the email outbox", body = crate::service::emails::QueuedInvitation),
        (status = 404, description = "No such person in this enterprise", body = ErrorBody),
        (status = 409, description = "The person has already set a password (`already_accepted`), or is inactive (`user_inactive`)", body = ErrorBody),
    )
)]
async fn send_invitation(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let admin = principal.require_admin()?;
    let id = parse_id(&id, "user")?;
    let queued = crate::service::emails::resend_invitation(&svc, &admin, &meta, id).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(queued)))
}
