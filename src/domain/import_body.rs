//! The bulk-import JSON body (`{stores|users: [...], mode, send_invitations}`) read
//! into normalised records. Shared by the REST endpoints, the command line and
//! JSON files in the drop directory: row-level problems become row errors, unknown
//! fields one warning, and only a body wrong as a whole is an error.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::import::{ImportMode, RowError, RowErrorCode, StoreRecord, UserRecord};
use crate::AppError;

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

/// The top level of a body. The row array stays a raw slice until it is read
/// row by row into plain fields, so a 100,000-row body never becomes a tree of
/// JSON values.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    users: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stores: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mode: Option<&'a RawValue>,
    #[serde(borrow, default)]
    send_invitations: Option<&'a RawValue>,
}

struct Parsed<'a> {
    rows: &'a RawValue,
    mode: ImportMode,
    send_invitations: Option<Value>,
}

/// One field value of a row, read without building a JSON tree.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Text(String),
    /// Kept as written: ERPs send numeric ids and phone numbers as numbers.
    Number(String),
    /// An array or an object, which no field accepts.
    Compound,
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        // Written the way serde_json writes numbers (1.0 stays "1.0").
        Ok(serde_json::Number::from_f64(v).map_or(Scalar::Null, |n| Scalar::Number(n.to_string())))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A field name, borrowed from the body unless it had escapes.
struct FieldName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

/// One row: its fields in body order, or something that is not an object.
enum RowValue<'de> {
    Object(Vec<(Cow<'de, str>, Scalar)>),
    NotObject,
}

impl<'de> Deserialize<'de> for RowValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = RowValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(FieldName(name)) = map.next_key()? {
                    fields.push((name, map.next_value()?));
                }
                Ok(RowValue::Object(fields))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                ScalarVisitor.visit_seq(seq).map(|_| RowValue::NotObject)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RowValue::NotObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RowValue::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RowValue::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RowValue::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RowValue::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RowValue::NotObject)
            }
        }
        d.deserialize_any(RowVisitor)
    }
}

/// Reads the row array one row at a time, handing each to `each` and refusing
/// more than `max` rows as it goes, so neither an oversized body nor a large
/// one is ever held as a list of parsed rows.
struct RowsSeed<'c, F> {
    max: usize,
    too_many: &'c std::cell::Cell<bool>,
    each: F,
}

impl<'de, F: FnMut(usize, RowValue<'de>)> DeserializeSeed<'de> for RowsSeed<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(usize, RowValue<'de>)> Visitor<'de> for RowsSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut count = 0;
        while let Some(row) = seq.next_element()? {
            if count == self.max {
                self.too_many.set(true);
                return Err(de::Error::custom("too many rows"));
            }
            (self.each)(count, row);
            count += 1;
        }
        Ok(())
    }
}

fn for_each_row<'a>(
    raw: &'a RawValue,
    list: &str,
    max_rows: usize,
    each: impl FnMut(usize, RowValue<'a>),
) -> Result<(), AppError> {
    let too_many = std::cell::Cell::new(false);
    let mut reader = serde_json::Deserializer::from_str(raw.get());
    let seed = RowsSeed {
        max: max_rows,
        too_many: &too_many,
        each,
    };
    seed.deserialize(&mut reader).map_err(|_| {
        if too_many.get() {
            AppError::TooManyRows { limit: max_rows }
        } else {
            AppError::field(list, "invalid_type", format!("{list} must be an array"))
        }
    })
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

fn envelope<'a>(body: &'a [u8], list: &str) -> Result<Parsed<'a>, AppError> {
    let top: Envelope<'a> = serde_json::from_slice(body).map_err(whole_body_error)?;
    let raw_rows = if list == "users" {
        top.users
    } else {
        top.stores
    };
    let rows = match raw_rows {
        None => {
            return Err(AppError::field(
                list,
                "required",
                format!("{list} is required"),
            ))
        }
        Some(raw) => raw,
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

/// Reads one row's fields; problems become row errors, unknown fields are noted.
struct RowReader<'r, 'de> {
    row: usize,
    fields: &'r mut [(Cow<'de, str>, Scalar)],
    errors: &'r mut Vec<RowError>,
    key: Option<String>,
}

impl RowReader<'_, '_> {
    /// The field's value, taken out of the row (the last one when a body repeats
    /// a name, as a JSON object would keep it).
    fn take(&mut self, field: &str) -> Scalar {
        self.fields
            .iter_mut()
            .rev()
            .find(|(name, _)| name == field)
            .map_or(Scalar::Null, |(_, value)| {
                std::mem::replace(value, Scalar::Null)
            })
    }

