//! Planning's first phase, row by row: each row's fields trimmed and
//! normalised (borrowed from the request), its own checks, and the directory
//! of the enterprise's people and stores that rows are matched against.

use super::*;

/// A row's fields trimmed and normalised, borrowed from the request.
pub(crate) struct RowView<'a> {
    pub id: Option<UserId>,
    pub external_id: Option<&'a str>,
    pub email: Option<Cow<'a, str>>,
    pub name: Option<&'a str>,
    pub role: Option<&'a str>,
    pub store_ref: Option<&'a str>,
    pub manager_ref: Option<&'a str>,
    pub active: Option<bool>,
    pub clear: ClearFields,
}

impl<'a> RowView<'a> {
    pub fn of(record: &'a UserRecord) -> Self {
        RowView {
            id: record.id,
            external_id: cleaned(&record.external_id),
            email: cleaned(&record.email).map(email::normalize_cow),
            name: cleaned(&record.name),
            role: cleaned(&record.role),
            store_ref: cleaned(&record.store_ref),
            manager_ref: cleaned(&record.manager_ref),
            active: record.active,
            clear: record.clear,
        }
    }

    /// The key a report names the row by.
    pub fn key(&self) -> Option<String> {
        self.external_id
            .or(self.email.as_deref())
            .map(str::to_string)
    }
}

/// What a valid row would make of its user, borrowing the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Draft<'a> {
    pub id: UserId,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub store_id: Option<StoreId>,
    pub manager_id: Option<UserId>,
    pub external_id: Option<&'a str>,
    pub active: bool,
}

impl<'a> Draft<'a> {
    pub(crate) fn of(user: &'a Person) -> Self {
        Draft {
            id: user.id,
            email: &user.email,
            name: &user.name,
            role: user.role,
            store_id: user.store_id,
            manager_id: user.manager_id,
            external_id: user.external_id.as_deref(),
            active: user.active,
        }
    }
}

/// A valid row, matched, before its manager reference is resolved.
pub(crate) struct Candidate<'a> {
    pub row: usize,
    pub existing: Option<&'a Person>,
    pub next: Draft<'a>,
    pub manager_ref: Option<&'a str>,
}

pub(crate) fn parse_role(raw: &str) -> Result<Role, (&'static str, String)> {
    if raw.eq_ignore_ascii_case("manager") {
        Ok(Role::Manager)
    } else if raw.eq_ignore_ascii_case("seller") {
        Ok(Role::Seller)
    } else if raw.eq_ignore_ascii_case("it_admin") {
        Err((
            "forbidden_role",
            "imports cannot create or change IT administrators".into(),
        ))
    } else {
        Err((
            "invalid_role",
            format!(
                "unknown role {:?}; use manager or seller",
                raw.to_lowercase()
            ),
        ))
    }
}

/// The enterprise's people and stores, indexed the ways rows refer to them.
pub(crate) struct Directory<'a> {
    pub(crate) by_id: HashMap<UserId, &'a Person>,
    pub(crate) by_external: HashMap<&'a str, &'a Person>,
    pub(crate) by_email: HashMap<&'a str, &'a Person>,
    pub(crate) store_ids: HashSet<StoreId>,
    pub(crate) store_by_external: HashMap<&'a str, StoreId>,
}

impl<'a> Directory<'a> {
    pub(crate) fn new(people: &'a [Person], stores: &'a [crate::domain::Store]) -> Self {
        Directory {
            by_id: people.iter().map(|u| (u.id, u)).collect(),
            by_external: people
                .iter()
                .filter_map(|u| u.external_id.as_deref().map(|e| (e, u)))
                .collect(),
            by_email: people.iter().map(|u| (u.email.as_str(), u)).collect(),
            store_ids: stores.iter().map(|s| s.id).collect(),
            store_by_external: stores
                .iter()
                .filter_map(|s| s.external_id.as_deref().map(|e| (e, s.id)))
                .collect(),
        }
    }

    pub(crate) fn store(&self, reference: &str) -> Option<StoreId> {
        reference
            .parse::<StoreId>()
            .ok()
            .filter(|id| self.store_ids.contains(id))
            .or_else(|| self.store_by_external.get(reference).copied())
    }
}

/// A request with at least 1/4 as many rows as the enterprise has staff reads
/// everyone in one scan rather than probing for each key.
pub(crate) const READ_EVERYONE_FROM_FRACTION: i64 = 4;

/// The people a request can match or name as a manager. A request covering a
/// good part of the enterprise reads everyone in one scan; a smaller one looks
/// up its keys, so ten requests of 10,000 do not each read the whole enterprise.
pub(crate) fn people_in_reach(
    conn: &Connection,
    enterprise: crate::domain::EnterpriseId,
    views: &[RowView<'_>],
    staff: i64,
) -> rusqlite::Result<Vec<Person>> {
    if views.len() as i64 * READ_EVERYONE_FROM_FRACTION >= staff {
        return store::users::people(conn, enterprise);
    }
    let mut keys: Vec<&str> = Vec::with_capacity(views.len() * 2);
    let mut manager_emails: Vec<Cow<'_, str>> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    let own_ids: Vec<String> = views
        .iter()
        .filter_map(|v| v.id.map(|id| id.to_string()))
        .collect();
    ids.extend(own_ids.iter().map(String::as_str));
    for view in views {
        keys.extend(view.external_id);
        keys.extend(view.email.as_deref());
        if let Some(reference) = view.manager_ref {
            keys.push(reference);
            if reference.parse::<UserId>().is_ok() {
                ids.push(reference);
            }
            if let Cow::Owned(normal) = email::normalize_cow(reference) {
                manager_emails.push(Cow::Owned(normal));
            }
        }
    }
    keys.extend(manager_emails.iter().map(|e| e.as_ref()));
    store::users::people_named(conn, enterprise, &keys, &ids)
}

/// The checks a row passes on its own: lengths, the email's form, the role.
/// Reports each problem; answers the role given (if any) when the row may go
/// on, `None` when it failed (now or earlier).
pub(crate) fn row_checks(
    errors: &mut Errors,
    row: usize,
    view: &RowView<'_>,
    key_of: &dyn Fn(usize) -> Option<String>,
) -> Option<Option<Role>> {
    let mut valid = check_len(errors, row, key_of, "name", view.name, MAX_NAME);
    valid &= check_len(
        errors,
        row,
        key_of,
        "external_id",
        view.external_id,
        MAX_EXTERNAL_ID,
    );
    if let Some(problem) = view.email.as_deref().and_then(email::problem) {
        errors.add(
            row,
            &view.key(),
            Some("email"),
            "invalid_email",
            format!("email {problem}"),
        );
        valid = false;
    }
    let role = match view.role.map(parse_role).transpose() {
        Ok(role) => role,
        Err((code, message)) => {
            errors.add(row, &view.key(), Some("role"), code, message);
            return None;
        }
    };
    (valid && !errors.has(row)).then_some(role)
}
