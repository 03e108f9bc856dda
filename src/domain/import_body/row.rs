//! One row of a bulk-import body read into a record: its fields straight
//! into slots, what is wrong with them into the row's problems.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{FORBIDDEN_FIELDS, STORE_FIELDS, USER_FIELDS};
use crate::domain::import::{RowErrorCode, RowProblem, StoreRecord, UserRecord};

/// One field value of a row, read without building a JSON tree.
#[derive(Debug, Clone, PartialEq, Default)]
enum Scalar {
    #[default]
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
pub(super) struct FieldName<'de>(pub(super) Cow<'de, str>);

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

/// The most fields a record reads.
const MAX_FIELDS: usize = 8;
const _: () = assert!(USER_FIELDS.len() <= MAX_FIELDS && STORE_FIELDS.len() <= MAX_FIELDS);

/// A row's values, one slot per field its record reads (in the order of
/// the record's `FIELDS`).
type Slots = [Scalar; MAX_FIELDS];

/// Reads one row straight into its slots — the last value when a row
/// repeats a name, as a JSON object keeps it — noting the names no row may
/// carry and those the record does not know. `None`: the row is not an object.
struct RowSeed<'s> {
    known: &'static [&'static str],
    unknown: &'s mut BTreeSet<String>,
    first_unknown: &'s mut Vec<String>,
    refused: &'s mut BTreeSet<String>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Option<Slots>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Option<Slots>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = Slots::default();
        while let Some(FieldName(name)) = map.next_key()? {
            if let Some(slot) = self.known.iter().position(|field| *field == name) {
                slots[slot] = map.next_value()?;
                continue;
            }
            if FORBIDDEN_FIELDS.contains(&name.as_ref()) {
                self.refused.insert(name.into_owned());
            } else if !self.unknown.contains(name.as_ref()) {
                self.unknown.insert(name.to_string());
                self.first_unknown.push(name.into_owned());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(Some(slots))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(|_| None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Reads one row's fields; what is wrong with them becomes its problems.
pub(super) struct RowReader<'r> {
    known: &'static [&'static str],
    slots: &'r mut Slots,
    problems: &'r mut Vec<RowProblem>,
}

impl RowReader<'_> {
    /// The field's value, taken out of the row.
    fn take(&mut self, field: &str) -> Scalar {
        self.known
            .iter()
            .position(|known| *known == field)
            .map_or(Scalar::Null, |slot| std::mem::take(&mut self.slots[slot]))
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
        self.problems.push(RowProblem {
            field: field.map(str::to_string),
            code,
            message,
        });
    }
}

/// A record of a body's row list.
pub(super) trait BodyRecord: Default {
    /// The fields a row may carry.
    const FIELDS: &'static [&'static str];
    fn read(row: &mut RowReader<'_>) -> Self;
    /// How reports name the row: its external_id, else its email or name, as
    /// the row gave them.
    fn key(&self) -> Option<String>;
}

impl BodyRecord for UserRecord {
    const FIELDS: &'static [&'static str] = &USER_FIELDS;

    fn read(r: &mut RowReader<'_>) -> Self {
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
            scim_identity: None,
        }
    }

    fn key(&self) -> Option<String> {
        self.external_id
            .as_ref()
            .or(self.email.as_ref())
            .or(self.name.as_ref())
            .cloned()
    }
}

impl BodyRecord for StoreRecord {
    const FIELDS: &'static [&'static str] = &STORE_FIELDS;

    fn read(r: &mut RowReader<'_>) -> Self {
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
    }

    fn key(&self) -> Option<String> {
        self.external_id.as_ref().or(self.name.as_ref()).cloned()
    }
}

/// One row read: its record, its problems, and the unknown fields it is the
/// first to name (the others are in `unknown` already).
pub(super) struct ReadRow<R> {
    pub(super) record: R,
    pub(super) problems: Vec<RowProblem>,
    pub(super) first_unknown: Vec<String>,
}

/// Reads one row (a slice the envelope found, so valid JSON).
pub(super) fn read_row<R: BodyRecord>(
    raw: &[u8],
    unknown: &mut BTreeSet<String>,
) -> Result<ReadRow<R>, serde_json::Error> {
    let mut problems = Vec::new();
    let mut first_unknown = Vec::new();
    let mut refused = BTreeSet::new();
    let seed = RowSeed {
        known: R::FIELDS,
        unknown,
        first_unknown: &mut first_unknown,
        refused: &mut refused,
    };
    let Some(mut slots) = seed.deserialize(&mut serde_json::Deserializer::from_slice(raw))? else {
        problems.push(RowProblem {
            field: None,
            code: RowErrorCode::InvalidRow,
            message: "each row must be a JSON object".into(),
        });
        return Ok(ReadRow {
            record: R::default(),
            problems,
            first_unknown,
        });
    };
    let mut reader = RowReader {
        known: R::FIELDS,
        slots: &mut slots,
        problems: &mut problems,
    };
    for field in refused {
        reader.fail(
            Some(&field),
            RowErrorCode::ForbiddenField,
            format!("{field} cannot be set by an import"),
        );
    }
    let record = R::read(&mut reader);
    Ok(ReadRow {
        record,
        problems,
        first_unknown,
    })
}
