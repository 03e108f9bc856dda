//! The one import engine. REST bulk imports, drop-directory files and SCIM all
//! hand it normalised records, a mode and their source; it plans every row
//! against the enterprise's current data, then applies all valid rows in one
//! write transaction together with their change events and sync logs, and
//! returns the report. A dry run plans the same way on a read connection and
//! writes nothing.

mod run;
pub mod stores;
mod user_rules;
pub mod users;

use crate::domain::import::{ImportMode, ImportSource, RowError};
use crate::domain::EnterpriseId;

pub use run::RunSummary;

/// One import request, whatever its source.
#[derive(Debug, Clone)]
pub struct ImportRequest<R> {
    pub enterprise: EnterpriseId,
    pub source: ImportSource,
    pub mode: ImportMode,
    pub rows: Vec<R>,
    pub dry_run: bool,
    /// Give each newly created, active user an invitation to set a password.
    pub invite_new_users: bool,
    /// Adapter findings that are not row errors (unknown fields ignored, …).
    pub warnings: Vec<String>,
    /// Rows the adapter could already not read (wrong types, forbidden fields);
    /// they count as failed and are not applied.
    pub row_errors: Vec<RowError>,
}

/// Longest accepted text field, in characters.
pub const MAX_TEXT: usize = 500;
pub const MAX_NAME: usize = 200;
pub const MAX_EXTERNAL_ID: usize = 255;

/// Row errors accumulate here; a row with any error is skipped whole.
#[derive(Default)]
pub(crate) struct Errors {
    pub list: Vec<RowError>,
    failed: std::collections::HashSet<usize>,
}

impl Errors {
    pub fn seeded(initial: &[RowError]) -> Errors {
        let mut errors = Errors::default();
        for e in initial {
            errors.failed.insert(e.row);
            errors.list.push(e.clone());
        }
        errors
    }

    pub fn add(
        &mut self,
        row: usize,
        key: &Option<String>,
        field: Option<&str>,
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.failed.insert(row);
        self.list.push(RowError {
            row,
            key: key.clone(),
            field: field.map(str::to_string),
            code,
            message: message.into(),
        });
    }

    pub fn has(&self, row: usize) -> bool {
        self.failed.contains(&row)
    }

    /// Finishes the report: errors in row order, failed = rows with an error.
    pub fn into_report(self, report: &mut crate::domain::import::ImportReport) {
        report.failed = self.failed.len();
        report.success = report.failed == 0;
        report.errors = self.list;
        report.errors.sort_by_key(|e| e.row);
    }
}

/// Trims a text field; blank means "not given".
pub(crate) fn clean(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Checks a text field's length; reports and returns false when too long.
pub(crate) fn check_len(
    errors: &mut Errors,
    row: usize,
    key: &Option<String>,
    field: &str,
    value: &Option<String>,
    max: usize,
) -> bool {
    match value {
        Some(v) if v.chars().count() > max => {
            errors.add(
                row,
                key,
                Some(field),
                "too_long",
                format!("{field} is longer than {max} characters"),
            );
            false
        }
        _ => true,
    }
}
