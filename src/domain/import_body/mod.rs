//! The bulk-import JSON body (`{stores|users: [...], mode, send_invitations}`) read
//! into normalised records. Shared by the REST endpoints, the command line and
//! JSON files in the drop directory: row-level problems become row errors, unknown
//! fields one warning, and only a body wrong as a whole is an error.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::import::{ImportMode, RowError, RowStream, SourceRow, StoreRecord, UserRecord};
use crate::AppError;

mod row;

use row::{read_row, BodyRecord, FieldName, ReadRow};

/// A body read into records.
pub struct ParsedBody<R> {
    pub rows: Vec<R>,
    pub mode: ImportMode,
    pub row_errors: Vec<RowError>,
    pub warnings: Vec<String>,
    pub send_invitations: bool,
}

/// The fields a stores row (or a stores file column) may carry.
pub const STORE_FIELDS: [&str; 6] = [
    "name",
    "location",
    "address",
    "phone",
    "external_id",
    "active",
];
/// The fields a users row (or a users file column) may carry.
pub const USER_FIELDS: [&str; 7] = [
    "email",
    "name",
    "role",
    "store_id",
    "manager_id",
    "external_id",
    "active",
];
/// Fields a source may never set; a row carrying one is refused whole.
pub const FORBIDDEN_FIELDS: [&str; 10] = [
    "id",
    "enterprise_account_id",
    "password",
    "password_hash",
    "token_version",
    "sync_mode",
    "created_at",
    "updated_at",
    "deactivated_at",
    "gerant_id",
];

/// The top level of a body, read in one pass that checks the whole body is
/// JSON and finds where each row starts and ends: the rows stay raw slices
/// until each is read into plain fields, so a 100,000-row body never becomes
/// a tree of JSON values, and a body's rows can be read as the import takes
/// them.
struct Parsed<'a> {
    rows: Vec<&'a RawValue>,
    mode: ImportMode,
    send_invitations: Option<Value>,
}

/// The top-level object: the row list (`list`) split into rows, at most
/// `max_rows` of them, and the options kept raw.
struct EnvelopeSeed<'c> {
    list: &'c str,
    max_rows: usize,
    too_many: &'c std::cell::Cell<bool>,
}

/// The row list: its rows, `null` (as good as absent), or something that
/// is not an array.
enum RowSlices<'a> {
    Rows(Vec<&'a RawValue>),
    Null,
    NotArray,
}

#[derive(Default)]
struct RawEnvelope<'a> {
    rows: Option<RowSlices<'a>>,
    mode: Option<&'a RawValue>,
    send_invitations: Option<&'a RawValue>,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = RawEnvelope<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = RawEnvelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = RawEnvelope::default();
        while let Some(FieldName(name)) = map.next_key()? {
            let repeated = |field: &str| de::Error::custom(format!("duplicate field `{field}`"));
            match name.as_ref() {
                field if field == self.list => {
                    if envelope.rows.is_some() {
                        return Err(repeated(field));
                    }
                    envelope.rows = Some(map.next_value_seed(SlicesSeed {
                        max: self.max_rows,
                        too_many: self.too_many,
                    })?);
                }
                "mode" if envelope.mode.is_none() => envelope.mode = Some(map.next_value()?),
                "send_invitations" if envelope.send_invitations.is_none() => {
                    envelope.send_invitations = Some(map.next_value()?)
                }
                "mode" | "send_invitations" => return Err(repeated(&name)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// Splits the row list into rows, refusing more than `max` as it goes, so an
/// oversized body is never held as a list of slices either.
struct SlicesSeed<'c> {
    max: usize,
    too_many: &'c std::cell::Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for SlicesSeed<'_> {
    type Value = RowSlices<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SlicesSeed<'_> {
    type Value = RowSlices<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::new();
        while let Some(row) = seq.next_element::<&'de RawValue>()? {
            if rows.len() == self.max {
                self.too_many.set(true);
                return Err(de::Error::custom("too many rows"));
            }
            rows.push(row);
        }
        Ok(RowSlices::Rows(rows))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RowSlices::NotArray)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RowSlices::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RowSlices::NotArray)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(RowSlices::NotArray)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(RowSlices::NotArray)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(RowSlices::NotArray)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RowSlices::NotArray)
    }
}

