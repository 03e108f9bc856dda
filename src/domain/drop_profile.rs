//! An enterprise's drop-directory profile: when its uploads count as complete,
//! how its files are read (delimiter, fallback encoding, lines to skip) and how
//! their columns map onto our fields (renamed and joined columns, constants,
//! value maps, leading zeros, dated rows). IT admins set it through
//! `PUT /api/enterprise/drop-config`, operators in the config file; what it
//! leaves out comes from the appliance's `[dropdir]` settings.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::import_body::{FORBIDDEN_FIELDS, STORE_FIELDS, USER_FIELDS};
use crate::error::FieldError;

/// How an upload is known to be complete.
#[derive(utoipa::ToSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CompletionPolicy {
    /// Producers upload under a temporary name and rename: any other name is complete.
    Rename,
    /// `<file>.done` or `<file>.ok` beside the file says it is complete.
    Marker,
    /// Size, modification time and inode unchanged for `quiet_secs`.
    #[default]
    Quiet,
}

/// What a delta file (not a full export) with row errors does.
#[derive(utoipa::ToSchema, Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RowErrorPolicy {
    /// The valid rows apply; the others are reported (as the REST imports do).
    #[default]
    ApplyValidRows,
    /// Any row error fails the whole file; nothing applies.
    RejectFile,
}

#[derive(utoipa::ToSchema, Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DropProfile {
    pub completion: Option<CompletionPolicy>,
    /// `quiet` completion: seconds a file must stay unchanged.
    #[schema(maximum = 86_400)]
    pub quiet_secs: Option<u64>,
    /// `,` `;` `|` or `tab`; detected from the header line when absent.
    pub delimiter: Option<String>,
    /// Encoding of files that are neither UTF-8 nor carry a BOM.
    pub fallback_encoding: Option<String>,
    /// Lines before the header (a title, an export date) and after the last
    /// record (a trailer such as `EOF;1234`) that are not data.
    #[schema(maximum = 1_000)]
    pub skip_top_lines: usize,
    #[schema(maximum = 1_000)]
    pub skip_bottom_lines: usize,
    /// Leading and trailing spaces removed from every value (default true).
    pub trim: Option<bool>,
    /// Every users file is a full export (not only names containing the word below).
    pub users_files_are_full_exports: bool,
    /// A users file whose name contains this (case-insensitive) is a full export.
    pub full_export_name_contains: Option<String>,
    #[schema(maximum = 100)]
    pub full_export_max_deactivate_percent: Option<u32>,
    #[schema(maximum = 1_000_000)]
    pub full_export_max_deactivate_count: Option<u32>,
    /// Delta files only: a full export with any row error is always rejected whole.
    pub delta_row_errors: Option<RowErrorPolicy>,
    pub users: Mapping,
    pub stores: Mapping,
}

/// How a file's columns become a kind's fields. With no rule for a field, a
/// column named like the field (case-insensitive, spaces as `_`) feeds it.
#[derive(utoipa::ToSchema, Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Mapping {
    /// Field → rule, e.g. `"external_id": "PERNR"` or
    /// `"name": {"columns": ["VORNA", "NACHN"]}`.
    pub columns: BTreeMap<String, ColumnRule>,
    /// One person (or store) on several dated rows: the row valid today wins.
    pub dated_rows: Option<DatedRows>,
}

/// A field's source: a column name, or a rule.
#[derive(utoipa::ToSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ColumnRule {
    Column(String),
    Rule(Rule),
}

#[derive(utoipa::ToSchema, Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// One column…
    pub column: Option<String>,
    /// …or several, joined by `separator` (default one space), empty ones left out…
    pub columns: Vec<String>,
    pub separator: Option<String>,
    /// …or the same value on every row.
    pub constant: Option<String>,
    /// Source value → our value (e.g. a job code → `manager`), matched after
    /// trimming and ignoring case.
    pub values: BTreeMap<String, String>,
    /// For a value the map does not name; absent: the value is kept as it is.
    pub otherwise: Option<String>,
    /// `00012345` → `12345` (ids are kept exactly as written otherwise)…
    pub strip_leading_zeros: bool,
    /// …or `12345` → `00012345` when a spreadsheet ate the zeros.
    pub pad_leading_zeros_to: Option<usize>,
}

/// Which columns date a row, and how dates are written (chrono `strftime`
/// syntax: `%d.%m.%Y` for SAP's `31.12.9999`, `%Y%m%d` for `99991231`).
#[derive(utoipa::ToSchema, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatedRows {
    pub valid_from: String,
    pub valid_to: String,
    #[serde(default = "default_date_format")]
    pub date_format: String,
}

