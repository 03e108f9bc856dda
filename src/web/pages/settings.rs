//! The enterprise's settings and its IT administrators.

use super::*;
use crate::service::enterprise_admins::{self, NewAdmin};
use crate::service::enterprise_settings::{self, EnterpriseSettingsChange};

/// What the page says after a form: nothing, a saved notice, or the problem.
enum Outcome {
    Shown,
    Saved,
    Problem(String),
}

async fn settings_page(
    svc: &Services,
    (user, ctx): (&WebUser, &AdminCtx),
    language: Language,
    status: StatusCode,
    outcome: Outcome,
) -> Result<Response, AppError> {
    let settings = enterprise_settings::get(svc, ctx).await?;
    let admins = enterprise_admins::list(svc, ctx).await?;
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "settings", "/settings", Some(user), &csrf);
    let (saved, problem) = match outcome {
        Outcome::Shown => (false, None),
        Outcome::Saved => (true, None),
        Outcome::Problem(problem) => (false, Some(problem)),
    };
    Ok(render(
        status,
        "settings.html",
        &frame,
        json!({
            "settings": settings,
            "admins": admins,
            "me": user.session.user,
            "saved": saved,
            "problem": problem,
        }),
    ))
}

pub async fn settings(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let language = language(&headers);
    settings_page(
        &svc,
        (&user, &ctx),
        language,
        StatusCode::OK,
        Outcome::Shown,
    )
    .await
}

/// Answers a form: the page again, saying it was saved or what was wrong.
async fn answer(
    svc: &Services,
    (user, ctx): (&WebUser, &AdminCtx),
    language: Language,
    result: Result<(), AppError>,
) -> Result<Response, AppError> {
    let (status, outcome) = match result {
        Ok(()) => (StatusCode::OK, Outcome::Saved),
        Err(error) => match problems(&error) {
            Some(problem) => (
                match error {
                    AppError::Conflict { .. } => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                },
                Outcome::Problem(problem),
            ),
            None => return Err(error),
        },
    };
    settings_page(svc, (user, ctx), language, status, outcome).await
}

pub async fn save_settings(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    AdminForm {
        user, ctx, fields, ..
    }: AdminForm,
) -> Result<Response, AppError> {
    let change = EnterpriseSettingsChange {
        company_name: Some(field(&fields, "company_name").to_string()),
        company_email: Some(field(&fields, "company_email").to_string()),
        sync_mode: Some(field(&fields, "sync_mode").to_string()),
        time_zone: Some(field(&fields, "time_zone").trim())
            .filter(|zone| !zone.is_empty())
            .map(str::to_string),
        seats_purchased: None,
    };
    let result = enterprise_settings::update(&svc, &ctx, &meta, change)
        .await
        .map(|_| ());
    answer(&svc, (&user, &ctx), language(&headers), result).await
}

pub async fn invite_admin(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    AdminForm {
        user, ctx, fields, ..
    }: AdminForm,
) -> Result<Response, AppError> {
    let input = NewAdmin {
        name: Some(field(&fields, "name").to_string()),
        email: Some(field(&fields, "email").to_string()),
    };
    let result = enterprise_admins::invite(&svc, &ctx, &meta, input)
        .await
        .map(|_| ());
    answer(&svc, (&user, &ctx), language(&headers), result).await
}

async fn set_admin_active(
    svc: &Services,
    meta: &crate::service::RequestMeta,
    form: AdminForm,
    id: &str,
    active: bool,
) -> Result<Response, AppError> {
    let AdminForm {
        user,
        ctx,
        language,
        ..
    } = form;
    let Ok(id) = parse_id::<crate::domain::UserId>(id, "administrator") else {
        return Ok(message(
            StatusCode::NOT_FOUND,
            language,
            "/settings",
            Some(&user),
            "not_found",
        ));
    };
    let result = if active {
        enterprise_admins::reactivate(svc, &ctx, meta, id).await
    } else {
        enterprise_admins::deactivate(svc, &ctx, meta, id).await
    };
    match result {
        // Deactivating oneself ends one's own session: back to the sign-in page.
        Ok(_) if !active && id == user.session.user => Ok(redirect("/sign-in")),
        Err(AppError::NotFound { .. }) => Ok(message(
            StatusCode::NOT_FOUND,
            language,
            "/settings",
            Some(&user),
            "not_found",
        )),
        other => answer(svc, (&user, &ctx), language, other.map(|_| ())).await,
    }
}

pub async fn deactivate_admin(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    form: AdminForm,
) -> Result<Response, AppError> {
    set_admin_active(&svc, &meta, form, &id, false).await
}

pub async fn reactivate_admin(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    form: AdminForm,
) -> Result<Response, AppError> {
    set_admin_active(&svc, &meta, form, &id, true).await
}
