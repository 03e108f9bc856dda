//! SCIM PATCH (RFC 7644 §3.5.2) on a resource read by `document`: add,
//! replace and remove by path, value filters on multi-valued attributes
//! (`emails[type eq "work"].value`), one primary per list.

use serde_json::{Map, Value};

use super::document::{canonical, container, resolve, single, Doc, Op, Resolved, IGNORED_ON_INPUT};
use super::fault::{FaultKind, ScimFault};
use super::filter::{self, AttrPath, CompareOp, Filter};
use super::schema::{Attribute, Mutability, ResourceType};

/// A scalar of an element compared with a filter value, the SCIM way: strings
/// ignoring case unless the attribute is case-exact, booleans as booleans.
fn compare(found: &Value, op: CompareOp, wanted: &filter::Value, case_exact: bool) -> bool {
    use filter::Value as F;
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
            None => matches!(op, CompareOp::Ne) && !matches!(value, filter::Value::Null),
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
                filter::Value::String(s) => Value::String(s.clone()),
                filter::Value::Bool(b) => Value::Bool(*b),
                filter::Value::Number(n) => Value::String(n.clone()),
                filter::Value::Null => return,
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
) -> Result<(), ScimFault> {
    let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) else {
        // No path: the value is an object of attributes, each applied on its own.
        let object = match value {
            Some(Value::Object(object)) => object,
            _ if op == Op::Remove => {
                return Err(ScimFault::new(
                    FaultKind::NoTarget,
                    "a remove operation needs a path",
                ))
            }
            _ => {
                return Err(ScimFault::invalid_value(
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
                return Err(ScimFault::invalid_value(format!(
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
        return Err(ScimFault::new(
            FaultKind::Mutability,
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
                    None => return Err(ScimFault::invalid_value(format!("{name} needs a value"))),
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
                    return Err(ScimFault::invalid_value(format!(
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
                            return Err(ScimFault::invalid_value(format!("{name} needs a value")))
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
