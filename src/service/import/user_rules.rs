//! The cross-row rules of a user import: manager references (which may point
//! at rows of the same request), managers who still manage staff, and seats.

use std::collections::{HashMap, HashSet};

use super::users::Candidate;
use super::Errors;
use crate::domain::{email, Role, User, UserId};

/// Resolves `manager_id` references until no more rows fail, since a failed
/// manager row fails the rows that point at it.
pub(super) fn resolve_managers(candidates: &mut [Candidate], people: &[User], errors: &mut Errors) {
    loop {
        let live: Vec<&Candidate> = candidates.iter().filter(|c| !errors.has(c.row)).collect();
        let mut by_ref: HashMap<String, (UserId, Role)> = HashMap::new();
        for user in people.iter().filter(|u| u.role != Role::ItAdmin) {
            by_ref.insert(user.id.to_string(), (user.id, user.role));
            if let Some(e) = &user.external_id {
                by_ref.insert(e.clone(), (user.id, user.role));
            }
            by_ref.insert(user.email.clone(), (user.id, user.role));
        }
        for c in &live {
            by_ref.insert(c.next.id.to_string(), (c.next.id, c.next.role));
            if let Some(e) = &c.next.external_id {
                by_ref.insert(e.clone(), (c.next.id, c.next.role));
            }
            by_ref.insert(c.next.email.clone(), (c.next.id, c.next.role));
        }
        let mut newly_failed = Vec::new();
        for c in &live {
            let Some(reference) = &c.manager_ref else {
                continue;
            };
            match by_ref
                .get(reference.as_str())
                .or_else(|| by_ref.get(&email::normalize(reference)))
            {
                None => newly_failed.push((
                    c.row,
                    c.key.clone(),
                    "unknown_manager",
                    format!("no manager {reference:?} in this enterprise"),
                )),
                Some((_, role)) if *role != Role::Manager => newly_failed.push((
                    c.row,
                    c.key.clone(),
                    "not_a_manager",
                    format!("{reference:?} is not a manager"),
                )),
                Some((id, _)) if *id == c.next.id => newly_failed.push((
                    c.row,
                    c.key.clone(),
                    "not_a_manager",
                    "a user cannot be their own manager".to_string(),
                )),
                Some(_) => {}
            }
        }
        if newly_failed.is_empty() {
            for c in candidates.iter_mut().filter(|c| !errors.has(c.row)) {
                if let Some(reference) = &c.manager_ref {
                    c.next.manager_id = by_ref
                        .get(reference.as_str())
                        .or_else(|| by_ref.get(&email::normalize(reference)))
                        .map(|(id, _)| *id);
                }
            }
            break;
        }
        for (row, key, code, message) in newly_failed {
            errors.add(row, &key, Some("manager_id"), code, message);
        }
    }
}

/// A manager who is no longer one would leave staff pointing at a non-manager.
pub(super) fn refuse_demoting_managers_with_staff(
    candidates: &[Candidate],
    people: &[User],
    errors: &mut Errors,
) {
    let demoted: HashSet<UserId> = candidates
        .iter()
        .filter(|c| {
            !errors.has(c.row)
                && c.existing.as_ref().is_some_and(|e| e.role == Role::Manager)
                && c.next.role != Role::Manager
        })
        .map(|c| c.next.id)
        .collect();
    if !demoted.is_empty() {
        let still_managed: HashSet<UserId> = people.iter().filter_map(|u| u.manager_id).collect();
        for c in candidates
            .iter()
            .filter(|c| demoted.contains(&c.next.id) && still_managed.contains(&c.next.id))
        {
            errors.add(
                c.row,
                &c.key,
                Some("role"),
                "manager_has_staff",
                "this manager still manages staff; reassign them first",
            );
        }
    }
}

/// Activations beyond the purchased seats fail, in row order, after the
/// request's own deactivations are counted.
pub(super) fn enforce_seats(
    candidates: &[Candidate],
    people: &[User],
    seats_purchased: i64,
    errors: &mut Errors,
) {
    let mut active_staff = people
        .iter()
        .filter(|u| u.role != Role::ItAdmin && u.active)
        .count() as i64;
    for c in candidates.iter().filter(|c| !errors.has(c.row)) {
        if c.existing.as_ref().is_some_and(|e| e.active) && !c.next.active {
            active_staff -= 1;
        }
    }
    let mut seat_failures = Vec::new();
    for c in candidates.iter().filter(|c| !errors.has(c.row)) {
        let activates = c.next.active && !c.existing.as_ref().is_some_and(|e| e.active);
        if activates {
            if active_staff >= seats_purchased {
                seat_failures.push((c.row, c.key.clone()));
            } else {
                active_staff += 1;
            }
        }
    }
    for (row, key) in seat_failures {
        errors.add(
            row,
            &key,
            Some("active"),
            "seat_limit_reached",
            format!("all {} purchased seats are in use", seats_purchased),
        );
    }
}