fn whole_body_error(e: serde_json::Error) -> AppError {
    if e.is_syntax() || e.is_eof() {
        AppError::BadRequest {
            code: "invalid_json",
            message: format!("invalid JSON: {e}"),
        }
    } else {
        AppError::field(
            "body",
            "invalid_type",
            format!("the body must be a JSON object: {e}"),
        )
    }
}

fn envelope<'a>(body: &'a [u8], list: &str, max_rows: usize) -> Result<Parsed<'a>, AppError> {
    let too_many = std::cell::Cell::new(false);
    let mut reader = serde_json::Deserializer::from_slice(body);
    let seed = EnvelopeSeed {
        list,
        max_rows,
        too_many: &too_many,
    };
    let top = seed
        .deserialize(&mut reader)
        .and_then(|top| reader.end().map(|()| top))
        .map_err(|e| {
            if too_many.get() {
                AppError::TooManyRows { limit: max_rows }
            } else {
                whole_body_error(e)
            }
        })?;
    let rows = match top.rows {
        None | Some(RowSlices::Null) => {
            return Err(AppError::field(
                list,
                "required",
                format!("{list} is required"),
            ))
        }
        Some(RowSlices::NotArray) => {
            return Err(AppError::field(
                list,
                "invalid_type",
                format!("{list} must be an array"),
            ))
        }
        Some(RowSlices::Rows(rows)) => rows,
    };
    let value =
        |raw: Option<&RawValue>| raw.and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
    let mode = match value(top.mode) {
        None | Some(Value::Null) => ImportMode::default(),
        Some(Value::String(m)) => ImportMode::parse(&m).ok_or_else(|| {
            AppError::field(
                "mode",
                "invalid_value",
                "mode must be create_only, update_only or create_or_update",
            )
        })?,
        Some(_) => {
            return Err(AppError::field(
                "mode",
                "invalid_type",
                "mode must be a string",
            ))
        }
    };
    Ok(Parsed {
        rows,
        mode,
        send_invitations: value(top.send_invitations),
    })
}

/// The warning for the fields rows named that no row may carry.
pub fn ignored_fields_warning<'a>(fields: impl IntoIterator<Item = &'a String>) -> Option<String> {
    let names: Vec<&str> = fields.into_iter().map(String::as_str).collect();
    (!names.is_empty()).then(|| format!("ignored unknown fields: {}", names.join(", ")))
}

fn unreadable_row(e: serde_json::Error) -> AppError {
    AppError::BadRequest {
        code: "invalid_json",
        message: format!("invalid JSON: {e}"),
    }
}

/// Reads a whole body into records, row errors and the unknown-fields warning.
fn parse<'a, R: BodyRecord>(
    body: &'a [u8],
    list: &str,
    max_rows: usize,
) -> Result<(Parsed<'a>, ParsedBody<R>), AppError> {
    let parsed = envelope(body, list, max_rows)?;
    let mut rows = Vec::with_capacity(parsed.rows.len());
    let mut row_errors = Vec::new();
    let mut unknown = BTreeSet::new();
    for (row, raw) in parsed.rows.iter().enumerate() {
        let read: ReadRow<R> =
            read_row(raw.get().as_bytes(), &mut unknown).map_err(unreadable_row)?;
        if !read.problems.is_empty() {
            let key = read.record.key();
            row_errors.extend(read.problems.into_iter().map(|p| RowError {
                row,
                key: key.clone(),
                field: p.field,
                code: p.code,
                message: p.message,
            }));
        }
        rows.push(read.record);
    }
    let body = ParsedBody {
        rows,
        mode: parsed.mode,
        row_errors,
        warnings: ignored_fields_warning(&unknown).into_iter().collect(),
        send_invitations: false,
    };
    Ok((parsed, body))
}

fn invitations(value: Option<&Value>) -> Result<bool, AppError> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(AppError::field(
            "send_invitations",
            "invalid_type",
            "send_invitations must be true or false",
        )),
    }
}

pub fn parse_stores(body: &[u8], max_rows: usize) -> Result<ParsedBody<StoreRecord>, AppError> {
    Ok(parse(body, "stores", max_rows)?.1)
}