fn default_date_format() -> String {
    "%Y-%m-%d".into()
}

pub const MAX_RULES: usize = 64;
pub const MAX_VALUE_MAP: usize = 10_000;
pub const MAX_SKIPPED_LINES: usize = 1_000;
/// More people than any enterprise employs: a ceiling that still holds files.
pub const MAX_DEACTIVATE_COUNT: u32 = 1_000_000;
const MAX_TEXT: usize = 256;

/// A delimiter as written in a profile.
pub fn delimiter_byte(text: &str) -> Option<u8> {
    match text {
        "," => Some(b','),
        ";" => Some(b';'),
        "|" => Some(b'|'),
        "\t" | "tab" | "\\t" => Some(b'\t'),
        _ => None,
    }
}

/// A date written in `format`, or `None`.
pub fn parse_date(text: &str, format: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), format).ok()
}

fn format_is_usable(format: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    let sample = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or_default();
    !format.is_empty()
        && !StrftimeItems::new(format).any(|item| matches!(item, Item::Error))
        && parse_date(&sample.format(format).to_string(), format) == Some(sample)
}

impl DropProfile {
    /// Every problem, each naming its field (`users.columns.role.values`, …).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field: String, message: String| {
            errors.push(FieldError::new(field, "invalid_value", message));
        };
        if let Some(quiet) = self.quiet_secs {
            if quiet > 86_400 {
                bad(
                    "quiet_secs".into(),
                    "at most 86400 seconds (one day)".into(),
                );
            }
        }
        if let Some(delimiter) = &self.delimiter {
            if delimiter_byte(delimiter).is_none() {
                bad(
                    "delimiter".into(),
                    format!("{delimiter:?} is not one of \",\" \";\" \"|\" \"tab\""),
                );
            }
        }
        if let Some(label) = &self.fallback_encoding {
            if encoding_rs::Encoding::for_label(label.as_bytes()).is_none() {
                bad(
                    "fallback_encoding".into(),
                    format!("{label:?} is not an encoding this service knows (try windows-1252, iso-8859-15)"),
                );
            }
        }
        for (field, lines) in [
            ("skip_top_lines", self.skip_top_lines),
            ("skip_bottom_lines", self.skip_bottom_lines),
        ] {
            if lines > MAX_SKIPPED_LINES {
                bad(field.into(), format!("at most {MAX_SKIPPED_LINES} lines"));
            }
        }
        if self
            .full_export_max_deactivate_percent
            .is_some_and(|p| p > 100)
        {
            bad(
                "full_export_max_deactivate_percent".into(),
                "a share between 0 and 100".into(),
            );
        }
        if self
            .full_export_max_deactivate_count
            .is_some_and(|count| count > MAX_DEACTIVATE_COUNT)
        {
            bad(
                "full_export_max_deactivate_count".into(),
                format!("at most {MAX_DEACTIVATE_COUNT} people"),
            );
        }
        if self
            .full_export_name_contains
            .as_ref()
            .is_some_and(|word| word.len() > MAX_TEXT)
        {
            bad(
                "full_export_name_contains".into(),
                format!("at most {MAX_TEXT} bytes"),
            );
        }
        for (kind, mapping, fields) in [
            ("users", &self.users, USER_FIELDS.as_slice()),
            ("stores", &self.stores, STORE_FIELDS.as_slice()),
        ] {
            mapping.check(kind, fields, &mut bad);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Mapping {
    fn check(&self, kind: &str, fields: &[&str], bad: &mut impl FnMut(String, String)) {
        if self.columns.len() > MAX_RULES {
            bad(
                format!("{kind}.columns"),
                format!("at most {MAX_RULES} rules"),
            );
        }
        for (field, rule) in &self.columns {
            let at = format!("{kind}.columns.{field}");
            if FORBIDDEN_FIELDS.contains(&field.as_str()) {
                bad(at.clone(), format!("{field} cannot be set by an import"));
                continue;
            }
            if !fields.contains(&field.as_str()) {
                bad(
                    at.clone(),
                    format!(
                        "{kind} have no field {field:?}; fields: {}",
                        fields.join(", ")
                    ),
                );
                continue;
            }
            let rule = match rule {
                ColumnRule::Column(column) => {
                    if column.trim().is_empty() || column.len() > MAX_TEXT {
                        bad(at, "a column name (1 to 256 bytes)".into());
                    }
                    continue;
                }
                ColumnRule::Rule(rule) => rule,
            };
            let sources = usize::from(rule.column.is_some())
                + usize::from(!rule.columns.is_empty())
                + usize::from(rule.constant.is_some());
            if sources != 1 {
                bad(
                    at.clone(),
                    "exactly one of column, columns or constant".into(),
                );
            }
            let texts = rule
                .column
                .iter()
                .chain(&rule.columns)
                .chain(&rule.separator)
                .chain(&rule.constant)
                .chain(&rule.otherwise);
            if texts.into_iter().any(|t| t.len() > MAX_TEXT) || rule.columns.len() > MAX_RULES {
                bad(
                    at.clone(),
                    format!("names and values of at most {MAX_TEXT} bytes"),
                );
            }
            if rule.values.len() > MAX_VALUE_MAP
                || rule
                    .values
                    .iter()
                    .any(|(from, to)| from.len() > MAX_TEXT || to.len() > MAX_TEXT)
            {
                bad(
                    format!("{at}.values"),
                    format!("at most {MAX_VALUE_MAP} entries of at most {MAX_TEXT} bytes"),
                );
            }
            if rule.strip_leading_zeros && rule.pad_leading_zeros_to.is_some() {
                bad(
                    at.clone(),
                    "strip_leading_zeros and pad_leading_zeros_to exclude each other".into(),
                );
            }
            if rule.pad_leading_zeros_to.is_some_and(|n| n == 0 || n > 64) {
                bad(
                    format!("{at}.pad_leading_zeros_to"),
                    "a width from 1 to 64".into(),
                );
            }
        }
        if let Some(dated) = &self.dated_rows {
            let at = format!("{kind}.dated_rows");
            if dated.valid_from.trim().is_empty() || dated.valid_to.trim().is_empty() {
                bad(at.clone(), "valid_from and valid_to name columns".into());
            }
            if !format_is_usable(&dated.date_format) {
                bad(
                    format!("{at}.date_format"),
                    format!(
                        "{:?} cannot write and read back a date (e.g. %d.%m.%Y or %Y%m%d)",
                        dated.date_format
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> DropProfile {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_sap_profile_reads_and_validates() {
        let sap = profile(serde_json::json!({
            "delimiter": ";",
            "skip_bottom_lines": 1,
            "users": {
                "columns": {
                    "external_id": {"column": "PERNR", "strip_leading_zeros": true},
                    "name": {"columns": ["VORNA", "NACHN"]},
                    "email": "MAIL",
                    "role": {"column": "STELL", "values": {"50001234": "manager"}, "otherwise": "seller"},
                    "store_id": "WERKS"
                },
                "dated_rows": {"valid_from": "BEGDA", "valid_to": "ENDDA", "date_format": "%d.%m.%Y"}
            }
        }));
        assert_eq!(sap.validate(), Ok(()));
        assert!(matches!(
            sap.users.columns.get("email"),
            Some(ColumnRule::Column(c)) if c == "MAIL"
        ));
    }

    #[test]
    fn each_mistake_names_its_field() {
        let wrong = profile(serde_json::json!({
            "delimiter": "#",
            "fallback_encoding": "klingon",
            "full_export_max_deactivate_percent": 120,
            "full_export_max_deactivate_count": 2_147_483_648_u64,
            "users": {
                "columns": {
                    "password": "PW",
                    "shoe_size": "X",
                    "name": {"column": "A", "constant": "B"},
                    "external_id": {"column": "P", "strip_leading_zeros": true, "pad_leading_zeros_to": 8}
                },
                "dated_rows": {"valid_from": "B", "valid_to": "E", "date_format": "%Q"}
            }
        }));
        let fields: Vec<String> = wrong
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        for expected in [
            "delimiter",
            "fallback_encoding",
            "full_export_max_deactivate_percent",
            "full_export_max_deactivate_count",
            "users.columns.password",
            "users.columns.shoe_size",
            "users.columns.name",
            "users.columns.external_id",
            "users.dated_rows.date_format",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} in {fields:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_not_ignored() {
        let typo = serde_json::from_value::<DropProfile>(serde_json::json!({"delimitter": ";"}));
        assert!(typo.is_err());
    }

    #[test]
    fn sap_dates_parse() {
        assert_eq!(
            parse_date("31.12.9999", "%d.%m.%Y"),
            NaiveDate::from_ymd_opt(9999, 12, 31)
        );
        assert_eq!(
            parse_date("20260101", "%Y%m%d"),
            NaiveDate::from_ymd_opt(2026, 1, 1)
        );
        assert_eq!(parse_date("2026-13-01", "%Y-%m-%d"), None);
    }
}
