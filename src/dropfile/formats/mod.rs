//! Reading a dropped file into import rows: the kind from the name, the encoding
//! (BOM, else strict UTF-8, else the configured fallback), then CSV with a header
//! (delimiter detected from the header) or the bulk-import JSON body.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::NaiveDate;
use encoding_rs::Encoding;

use super::mapping::{self, normalise_header, Compiled, Validity};
use crate::domain::drop_profile::Mapping;
use crate::domain::import::RowNumbering;

use crate::domain::import::{ImportMode, RowError, StoreRecord, UserRecord};
use crate::domain::import_body;
// A file's columns are the bulk-import body's fields, and the same fields are
// forbidden: one list for both.
use crate::domain::import_body::{
    FORBIDDEN_FIELDS as FORBIDDEN_COLUMNS, STORE_FIELDS as STORE_COLUMNS,
    USER_FIELDS as USER_COLUMNS,
};
use crate::AppError;

mod csv_records;

pub(crate) use csv_records::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users,
    Stores,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Users => "users",
            Kind::Stores => "stores",
        }
    }

    /// The kind as stored ([`Kind::as_str`]).
    pub fn parse(stored: &str) -> Option<Kind> {
        match stored {
            "users" => Some(Kind::Users),
            "stores" => Some(Kind::Stores),
            _ => None,
        }
    }

    /// `users*` or `stores*`, case-insensitive.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::from_name_with(name, &["users"], &["stores"])
    }

    /// The kind whose prefixes (case-insensitive) start the name; users first.
    pub fn from_name_with(
        name: &str,
        users: &[impl AsRef<str>],
        stores: &[impl AsRef<str>],
    ) -> Option<Kind> {
        let lower = name.to_lowercase();
        let starts = |prefix: &str| !prefix.is_empty() && lower.starts_with(&prefix.to_lowercase());
        if users.iter().any(|p| starts(p.as_ref())) {
            Some(Kind::Users)
        } else if stores.iter().any(|p| starts(p.as_ref())) {
            Some(Kind::Stores)
        } else {
            None
        }
    }

    /// The kind by the configured prefixes.
    pub fn of(name: &str, config: &crate::config::DropDirConfig) -> Option<Kind> {
        Kind::from_name_with(
            name,
            &config.users_file_prefixes,
            &config.stores_file_prefixes,
        )
    }
}

/// Text decoded from a file, with the encoding that was used.
pub struct Decoded {
    pub text: String,
    pub encoding: &'static str,
}

/// A file that cannot be read as a whole; the message is for the ERP team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem(pub String);

pub fn decode(bytes: &[u8], fallback: &'static Encoding) -> Decoded {
    if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_length..]);
        return Decoded {
            text: text.into_owned(),
            encoding: encoding.name(),
        };
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Decoded {
            text: text.to_string(),
            encoding: encoding_rs::UTF_8.name(),
        },
        Err(_) => {
            let (text, _) = fallback.decode_without_bom_handling(bytes);
            Decoded {
                text: text.into_owned(),
                encoding: fallback.name(),
            }
        }
    }
}

/// The delimiter the header line uses most, outside quotes.
pub fn detect_delimiter(text: &str) -> u8 {
    let header = first_record_text(text);
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for byte in header.bytes() {
        if byte == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for (delimiter, count) in counts.iter_mut() {
                if byte == *delimiter {
                    *count += 1;
                }
            }
        }
    }
    counts
        .iter()
        .max_by_key(|(_, count)| *count)
        .filter(|(_, count)| *count > 0)
        .map_or(b',', |(delimiter, _)| *delimiter)
}

fn first_record_text(text: &str) -> &str {
    let mut quoted = false;
    for (at, ch) in text.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '\r' | '\n' if !quoted => return &text[..at],
            _ => {}
        }
    }
    text
}

