//! A SCIM resource as a JSON document in canonical form: attribute names
//! spelled as the schema spells them, extensions under their URN, booleans as
//! booleans, no nulls, no empty lists. Bodies are read into this form
//! (leniently: unknown attributes and schema URNs ignored, names in any case,
//! `"True"`/`"False"` coerced, dotted and URN-prefixed keys accepted), PATCH
//! operations edit it, and `attributes`/`excludedAttributes` project it.

use serde_json::{Map, Value};

use super::fault::ScimFault;
use super::filter::{self, Filter, PatchPath};
use super::schema::{self, Attribute, Mutability, ResourceType, Schema, Type};

pub type Doc = Map<String, Value>;

/// `externalId` is common to every resource (RFC 7643 §3.1), outside the
/// schemas' attribute lists.
const EXTERNAL_ID: Attribute = Attribute {
    name: "externalId",
    ty: Type::String,
    multi_valued: false,
    required: false,
    case_exact: true,
    mutability: Mutability::ReadWrite,
    unique: false,
    canonical_values: &[],
    description: "The identifier the provisioning client gives the resource.",
};

/// Attributes a client may send but never sets (read-only or server-owned).
pub(super) const IGNORED_ON_INPUT: [&str; 3] = ["schemas", "id", "meta"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

impl Op {
    pub fn parse(text: &str) -> Option<Op> {
        match text.to_ascii_lowercase().as_str() {
            "add" => Some(Op::Add),
            "replace" => Some(Op::Replace),
            "remove" => Some(Op::Remove),
            _ => None,
        }
    }
}

/// Where an operation lands: an attribute of the core schema (`extension`
/// None) or of an extension, possibly narrowed by a value filter and a
/// sub-attribute.
pub(super) struct Target {
    pub(super) extension: Option<&'static Schema>,
    pub(super) attribute: &'static Attribute,
    pub(super) filter: Option<Filter>,
    pub(super) sub: Option<&'static Attribute>,
}

/// What a path names: an attribute, a whole extension, or nothing we keep.
pub(super) enum Resolved {
    Attribute(Target),
    Extension(&'static Schema),
    Unknown,
}

pub(super) fn resolve(kind: &ResourceType, text: &str) -> Result<Resolved, ScimFault> {
    if let Some(extension) = kind.extension(text.trim()) {
        return Ok(Resolved::Extension(extension));
    }
    let PatchPath { attr, filter, sub } = filter::parse_path(text)
        .map_err(|e| ScimFault::invalid_path(format!("path {text:?}: {e}")))?;
    let (extension, attributes) = match &attr.schema {
        None => (None, kind.schema.attributes),
        Some(urn) => match kind.schema_named(urn) {
            Some(s) if s.id == kind.schema.id => (None, s.attributes),
            Some(s) => (Some(s), s.attributes),
            None => return Ok(Resolved::Unknown),
        },
    };
    let attribute = match schema::find(attributes, &attr.name) {
        Some(a) => a,
        None if extension.is_none() && attr.name.eq_ignore_ascii_case("externalId") => &EXTERNAL_ID,
        None => return Ok(Resolved::Unknown),
    };
    let sub_name = match (&attr.sub, &sub) {
        (Some(_), Some(_)) => {
            return Err(ScimFault::invalid_path(format!(
                "path {text:?} names two sub-attributes"
            )))
        }
        (Some(s), None) | (None, Some(s)) => Some(s.as_str()),
        (None, None) => None,
    };
    let sub = match sub_name {
        None => None,
        Some(name) => match attribute.sub(name) {
            Some(s) => Some(s),
            None => return Ok(Resolved::Unknown),
        },
    };
    if filter.is_some() && !attribute.multi_valued {
        return Err(ScimFault::invalid_path(format!(
            "{} is not multi-valued: it takes no value filter",
            attribute.name
        )));
    }
    Ok(Resolved::Attribute(Target {
        extension,
        attribute,
        filter,
        sub,
    }))
}

pub(super) fn type_error(name: &str, expected: &str) -> ScimFault {
    ScimFault::invalid_value(format!("{name} must be {expected}"))
}

/// A value in canonical form for a single (not multi-valued) attribute;
/// `None` when it is null or empty.
pub(super) fn single(attribute: &Attribute, value: &Value) -> Result<Option<Value>, ScimFault> {
    Ok(match (&attribute.ty, value) {
        (_, Value::Null) => None,
        (Type::Boolean, Value::Bool(b)) => Some(Value::Bool(*b)),
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true.into()),
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false.into()),
        (Type::Boolean, _) => return Err(type_error(attribute.name, "true or false")),
        (Type::Complex(subs), Value::Object(object)) => {
            let mut out = Map::new();
            for (key, value) in object {
                let Some(sub) = schema::find(subs, key) else {
                    continue;
                };
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = single(sub, value)? {
                    out.insert(sub.name.to_string(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        // Entra sends the manager as a bare id: `"manager": "id"`.
        (Type::Complex(subs), Value::String(_) | Value::Number(_))
            if schema::find(subs, "value").is_some() =>
        {
            single(attribute, &serde_json::json!({ "value": value }))?
        }
        (Type::Complex(_), _) => return Err(type_error(attribute.name, "an object")),
        (_, Value::String(s)) => Some(Value::String(s.clone())),
        // Some clients send employee numbers and the like as numbers.
        (_, Value::Number(n)) => Some(Value::String(n.to_string())),
        (_, Value::Bool(b)) => Some(Value::String(b.to_string())),
        (_, _) => return Err(type_error(attribute.name, "a string")),
    })
}

/// The canonical value of `attribute`: a list for a multi-valued one (a lone
/// element is taken as a list of one).
pub(super) fn canonical(attribute: &Attribute, value: &Value) -> Result<Option<Value>, ScimFault> {
    if !attribute.multi_valued {
        return single(attribute, value);
    }
    let items: &[Value] = match value {
        Value::Array(items) => items,
        Value::Null => &[],
        other => std::slice::from_ref(other),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = single(attribute, item)? {
            out.push(v);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

pub(super) fn container<'d>(doc: &'d mut Doc, extension: Option<&Schema>) -> &'d mut Doc {
    match extension {
        None => doc,
        Some(schema) => object_entry(doc, schema.id),
    }
}

/// The object under `key`, made one if it is missing or not an object.
pub(super) fn object_entry<'m>(
    map: &'m mut Map<String, Value>,
    key: &str,
) -> &'m mut Map<String, Value> {
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(object) => object,
        _ => unreachable!("made an object above"),
    }
}

/// Drops extension objects left empty.
pub fn tidy_extensions(kind: &ResourceType, doc: &mut Doc) {
    for extension in kind.extensions {
        if matches!(doc.get(extension.id), Some(Value::Object(o)) if o.is_empty()) {
            doc.remove(extension.id);
        }
    }
}

/// Reads a POST or PUT body: every attribute we keep, in canonical form.
pub fn read(kind: &ResourceType, body: &Value) -> Result<Doc, ScimFault> {
    let Value::Object(object) = body else {
        return Err(ScimFault::invalid_syntax(format!(
            "the body must be a SCIM {} object",
            kind.name
        )));
    };
    let mut doc = Doc::new();
    super::patch::apply(
        kind,
        &mut doc,
        Op::Add,
        None,
        Some(&Value::Object(object.clone())),
    )?;
    tidy_extensions(kind, &mut doc);
    Ok(doc)
}

/// The attribute paths of an `attributes`/`excludedAttributes` parameter.
pub fn attribute_list(text: Option<&str>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// A path of `attributes=` split into (schema URN or None, attribute, sub).
fn split_path<'p>(
    kind: &ResourceType,
    path: &'p str,
) -> (Option<&'static str>, &'p str, Option<&'p str>) {
    let (schema, rest) = match path.rfind(':') {
        Some(i) => {
            let urn = &path[..i];
            match kind.schema_named(urn) {
                Some(s) => (Some(s.id), &path[i + 1..]),
                None => (None, path),
            }
        }
        None => (None, path),
    };
    match rest.split_once('.') {
        Some((a, s)) => (schema, a, Some(s)),
        None => (schema, rest, None),
    }
}

/// Applies `attributes` (keep only these, plus id and schemas) or
/// `excludedAttributes` (drop these) to a rendered resource.
pub fn project(kind: &ResourceType, doc: &mut Doc, attributes: &[String], excluded: &[String]) {
    fn key_of(object: &Map<String, Value>, name: &str) -> Option<String> {
        object
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
    }
    if !attributes.is_empty() {
        let mut kept = Doc::new();
        for always in ["schemas", "id"] {
            if let Some(v) = doc.get(always) {
                kept.insert(always.into(), v.clone());
            }
        }
        for path in attributes {
            if let Some(extension) = kind.extension(path) {
                if let Some(v) = doc.get(extension.id) {
                    kept.insert(extension.id.into(), v.clone());
                }
                continue;
            }
            let (schema, name, sub) = split_path(kind, path);
            let source = match schema.filter(|s| *s != kind.schema.id) {
                Some(urn) => doc.get(urn).and_then(Value::as_object),
                None => Some(&*doc),
            };
            let Some(source) = source else { continue };
            let Some(key) = key_of(source, name) else {
                continue;
            };
            let value = &source[&key];
            let picked = match (sub, value) {
                (None, v) => v.clone(),
                (Some(sub), Value::Object(o)) => match key_of(o, sub) {
                    Some(k) => Value::Object(Map::from_iter([(k.clone(), o[&k].clone())])),
                    None => continue,
                },
                (Some(sub), Value::Array(list)) => Value::Array(
                    list.iter()
                        .filter_map(|e| {
                            let o = e.as_object()?;
                            let k = key_of(o, sub)?;
                            Some(Value::Object(Map::from_iter([(k.clone(), o[&k].clone())])))
                        })
                        .collect(),
                ),
                _ => continue,
            };
            let target = match schema.filter(|s| *s != kind.schema.id) {
                Some(urn) => object_entry(&mut kept, urn),
                None => &mut kept,
            };
            match (target.get_mut(&key), picked) {
                (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
                (_, picked) => {
                    target.insert(key, picked);
                }
            }
        }
        *doc = kept;
    }
    for path in excluded {
        if let Some(extension) = kind.extension(path) {
            doc.remove(extension.id);
            continue;
        }
        let (schema, name, sub) = split_path(kind, path);
        if name.eq_ignore_ascii_case("id") || name.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let target = match schema.filter(|s| *s != kind.schema.id) {
            Some(urn) => match doc.get_mut(urn).and_then(Value::as_object_mut) {
                Some(o) => o,
                None => continue,
            },
            None => &mut *doc,
        };
        let Some(key) = key_of(target, name) else {
            continue;
        };
        match sub {
            None => {
                target.remove(&key);
            }
            Some(sub) => match target.get_mut(&key) {
                Some(Value::Object(o)) => {
                    if let Some(k) = key_of(o, sub) {
                        o.remove(&k);
                    }
                }
                Some(Value::Array(list)) => {
                    for e in list.iter_mut() {
                        if let Some(o) = e.as_object_mut() {
                            if let Some(k) = key_of(o, sub) {
                                o.remove(&k);
                            }
                        }
                    }
                }
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scim::fault::FaultKind;
    use crate::domain::scim::patch::apply;
    use crate::domain::scim::schema::{GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn patch(doc: &mut Doc, op: &str, path: Option<&str>, value: Value) -> Result<(), ScimFault> {
        let value = (!value.is_null()).then_some(value);
        apply(
            &USER_TYPE,
            doc,
            Op::parse(op).unwrap(),
            path,
            value.as_ref(),
        )
    }

    fn user() -> Doc {
        read(&USER_TYPE, &json!({"userName": "ada", "active": true})).unwrap()
    }

    #[test]
    fn bodies_are_read_leniently() {
        let doc = read(
            &USER_TYPE,
            &json!({
                "schemas": ["urn:whatever"],
                "UserName": "Ada@Example.com",
                "id": "client-sent",
                "password": "secret",
                "groups": [],
                "roles": [],
                "nickName": null,
                "Active": "False",
                "NAME": {"GivenName": "Ada", "familyname": "Lovelace", "unknown": 1},
                "emails": {"value": "ada@example.com", "primary": "True"},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Department": "R&D", "employeeNumber": 42},
                "urn:example:unknown": {"x": 1}
            }),
        )
        .unwrap();
        assert_eq!(
            Value::Object(doc),
            json!({
                "userName": "Ada@Example.com",
                "active": false,
                "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "emails": [{"value": "ada@example.com", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "employeeNumber": "42"}
            })
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_invalid_value() {
        let e = read(&USER_TYPE, &json!({"userName": "a", "active": "maybe"})).unwrap_err();
        assert_eq!(e.kind, FaultKind::InvalidValue);
        let e = read(&USER_TYPE, &json!({"userName": "a", "name": ["text"]})).unwrap_err();
        assert_eq!(e.kind, FaultKind::InvalidValue);
    }

    #[test]
    fn pathless_operations_take_dotted_and_urn_keys() {
        let mut doc = user();
        patch(
            &mut doc,
            "Replace",
            None,
            json!({
                "active": "False",
                "name.givenName": "Grace",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops"
            }),
        )
        .unwrap();
        assert_eq!(doc["active"], json!(false));
        assert_eq!(doc["name"], json!({"givenName": "Grace"}));
        assert_eq!(
            doc["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"department": "Ops"})
        );
    }

    #[test]
    fn a_value_filter_path_creates_the_element_it_describes() {
        let mut doc = user();
        patch(
            &mut doc,
            "add",
            Some(r#"emails[type eq "work"].value"#),
            json!("a@b.c"),
        )
        .unwrap();
        assert_eq!(doc["emails"], json!([{"type": "work", "value": "a@b.c"}]));
        patch(
            &mut doc,
            "replace",
            Some(r#"emails[type eq "work"].value"#),
            json!("x@b.c"),
        )
        .unwrap();
        assert_eq!(doc["emails"], json!([{"type": "work", "value": "x@b.c"}]));
        patch(
            &mut doc,
            "replace",
            Some(r#"roles[primary eq "True"].display"#),
            json!("Boss"),
        )
        .unwrap();
        assert_eq!(doc["roles"], json!([{"primary": true, "display": "Boss"}]));
        patch(
            &mut doc,
            "remove",
            Some(r#"emails[type eq "work"]"#),
            Value::Null,
        )
        .unwrap();
        assert!(!doc.contains_key("emails"));
    }

    #[test]
    fn add_appends_and_keeps_one_primary() {
        let mut doc = user();
        patch(
            &mut doc,
            "add",
            Some("emails"),
            json!([{"value": "a@b.c", "primary": true}]),
        )
        .unwrap();
        patch(
            &mut doc,
            "add",
            Some("emails"),
            json!([{"value": "d@e.f", "primary": true}]),
        )
        .unwrap();
        assert_eq!(
            doc["emails"],
            json!([{"value": "a@b.c", "primary": false}, {"value": "d@e.f", "primary": true}])
        );
    }

    #[test]
    fn the_manager_may_be_a_bare_string_or_an_object() {
        let mut doc = user();
        let path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
        patch(&mut doc, "add", Some(path), json!({"value": "m1"})).unwrap();
        assert_eq!(
            doc[schema::ENTERPRISE_USER]["manager"],
            json!({"value": "m1"})
        );
        // Entra's shape: the id as a bare string.
        patch(&mut doc, "replace", Some(path), json!("m2")).unwrap();
        assert_eq!(
            doc[schema::ENTERPRISE_USER]["manager"],
            json!({"value": "m2"})
        );
        patch(&mut doc, "remove", Some(path), Value::Null).unwrap();
        assert!(
            !doc.contains_key(schema::ENTERPRISE_USER)
                || doc[schema::ENTERPRISE_USER].get("manager").is_none()
        );
    }

    #[test]
    fn members_are_added_and_removed_in_every_shape() {
        let mut doc = read(&GROUP_TYPE, &json!({"displayName": "Lyon", "members": []})).unwrap();
        let group = |doc: &mut Doc, op: &str, path: Option<&str>, value: Value| {
            let value = (!value.is_null()).then_some(value);
            apply(
                &GROUP_TYPE,
                doc,
                Op::parse(op).unwrap(),
                path,
                value.as_ref(),
            )
            .unwrap()
        };
        group(
            &mut doc,
            "add",
            Some("members"),
            json!([{"value": "u1"}, {"value": "u2"}, {"value": "u3"}]),
        );
        group(
            &mut doc,
            "remove",
            Some(r#"members[value eq "u1"]"#),
            Value::Null,
        );
        // Entra: remove with a value list.
        group(
            &mut doc,
            "Remove",
            Some("members"),
            json!([{"value": "u2"}]),
        );
        assert_eq!(doc["members"], json!([{"value": "u3"}]));
        group(
            &mut doc,
            "replace",
            Some("members"),
            json!([{"value": "u4"}]),
        );
        assert_eq!(doc["members"], json!([{"value": "u4"}]));
        group(&mut doc, "remove", Some("members"), Value::Null);
        assert!(!doc.contains_key("members"));
    }

    #[test]
    fn a_required_attribute_cannot_be_removed() {
        let mut doc = user();
        let e = patch(&mut doc, "remove", Some("userName"), Value::Null).unwrap_err();
        assert_eq!(e.kind, FaultKind::Mutability);
    }

    #[test]
    fn unknown_paths_are_ignored_and_bad_paths_refused() {
        let mut doc = user();
        patch(&mut doc, "replace", Some("favoriteColor"), json!("blue")).unwrap();
        patch(
            &mut doc,
            "replace",
            Some("urn:example:x:color"),
            json!("blue"),
        )
        .unwrap();
        assert_eq!(doc, user());
        let e = patch(&mut doc, "replace", Some("emails[type eq"), json!("x")).unwrap_err();
        assert_eq!(e.kind, FaultKind::InvalidPath);
    }

    #[test]
    fn projection_keeps_or_drops_attributes() {
        let mut doc = read(
            &USER_TYPE,
            &json!({"userName": "a", "name": {"givenName": "A", "familyName": "B"}, "active": true}),
        )
        .unwrap();
        doc.insert("id".into(), json!("1"));
        let mut kept = doc.clone();
        project(&USER_TYPE, &mut kept, &["name.givenName".into()], &[]);
        assert_eq!(
            Value::Object(kept),
            json!({"id": "1", "name": {"givenName": "A"}})
        );
        project(&USER_TYPE, &mut doc, &[], &["NAME".into(), "id".into()]);
        assert_eq!(
            Value::Object(doc),
            json!({"id": "1", "userName": "a", "active": true})
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                prop_oneof![
                    Just("userName".to_string()),
                    Just("name".to_string()),
                    Just("givenName".to_string()),
                    Just("emails".to_string()),
                    Just("value".to_string()),
                    Just("members".to_string()),
                    Just(schema::ENTERPRISE_USER.to_string()),
                    ".{0,12}".prop_map(String::from),
                ]
                .prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 40, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::vec(
                        (
                            prop_oneof![
                                Just("userName".to_string()),
                                Just("name".to_string()),
                                Just("name.givenName".to_string()),
                                Just("emails".to_string()),
                                Just("active".to_string()),
                                Just("displayName".to_string()),
                                Just("members".to_string()),
                                Just("roles".to_string()),
                                Just(schema::ENTERPRISE_USER.to_string()),
                                Just(format!("{}:manager", schema::ENTERPRISE_USER)),
                                ".{0,10}".prop_map(String::from),
                            ],
                            inner,
                        ),
                        0..6,
                    )
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Bodies and PATCH values come from the network: any JSON gives a
            /// document or an error, never a panic, and a document read back
            /// is stable.
            #[test]
            fn any_json_reads_or_fails_cleanly(body in json(), path in ".{0,40}", op in 0..3u8) {
                for kind in [&USER_TYPE, &GROUP_TYPE] {
                    if let Ok(doc) = read(kind, &body) {
                        let again = read(kind, &Value::Object(doc.clone())).unwrap();
                        prop_assert_eq!(&again, &doc);
                        let mut patched = doc.clone();
                        let op = [Op::Add, Op::Replace, Op::Remove][op as usize];
                        let _ = apply(kind, &mut patched, op, Some(&path), Some(&body));
                        let _ = apply(kind, &mut patched, op, None, Some(&body));
                    }
                }
            }
        }
    }
}
