//! The cross-row rules of a user import: manager references (which may point
//! at rows of the same request), managers who still manage staff, and seats.

use std::collections::HashMap;

use super::users::Candidate;
use super::Errors;
use crate::domain::{email, Role, UserId};
use crate::store::users::Person;

type KeyOf<'k> = &'k dyn Fn(usize) -> Option<String>;

/// Who a manager reference can name: people of the enterprise and the request's
/// valid rows, by our id, external id or email (rows win over stored people).
#[derive(Default)]
struct Managers<'a> {
    by_id: HashMap<UserId, Role>,
    by_external: HashMap<&'a str, (UserId, Role)>,
    by_email: HashMap<&'a str, (UserId, Role)>,
}

impl<'a> Managers<'a> {
    fn add(&mut self, id: UserId, role: Role, external_id: Option<&'a str>, email: &'a str) {
        self.by_id.insert(id, role);
        if let Some(e) = external_id {
            self.by_external.insert(e, (id, role));
        }
        self.by_email.insert(email, (id, role));
    }

    fn find(&self, reference: &str) -> Option<(UserId, Role)> {
        reference
            .parse::<UserId>()
            .ok()
            .and_then(|id| self.by_id.get(&id).map(|role| (id, *role)))
            .or_else(|| self.by_external.get(reference).copied())
            .or_else(|| {
                self.by_email
                    .get(email::normalize_cow(reference).as_ref())
                    .copied()
            })
    }
}

/// Resolves `manager_id` references until no more rows fail, since a failed
/// manager row fails the rows that point at it.
pub(super) fn resolve_managers<'a>(
    candidates: &mut [Candidate<'a>],
    people: &'a [Person],
    errors: &mut Errors,
    key_of: KeyOf<'_>,
) {
    if candidates.iter().all(|c| c.manager_ref.is_none()) {
        return;
    }
    loop {
        let mut managers = Managers::default();
        for user in people.iter().filter(|u| u.role != Role::ItAdmin) {
            managers.add(user.id, user.role, user.external_id.as_deref(), &user.email);
        }
        for c in candidates.iter().filter(|c| !errors.has(c.row)) {
            managers.add(c.next.id, c.next.role, c.next.external_id, c.next.email);
        }
        let mut newly_failed = Vec::new();
        for c in candidates.iter().filter(|c| !errors.has(c.row)) {
            let Some(reference) = c.manager_ref else {
                continue;
            };
            match managers.find(reference) {
                None => newly_failed.push((
                    c.row,
                    "unknown_manager",
                    format!("no manager {reference:?} in this enterprise"),
                )),
                Some((_, role)) if role != Role::Manager => newly_failed.push((
                    c.row,
                    "not_a_manager",
                    format!("{reference:?} is not a manager"),
                )),
                Some((id, _)) if id == c.next.id => newly_failed.push((
                    c.row,
                    "not_a_manager",
                    "a user cannot be their own manager".to_string(),
                )),
                Some(_) => {}
            }
        }
        if newly_failed.is_empty() {
            for c in candidates.iter_mut().filter(|c| !errors.has(c.row)) {
                if let Some(reference) = c.manager_ref {
                    c.next.manager_id = managers.find(reference).map(|(id, _)| id);
                }
            }
            return;
        }
        for (row, code, message) in newly_failed {
            errors.add(row, &key_of(row), Some("manager_id"), code, message);
        }
    }
}

