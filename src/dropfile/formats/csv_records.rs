//! CSV read record by record, shared by the whole-file reader and the
//! streaming one: the header found within a bound, the mapping resolved
//! against it, each record mapped to a row with its problems, and dated rows
//! narrowed to the one valid today.

use super::*;
use crate::domain::import::RowErrorCode;

/// One record read: the row, the problems found in it (field, code, message),
/// and its validity when the mapping dates rows.
pub(crate) struct ReadRecord<R> {
    pub row: R,
    pub problems: Vec<(Option<String>, RowErrorCode, String)>,
    pub validity: Option<Validity>,
}

/// Longest header line read: real headers are well under 1 KiB.
const MAX_HEADER_BYTES: u64 = 64 * 1024;

/// What the CSV reader may pull from the file before it has found the end of
/// the header line: a few of its buffers. A quote left open in a 1 GB file
/// must not make the header a 1 GB string in memory.
const MAX_READ_FOR_HEADER: u64 = 1024 * 1024;

/// A source that fails once `MAX_READ_FOR_HEADER` bytes were read without the
/// header line being complete.
struct HeaderBound<S> {
    inner: S,
    read: u64,
    header_read: Arc<AtomicBool>,
}

impl<S: std::io::Read> std::io::Read for HeaderBound<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.header_read.load(Ordering::Relaxed) && self.read > MAX_READ_FOR_HEADER {
            return Err(std::io::Error::other(format!(
                "no end of the header line in the first {} KiB: a quote left open in it (e.g. \
                 email,\"name,…) makes the rest of the file part of the header",
                MAX_READ_FOR_HEADER / 1024
            )));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// A CSV source read record by record: the header, the mapping resolved
/// against it, then one row per record. The whole-file reader and the
/// streaming one share it.
pub(crate) struct CsvRecords<S: std::io::Read, R> {
    reader: csv::Reader<HeaderBound<S>>,
    compiled: Compiled,
    record: csv::StringRecord,
    trim: bool,
    pub columns: Vec<String>,
    pub warnings: Vec<String>,
    /// Records read so far.
    pub count: usize,
    kind: std::marker::PhantomData<R>,
}

impl<S: std::io::Read, R: FileRow> CsvRecords<S, R> {
    pub fn open(
        source: S,
        delimiter: u8,
        trim: bool,
        mapping: Option<&Mapping>,
    ) -> Result<Self, FileProblem> {
        let header_read = Arc::new(AtomicBool::new(false));
        let source = HeaderBound {
            inner: source,
            read: 0,
            header_read: header_read.clone(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(source);
        let raw_headers = reader
            .headers()
            .map_err(|e| FileProblem(format!("the header line cannot be read: {e}")))?
            .clone();
        header_read.store(true, Ordering::Relaxed);
        // A quote left open in the header swallows the lines after it into
        // one "column": refuse the file rather than read a header of megabytes.
        if reader.position().byte() > MAX_HEADER_BYTES {
            return Err(FileProblem(format!(
                "the header line is longer than {} KiB: a quote left open in it (e.g. \
                 email,\"name,…) makes the rest of the file part of the header",
                MAX_HEADER_BYTES / 1024
            )));
        }
        if raw_headers
            .iter()
            .any(|column| column.contains(['\n', '\r']))
        {
            return Err(FileProblem(
                "the header line has a quote left open: a column name runs over several \
                 lines"
                    .into(),
            ));
        }
        let headers: Vec<String> = raw_headers.iter().map(normalise_header).collect();
        if headers.iter().all(|h| h.is_empty()) {
            return Err(FileProblem(
                "the file is empty: it has no header line".into(),
            ));
        }
        if let Some(forbidden) = headers
            .iter()
            .find(|h| FORBIDDEN_COLUMNS.contains(&h.as_str()))
        {
            return Err(FileProblem(format!(
                "column {forbidden:?} cannot be set by an import"
            )));
        }
        let compiled = Compiled::new(&headers, R::FIELDS, R::KIND, mapping)?;
        if !R::KEYS.iter().any(|key| compiled.reads_column_for(key)) {
            const SHOWN: usize = 10;
            let mut found = headers
                .iter()
                .take(SHOWN)
                .map(|h| format!("{:?}", crate::domain::text::clip(h, 64)))
                .collect::<Vec<_>>()
                .join(", ");
            if headers.len() > SHOWN {
                found.push_str(&format!(" and {} more", headers.len() - SHOWN));
            }
            return Err(FileProblem(format!(
                "the header line has none of the columns a {} file needs ({}), after the \
                 profile's mapping; it has: {found}",
                R::KIND,
                R::KEYS.join(" or ")
            )));
        }
        let mut warnings = Vec::new();
        if !compiled.unused.is_empty() {
            const SHOWN: usize = 20;
            let mut names = compiled.unused[..compiled.unused.len().min(SHOWN)]
                .iter()
                .map(|name| crate::domain::text::clip(name, 64))
                .collect::<Vec<_>>()
                .join(", ");
            if compiled.unused.len() > SHOWN {
                names.push_str(&format!(" and {} more", compiled.unused.len() - SHOWN));
            }
            warnings.push(format!("ignored columns: {names}"));
        }
        Ok(CsvRecords {
            reader,
            compiled,
            record: csv::StringRecord::new(),
            trim,
            columns: headers,
            warnings,
            count: 0,
            kind: std::marker::PhantomData,
        })
    }

    pub fn dates_rows(&self) -> bool {
        self.compiled.dated.is_some()
    }

    /// The next record, `None` at the end; an unreadable record fails the file.
    pub fn next_record(&mut self) -> Result<Option<ReadRecord<R>>, FileProblem> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => {
                return Err(FileProblem(format!(
                    "record {} cannot be read: {e}",
                    self.count + 1
                )))
            }
        }
        self.count += 1;
        let mut read = ReadRecord {
            row: R::default(),
            problems: Vec::new(),
            validity: None,
        };
        let record = &self.record;
        if record.iter().all(|field| field.trim().is_empty()) {
            // Blank lines carry nothing; they still count, so record numbers hold.
            read.problems
                .push((None, RowErrorCode::InvalidRow, "the record is empty".into()));
            return Ok(Some(read));
        }
        if record.len() != self.columns.len() {
            read.problems.push((
                None,
                RowErrorCode::InvalidRow,
                format!(
                    "the record has {} fields where the header has {}",
                    record.len(),
                    self.columns.len()
                ),
            ));
            return Ok(Some(read));
        }
        for (field, text) in self.compiled.values(record, self.trim) {
            if let Err(message) = read.row.set(field, text) {
                read.problems
                    .push((Some(field.to_string()), RowErrorCode::InvalidType, message));
            }
        }
        match self.compiled.dated.as_ref().map(|d| d.validity(record)) {
            None => {}
            Some(Ok(validity)) => read.validity = Some(validity),
            Some(Err((column, message))) => {
                read.problems
                    .push((Some(column), RowErrorCode::InvalidDate, message));
            }
        }
        Ok(Some(read))
    }
}

/// Reads a CSV text: the header names the columns, which feed the fields named
/// like them or as the mapping says; each record becomes one row, numbered
/// from 1 (the first record after the header).
pub(super) fn read_csv<R: FileRow>(
    text: &str,
    max_rows: usize,
    options: &ReadOptions<'_>,
    mapping: Option<&Mapping>,
) -> Result<FileRows<R>, FileProblem> {
    let text = between_skipped_lines(text, options.skip_top_lines, options.skip_bottom_lines);
    let delimiter = options.delimiter.unwrap_or_else(|| detect_delimiter(text));
    let mut records = CsvRecords::<_, R>::open(text.as_bytes(), delimiter, options.trim, mapping)?;
    let mut rows = Vec::new();
    let mut row_errors = Vec::new();
    let mut validities = Vec::new();
    while let Some(read) = records.next_record()? {
        if rows.len() == max_rows {
            return Err(FileProblem(format!(
                "the file has more than {max_rows} records (imports.max_rows)"
            )));
        }
        let row = rows.len();
        let key = read.row.label();
        for (field, code, message) in read.problems {
            row_errors.push(RowError {
                row,
                key: key.clone(),
                field,
                code,
                message,
            });
        }
        rows.push(read.row);
        validities.push(read.validity);
    }
    let dated = records.dates_rows();
    let mut file = FileRows {
        rows,
        mode: ImportMode::CreateOrUpdate,
        row_errors,
        warnings: records.warnings,
        delimiter: Some(char::from(delimiter)),
        send_invitations: false,
        numbering: RowNumbering::FromOne,
        columns: records.columns,
    };
    if dated {
        keep_rows_valid_today(&mut file, validities, options.today);
    }
    Ok(file)
}

/// Leaves one row per person: the one valid today (see [`mapping::select`]);
/// the kept rows keep their record numbers.
fn keep_rows_valid_today<R: FileRow>(
    file: &mut FileRows<R>,
    validities: Vec<Option<Validity>>,
    today: NaiveDate,
) {
    let failed: std::collections::HashSet<usize> = file.row_errors.iter().map(|e| e.row).collect();
    let keyed: Vec<(Option<String>, Option<Validity>)> = file
        .rows
        .iter()
        .zip(validities)
        .enumerate()
        .map(|(row, (record, validity))| {
            if failed.contains(&row) {
                (None, None)
            } else {
                (record.key(), validity)
            }
        })
        .collect();
    let selection = mapping::select(&keyed, today);
    let mut rows = std::mem::take(&mut file.rows);
    for &ended in &selection.ended {
        rows[ended].deactivate();
    }
    let mut new_index = vec![usize::MAX; rows.len()];
    for (position, &row) in selection.kept.iter().enumerate() {
        new_index[row] = position;
    }
    file.rows = rows
        .into_iter()
        .enumerate()
        .filter(|(row, _)| new_index[*row] != usize::MAX)
        .map(|(_, record)| record)
        .collect();
    for error in &mut file.row_errors {
        error.row = new_index[error.row];
    }
    file.row_errors.retain(|e| e.row != usize::MAX);
    let dropped = new_index.len() - selection.kept.len();
    if dropped > 0 || !selection.ended.is_empty() {
        file.warnings.push(format!(
            "dated rows: {} row(s) kept (one per person, valid today), {} superseded row(s) left out, {} person(s) whose rows all end before today imported as inactive, {} person(s) starting later left out",
            selection.kept.len(),
            dropped - selection.not_started.min(dropped),
            selection.ended.len(),
            selection.not_started
        ));
    }
    file.numbering = RowNumbering::Explicit(selection.kept.iter().map(|row| row + 1).collect());
}

impl FileRow for UserRecord {
    const KIND: &'static str = "users";
    const FIELDS: &'static [&'static str] = &USER_COLUMNS;
    const KEYS: &'static [&'static str] = &["email", "external_id"];

    fn set(&mut self, field: &str, value: String) -> Result<(), String> {
        match field {
            "email" => self.email = Some(value),
            "name" => self.name = Some(value),
            "role" => self.role = Some(value),
            "store_id" => self.store_ref = Some(value),
            "manager_id" => self.manager_ref = Some(value),
            "external_id" => self.external_id = Some(value),
            "active" => {
                self.active = flag(&value)
                    .map_err(|_| format!("active must be true or false, not {value:?}"))?
            }
            _ => {}
        }
        Ok(())
    }

    fn label(&self) -> Option<String> {
        given(&self.external_id).or_else(|| given(&self.email))
    }

    fn shown(&self) -> serde_json::Map<String, serde_json::Value> {
        shown_fields(
            &[
                ("external_id", self.external_id.as_ref()),
                ("email", self.email.as_ref()),
                ("name", self.name.as_ref()),
                ("role", self.role.as_ref()),
                ("store_id", self.store_ref.as_ref()),
                ("manager_id", self.manager_ref.as_ref()),
            ],
            self.active,
        )
    }

    fn deactivate(&mut self) {
        self.active = Some(false);
    }
}

impl FileRow for StoreRecord {
    const KIND: &'static str = "stores";
    const FIELDS: &'static [&'static str] = &STORE_COLUMNS;
    const KEYS: &'static [&'static str] = &["name", "external_id"];

    fn set(&mut self, field: &str, value: String) -> Result<(), String> {
        match field {
            "name" => self.name = Some(value),
            "location" => self.location = Some(value),
            "address" => self.address = Some(value),
            "phone" => self.phone = Some(value),
            "external_id" => self.external_id = Some(value),
            "active" => {
                self.active = flag(&value)
                    .map_err(|_| format!("active must be true or false, not {value:?}"))?
            }
            _ => {}
        }
        Ok(())
    }

    fn label(&self) -> Option<String> {
        given(&self.external_id).or_else(|| given(&self.name))
    }

    fn shown(&self) -> serde_json::Map<String, serde_json::Value> {
        shown_fields(
            &[
                ("external_id", self.external_id.as_ref()),
                ("name", self.name.as_ref()),
                ("location", self.location.as_ref()),
                ("address", self.address.as_ref()),
                ("phone", self.phone.as_ref()),
            ],
            self.active,
        )
    }

    fn deactivate(&mut self) {
        self.active = Some(false);
    }
}
