//! The engine's first phase, row by row: each row's fields trimmed and
//! normalised (borrowed from the source row) and the checks it passes on its own.

use super::*;
use crate::domain::import::RowErrorCode;

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
            external_id: Self::external_id_of(record),
            email: Self::email_of(record),
            name: cleaned(&record.name),
            role: cleaned(&record.role),
            store_ref: cleaned(&record.store_ref),
            manager_ref: cleaned(&record.manager_ref),
            active: record.active,
            clear: record.clear,
        }
    }

    /// The row's external id, as [`RowView::of`] gives it.
    pub fn external_id_of(record: &'a UserRecord) -> Option<&'a str> {
        cleaned(&record.external_id)
    }

    /// The row's email, as [`RowView::of`] gives it.
    pub fn email_of(record: &'a UserRecord) -> Option<Cow<'a, str>> {
        cleaned(&record.email).map(email::normalize_cow)
    }

    /// The key a report names the row by.
    pub fn key(&self) -> Option<String> {
        self.external_id
            .or(self.email.as_deref())
            .map(str::to_string)
    }
}

pub(crate) fn parse_role(raw: &str) -> Result<Role, (RowErrorCode, String)> {
    if raw.eq_ignore_ascii_case("manager") {
        Ok(Role::Manager)
    } else if raw.eq_ignore_ascii_case("seller") {
        Ok(Role::Seller)
    } else if raw.eq_ignore_ascii_case("it_admin") {
        Err((
            RowErrorCode::ForbiddenRole,
            "imports cannot create or change IT administrators".into(),
        ))
    } else {
        Err((
            RowErrorCode::InvalidRole,
            format!(
                "unknown role {:?}; use manager or seller",
                raw.to_lowercase()
            ),
        ))
    }
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
            RowErrorCode::InvalidEmail,
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