/// A manager who is no longer one would leave staff pointing at a non-manager.
pub(super) fn refuse_demoting_managers_with_staff(
    candidates: &[Candidate<'_>],
    errors: &mut Errors,
    key_of: KeyOf<'_>,
    has_staff: impl Fn(UserId) -> rusqlite::Result<bool>,
) -> rusqlite::Result<()> {
    for c in candidates {
        let demoted = !errors.has(c.row)
            && c.existing.is_some_and(|e| e.role == Role::Manager)
            && c.next.role != Role::Manager;
        if demoted && has_staff(c.next.id)? {
            errors.add(
                c.row,
                &key_of(c.row),
                Some("role"),
                "manager_has_staff",
                "this manager still manages staff; reassign them first",
            );
        }
    }
    Ok(())
}

/// Activations beyond the purchased seats fail, in row order, after the
/// request's own deactivations are counted, and the seats a full export frees
/// (`freed`: active people no valid row names).
pub(super) fn enforce_seats(
    candidates: &[Candidate<'_>],
    mut active_staff: i64,
    seats_purchased: i64,
    freed: usize,
    errors: &mut Errors,
    key_of: KeyOf<'_>,
) {
    active_staff -= i64::try_from(freed).unwrap_or(0);
    for c in candidates.iter().filter(|c| !errors.has(c.row)) {
        if c.existing.is_some_and(|e| e.active) && !c.next.active {
            active_staff -= 1;
        }
    }
    let mut seat_failures = Vec::new();
    for c in candidates.iter().filter(|c| !errors.has(c.row)) {
        let activates = c.next.active && !c.existing.is_some_and(|e| e.active);
        if activates {
            if active_staff >= seats_purchased {
                seat_failures.push(c.row);
            } else {
                active_staff += 1;
            }
        }
    }
    for row in seat_failures {
        errors.add(
            row,
            &key_of(row),
            Some("active"),
            "seat_limit_reached",
            format!("all {} purchased seats are in use", seats_purchased),
        );
    }
}

/// Active people no valid candidate names: a full export's leavers, as far as
/// the checks so far tell.
pub(super) fn unnamed_active(
    people: &[Person],
    candidates: &[Candidate<'_>],
    errors: &Errors,
) -> usize {
    let named: std::collections::HashSet<UserId> = candidates
        .iter()
        .filter(|c| !errors.has(c.row))
        .filter_map(|c| c.existing.map(|p| p.id))
        .collect();
    people
        .iter()
        .filter(|p| p.role != Role::ItAdmin && p.active && !named.contains(&p.id))
        .count()
}

/// A full export: the active staff it does not name leave. Returns them, and
/// why the file must not apply if it must not (see [`full_export_guard`]); a
/// held file's report still counts them, as what it would do.
pub(super) fn full_export_leavers<'a>(
    full: &super::FullExport,
    people: &'a [Person],
    candidates: &[Candidate<'_>],
    errors: &Errors,
    rows: usize,
) -> (
    Vec<&'a Person>,
    Result<(), crate::domain::import::NotApplied>,
) {
    let named: std::collections::HashSet<UserId> = candidates
        .iter()
        .filter_map(|c| c.existing.map(|p| p.id))
        .collect();
    let active_staff = people
        .iter()
        .filter(|p| p.role != Role::ItAdmin && p.active)
        .count();
    let leavers: Vec<&Person> = people
        .iter()
        .filter(|p| p.role != Role::ItAdmin && p.active && !named.contains(&p.id))
        .collect();
    let verdict = full_export_guard(
        full,
        errors.failed_rows(),
        leavers.len(),
        active_staff,
        rows,
    );
    (leavers, verdict)
}

/// Why a full export must not apply: any row error (a skipped row must not
/// look like a leaver), or — unless approved — more leavers than the share or
/// count allowed, an empty file, an export older than the last applied one, or
/// half the rows of the last full export.
pub(super) fn full_export_guard(
    full: &super::FullExport,
    failed_rows: usize,
    leavers: usize,
    active_staff: usize,
    rows: usize,
) -> Result<(), crate::domain::import::NotApplied> {
    use crate::domain::import::NotApplied;
    if failed_rows > 0 {
        return Err(NotApplied {
            code: super::FULL_EXPORT_REJECTED,
            message: format!(
                "a full export is applied whole or not at all, and {failed_rows} row(s) have errors"
            ),
        });
    }
    if full.approved {
        return Ok(());
    }
    let share_limit = active_staff * full.max_deactivate_percent as usize / 100;
    let hold = |message: String| NotApplied {
        code: super::FULL_EXPORT_HELD,
        message,
    };
    if rows == 0 {
        return Err(hold(
            "an empty full export would deactivate everyone; held for an IT admin's approval"
                .into(),
        ));
    }
    if leavers > share_limit || leavers > full.max_deactivate_count as usize {
        return Err(hold(format!(
            "it would deactivate {} of {} active people, over the guard ({} % or {} people); held for an IT admin's approval",
            leavers,
            active_staff,
            full.max_deactivate_percent,
            full.max_deactivate_count
        )));
    }
    if let Some(why) = &full.stale {
        return Err(hold(format!("{why}; held for an IT admin's approval")));
    }
    if let Some(previous) = full.previous_rows {
        if rows * 2 < previous {
            return Err(hold(format!(
                "it has {rows} rows where the last full export had {previous}; held for an IT admin's approval"
            )));
        }
    }
    Ok(())
}
