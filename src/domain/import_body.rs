//! The bulk-import JSON body (`{stores|users: [...], mode, send_invitations}`) read
//! into normalised records. Shared by the REST endpoints, the command line and
//! JSON files in the drop directory: row-level problems become row errors, unknown
//! fields one warning, and only a body wrong as a whole is an error.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::import::{ImportMode, RowError, StoreRecord, UserRecord};
use crate::AppError;

/// A body read into records.
pub struct ParsedBody<R> {
    pub rows: Vec<R>,
    pub mode: ImportMode,
    pub row_errors: Vec<RowError>,
    pub warnings: Vec<String>,
    pub send_invitations: bool,
}

const STORE_FIELDS: [&str; 6] = [
    "name",
    "location",
    "address",
    "phone",
    "external_id",
    "active",
];
const USER_FIELDS: [&str; 7] = [
    "email",
    "name",
    "role",
    "store_id",
    "manager_id",
    "external_id",
    "active",
];
/// Fields a source may never set; a row carrying one is refused whole.
const FORBIDDEN_FIELDS: [&str; 10] = [
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

/// The top level of a body. Rows stay raw slices of the input and are read one
/// at a time, so a 100,000-row body never becomes a tree of JSON values.
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
    rows: Vec<&'a RawValue>,
    mode: ImportMode,
    send_invitations: Option<Value>,
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
    let top: Envelope<'a> = serde_json::from_slice(body).map_err(whole_body_error)?;
    let raw_rows = if list == "users" {
        top.users
    } else {
        top.stores
    };
    let rows: Vec<&'a RawValue> = match raw_rows {
        None => {
            return Err(AppError::field(
                list,
                "required",
                format!("{list} is required"),
            ))
        }
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| {
            AppError::field(list, "invalid_type", format!("{list} must be an array"))
        })?,
    };
    if rows.len() > max_rows {
        return Err(AppError::TooManyRows { limit: max_rows });
    }
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
struct RowReader<'a> {
    row: usize,
    object: &'a Map<String, Value>,
    errors: &'a mut Vec<RowError>,
    key: Option<String>,
}

impl RowReader<'_> {
    fn text(&mut self, field: &str) -> Option<String> {
        match self.object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            // ERPs send numeric ids and phone numbers as numbers.
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.fail(
                    Some(field),
                    "invalid_type",
                    format!("{field} must be a string"),
                );
                None
            }
        }
    }

    fn flag(&mut self, field: &str) -> Option<bool> {
        match self.object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
            Some(_) => {
                self.fail(
                    Some(field),
                    "invalid_type",
                    format!("{field} must be true or false"),
                );
                None
            }
        }
    }

    fn fail(&mut self, field: Option<&str>, code: &'static str, message: String) {
        self.errors.push(RowError {
            row: self.row,
            key: self.key.clone(),
            field: field.map(str::to_string),
            code,
            message,
        });
    }
}

/// Splits raw rows into records plus row errors and the set of unknown fields.
fn read_rows<R: Default>(
    rows: &[&RawValue],
    known: &[&str],
    mut read: impl FnMut(&mut RowReader<'_>) -> R,
) -> (Vec<R>, Vec<RowError>, Vec<String>) {
    let mut records = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut unknown = BTreeSet::new();
    for (row, raw) in rows.iter().enumerate() {
        // Valid JSON already (the envelope parsed); one row's tree at a time.
        let value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
        let Value::Object(object) = &value else {
            errors.push(RowError {
                row,
                key: None,
                field: None,
                code: "invalid_row",
                message: "each row must be a JSON object".into(),
            });
            records.push(R::default());
            continue;
        };
        let key = ["external_id", "email", "name"].iter().find_map(|f| {
            object.get(*f).and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_number().map(|n| n.to_string()))
            })
        });
        let mut reader = RowReader {
            row,
            object,
            errors: &mut errors,
            key,
        };
        for field in object.keys() {
            if FORBIDDEN_FIELDS.contains(&field.as_str()) {
                reader.fail(
                    Some(field),
                    "forbidden_field",
                    format!("{field} cannot be set by an import"),
                );
            } else if !known.contains(&field.as_str()) {
                unknown.insert(field.clone());
            }
        }
        records.push(read(&mut reader));
    }
    let warnings = if unknown.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "ignored unknown fields: {}",
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        )]
    };
    (records, errors, warnings)
}

pub fn parse_stores(body: &[u8], max_rows: usize) -> Result<ParsedBody<StoreRecord>, AppError> {
    let parsed = envelope(body, "stores", max_rows)?;
    let (rows, row_errors, warnings) = read_rows(&parsed.rows, &STORE_FIELDS, |r| StoreRecord {
        name: r.text("name"),
        location: r.text("location"),
        address: r.text("address"),
        phone: r.text("phone"),
        external_id: r.text("external_id"),
        active: r.flag("active"),
    });
    Ok(ParsedBody {
        rows,
        mode: parsed.mode,
        row_errors,
        warnings,
        send_invitations: false,
    })
}

pub fn parse_users(body: &[u8], max_rows: usize) -> Result<ParsedBody<UserRecord>, AppError> {
    let parsed = envelope(body, "users", max_rows)?;
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
    let (rows, row_errors, warnings) = read_rows(&parsed.rows, &USER_FIELDS, |r| UserRecord {
        email: r.text("email"),
        name: r.text("name"),
        role: r.text("role"),
        store_ref: r.text("store_id"),
        manager_ref: r.text("manager_id"),
        external_id: r.text("external_id"),
        active: r.flag("active"),
    });
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
        let codes: Vec<(usize, &str)> = parsed.row_errors.iter().map(|e| (e.row, e.code)).collect();
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

    proptest! {
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
