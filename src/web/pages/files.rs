//! The drop directory's files: list, upload, approval and retry with progress, and the mapping profile editor.

use super::*;

/// Files the dashboard asked to run again and that are still running: their
/// pages show progress and refresh until the run ends.
fn running() -> &'static std::sync::Mutex<std::collections::HashSet<String>> {
    static RUNNING: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    RUNNING.get_or_init(Default::default)
}

fn is_running(id: &str) -> bool {
    running()
        .lock()
        .map(|set| set.contains(id))
        .unwrap_or(false)
}

#[derive(Deserialize, Default)]
pub struct FilesQuery {
    uploaded: Option<String>,
}

pub async fn files(
    State(svc): State<AppState>,
    DashboardAdmin { user, .. }: DashboardAdmin,
    headers: HeaderMap,
    Query(query): Query<FilesQuery>,
) -> Result<Response, AppError> {
    files_page(
        &svc,
        &user,
        language(&headers),
        StatusCode::OK,
        query.uploaded,
        None,
    )
    .await
}

async fn files_page(
    svc: &Services,
    user: &WebUser,
    language: Language,
    status: StatusCode,
    uploaded: Option<String>,
    problem: Option<String>,
) -> Result<Response, AppError> {
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let files = crate::service::files::list(svc, &ctx, 100).await?;
    // An upload shows progress until its file has been claimed and has ended.
    let upload_pending = uploaded.as_ref().is_some_and(|name| {
        !files
            .iter()
            .any(|f| &f.display_name == name && f.state != crate::domain::FileState::Processing)
    });
    let refresh = upload_pending
        || files
            .iter()
            .any(|f| f.state == crate::domain::FileState::Processing || is_running(&f.id));
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "files", "/files", Some(user), &csrf);
    Ok(render(
        status,
        "files.html",
        &frame,
        json!({
            "files": files,
            "enabled": svc.drop_dir.get().is_some(),
            "refresh": refresh,
            "uploaded": uploaded,
            "problem": problem,
        }),
    ))
}

/// A file uploaded through the page, handed to the drop directory.
pub async fn upload_file(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    Meta(meta): Meta,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Result<Response, AppError> {
    use crate::dropfile::formats::Kind;
    let language = language(&headers);
    let (mut csrf, mut kind, mut file) = (String::new(), Kind::Users, None);
    let unreadable = |e: axum::extract::multipart::MultipartError| AppError::BadRequest {
        code: "invalid_upload",
        message: format!("the upload could not be read: {e}"),
    };
    while let Some(part) = form.next_field().await.map_err(unreadable)? {
        match part.name().unwrap_or_default() {
            "csrf" => csrf = part.text().await.map_err(unreadable)?,
            "kind" => {
                kind = match part.text().await.map_err(unreadable)?.as_str() {
                    "stores" => Kind::Stores,
                    _ => Kind::Users,
                };
            }
            "file" => {
                let name = part.file_name().unwrap_or("upload.csv").to_string();
                file = Some((name, part.bytes().await.map_err(unreadable)?.to_vec()));
            }
            _ => {}
        }
    }
    if !same_token(&user.session.csrf_token, &csrf) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            "/files",
            Some(&user),
            "form_expired",
        ));
    }
    let Some((name, bytes)) = file else {
        let problem = Some(crate::web::i18n::word(language, "invalid_form").to_string());
        return files_page(
            &svc,
            &user,
            language,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            problem,
        )
        .await;
    };
    match crate::service::files::upload(&svc, &ctx, &meta, &name, kind, bytes).await {
        Ok(uploaded) => {
            let mut link = url::form_urlencoded::Serializer::new(String::new());
            link.append_pair("uploaded", &uploaded.name);
            Ok(redirect(&format!("/files?{}", link.finish())))
        }
        Err(
            error @ (AppError::Validation(_)
            | AppError::Conflict { .. }
            | AppError::PayloadTooLarge { .. }),
        ) => {
            let problem = problems(&error).unwrap_or_else(|| error.to_string());
            files_page(
                &svc,
                &user,
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(problem),
            )
            .await
        }
        Err(other) => Err(other),
    }
}

