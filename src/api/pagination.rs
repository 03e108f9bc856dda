//! `limit` + `cursor` parameters shared by the list endpoints.

use crate::error::FieldError;
use crate::service::directory::{DEFAULT_PAGE, MAX_PAGE};
use crate::AppError;

pub fn limit(raw: Option<i64>, errors: &mut Vec<FieldError>) -> usize {
    match raw {
        None => DEFAULT_PAGE,
        Some(n) if n >= 1 && n <= MAX_PAGE as i64 => usize::try_from(n).unwrap_or(DEFAULT_PAGE),
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "out_of_range",
                format!("limit must be between 1 and {MAX_PAGE}"),
            ));
            DEFAULT_PAGE
        }
    }
}

/// Parses an opaque cursor handed out by a previous page.
pub fn cursor<T: std::str::FromStr>(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<T> {
    let raw = raw.filter(|r| !r.is_empty())?;
    // Cursors we hand out never carry a sign (a number's parser would take
    // one), nor a number of more than 18 digits (all fit an i64).
    let signed = raw.starts_with(['-', '+']);
    let too_long = raw
        .split(|c: char| !c.is_ascii_digit())
        .any(|digits| digits.len() > 18);
    match raw.parse().ok().filter(|_| !signed && !too_long).ok_or(()) {
        Ok(value) => Some(value),
        Err(_) => {
            errors.push(FieldError::new(
                "cursor",
                "invalid_cursor",
                "cursor is not one this API handed out",
            ));
            None
        }
    }
}

/// An RFC 3339 time filter, normalised to the stored format.
pub fn time(field: &str, raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let raw = raw?;
    match crate::store::parse_ts(raw) {
        Some(t) => Some(crate::store::ts(t)),
        None => {
            errors.push(FieldError::new(
                field,
                "invalid_time",
                format!("{field} must be an RFC 3339 time"),
            ));
            None
        }
    }
}

/// A list answer: `{"data": [...], "next_cursor": "…" | null}`, serialised
/// straight from the records (no intermediate JSON tree).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PageBody<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

pub fn finish(errors: Vec<FieldError>) -> Result<(), AppError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}