    fn text(&mut self, field: &str) -> Option<String> {
        match self.take(field) {
            Scalar::Null => None,
            Scalar::Text(s) | Scalar::Number(s) => Some(s),
            Scalar::Bool(_) | Scalar::Compound => {
                self.fail(
                    Some(field),
                    RowErrorCode::InvalidType,
                    format!("{field} must be a string"),
                );
                None
            }
        }
    }

    fn flag(&mut self, field: &str) -> Option<bool> {
        match self.take(field) {
            Scalar::Null => None,
            Scalar::Bool(b) => Some(b),
            Scalar::Text(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Scalar::Text(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => {
                self.fail(
                    Some(field),
                    RowErrorCode::InvalidType,
                    format!("{field} must be true or false"),
                );
                None
            }
        }
    }

    fn fail(&mut self, field: Option<&str>, code: RowErrorCode, message: String) {
        self.errors.push(RowError {
            row: self.row,
            key: self.key.clone(),
            field: field.map(str::to_string),
            code,
            message,
        });
    }
}

struct ReadRows<R> {
    records: Vec<R>,
    errors: Vec<RowError>,
    warnings: Vec<String>,
}

/// Reads the rows into records plus row errors and the set of unknown fields.
fn read_rows<R: Default>(
    rows: &RawValue,
    list: &str,
    max_rows: usize,
    known: &[&str],
    mut read: impl FnMut(&mut RowReader<'_, '_>) -> R,
) -> Result<ReadRows<R>, AppError> {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut unknown = BTreeSet::new();
    for_each_row(rows, list, max_rows, |row, value| {
        let RowValue::Object(mut fields) = value else {
            errors.push(RowError {
                row,
                key: None,
                field: None,
                code: RowErrorCode::InvalidRow,
                message: "each row must be a JSON object".into(),
            });
            records.push(R::default());
            return;
        };
        let key = ["external_id", "email", "name"].iter().find_map(|f| {
            fields
                .iter()
                .rev()
                .find(|(name, _)| name == f)
                .and_then(|(_, value)| match value {
                    Scalar::Text(s) | Scalar::Number(s) => Some(s.clone()),
                    _ => None,
                })
        });
        let mut refused = BTreeSet::new();
        for (name, _) in &fields {
            let name = name.as_ref();
            if FORBIDDEN_FIELDS.contains(&name) {
                refused.insert(name.to_string());
            } else if !known.contains(&name) && !unknown.contains(name) {
                unknown.insert(name.to_string());
            }
        }
        let mut reader = RowReader {
            row,
            fields: &mut fields,
            errors: &mut errors,
            key,
        };
        for field in refused {
            reader.fail(
                Some(&field),
                RowErrorCode::ForbiddenField,
                format!("{field} cannot be set by an import"),
            );
        }
        records.push(read(&mut reader));
    })?;
    let warnings = if unknown.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "ignored unknown fields: {}",
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        )]
    };
    Ok(ReadRows {
        records,
        errors,
        warnings,
    })
}

pub fn parse_stores(body: &[u8], max_rows: usize) -> Result<ParsedBody<StoreRecord>, AppError> {
    let parsed = envelope(body, "stores")?;
    let ReadRows {
        records: rows,
        errors: row_errors,
        warnings,
    } = read_rows(parsed.rows, "stores", max_rows, &STORE_FIELDS, |r| {
        StoreRecord {
            id: None,
            name: r.text("name"),
            location: r.text("location"),
            address: r.text("address"),
            phone: r.text("phone"),
            external_id: r.text("external_id"),
            active: r.flag("active"),
            clear_external_id: false,
        }
    })?;
    Ok(ParsedBody {
        rows,
        mode: parsed.mode,
        row_errors,
        warnings,
        send_invitations: false,
    })
}

pub fn parse_users(body: &[u8], max_rows: usize) -> Result<ParsedBody<UserRecord>, AppError> {
    let parsed = envelope(body, "users")?;
    let send_invitations = match parsed.send_invitations {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(AppError::field(
                "send_invitations",
                "invalid_type",
                "send_invitations must be true or false",
            ))
        }
    };
    let ReadRows {
        records: rows,
        errors: row_errors,
        warnings,
    } = read_rows(parsed.rows, "users", max_rows, &USER_FIELDS, |r| {
        UserRecord {
            id: None,
            email: r.text("email"),
            name: r.text("name"),
            role: r.text("role"),
            store_ref: r.text("store_id"),
            manager_ref: r.text("manager_id"),
            external_id: r.text("external_id"),
            active: r.flag("active"),
            clear: Default::default(),
        }
    })?;
    Ok(ParsedBody {
        rows,
        mode: parsed.mode,
        row_errors,
        warnings,
        send_invitations,
    })
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
