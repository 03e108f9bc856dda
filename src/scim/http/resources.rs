//! The Users and Groups routes: thin handlers over `service::scim`.

use super::*;

pub(super) async fn list_users(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    users_page(state, caller, headers, q).await
}

pub(super) async fn search_users(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_search(&body)?;
    users_page(state, caller, headers, q).await
}

pub(super) async fn users_page(
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

pub(super) async fn get_user(
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

pub(super) async fn create_user(
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

pub(super) async fn replace_user(
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

pub(super) async fn patch_user(
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

pub(super) async fn delete_user(
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

pub(super) async fn list_groups(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_params(&params)?;
    groups_page(state, caller, headers, q).await
}

pub(super) async fn search_groups(
    State(state): State<AppState>,
    Scim(caller): Scim,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = ListQuery::from_search(&body)?;
    groups_page(state, caller, headers, q).await
}

pub(super) async fn groups_page(
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

pub(super) async fn get_group(
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

pub(super) async fn create_group(
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

pub(super) async fn replace_group(
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

pub(super) async fn patch_group(
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

pub(super) async fn delete_group(
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
pub(super) async fn root_search(
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
        (Err(e), Err(_)) => return Err(crate::scim::error::clone_fault(e)),
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
