//! Webhook endpoints, their delivery log, and the notification settings.

use super::*;

#[allow(clippy::too_many_arguments)]
async fn webhooks_page(
    svc: &Services,
    user: &WebUser,
    ctx: &AdminCtx,
    language: Language,
    status: StatusCode,
    registered: Option<crate::service::webhooks::RegisteredWebhook>,
    problem: Option<String>,
    saved: bool,
) -> Result<Response, AppError> {
    let endpoints = crate::service::webhooks::list(svc, ctx).await?;
    let settings = crate::service::notification_settings::get(svc, ctx).await?;
    let events: Vec<&str> = crate::domain::webhook::EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect();
    let recipients = settings
        .alert_recipients
        .as_ref()
        .map(|r| r.join("\n"))
        .unwrap_or_default();
    let networks = settings.webhook_allowed_networks.join("\n");
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "webhooks", "/webhooks", Some(user), &csrf);
    Ok(render(
        status,
        "webhooks.html",
        &frame,
        json!({
            "endpoints": endpoints,
            "registered": registered,
            "problem": problem,
            "saved": saved,
            "events": events,
            "settings": settings,
            "recipients": recipients,
            "networks": networks,
        }),
    ))
}

pub async fn webhooks(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    webhooks_page(
        &svc,
        &user,
        &ctx,
        language(&headers),
        StatusCode::OK,
        None,
        None,
        false,
    )
    .await
}

pub async fn register_webhook(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    AdminForm {
        user, ctx, fields, ..
    }: AdminForm,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let request = crate::service::webhooks::RegisterWebhook {
        url: Some(field(&fields, "url").to_string()),
        description: Some(field(&fields, "description").to_string()),
        events: Some(
            fields
                .iter()
                .filter(|(k, _)| k == "events")
                .map(|(_, v)| v.clone())
                .collect(),
        ),
    };
    match crate::service::webhooks::register(&svc, &ctx, &meta, request).await {
        Ok(registered) => {
            webhooks_page(
                &svc,
                &user,
                &ctx,
                language,
                StatusCode::CREATED,
                Some(registered),
                None,
                false,
            )
            .await
        }
        Err(error) => match problems(&error) {
            Some(problem) => {
                webhooks_page(
                    &svc,
                    &user,
                    &ctx,
                    language,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(problem),
                    false,
                )
                .await
            }
            None => Err(error),
        },
    }
}

fn lines(text: &str) -> Vec<String> {
    text.split(|c: char| c == '\n' || c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn save_notification_settings(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    AdminForm {
        user, ctx, fields, ..
    }: AdminForm,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let recipients = lines(field(&fields, "alert_recipients"));
    let stale = field(&fields, "stale_after_hours").trim();
    let change = crate::service::notification_settings::SettingsChange {
        language: Some(field(&fields, "language").to_string()),
        alert_recipients: Some((!recipients.is_empty()).then_some(recipients)),
        alert_on_partial: Some(field(&fields, "alert_on_partial") == "true"),
        // Not a number: 0, which the settings refuse with their own message.
        stale_after_hours: Some((!stale.is_empty()).then(|| stale.parse().unwrap_or(0))),
        webhook_allowed_networks: Some(lines(field(&fields, "webhook_allowed_networks"))),
    };
    match crate::service::notification_settings::update(&svc, &ctx, &meta, change).await {
        Ok(_) => {
            webhooks_page(
                &svc,
                &user,
                &ctx,
                language,
                StatusCode::OK,
                None,
                None,
                true,
            )
            .await
        }
        Err(error) => match problems(&error) {
            Some(problem) => {
                webhooks_page(
                    &svc,
                    &user,
                    &ctx,
                    language,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(problem),
                    false,
                )
                .await
            }
            None => Err(error),
        },
    }
}

pub async fn webhook(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let found = match parse_id::<crate::domain::WebhookId>(&id, "webhook") {
        Ok(id) => match crate::service::webhooks::get(&svc, &ctx, id).await {
            Ok(endpoint) => {
                let attempts =
                    crate::service::webhooks::attempts(&svc, &ctx, id, None, Some(LIST_PAGE))
                        .await?;
                Ok((endpoint, attempts))
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (endpoint, attempts) = match found {
        Ok(found) => found,
        Err(AppError::NotFound { .. }) => {
            return Ok(message(
                StatusCode::NOT_FOUND,
                language,
                uri.path(),
                Some(&user),
                "not_found",
            ))
        }
        Err(other) => return Err(other),
    };
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "webhook", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "webhook.html",
        &frame,
        json!({ "endpoint": endpoint, "attempts": attempts }),
    ))
}

async fn webhook_action(
    svc: AppState,
    meta: crate::service::RequestMeta,
    form: AdminForm,
    id: String,
    path: &str,
    delete: bool,
) -> Result<Response, AppError> {
    let AdminForm {
        user,
        ctx,
        language,
        ..
    } = form;
    let outcome = match parse_id::<crate::domain::WebhookId>(&id, "webhook") {
        Ok(webhook) if delete => crate::service::webhooks::delete(&svc, &ctx, &meta, webhook)
            .await
            .map(|()| "/webhooks".to_string()),
        Ok(webhook) => crate::service::webhooks::enable(&svc, &ctx, &meta, webhook)
            .await
            .map(|_| format!("/webhooks/{id}")),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(to) => Ok(redirect(&to)),
        Err(AppError::NotFound { .. }) => Ok(message(
            StatusCode::NOT_FOUND,
            language,
            path,
            Some(&user),
            "not_found",
        )),
        Err(other) => Err(other),
    }
}

pub async fn delete_webhook(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    uri: Uri,
    form: AdminForm,
) -> Result<Response, AppError> {
    webhook_action(svc, meta, form, id, uri.path(), true).await
}

pub async fn enable_webhook(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    uri: Uri,
    form: AdminForm,
) -> Result<Response, AppError> {
    webhook_action(svc, meta, form, id, uri.path(), false).await
}