pub async fn file(
    State(svc): State<AppState>,
    DashboardAdmin { user, .. }: DashboardAdmin,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response, AppError> {
    let language = language(&headers);
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let file = match crate::service::files::get(&svc, &ctx, id).await {
        Ok(file) => file,
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
    // A held export's run says how many people it would deactivate.
    let would_deactivate = match (&file.sync_log_id, file.state) {
        (Some(run), crate::domain::FileState::Held) => crate::service::sync_logs::run(
            &svc,
            (&ctx, crate::service::sync_logs::SyncView::ALL),
            run.clone(),
        )
        .await
        .ok()
        .and_then(|run| run.details["deactivated"].as_i64()),
        _ => None,
    };
    let running = file.state == crate::domain::FileState::Processing || is_running(&file.id);
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "file", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "file.html",
        &frame,
        json!({ "file": file, "would_deactivate": would_deactivate, "running": running }),
    ))
}

/// Approve (a held full export) or retry (a failed file): the run goes on in
/// the background and the file's page shows its progress.
async fn rerun_file(
    svc: AppState,
    meta: crate::service::RequestMeta,
    form: AdminForm,
    id: String,
    path: &str,
    how: crate::service::files::Rerun,
) -> Result<Response, AppError> {
    let AdminForm {
        user,
        ctx,
        language,
        ..
    } = form;
    let read = user.principal().require_scope(Scope::SyncRead)?;
    if let Err(AppError::NotFound { .. }) =
        crate::service::files::get(&svc, &read, id.clone()).await
    {
        return Ok(message(
            StatusCode::NOT_FOUND,
            language,
            path,
            Some(&user),
            "not_found",
        ));
    }
    if svc.drop_dir.get().is_none() {
        return Ok(message(
            StatusCode::CONFLICT,
            language,
            path,
            Some(&user),
            "dropdir_off",
        ));
    }
    let newly = running()
        .lock()
        .map(|mut set| set.insert(id.clone()))
        .unwrap_or(false);
    if newly {
        let principal = user.principal();
        let file = id.clone();
        tokio::spawn(async move {
            let outcome =
                crate::service::files::rerun(&svc, &principal, &ctx, file.clone(), how, &meta)
                    .await;
            if let Err(e) = outcome {
                tracing::warn!(file = %file, error = %e, "a file run again from the dashboard ended in error");
            }
            if let Ok(mut set) = running().lock() {
                set.remove(&file);
            }
        });
    }
    Ok(redirect(&format!("/files/{id}")))
}

pub async fn approve_file(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    uri: Uri,
    form: AdminForm,
) -> Result<Response, AppError> {
    rerun_file(
        svc,
        meta,
        form,
        id,
        uri.path(),
        crate::service::files::Rerun::Approve,
    )
    .await
}

