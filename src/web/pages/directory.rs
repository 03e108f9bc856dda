//! Users, stores and the audit trail: searchable, paginated, read-only.

use super::*;

#[derive(Deserialize, Default)]
pub struct DirectoryQuery {
    q: Option<String>,
    active: Option<String>,
    after: Option<String>,
}

impl DirectoryQuery {
    fn search(&self) -> Option<String> {
        self.q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(|q| q.chars().take(100).collect())
    }

    fn active(&self) -> Option<bool> {
        match self.active.as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        }
    }

    /// The next page's link, from the last row's id.
    fn next(&self, base: &str, last: Option<String>) -> Option<String> {
        let last = last?;
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = self.search() {
            link.append_pair("q", &q);
        }
        if let Some(active) = self.active() {
            link.append_pair("active", &active.to_string());
        }
        link.append_pair("after", &last);
        Some(format!("{base}?{}", link.finish()))
    }
}

pub async fn users(
    State(svc): State<AppState>,
    DashboardAdmin { user, .. }: DashboardAdmin,
    headers: HeaderMap,
    Query(query): Query<DirectoryQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    let ctx = user.principal().require_scope(Scope::UsersRead)?;
    let filter = crate::store::users::UserFilter {
        active: query.active(),
        search: query.search(),
        ..Default::default()
    };
    let after = query.after.as_deref().and_then(|a| a.parse().ok());
    let page = crate::service::directory::list_users(&svc, &ctx, filter, after, LIST_PAGE).await?;
    let next = query.next("/users", page.next_cursor);
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language(&headers), "users", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "users.html",
        &frame,
        json!({ "users": page.data, "next": next, "q": query.search(), "active": query.active.clone() }),
    ))
}

pub async fn stores(
    State(svc): State<AppState>,
    DashboardAdmin { user, .. }: DashboardAdmin,
    headers: HeaderMap,
    Query(query): Query<DirectoryQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    let ctx = user.principal().require_scope(Scope::StoresRead)?;
    let filter = crate::store::stores::StoreFilter {
        active: query.active(),
        search: query.search(),
        ..Default::default()
    };
    let after = query.after.as_deref().and_then(|a| a.parse().ok());
    let page = crate::service::directory::list_stores(&svc, &ctx, filter, after, LIST_PAGE).await?;
    let next = query.next("/stores", page.next_cursor);
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language(&headers), "stores", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "stores.html",
        &frame,
        json!({ "stores": page.data, "next": next, "q": query.search(), "active": query.active.clone() }),
    ))
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    action: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
}

/// The audit trail; reading it is audited, as through the API.
pub async fn audit(
    State(svc): State<AppState>,
    DashboardAdmin { user, ctx, .. }: DashboardAdmin,
    Meta(meta): Meta,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
    uri: Uri,
) -> Result<Response, AppError> {
    use crate::domain::audit::Outcome;
    let language = language(&headers);
    let action = query
        .action
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| a.chars().take(100).collect::<String>());
    let outcome = match query.outcome.as_deref() {
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some("denied") => Some(Outcome::Denied),
        _ => None,
    };
    let since = day_start(query.since.as_deref(), 0);
    let until = day_start(query.until.as_deref(), 1);
    let problem = (since.is_err() || until.is_err())
        .then(|| crate::web::i18n::word(language, "invalid_date"));
    let filter = crate::store::audit_log::AuditFilter {
        action: action.clone(),
        outcome,
        actor_id: None,
        since: since.unwrap_or_default(),
        until: until.unwrap_or_default(),
    };
    let page =
        crate::service::audit::list(&svc, &ctx, &meta, filter, query.before, LIST_PAGE).await?;
    let next = page.next_cursor.map(|cursor| {
        let mut link = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("action", action.as_deref()),
            ("outcome", outcome.map(Outcome::as_str)),
            ("since", query.since.as_deref()),
            ("until", query.until.as_deref()),
        ] {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                link.append_pair(name, value);
            }
        }
        link.append_pair("before", &cursor);
        format!("/audit?{}", link.finish())
    });
    let csrf = user.session.csrf_token.clone();
    let frame = Frame::new(language, "audit", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "audit.html",
        &frame,
        json!({
            "entries": page.entries,
            "next": next,
            "problem": problem,
            "filter": {
                "action": action,
                "outcome": outcome.map(Outcome::as_str),
                "since": query.since,
                "until": query.until,
            },
        }),
    ))
}