/// Rows read from a file, ready for the import engine.
pub struct FileRows<R> {
    pub rows: Vec<R>,
    pub mode: ImportMode,
    pub row_errors: Vec<RowError>,
    pub warnings: Vec<String>,
    pub delimiter: Option<char>,
    /// JSON bodies only: `send_invitations`.
    pub send_invitations: bool,
    /// Record numbers of the rows (1 for the first record after the header).
    pub numbering: RowNumbering,
    /// The header line's columns, normalised (CSV only).
    pub columns: Vec<String>,
}

/// How a CSV file is read: the enterprise profile's reading settings.
#[derive(Clone, Copy)]
pub struct ReadOptions<'a> {
    /// Detected from the header line when absent.
    pub delimiter: Option<u8>,
    pub skip_top_lines: usize,
    pub skip_bottom_lines: usize,
    pub trim: bool,
    pub users: Option<&'a Mapping>,
    pub stores: Option<&'a Mapping>,
    /// The day dated rows are judged on.
    pub today: NaiveDate,
}

impl ReadOptions<'static> {
    /// No profile: columns named like the fields, delimiter detected.
    pub fn plain(today: NaiveDate) -> Self {
        ReadOptions {
            delimiter: None,
            skip_top_lines: 0,
            skip_bottom_lines: 0,
            trim: true,
            users: None,
            stores: None,
            today,
        }
    }
}

fn flag(value: &str) -> Result<Option<bool>, ()> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "1" | "yes" | "y" | "oui" | "o" | "ja" | "x" => Ok(Some(true)),
        "false" | "0" | "no" | "n" | "non" | "nein" => Ok(Some(false)),
        _ => Err(()),
    }
}

/// A record type a file's columns fill.
pub(crate) trait FileRow: Default {
    const KIND: &'static str;
    const FIELDS: &'static [&'static str];
    /// Fields of which a header must feed at least one: without any, no row
    /// could name whom (or which store) it is about.
    const KEYS: &'static [&'static str];
    fn set(&mut self, field: &str, value: String) -> Result<(), String>;
    /// What names the row for people: the external id, else the email (users)
    /// or the name (stores).
    fn label(&self) -> Option<String>;
    /// What names one person (or store) across dated rows.
    fn key(&self) -> Option<String> {
        self.label().map(|label| label.to_lowercase())
    }
    fn deactivate(&mut self);
    /// The fields set, for a preview.
    fn shown(&self) -> serde_json::Map<String, serde_json::Value>;
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn shown_fields(
    fields: &[(&str, Option<&String>)],
    active: Option<bool>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut shown: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .filter_map(|(name, value)| value.map(|v| (name.to_string(), v.clone().into())))
        .collect();
    if let Some(active) = active {
        shown.insert("active".into(), active.into());
    }
    shown
}

/// The text between the lines a profile skips at the top and the bottom.
/// Line breaks ending the file do not make lines of their own.
fn between_skipped_lines(text: &str, top: usize, bottom: usize) -> &str {
    let mut start = 0;
    for _ in 0..top {
        match text[start..].find('\n') {
            Some(at) => start += at + 1,
            None => return "",
        }
    }
    let mut end = start + text[start..].trim_end_matches(['\r', '\n']).len();
    for _ in 0..bottom {
        match text[start..end].rfind('\n') {
            Some(at) => end = start + at,
            None => return "",
        }
    }
    &text[start..end]
}

pub fn is_json(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".json")
}

fn from_body<R>(
    parsed: Result<import_body::ParsedBody<R>, AppError>,
) -> Result<FileRows<R>, FileProblem> {
    let body = parsed.map_err(|e| {
        let why = match e {
            AppError::BadRequest { message, .. } => message,
            AppError::Validation(fields) => fields
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
            AppError::TooManyRows { limit } => {
                format!("more than {limit} rows (imports.max_rows)")
            }
            other => other.to_string(),
        };
        FileProblem(format!("the JSON body is refused: {why}"))
    })?;
    Ok(FileRows {
        rows: body.rows,
        mode: body.mode,
        row_errors: body.row_errors,
        warnings: body.warnings,
        delimiter: None,
        send_invitations: body.send_invitations,
        numbering: RowNumbering::FromOne,
        columns: Vec::new(),
    })
}