pub fn parse_users(body: &[u8], max_rows: usize) -> Result<ParsedBody<UserRecord>, AppError> {
    let (parsed, mut body) = parse(body, "users", max_rows)?;
    body.send_invitations = invitations(parsed.send_invitations.as_ref())?;
    Ok(body)
}

/// A users body whose rows are read as the import takes them: the body is
/// checked whole first (JSON, options, row count), and a row's fields are
/// read when the import asks for the row — on the import's reading thread,
/// while the writer stages the rows before it, and without the parsed rows
/// of the whole body ever held at once.
pub struct StreamedUsers {
    pub mode: ImportMode,
    pub send_invitations: bool,
    /// How many rows the body has.
    pub count: usize,
    /// The rows, each with its problems; the first row naming an unknown
    /// field lists it among its `ignored_fields`.
    pub rows: RowStream,
}

pub fn stream_users<B>(body: B, max_rows: usize) -> Result<StreamedUsers, AppError>
where
    B: AsRef<[u8]> + Send + 'static,
{
    let bytes = body.as_ref();
    let parsed = envelope(bytes, "users", max_rows)?;
    let send_invitations = invitations(parsed.send_invitations.as_ref())?;
    // Where each row lies in the body: the rows outlive this borrow of it.
    let start = bytes.as_ptr() as usize;
    let spans: Vec<std::ops::Range<usize>> = parsed
        .rows
        .iter()
        .map(|raw| {
            let at = raw.get().as_ptr() as usize - start;
            at..at + raw.get().len()
        })
        .collect();
    let count = spans.len();
    let mode = parsed.mode;
    Ok(StreamedUsers {
        mode,
        send_invitations,
        count,
        rows: Box::new(BodyRows {
            body,
            spans: spans.into_iter(),
            unknown: BTreeSet::new(),
        }),
    })
}

/// A body's user rows, read one at a time.
struct BodyRows<B> {
    body: B,
    spans: std::vec::IntoIter<std::ops::Range<usize>>,
    unknown: BTreeSet<String>,
}

