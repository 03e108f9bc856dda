use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::extract::{parse_id, AppState, Auth, Meta, QueryParams};
use super::pagination::{self, PageBody};
use crate::domain::{Role, Scope};
use crate::error::FieldError;
use crate::service::directory;
use crate::store::{stores::StoreFilter, users::UserFilter};
use crate::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/enterprise/users", get(list_users))
        .route("/api/enterprise/users/{id}", get(show_user))
        .route(
            "/api/enterprise/users/{id}/invitation",
            post(issue_invitation),
        )
        .route("/api/enterprise/stores", get(list_stores))
        .route("/api/enterprise/stores/{id}", get(show_store))
}

#[derive(Debug, Deserialize)]
struct UserQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    active: Option<bool>,
    role: Option<String>,
    store_id: Option<String>,
    external_id: Option<String>,
    email: Option<String>,
}

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
    };
    let page = directory::list_users(&svc, &ctx, filter, after, limit).await?;
    Ok(Json(PageBody {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

async fn show_user(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::UsersRead)?;
    let id = parse_id(&id, "user")?;
    Ok(Json(directory::get_user(&svc, &ctx, id).await?))
}

#[derive(Debug, Deserialize)]
struct StoreQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    active: Option<bool>,
    external_id: Option<String>,
}

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
    };
    let page = directory::list_stores(&svc, &ctx, filter, after, limit).await?;
    Ok(Json(PageBody {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

async fn show_store(
    State(svc): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let ctx = principal.require_scope(Scope::StoresRead)?;
    let id = parse_id(&id, "store")?;
    Ok(Json(directory::get_store(&svc, &ctx, id).await?))
}

/// (Re)issues a person's invitation link; the IT admin passes it on.
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
