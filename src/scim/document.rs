//! A SCIM resource as a JSON document in canonical form: attribute names
//! spelled as the schema spells them, extensions under their URN, booleans as
//! booleans, no nulls, no empty lists. Bodies are read into this form
//! (leniently: unknown attributes and schema URNs ignored, names in any case,
//! `"True"`/`"False"` coerced, dotted and URN-prefixed keys accepted), PATCH
//! operations edit it, and `attributes`/`excludedAttributes` project it.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{self, Attribute, Mutability, ResourceType, Schema, Type};
use crate::domain::scim_filter::{self, AttrPath, CompareOp, Filter, PatchPath};

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
const IGNORED_ON_INPUT: [&str; 3] = ["schemas", "id", "meta"];

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
struct Target {
    extension: Option<&'static Schema>,
    attribute: &'static Attribute,
    filter: Option<Filter>,
    sub: Option<&'static Attribute>,
}

/// What a path names: an attribute, a whole extension, or nothing we keep.
enum Resolved {
    Attribute(Target),
    Extension(&'static Schema),
    Unknown,
}

fn resolve(kind: &ResourceType, text: &str) -> Result<Resolved, ScimError> {
    if let Some(extension) = kind.extension(text.trim()) {
        return Ok(Resolved::Extension(extension));
    }
    let PatchPath { attr, filter, sub } = scim_filter::parse_path(text)
        .map_err(|e| ScimError::invalid_path(format!("path {text:?}: {e}")))?;
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
            return Err(ScimError::invalid_path(format!(
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
        return Err(ScimError::invalid_path(format!(
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

fn type_error(name: &str, expected: &str) -> ScimError {
    ScimError::invalid_value(format!("{name} must be {expected}"))
}

/// A value in canonical form for a single (not multi-valued) attribute;
/// `None` when it is null or empty.
fn single(attribute: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
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
fn canonical(attribute: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
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

fn container<'d>(doc: &'d mut Doc, extension: Option<&Schema>) -> &'d mut Doc {
    match extension {
        None => doc,
        Some(schema) => object_entry(doc, schema.id),
    }
}

/// The object under `key`, made one if it is missing or not an object.
fn object_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
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

/// A scalar of an element compared with a filter value, the SCIM way: strings
/// ignoring case unless the attribute is case-exact, booleans as booleans.
fn compare(found: &Value, op: CompareOp, wanted: &scim_filter::Value, case_exact: bool) -> bool {
    use scim_filter::Value as F;
    match (found, wanted) {
        (Value::Bool(b), w) => match (op, w.as_bool()) {
            (CompareOp::Eq, Some(w)) => *b == w,
            (CompareOp::Ne, Some(w)) => *b != w,
            _ => false,
        },
        (Value::String(s), F::String(w)) => {
            let (s, w) = if case_exact {
                (s.clone(), w.clone())
            } else {
                (s.to_lowercase(), w.to_lowercase())
            };
            match op {
                CompareOp::Eq => s == w,
                CompareOp::Ne => s != w,
                CompareOp::Co => s.contains(&w),
                CompareOp::Sw => s.starts_with(&w),
                CompareOp::Ew => s.ends_with(&w),
                CompareOp::Gt => s > w,
                CompareOp::Ge => s >= w,
                CompareOp::Lt => s < w,
                CompareOp::Le => s <= w,
            }
        }
        (Value::String(s), F::Bool(w)) => {
            let b = s.eq_ignore_ascii_case("true");
            matches!(op, CompareOp::Eq) && b == *w
        }
        (_, F::Null) => matches!(op, CompareOp::Ne),
        _ => false,
    }
}

/// Whether one element of a multi-valued attribute matches a value filter.
pub fn element_matches(attribute: &Attribute, element: &Value, filter: &Filter) -> bool {
    let lookup = |path: &AttrPath| -> Option<(&Value, bool)> {
        let sub = attribute.sub(path.sub.as_deref().unwrap_or(&path.name))?;
        let value = element.as_object()?.get(sub.name)?;
        Some((value, sub.case_exact))
    };
    match filter {
        Filter::And(a, b) => {
            element_matches(attribute, element, a) && element_matches(attribute, element, b)
        }
        Filter::Or(a, b) => {
            element_matches(attribute, element, a) || element_matches(attribute, element, b)
        }
        Filter::Not(inner) => !element_matches(attribute, element, inner),
        Filter::Present(path) => lookup(path).is_some(),
        Filter::Compare(path, op, value) => match lookup(path) {
            Some((found, case_exact)) => compare(found, *op, value, case_exact),
            None => matches!(op, CompareOp::Ne) && !matches!(value, scim_filter::Value::Null),
        },
        Filter::ValuePath(_, _) => false,
    }
}

/// The element a value filter describes (`type eq "work"` → `{"type": "work"}`),
/// for an add or replace that finds no element to change.
fn element_from_filter(attribute: &Attribute, filter: &Filter, out: &mut Map<String, Value>) {
    match filter {
        Filter::And(a, b) => {
            element_from_filter(attribute, a, out);
            element_from_filter(attribute, b, out);
        }
        Filter::Compare(path, CompareOp::Eq, value) => {
            let Some(sub) = attribute.sub(path.sub.as_deref().unwrap_or(&path.name)) else {
                return;
            };
            let json = match value {
                scim_filter::Value::String(s) => Value::String(s.clone()),
                scim_filter::Value::Bool(b) => Value::Bool(*b),
                scim_filter::Value::Number(n) => Value::String(n.clone()),
                scim_filter::Value::Null => return,
            };
            if let Ok(Some(v)) = single(sub, &json) {
                out.insert(sub.name.to_string(), v);
            }
        }
        _ => {}
    }
}

/// At most one element of a list may be primary (RFC 7643 §2.4): the last one
/// set wins.
fn one_primary(list: &mut [Value], keep: Option<usize>) {
    let keep = keep.or_else(|| {
        list.iter()
            .rposition(|e| e.get("primary") == Some(&Value::Bool(true)))
    });
    if let Some(keep) = keep {
        for (i, element) in list.iter_mut().enumerate() {
            if i != keep {
                if let Some(object) = element.as_object_mut() {
                    if object.get("primary") == Some(&Value::Bool(true)) {
                        object.insert("primary".into(), Value::Bool(false));
                    }
                }
            }
        }
    }
}

/// Applies one PATCH operation (or one attribute of a body read as a series
/// of adds) to `doc`.
pub fn apply(
    kind: &ResourceType,
    doc: &mut Doc,
    op: Op,
    path: Option<&str>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) else {
        // No path: the value is an object of attributes, each applied on its own.
        let object = match value {
            Some(Value::Object(object)) => object,
            _ if op == Op::Remove => {
                return Err(ScimError::bad(
                    "noTarget",
                    "a remove operation needs a path",
                ))
            }
            _ => {
                return Err(ScimError::invalid_value(
                    "an operation without a path needs an object value",
                ))
            }
        };
        for (key, value) in object {
            if IGNORED_ON_INPUT.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                continue;
            }
            apply(kind, doc, op, Some(key), Some(value))?;
        }
        return Ok(());
    };
    let target = match resolve(kind, path)? {
        Resolved::Unknown => return Ok(()),
        Resolved::Extension(extension) => {
            if op == Op::Remove && value.is_none() {
                doc.remove(extension.id);
                return Ok(());
            }
            let Some(Value::Object(object)) = value else {
                return Err(ScimError::invalid_value(format!(
                    "{} takes an object of its attributes",
                    extension.id
                )));
            };
            for (key, value) in object {
                apply(
                    kind,
                    doc,
                    op,
                    Some(&format!("{}:{key}", extension.id)),
                    Some(value),
                )?;
            }
            return Ok(());
        }
        Resolved::Attribute(target) => target,
    };
    let attribute = target.attribute;
    if attribute.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    if op == Op::Remove && attribute.required && target.sub.is_none() && target.filter.is_none() {
        return Err(ScimError::bad(
            "mutability",
            format!("{} is required and cannot be removed", attribute.name),
        ));
    }
    let name = attribute.name;
    let doc = container(doc, target.extension);
    match (&target.filter, target.sub) {
        (None, None) => match op {
            Op::Remove => match (attribute.multi_valued, value) {
                // Remove the listed elements (Entra removes members this way).
                (true, Some(listed)) if !listed.is_null() => {
                    let listed = canonical(attribute, listed)?.unwrap_or(Value::Array(vec![]));
                    let listed = listed.as_array().cloned().unwrap_or_default();
                    if let Some(Value::Array(list)) = doc.get_mut(name) {
                        list.retain(|element| {
                            !listed
                                .iter()
                                .any(|l| match (l.get("value"), element.get("value")) {
                                    (Some(a), Some(b)) => a == b,
                                    _ => l == element,
                                })
                        });
                    }
                }
                _ => {
                    doc.remove(name);
                }
            },
            Op::Add | Op::Replace => {
                let new = match value {
                    Some(v) => canonical(attribute, v)?,
                    None => return Err(ScimError::invalid_value(format!("{name} needs a value"))),
                };
                match (new, attribute.multi_valued, op) {
                    (None, _, Op::Replace) => {
                        doc.remove(name);
                    }
                    (None, _, _) => {}
                    (Some(Value::Array(items)), true, Op::Add) => {
                        let list = doc
                            .entry(name.to_string())
                            .or_insert_with(|| Value::Array(vec![]));
                        if let Value::Array(list) = list {
                            let added_primary = items
                                .iter()
                                .any(|e| e.get("primary") == Some(&Value::Bool(true)));
                            for item in items {
                                if !list.contains(&item) {
                                    list.push(item);
                                }
                            }
                            if added_primary {
                                one_primary(list, None);
                            }
                        }
                    }
                    (Some(Value::Object(fields)), false, _) if attribute.is_complex() => {
                        // Sub-attributes not given are left as they are (§3.5.2.3).
                        let slot = doc
                            .entry(name.to_string())
                            .or_insert_with(|| Value::Object(Map::new()));
                        if !slot.is_object() {
                            *slot = Value::Object(Map::new());
                        }
                        if let Value::Object(existing) = slot {
                            existing.extend(fields);
                        }
                    }
                    (Some(mut v), _, _) => {
                        if let Value::Array(list) = &mut v {
                            one_primary(list, None);
                        }
                        doc.insert(name.to_string(), v);
                    }
                }
            }
        },
        (None, Some(sub)) => {
            let new = match (op, value) {
                (Op::Remove, _) => None,
                (_, Some(v)) => single(sub, v)?,
                (_, None) => {
                    return Err(ScimError::invalid_value(format!(
                        "{name}.{} needs a value",
                        sub.name
                    )))
                }
            };
            let slot = doc.entry(name.to_string()).or_insert_with(|| {
                if attribute.multi_valued {
                    Value::Array(vec![])
                } else {
                    Value::Object(Map::new())
                }
            });
            let elements: Vec<&mut Value> = match slot {
                Value::Array(list) => list.iter_mut().collect(),
                other => vec![other],
            };
            for element in elements {
                if let Value::Object(object) = element {
                    match &new {
                        Some(v) => {
                            object.insert(sub.name.to_string(), v.clone());
                        }
                        None => {
                            object.remove(sub.name);
                        }
                    }
                }
            }
        }
        (Some(filter), sub) => {
            let list = match doc.get_mut(name) {
                Some(Value::Array(list)) => list,
                _ => {
                    doc.insert(name.to_string(), Value::Array(vec![]));
                    match doc.get_mut(name) {
                        Some(Value::Array(list)) => list,
                        _ => unreachable!("inserted a list above"),
                    }
                }
            };
            let matching: Vec<usize> = list
                .iter()
                .enumerate()
                .filter(|(_, e)| element_matches(attribute, e, filter))
                .map(|(i, _)| i)
                .collect();
            match (op, sub) {
                (Op::Remove, None) => {
                    let mut i = 0;
                    list.retain(|_| {
                        let keep = !matching.contains(&i);
                        i += 1;
                        keep
                    });
                }
                (Op::Remove, Some(sub)) => {
                    for &i in &matching {
                        if let Some(object) = list[i].as_object_mut() {
                            object.remove(sub.name);
                        }
                    }
                }
                (Op::Add | Op::Replace, sub) => {
                    let fields: Map<String, Value> = match (sub, value) {
                        (Some(sub), Some(v)) => match single(sub, v)? {
                            Some(v) => Map::from_iter([(sub.name.to_string(), v)]),
                            None => Map::new(),
                        },
                        (None, Some(v)) => match single(attribute, v)? {
                            Some(Value::Object(object)) => object,
                            _ => Map::new(),
                        },
                        (_, None) => {
                            return Err(ScimError::invalid_value(format!("{name} needs a value")))
                        }
                    };
                    let mut touched = matching.clone();
                    if matching.is_empty() {
                        // The element the filter describes does not exist yet.
                        let mut element = Map::new();
                        element_from_filter(attribute, filter, &mut element);
                        element.extend(fields);
                        list.push(Value::Object(element));
                        touched.push(list.len() - 1);
                    } else {
                        for &i in &matching {
                            if let Some(object) = list[i].as_object_mut() {
                                object.extend(fields.clone());
                            }
                        }
                    }
                    let primary = touched
                        .iter()
                        .rev()
                        .find(|&&i| list[i].get("primary") == Some(&Value::Bool(true)))
                        .copied();
                    one_primary(list, primary);
                }
            }
        }
    }
    tidy(doc, name);
    Ok(())
}

/// Drops what became empty: `[]`, `{}`, elements with no fields left.
fn tidy(doc: &mut Doc, name: &str) {
    let empty = match doc.get_mut(name) {
        Some(Value::Array(list)) => {
            list.retain(|e| !matches!(e, Value::Object(o) if o.is_empty()));
            list.is_empty()
        }
        Some(Value::Object(object)) => object.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        doc.remove(name);
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
pub fn read(kind: &ResourceType, body: &Value) -> Result<Doc, ScimError> {
    let Value::Object(object) = body else {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("the body must be a SCIM {} object", kind.name),
        ));
    };
    let mut doc = Doc::new();
    apply(
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
    use crate::scim::schema::{GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn patch(doc: &mut Doc, op: &str, path: Option<&str>, value: Value) -> Result<(), ScimError> {
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
        assert!(matches!(
            e,
            ScimError::Scim {
                scim_type: Some("invalidValue"),
                ..
            }
        ));
        let e = read(&USER_TYPE, &json!({"userName": "a", "name": ["text"]})).unwrap_err();
        assert!(matches!(
            e,
            ScimError::Scim {
                scim_type: Some("invalidValue"),
                ..
            }
        ));
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
        assert!(matches!(
            e,
            ScimError::Scim {
                scim_type: Some("mutability"),
                ..
            }
        ));
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
        assert!(matches!(
            e,
            ScimError::Scim {
                scim_type: Some("invalidPath"),
                ..
            }
        ));
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
