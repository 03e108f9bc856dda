//! Read access to the staff and store directory, for `users:read` / `stores:read`
//! keys and IT administrators.

use super::access::EnterpriseCtx;
use super::Services;
use crate::domain::{Store, StoreId, User, UserId};
use crate::store::{self, stores::StoreFilter, users::UserFilter};
use crate::AppError;

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 500;

pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

fn page<T>(data: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if data.len() == limit {
        data.last().map(cursor_of)
    } else {
        None
    };
    Page { data, next_cursor }
}

pub async fn list_users(
    svc: &Services,
    ctx: &EnterpriseCtx,
    filter: UserFilter,
    after: Option<UserId>,
    limit: usize,
) -> Result<Page<User>, AppError> {
    let enterprise = ctx.enterprise();
    let rows = svc
        .db
        .read_for(enterprise, move |conn| {
            store::users::list(conn, enterprise, &filter, after, limit).map_err(AppError::from)
        })
        .await?;
    Ok(page(rows, limit, |u| u.id.to_string()))
}

pub async fn get_user(svc: &Services, ctx: &EnterpriseCtx, id: UserId) -> Result<User, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read_for(enterprise, move |conn| {
            store::users::get(conn, enterprise, id).map_err(AppError::from)
        })
        .await?
        .filter(|user| user.role != crate::domain::Role::ItAdmin)
        .ok_or(AppError::NotFound { resource: "user" })
}

pub async fn list_stores(
    svc: &Services,
    ctx: &EnterpriseCtx,
    filter: StoreFilter,
    after: Option<StoreId>,
    limit: usize,
) -> Result<Page<Store>, AppError> {
    let enterprise = ctx.enterprise();
    let rows = svc
        .db
        .read_for(enterprise, move |conn| {
            store::stores::list(conn, enterprise, &filter, after, limit).map_err(AppError::from)
        })
        .await?;
    Ok(page(rows, limit, |s| s.id.to_string()))
}

pub async fn get_store(
    svc: &Services,
    ctx: &EnterpriseCtx,
    id: StoreId,
) -> Result<Store, AppError> {
    let enterprise = ctx.enterprise();
    svc.db
        .read_for(enterprise, move |conn| {
            store::stores::get(conn, enterprise, id).map_err(AppError::from)
        })
        .await?
        .ok_or(AppError::NotFound { resource: "store" })
}
