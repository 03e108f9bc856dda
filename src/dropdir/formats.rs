//! Reading a dropped file into import rows: the kind from the name, the encoding
//! (BOM, else strict UTF-8, else the configured fallback), then CSV with a header
//! (delimiter detected from the header) or the bulk-import JSON body.

use encoding_rs::Encoding;

use crate::domain::import::{ImportMode, RowError, StoreRecord, UserRecord};
use crate::domain::import_body;
// A file's columns are the bulk-import body's fields, and the same fields are
// forbidden: one list for both.
use crate::domain::import_body::{
    FORBIDDEN_FIELDS as FORBIDDEN_COLUMNS, STORE_FIELDS as STORE_COLUMNS,
    USER_FIELDS as USER_COLUMNS,
};
use crate::AppError;

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
}

fn flag(value: &str) -> Result<Option<bool>, ()> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "1" | "yes" | "y" | "oui" | "o" | "ja" | "x" => Ok(Some(true)),
        "false" | "0" | "no" | "n" | "non" | "nein" => Ok(Some(false)),
        _ => Err(()),
    }
}

/// Reads a CSV text: the header names the columns (case-insensitive, spaces
/// ignored); each record becomes one row, numbered from 0 like the bulk-import
/// rows (the report adds one: record 1 is the first line after the header).
fn read_csv<R: Default>(
    text: &str,
    max_rows: usize,
    known: &[&str],
    mut set: impl FnMut(&mut R, &str, String) -> Result<(), String>,
) -> Result<FileRows<R>, FileProblem> {
    let delimiter = detect_delimiter(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| FileProblem(format!("the header line cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase().replace(' ', "_"))
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(FileProblem("the file has no header line".into()));
    }
    if let Some(forbidden) = headers
        .iter()
        .find(|h| FORBIDDEN_COLUMNS.contains(&h.as_str()))
    {
        return Err(FileProblem(format!(
            "column {forbidden:?} cannot be set by an import"
        )));
    }
    let unknown: Vec<&str> = headers
        .iter()
        .filter(|h| !h.is_empty() && !known.contains(&h.as_str()))
        .map(String::as_str)
        .collect();
    let warnings = if unknown.is_empty() {
        Vec::new()
    } else {
        vec![format!("ignored unknown columns: {}", unknown.join(", "))]
    };
    let mut rows = Vec::new();
    let mut row_errors = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(FileProblem(format!(
                    "record {} cannot be read: {e}",
                    rows.len() + 1
                )))
            }
        }
        if rows.len() == max_rows {
            return Err(FileProblem(format!(
                "the file has more than {max_rows} records (imports.max_rows)"
            )));
        }
        let row = rows.len();
        let mut value = R::default();
        if record.iter().all(|field| field.trim().is_empty()) {
            // Blank lines carry nothing; they still count, so record numbers hold.
            row_errors.push(RowError {
                row,
                key: None,
                field: None,
                code: "invalid_row",
                message: "the record is empty".into(),
            });
            rows.push(value);
            continue;
        }
        if record.len() != headers.len() {
            row_errors.push(RowError {
                row,
                key: None,
                field: None,
                code: "invalid_row",
                message: format!(
                    "the record has {} fields where the header has {}",
                    record.len(),
                    headers.len()
                ),
            });
            rows.push(value);
            continue;
        }
        for (header, field) in headers.iter().zip(record.iter()) {
            if known.contains(&header.as_str()) && !field.trim().is_empty() {
                if let Err(message) = set(&mut value, header, field.to_string()) {
                    row_errors.push(RowError {
                        row,
                        key: None,
                        field: Some(header.clone()),
                        code: "invalid_type",
                        message,
                    });
                }
            }
        }
        rows.push(value);
    }
    Ok(FileRows {
        rows,
        mode: ImportMode::CreateOrUpdate,
        row_errors,
        warnings,
        delimiter: Some(char::from(delimiter)),
        send_invitations: false,
    })
}

fn set_user(user: &mut UserRecord, column: &str, value: String) -> Result<(), String> {
    match column {
        "email" => user.email = Some(value),
        "name" => user.name = Some(value),
        "role" => user.role = Some(value),
        "store_id" => user.store_ref = Some(value),
        "manager_id" => user.manager_ref = Some(value),
        "external_id" => user.external_id = Some(value),
        "active" => {
            user.active =
                flag(&value).map_err(|_| format!("active must be true or false, not {value:?}"))?
        }
        _ => {}
    }
    Ok(())
}