pub async fn retry_file(
    State(svc): State<AppState>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    uri: Uri,
    form: AdminForm,
) -> Result<Response, AppError> {
    rerun_file(
        svc,
        meta,
        form,
        id,
        uri.path(),
        crate::service::files::Rerun::Retry,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn profile_page(
    svc: &Services,
    user: &WebUser,
    language: Language,
    status: StatusCode,
    profile_text: Option<String>,
    preview: Option<crate::service::drop_config::Preview>,
    problem: Option<String>,
    saved: bool,
) -> Result<Response, AppError> {
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let config = crate::service::drop_config::get(svc, &ctx).await?;
    let profile_text = profile_text
        .unwrap_or_else(|| serde_json::to_string_pretty(&config.profile).unwrap_or_default());
    let effective_text = serde_json::to_string_pretty(&config.effective).unwrap_or_default();
    // The preview's columns, in the order of its first row.
    let preview_keys: Vec<String> = preview
        .as_ref()
        .and_then(|p| p.rows.first())
        .and_then(|row| row.as_object())
        .map(|row| row.keys().cloned().collect())
        .unwrap_or_default();
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(
        language,
        "mapping_profile",
        "/files/profile",
        Some(user),
        &csrf,
    );
    Ok(render(
        status,
        "profile_editor.html",
        &frame,
        json!({
            "config": config,
            "profile_text": profile_text,
            "effective_text": effective_text,
            "preview": preview,
            "preview_keys": preview_keys,
            "problem": problem,
            "saved": saved,
        }),
    ))
}

pub async fn profile_editor(
    State(svc): State<AppState>,
    DashboardAdmin { user, .. }: DashboardAdmin,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    profile_page(
        &svc,
        &user,
        language(&headers),
        StatusCode::OK,
        None,
        None,
        None,
        false,
    )
    .await
}

/// The editor's form: try the profile on a sample file, or save it.
pub async fn profile_submit(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    Meta(meta): Meta,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Result<Response, AppError> {
    use crate::dropfile::formats::Kind;
    let language = language(&headers);
    let unreadable = |e: axum::extract::multipart::MultipartError| AppError::BadRequest {
        code: "invalid_upload",
        message: format!("the form could not be read: {e}"),
    };
    let (mut csrf, mut text, mut action, mut kind, mut sample) = (
        String::new(),
        String::new(),
        String::new(),
        Kind::Users,
        None,
    );
    while let Some(part) = form.next_field().await.map_err(unreadable)? {
        match part.name().unwrap_or_default() {
            "csrf" => csrf = part.text().await.map_err(unreadable)?,
            "profile" => text = part.text().await.map_err(unreadable)?,
            "action" => action = part.text().await.map_err(unreadable)?,
            "kind" => {
                kind = match part.text().await.map_err(unreadable)?.as_str() {
                    "stores" => Kind::Stores,
                    _ => Kind::Users,
                };
            }
            "file" => {
                let name = part.file_name().unwrap_or("sample.csv").to_string();
                let bytes = part.bytes().await.map_err(unreadable)?.to_vec();
                sample = (!bytes.is_empty()).then_some((name, bytes));
            }
            _ => {}
        }
    }
    if !same_token(&user.session.csrf_token, &csrf) {
        return Ok(message(
            StatusCode::FORBIDDEN,
            language,
            "/files/profile",
            Some(&user),
            "form_expired",
        ));
    }
    let profile = match serde_json::from_str::<crate::domain::drop_profile::DropProfile>(&text) {
        Ok(profile) => profile,
        Err(e) => {
            let problem = format!("{}: {e}", crate::web::i18n::word(language, "profile_json"));
            return profile_page(
                &svc,
                &user,
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(text),
                None,
                Some(problem),
                false,
            )
            .await;
        }
    };
    let outcome = if action == "save" {
        crate::service::drop_config::put(&svc, &ctx, profile, &meta)
            .await
            .map(|_| (None, true))
    } else {
        match sample {
            None => Err(AppError::field(
                "file",
                "required",
                crate::web::i18n::word(language, "sample"),
            )),
            Some((file_name, bytes)) => {
                let read = user.principal().require_scope(Scope::SyncRead)?;
                crate::service::drop_config::preview(
                    &svc,
                    &read,
                    crate::service::drop_config::Sample {
                        file_name,
                        kind: Some(kind),
                        bytes,
                        profile: Some(profile),
                    },
                )
                .await
                .map(|preview| (Some(preview), false))
            }
        }
    };
    match outcome {
        Ok((preview, saved)) => {
            let kept = (!saved).then_some(text);
            profile_page(
                &svc,
                &user,
                language,
                StatusCode::OK,
                kept,
                preview,
                None,
                saved,
            )
            .await
        }
        Err(error) => match problems(&error) {
            Some(problem) => {
                profile_page(
                    &svc,
                    &user,
                    language,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(text),
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
