//! API keys and SCIM tokens: generated (shown once), listed, revoked after confirmation.

use super::*;

async fn keys_page(
    svc: &Services,
    user: &WebUser,
    ctx: &AdminCtx,
    language: Language,
    status: StatusCode,
    generated: Option<api_keys::GeneratedKey>,
    problem: Option<String>,
) -> Result<Response, AppError> {
    let keys = api_keys::list(svc, ctx).await?;
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "api_keys", "/api-keys", Some(user), &csrf);
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    Ok(render(
        status,
        "api_keys.html",
        &frame,
        json!({
            "keys": keys,
            "generated": generated,
            "problem": problem,
            "scopes": scopes,
            "default_days": svc.config.api_keys.default_expiry_days,
            "max_days": svc.config.api_keys.max_expiry_days,
        }),
    ))
}

pub async fn api_keys(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    keys_page(
        &svc,
        &user,
        &ctx,
        language(&headers),
        StatusCode::OK,
        None,
        None,
    )
    .await
}

pub async fn generate_key(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    AdminForm {
        user, ctx, fields, ..
    }: AdminForm,
) -> Result<Response, AppError> {
    let request = GenerateKey {
        name: Some(field(&fields, "name").to_string()),
        scopes: Some(
            fields
                .iter()
                .filter(|(k, _)| k == "scopes")
                .map(|(_, v)| v.clone())
                .collect(),
        ),
        expires_in_days: field(&fields, "expires_in_days").trim().parse().ok(),
    };
    let (status, generated, problem) = generate(&svc, &ctx, &meta, request).await?;
    keys_page(
        &svc,
        &user,
        &ctx,
        language(&headers),
        status,
        generated,
        problem,
    )
    .await
}

/// Generates a key: the answer's status, the key to show once, or the form's problem.
async fn generate(
    svc: &Services,
    ctx: &AdminCtx,
    meta: &crate::service::RequestMeta,
    request: GenerateKey,
) -> Result<(StatusCode, Option<api_keys::GeneratedKey>, Option<String>), AppError> {
    match api_keys::generate(svc, ctx, meta, request).await {
        Ok(generated) => Ok((StatusCode::CREATED, Some(generated), None)),
        Err(error) => match problems(&error) {
            Some(problem) => Ok((StatusCode::UNPROCESSABLE_ENTITY, None, Some(problem))),
            None => Err(error),
        },
    }
}

pub async fn confirm_revoke(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let key = match parse_id::<ApiKeyId>(&id, "api key") {
        Ok(id) => api_keys::get(&svc, &ctx, id).await,
        Err(e) => Err(e),
    };
    let key = match key {
        Ok(key) => key,
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
    let frame = Frame::new(language, "revoke", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "revoke_key.html",
        &frame,
        json!({ "key": key }),
    ))
}

pub async fn revoke_key(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    uri: Uri,
    AdminForm {
        user,
        ctx,
        language,
        ..
    }: AdminForm,
) -> Result<Response, AppError> {
    let revoked = match parse_id::<ApiKeyId>(&id, "api key") {
        Ok(id) => api_keys::revoke(&svc, &ctx, &meta, id).await,
        Err(e) => Err(e),
    };
    match revoked {
        Ok(_) => Ok(redirect("/api-keys")),
        Err(AppError::NotFound { .. }) => Ok(message(
            StatusCode::NOT_FOUND,
            language,
            uri.path(),
            Some(&user),
            "not_found",
        )),
        Err(other) => Err(other),
    }
    .map(IntoResponse::into_response)
}

async fn scim_page(
    svc: &Services,
    user: &WebUser,
    ctx: &AdminCtx,
    language: Language,
    status: StatusCode,
    generated: Option<api_keys::GeneratedKey>,
    problem: Option<String>,
) -> Result<Response, AppError> {
    let read = user.principal().require_scope(Scope::SyncRead)?;
    let sync =
        crate::service::sync_status::status(svc, &read, crate::service::sync_logs::SyncView::ALL)
            .await?;
    let keys: Vec<_> = api_keys::list(svc, ctx)
        .await?
        .into_iter()
        .filter(|k| k.scopes.contains(&Scope::Scim))
        .collect();
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "scim", "/scim", Some(user), &csrf);
    Ok(render(
        status,
        "scim.html",
        &frame,
        json!({
            "status": sync,
            "keys": keys,
            "generated": generated,
            "problem": problem,
            "base_url": format!("{}/scim/v2", svc.public_base_url()),
            "max_days": svc.config.api_keys.max_expiry_days,
        }),
    ))
}

pub async fn scim(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    scim_page(
        &svc,
        &user,
        &ctx,
        language(&headers),
        StatusCode::OK,
        None,
        None,
    )
    .await
}

/// A token for the identity provider: an API key with the `scim` scope alone.
pub async fn generate_scim_token(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    AdminForm {
        user, ctx, fields, ..
    }: AdminForm,
) -> Result<Response, AppError> {
    let request = GenerateKey {
        name: Some(field(&fields, "name").to_string()),
        scopes: Some(vec![Scope::Scim.as_str().to_string()]),
        expires_in_days: field(&fields, "expires_in_days").trim().parse().ok(),
    };
    let (status, generated, problem) = generate(&svc, &ctx, &meta, request).await?;
    scim_page(
        &svc,
        &user,
        &ctx,
        language(&headers),
        status,
        generated,
        problem,
    )
    .await
}
