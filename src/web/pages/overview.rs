//! The overview: the enterprise's sync at a glance, and a person's own profile.

use super::*;

pub async fn home(
    State(svc): State<AppState>,
    SignedIn { user, language }: SignedIn,
    uri: Uri,
) -> Result<Response, AppError> {
    let csrf = user.session.csrf_token.clone();
    if !user.is_admin() {
        // Managers and sellers see their own profile, nothing of the enterprise.
        let frame = Frame::new(language, "profile", uri.path(), Some(&user), &csrf);
        let role =
            crate::web::i18n::word(language, &format!("role_{}", user.session.role.as_str()));
        return Ok(render(
            StatusCode::OK,
            "profile.html",
            &frame,
            json!({ "role": role }),
        ));
    }
    let ctx = user.principal().require_scope(Scope::SyncRead)?;
    let overview = crate::service::overview::overview(&svc, &ctx).await?;
    let status = &overview.status;
    let seats_percent = if status.seats_purchased > 0 {
        (status.seats_used * 100 / status.seats_purchased).clamp(0, 100)
    } else {
        0
    };
    let week_ago = (svc.clock.now() - chrono::Duration::days(7)).format("%Y-%m-%d");
    let frame = Frame::new(language, "overview", uri.path(), Some(&user), &csrf);
    Ok(render(
        StatusCode::OK,
        "overview.html",
        &frame,
        json!({
            "status": status,
            "seats_percent": seats_percent,
            "last_by_source": overview.last_by_source,
            "held_files": overview.held_files,
            "failed_last_7_days": overview.failed_last_7_days,
            "failed_link": format!("/runs?status=failed&since={week_ago}"),
            "chart": chart(&overview.days),
        }),
    ))
}

/// The 30-day chart as SVG geometry: one stacked bar per day (created,
/// updated, deactivated, failed rows), in a 300 × 100 view box.
fn chart(days: &[crate::service::overview::Day]) -> serde_json::Value {
    const HEIGHT: f64 = 100.0;
    let slot = 300.0 / days.len().max(1) as f64;
    let total =
        |d: &crate::service::overview::Day| d.created + d.updated + d.deactivated + d.failed;
    let max = days.iter().map(total).max().unwrap_or(0).max(1) as f64;
    let bars: Vec<serde_json::Value> = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let mut top = HEIGHT;
            let segments: Vec<serde_json::Value> = [
                ("created", day.created),
                ("updated", day.updated),
                ("deactivated", day.deactivated),
                ("failed", day.failed),
            ]
            .into_iter()
            .filter(|(_, value)| *value > 0)
            .map(|(kind, value)| {
                let height = value as f64 / max * HEIGHT;
                top -= height;
                json!({ "kind": kind, "y": format!("{top:.2}"), "height": format!("{height:.2}") })
            })
            .collect();
            json!({
                "x": format!("{:.2}", i as f64 * slot + slot * 0.15),
                "width": format!("{:.2}", slot * 0.7),
                "day": day.day,
                "created": day.created,
                "updated": day.updated,
                "deactivated": day.deactivated,
                "failed": day.failed,
                "segments": segments,
            })
        })
        .collect();
    json!({
        "bars": bars,
        "max": max as i64,
        "first": days.first().map(|d| d.day.clone()),
        "last": days.last().map(|d| d.day.clone()),
    })
}