fn set_store(store: &mut StoreRecord, column: &str, value: String) -> Result<(), String> {
    match column {
        "name" => store.name = Some(value),
        "location" => store.location = Some(value),
        "address" => store.address = Some(value),
        "phone" => store.phone = Some(value),
        "external_id" => store.external_id = Some(value),
        "active" => {
            store.active =
                flag(&value).map_err(|_| format!("active must be true or false, not {value:?}"))?
        }
        _ => {}
    }
    Ok(())
}

fn is_json(name: &str) -> bool {
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
    })
}

pub fn read_users(
    name: &str,
    text: &str,
    max_rows: usize,
) -> Result<FileRows<UserRecord>, FileProblem> {
    if is_json(name) {
        from_body(import_body::parse_users(text.as_bytes(), max_rows))
    } else {
        read_csv(text, max_rows, &USER_COLUMNS, set_user)
    }
}

pub fn read_stores(
    name: &str,
    text: &str,
    max_rows: usize,
) -> Result<FileRows<StoreRecord>, FileProblem> {
    if is_json(name) {
        from_body(import_body::parse_stores(text.as_bytes(), max_rows))
    } else {
        read_csv(text, max_rows, &STORE_COLUMNS, set_store)
    }
}

/// A file's rows, of either kind.
pub enum FileRecords {
    Users(FileRows<UserRecord>),
    Stores(FileRows<StoreRecord>),
}

impl FileRecords {
    pub fn len(&self) -> usize {
        match self {
            FileRecords::Users(rows) => rows.rows.len(),
            FileRecords::Stores(rows) => rows.rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn delimiter(&self) -> Option<char> {
        match self {
            FileRecords::Users(rows) => rows.delimiter,
            FileRecords::Stores(rows) => rows.delimiter,
        }
    }
}

/// Reads a decoded file as `kind`.
pub fn read(
    kind: Kind,
    name: &str,
    text: &str,
    max_rows: usize,
) -> Result<FileRecords, FileProblem> {
    Ok(match kind {
        Kind::Users => FileRecords::Users(read_users(name, text, max_rows)?),
        Kind::Stores => FileRecords::Stores(read_stores(name, text, max_rows)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        let rows = read_users("users.txt", &decoded.text, 10).unwrap();
        assert_eq!(rows.delimiter, Some('\t'));
        assert_eq!(rows.rows[0].email.as_deref(), Some("a@b.example"));
    }

    #[test]
    fn semicolons_crlf_and_embedded_newlines() {
        let text = "External ID;Name;Email;Role;Store_ID\r\nE1;\"Dupont;\r\nJean\";j@x.example;seller;S1\r\nE2;Marie;m@x.example;manager;\r\n";
        let rows = read_users("users.csv", text, 10).unwrap();
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
        let rows = read_users("users.csv", text, 10).unwrap();
        let errors: Vec<(usize, &str)> = rows.row_errors.iter().map(|e| (e.row, e.code)).collect();
        assert_eq!(errors, [(1, "invalid_row"), (2, "invalid_type")]);
        assert_eq!(rows.rows[0].active, Some(true));
    }

    #[test]
    fn a_forbidden_column_refuses_the_file() {
        assert!(read_users("users.csv", "email,password\na@x.example,secret\n", 10).is_err());
    }

    #[test]
    fn too_many_records_refuse_the_file() {
        assert!(read_users("users.csv", "email\na@x\nb@x\nc@x\n", 2).is_err());
    }

    proptest! {
        /// Untrusted bytes never panic the reader, whatever the encoding guess.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let decoded = decode(&bytes, encoding_rs::WINDOWS_1252);
            if let Ok(rows) = read_users("users.csv", &decoded.text, 50) {
                prop_assert!(rows.row_errors.iter().all(|e| e.row < rows.rows.len()));
            }
            let _ = read_stores("stores.csv", &decoded.text, 50);
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
            let rows = read_users("users.csv", &text, 100).unwrap();
            prop_assert_eq!(rows.rows.len(), names.len());
            for (i, name) in names.iter().enumerate() {
                let expected = if name.trim().is_empty() { None } else { Some(name.clone()) };
                let row = &rows.rows[i];
                if rows.row_errors.iter().any(|e| e.row == i) {
                    continue;
                }
                prop_assert_eq!(&row.name, &expected);
            }
        }
    }
}