pub fn read_users(
    name: &str,
    text: &str,
    max_rows: usize,
    options: &ReadOptions<'_>,
) -> Result<FileRows<UserRecord>, FileProblem> {
    if is_json(name) {
        from_body(import_body::parse_users(text.as_bytes(), max_rows))
    } else {
        read_csv(text, max_rows, options, options.users)
    }
}

pub fn read_stores(
    name: &str,
    text: &str,
    max_rows: usize,
    options: &ReadOptions<'_>,
) -> Result<FileRows<StoreRecord>, FileProblem> {
    if is_json(name) {
        from_body(import_body::parse_stores(text.as_bytes(), max_rows))
    } else {
        read_csv(text, max_rows, options, options.stores)
    }
}

/// A file's rows, of either kind.
pub enum FileRecords {
    Users(FileRows<UserRecord>),
    Stores(FileRows<StoreRecord>),
}

impl FileRecords {
    /// Neither a row nor a row error: a file that says nothing.
    pub fn says_nothing(&self) -> bool {
        match self {
            FileRecords::Users(file) => file.rows.is_empty() && file.row_errors.is_empty(),
            FileRecords::Stores(file) => file.rows.is_empty() && file.row_errors.is_empty(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            FileRecords::Users(rows) => rows.rows.len(),
            FileRecords::Stores(rows) => rows.rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn columns(&self) -> &[String] {
        match self {
            FileRecords::Users(rows) => &rows.columns,
            FileRecords::Stores(rows) => &rows.columns,
        }
    }

    pub fn delimiter(&self) -> Option<char> {
        match self {
            FileRecords::Users(rows) => rows.delimiter,
            FileRecords::Stores(rows) => rows.delimiter,
        }
    }
}

/// The first `limit` rows as a preview shows them: the record number and the
/// fields set.
pub fn shown_rows(records: &FileRecords, limit: usize) -> Vec<serde_json::Value> {
    fn shown<R: FileRow>(rows: &FileRows<R>, limit: usize) -> Vec<serde_json::Value> {
        rows.rows
            .iter()
            .take(limit)
            .enumerate()
            .map(|(row, record)| {
                let mut fields = record.shown();
                fields.insert("record".into(), rows.numbering.number(row).into());
                serde_json::Value::Object(fields)
            })
            .collect()
    }
    match records {
        FileRecords::Users(rows) => shown(rows, limit),
        FileRecords::Stores(rows) => shown(rows, limit),
    }
}

/// Reads a decoded file as `kind`.
pub fn read(
    kind: Kind,
    name: &str,
    text: &str,
    max_rows: usize,
    options: &ReadOptions<'_>,
) -> Result<FileRecords, FileProblem> {
    Ok(match kind {
        Kind::Users => FileRecords::Users(read_users(name, text, max_rows, options)?),
        Kind::Stores => FileRecords::Stores(read_stores(name, text, max_rows, options)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plain() -> ReadOptions<'static> {
        ReadOptions::plain(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap())
    }

    #[test]
    fn the_kind_comes_from_the_name() {
        assert_eq!(Kind::from_name("USERS_2026-11-26.csv"), Some(Kind::Users));
        assert_eq!(Kind::from_name("stores.json"), Some(Kind::Stores));
        assert_eq!(Kind::from_name("export.csv"), None);
        let sap = ["PA0002_", "mitarbeiter"];
        assert_eq!(
            Kind::from_name_with("pa0002_20261126.txt", &sap, &["WERKS"]),
            Some(Kind::Users)
        );
        assert_eq!(
            Kind::from_name_with("Werks.csv", &sap, &["WERKS"]),
            Some(Kind::Stores)
        );
        assert_eq!(Kind::from_name_with("users.csv", &sap, &["WERKS"]), None);
    }

    #[test]
    fn a_utf8_bom_is_not_part_of_the_first_header() {
        let decoded = decode(b"\xEF\xBB\xBFemail,name\n", encoding_rs::WINDOWS_1252);
        assert_eq!(decoded.encoding, "UTF-8");
        assert!(decoded.text.starts_with("email"));
    }

    #[test]
    fn windows_1252_is_the_fallback_for_invalid_utf8() {
        let decoded = decode(b"name\nZo\xEB Lef\xE8vre\n", encoding_rs::WINDOWS_1252);
        assert_eq!(decoded.encoding, "windows-1252");
        assert!(decoded.text.contains("Zoë Lefèvre"));
    }

    #[test]
    fn utf16_with_a_bom_and_tabs_reads() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "email\tname\r\na@b.example\tA\r\n".encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        let decoded = decode(&bytes, encoding_rs::WINDOWS_1252);
        assert_eq!(decoded.encoding, "UTF-16LE");
        let rows = read_users("users.txt", &decoded.text, 10, &plain()).unwrap();
        assert_eq!(rows.delimiter, Some('\t'));
        assert_eq!(rows.rows[0].email.as_deref(), Some("a@b.example"));
    }

    #[test]
    fn semicolons_crlf_and_embedded_newlines() {
        let text = "External ID;Name;Email;Role;Store_ID\r\nE1;\"Dupont;\r\nJean\";j@x.example;seller;S1\r\nE2;Marie;m@x.example;manager;\r\n";
        let rows = read_users("users.csv", text, 10, &plain()).unwrap();
        assert_eq!(rows.delimiter, Some(';'));
        assert_eq!(rows.rows.len(), 2);
        assert_eq!(rows.rows[0].name.as_deref(), Some("Dupont;\r\nJean"));
        assert_eq!(rows.rows[1].external_id.as_deref(), Some("E2"));
        assert_eq!(rows.rows[1].store_ref, None);
        assert!(rows.row_errors.is_empty());
    }

    #[test]
    fn a_comma_inside_quotes_does_not_fool_the_detection() {
        assert_eq!(detect_delimiter("\"a,b,c\";d;e\n"), b';');
        assert_eq!(detect_delimiter("a,b\n"), b',');
    }

    #[test]
    fn short_rows_and_bad_flags_are_row_errors_numbered_by_record() {
        let text = "email,name,active\na@x.example,A,yes\nb@x.example\nc@x.example,C,maybe\n";
        let rows = read_users("users.csv", text, 10, &plain()).unwrap();
        let errors: Vec<(usize, &str)> = rows
            .row_errors
            .iter()
            .map(|e| (e.row, e.code.as_str()))
            .collect();
        assert_eq!(errors, [(1, "invalid_row"), (2, "invalid_type")]);
        assert_eq!(rows.rows[0].active, Some(true));
    }

    #[test]
    fn a_forbidden_column_refuses_the_file() {
        assert!(read_users(
            "users.csv",
            "email,password\na@x.example,secret\n",
            10,
            &plain()
        )
        .is_err());
    }

    #[test]
    fn too_many_records_refuse_the_file() {
        assert!(read_users("users.csv", "email\na@x\nb@x\nc@x\n", 2, &plain()).is_err());
    }

    #[test]
    fn a_configured_delimiter_beats_the_detection() {
        // The header has more commas than semicolons; the file uses semicolons.
        let text = "email;name, first, last\na@x.example;Jean, Paul, Dupont\n";
        // Read with commas, the header has no email column: refused, naming it.
        let detected = read_users("users.csv", text, 10, &plain()).err().unwrap();
        assert!(detected
            .0
            .contains("none of the columns a users file needs (email or external_id)"));
        assert!(detected.0.contains("\"email;name\""), "{}", detected.0);
        let options = ReadOptions {
            delimiter: Some(b';'),
            ..plain()
        };
        let configured = read_users("users.csv", text, 10, &options).unwrap();
        assert_eq!(configured.delimiter, Some(';'));
        assert_eq!(configured.rows[0].email.as_deref(), Some("a@x.example"));
    }

    #[test]
    fn title_and_trailer_lines_are_skipped() {
        assert_eq!(
            between_skipped_lines("t\r\nh\r\nr1\r\nEOF\r\n\r\n", 1, 1),
            "h\r\nr1\r"
        );
        assert_eq!(between_skipped_lines("h\nr\n", 0, 0), "h\nr");
        assert_eq!(between_skipped_lines("h\nr\n", 5, 0), "");
        assert_eq!(between_skipped_lines("h\nr\n", 0, 5), "");
        let options = ReadOptions {
            skip_top_lines: 2,
            skip_bottom_lines: 1,
            ..plain()
        };
        let text = "HR export\r\n2026-03-01\r\nemail,name\r\na@x.example,A\r\nb@x.example,B\r\nTOTAL 2\r\n";
        let rows = read_users("users.csv", text, 10, &options).unwrap();
        assert_eq!(rows.rows.len(), 2);
        assert!(rows.row_errors.is_empty(), "{:?}", rows.row_errors);
        assert_eq!(rows.rows[1].name.as_deref(), Some("B"));
    }

    #[test]
    fn a_rule_naming_a_missing_column_refuses_the_file_naming_both() {
        let mapping: Mapping = serde_json::from_value(serde_json::json!({
            "columns": {"external_id": "PERNR"}
        }))
        .unwrap();
        let options = ReadOptions {
            users: Some(&mapping),
            ..plain()
        };
        let problem = read_users("users.csv", "email\na@x.example\n", 10, &options)
            .err()
            .unwrap();
        assert!(
            problem.0.contains("users.columns.external_id"),
            "{}",
            problem.0
        );
        assert!(problem.0.contains("PERNR"), "{}", problem.0);
    }

    proptest! {
        /// Untrusted bytes never panic the reader, whatever the encoding guess.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let decoded = decode(&bytes, encoding_rs::WINDOWS_1252);
            if let Ok(rows) = read_users("users.csv", &decoded.text, 50, &plain()) {
                prop_assert!(rows.row_errors.iter().all(|e| e.row < rows.rows.len()));
            }
            let _ = read_stores("stores.csv", &decoded.text, 50, &plain());
        }

        /// Any table written as CSV with any of the delimiters reads back the same.
        #[test]
        fn csv_written_reads_back(
            names in proptest::collection::vec("[^\u{0}]{0,20}", 1..20),
            delimiter in prop_oneof![Just(b','), Just(b';'), Just(b'\t'), Just(b'|')],
        ) {
            let mut writer = csv::WriterBuilder::new().delimiter(delimiter).terminator(csv::Terminator::CRLF).from_writer(vec![]);
            writer.write_record(["external_id", "name"]).unwrap();
            for (i, name) in names.iter().enumerate() {
                writer.write_record([format!("E{i}"), name.clone()]).unwrap();
            }
            let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            let rows = read_users("users.csv", &text, 100, &plain()).unwrap();
            prop_assert_eq!(rows.rows.len(), names.len());
            for (i, name) in names.iter().enumerate() {
                let expected = if name.trim().is_empty() { None } else { Some(name.trim().to_string()) };
                let row = &rows.rows[i];
                if rows.row_errors.iter().any(|e| e.row == i) {
                    continue;
                }
                prop_assert_eq!(&row.name, &expected);
            }
        }
    }

    proptest::proptest! {
        /// Whatever bytes arrive, reading ends in rows or a problem, and a
        /// problem or warning never carries the file back in its text.
        #[test]
        fn any_bytes_read_cleanly_with_short_messages(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            quote_header in proptest::prelude::any::<bool>(),
        ) {
            let mut bytes = bytes;
            if quote_header {
                let mut open = b"email,\"name,".to_vec();
                open.extend_from_slice(&bytes);
                bytes = open;
            }
            let decoded = decode(&bytes, encoding_rs::WINDOWS_1252);
            match read_users("users.csv", &decoded.text, 100, &plain()) {
                Ok(file) => {
                    for warning in &file.warnings {
                        proptest::prop_assert!(warning.len() < 2_000, "{}", warning.len());
                    }
                }
                Err(problem) => proptest::prop_assert!(problem.0.len() < 2_000, "{}", problem.0.len()),
            }
        }
    }
}