impl<B: AsRef<[u8]>> Iterator for BodyRows<B> {
    type Item = Result<SourceRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let span = self.spans.next()?;
        let raw = self.body.as_ref().get(span)?;
        let read = read_row::<UserRecord>(raw, &mut self.unknown);
        Some(
            read.map(|read| SourceRow {
                problems_key: if read.problems.is_empty() {
                    None
                } else {
                    read.record.key()
                },
                record: read.record,
                problems: read.problems,
                ignored_fields: read.first_unknown,
            })
            .map_err(|e| format!("invalid JSON: {e}")),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn object(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn rows_keep_their_index_whatever_goes_wrong() {
        let body = object(json!({ "users": [
            { "email": "a@b.example", "name": "A", "role": "seller", "external_id": 123 },
            "not an object",
            { "email": ["x"], "id": "forged", "shoe_size": 44, "active": "FALSE" },
        ], "mode": "update_only", "send_invitations": true }));
        let parsed = parse_users(&body, 10).unwrap();
        assert_eq!(parsed.rows.len(), 3);
        assert_eq!(parsed.mode, ImportMode::UpdateOnly);
        assert!(parsed.send_invitations);
        assert_eq!(parsed.rows[0].external_id.as_deref(), Some("123"));
        assert_eq!(parsed.rows[2].active, Some(false));
        let codes: Vec<(usize, &str)> = parsed
            .row_errors
            .iter()
            .map(|e| (e.row, e.code.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                (1, "invalid_row"),
                (2, "forbidden_field"),
                (2, "invalid_type")
            ]
        );
        assert_eq!(parsed.warnings, ["ignored unknown fields: shoe_size"]);
    }

    #[test]
    fn escaped_names_and_repeated_fields_read_like_a_json_object() {
        let body = br#"{"users": [{"name": "Escaped", "email": "first@x.example", "email": "last@x.example"}]}"#;
        let parsed = parse_users(body, 10).unwrap();
        assert_eq!(parsed.rows[0].name.as_deref(), Some("Escaped"));
        assert_eq!(parsed.rows[0].email.as_deref(), Some("last@x.example"));
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn a_huge_array_is_refused_before_it_is_held() {
        let body = format!(r#"{{"users": [{}0]}}"#, "0,".repeat(1_000_000));
        assert!(matches!(
            parse_users(body.as_bytes(), 100),
            Err(AppError::TooManyRows { limit: 100 })
        ));
    }

    #[test]
    fn bodies_wrong_as_a_whole_are_errors() {
        assert!(parse_stores(&object(json!({ "stores": {} })), 10).is_err());
        assert!(parse_stores(&object(json!({ "mode": "create_only" })), 10).is_err());
        assert!(parse_stores(&object(json!({ "stores": [], "mode": "sometimes" })), 10).is_err());
        assert!(matches!(
            parse_stores(&object(json!({ "stores": [{}, {}] })), 1),
            Err(AppError::TooManyRows { limit: 1 })
        ));
        assert!(parse_users(
            &object(json!({ "users": [], "send_invitations": "yes" })),
            10
        )
        .is_err());
    }

    /// The rows a streamed body gives, read through, as a whole body's parts.
    fn streamed(body: &[u8], max_rows: usize) -> Result<ParsedBody<UserRecord>, AppError> {
        let streamed = stream_users(body.to_vec(), max_rows)?;
        assert_eq!(
            streamed.rows.size_hint(),
            (streamed.count, Some(streamed.count))
        );
        let mut parsed = ParsedBody {
            rows: Vec::new(),
            mode: streamed.mode,
            row_errors: Vec::new(),
            warnings: Vec::new(),
            send_invitations: streamed.send_invitations,
        };
        let mut ignored = Vec::new();
        for (row, source) in streamed.rows.enumerate() {
            let source = source.expect("a checked body's rows read");
            parsed
                .row_errors
                .extend(source.problems.into_iter().map(|p| RowError {
                    row,
                    key: source.problems_key.clone(),
                    field: p.field,
                    code: p.code,
                    message: p.message,
                }));
            ignored.extend(source.ignored_fields);
            parsed.rows.push(source.record);
        }
        ignored.sort();
        parsed.warnings.extend(ignored_fields_warning(&ignored));
        Ok(parsed)
    }

    #[test]
    fn a_streamed_body_names_its_problems_like_a_body_read_whole() {
        let body = object(json!({ "users": [
            { "name": "Only A Name", "id": "forged" },
            { "email": "A@B.example", "name": "A", "role": true, "shoe_size": 44 },
            7,
            { "external_id": 12, "email": "c@b.example", "active": "maybe", "hat": 1, "shoe_size": 45 },
        ], "mode": "update_only", "send_invitations": true }));
        let whole = parse_users(&body, 10).unwrap();
        let stream = streamed(&body, 10).unwrap();
        let keyed = |parsed: &ParsedBody<UserRecord>| -> Vec<(usize, Option<String>, String)> {
            parsed
                .row_errors
                .iter()
                .map(|e| (e.row, e.key.clone(), e.code.as_str().to_string()))
                .collect()
        };
        let expected = [
            (
                0,
                Some("Only A Name".to_string()),
                "forbidden_field".to_string(),
            ),
            (
                1,
                Some("A@B.example".to_string()),
                "invalid_type".to_string(),
            ),
            (2, None, "invalid_row".to_string()),
            (3, Some("12".to_string()), "invalid_type".to_string()),
        ];
        assert_eq!(keyed(&whole), expected);
        assert_eq!(keyed(&stream), expected);
        assert_eq!(whole.warnings, ["ignored unknown fields: hat, shoe_size"]);
        assert_eq!(stream.warnings, whole.warnings);
        assert_eq!(stream.rows, whole.rows);
        assert_eq!(
            (stream.mode, stream.send_invitations),
            (ImportMode::UpdateOnly, true)
        );
    }

    #[test]
    fn a_streamed_body_is_refused_whole_before_any_row_is_read() {
        let too_many = format!(r#"{{"users": [{}{{}}]}}"#, "{},".repeat(100));
        assert!(matches!(
            stream_users(too_many.into_bytes(), 100),
            Err(AppError::TooManyRows { limit: 100 })
        ));
        let refused = |body: Value| stream_users(object(body), 10).err().map(|e| e.to_string());
        for body in [
            json!({ "users": null }),
            json!({ "users": {} }),
            json!({ "users": [], "mode": "sometimes" }),
            json!({ "users": [], "send_invitations": "yes" }),
            json!([]),
        ] {
            assert!(refused(body.clone()).is_some(), "{body}");
        }
        let broken = br#"{"users": [{"email": "a@b.example"}]"#.to_vec();
        assert!(matches!(
            stream_users(broken, 10),
            Err(AppError::BadRequest {
                code: "invalid_json",
                ..
            })
        ));
        let repeated = br#"{"users": [], "users": []}"#.to_vec();
        assert!(stream_users(repeated, 10).is_err());
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::hash_map(
                    prop_oneof![
                        Just("email".to_string()),
                        Just("name".to_string()),
                        Just("role".to_string()),
                        Just("active".to_string()),
                        Just("id".to_string()),
                        "[a-z_]{1,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// What a field should read as, from its JSON value: the specification the
    /// streaming reader must match.
    fn expected_text(value: Option<&Value>) -> (Option<String>, bool) {
        match value {
            None | Some(Value::Null) => (None, false),
            Some(Value::String(s)) => (Some(s.clone()), false),
            Some(Value::Number(n)) => (Some(n.to_string()), false),
            Some(_) => (None, true),
        }
    }

    proptest! {
        /// The streaming reader reads each field as its JSON value says, escapes,
        /// numbers and repeated names included.
        #[test]
        fn fields_read_as_their_json_values(row in proptest::collection::hash_map(
            prop_oneof![Just("email".to_string()), Just("name".to_string()), Just("role".to_string()), "[a-z]{1,3}"],
            arbitrary_json(),
            0..5,
        )) {
            let row: serde_json::Map<String, Value> = row.into_iter().collect();
            let body = object(json!({ "users": [Value::Object(row.clone())] }));
            let parsed = parse_users(&body, 10).expect("a valid body");
            let record = &parsed.rows[0];
            for (field, got) in [("email", &record.email), ("name", &record.name), ("role", &record.role)] {
                let (want, refused) = expected_text(row.get(field));
                prop_assert_eq!(got, &want, "{}", field);
                let reported = parsed.row_errors.iter().any(|e| e.field.as_deref() == Some(field));
                prop_assert_eq!(reported, refused, "{}", field);
            }
        }

        /// A body streamed row by row reads exactly as the body read whole:
        /// the same records, problems, keys, warnings and refusals.
        #[test]
        fn a_streamed_body_reads_as_the_body_read_whole(rows in proptest::collection::vec(arbitrary_json(), 0..12), mode in arbitrary_json()) {
            let body = object(json!({ "users": rows, "mode": mode }));
            match (parse_users(&body, 8), streamed(&body, 8)) {
                (Ok(whole), Ok(stream)) => {
                    prop_assert_eq!(&stream.rows, &whole.rows);
                    prop_assert_eq!(&stream.row_errors, &whole.row_errors);
                    prop_assert_eq!(&stream.warnings, &whole.warnings);
                    prop_assert_eq!(stream.mode, whole.mode);
                }
                (Err(whole), Err(stream)) => prop_assert_eq!(whole.to_string(), stream.to_string()),
                (whole, stream) => prop_assert!(false, "whole {:?} / streamed {:?}", whole.is_ok(), stream.is_ok()),
            }
        }

        /// Untrusted bodies never panic, and every row is accounted for.
        #[test]
        fn any_body_parses_or_is_refused_cleanly(rows in proptest::collection::vec(arbitrary_json(), 0..20), mode in arbitrary_json()) {
            let body = object(json!({ "users": rows.clone(), "stores": rows.clone(), "mode": mode }));
            if let Ok(parsed) = parse_users(&body, 100) {
                prop_assert_eq!(parsed.rows.len(), rows.len());
                prop_assert!(parsed.row_errors.iter().all(|e| e.row < rows.len()));
            }
            if let Ok(parsed) = parse_stores(&body, 100) {
                prop_assert_eq!(parsed.rows.len(), rows.len());
            }
        }
    }
}
