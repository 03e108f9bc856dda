//! The list query (`filter`, `startIndex`, `count`, `attributes`), answers
//! as projected JSON, and PATCH bodies read into operations.

use super::*;

/// What a list or a read asks for: its filter, page and attributes.
pub(super) struct ListQuery {
    pub(super) filter: Option<Filter>,
    pub(super) start_index: usize,
    pub(super) count: usize,
    pub(super) attributes: Vec<String>,
    pub(super) excluded: Vec<String>,
}

pub(super) fn number(name: &str, text: &str) -> Result<i64, ScimError> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not {text:?}")))
}

impl ListQuery {
    pub(super) fn read(
        filter: Option<&str>,
        start_index: Option<i64>,
        count: Option<i64>,
        attributes: Vec<String>,
        excluded: Vec<String>,
    ) -> Result<ListQuery, ScimError> {
        let filter = filter
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let filter = filter::parse_filter(f).map_err(|e| {
                    ScimError::new(FaultKind::InvalidFilter, format!("filter {f:?}: {e}"))
                })?;
                if filter.terms() > filter::MAX_FILTER_TERMS {
                    return Err(ScimError::new(
                        FaultKind::TooMany,
                        format!(
                            "the filter makes {} comparisons; at most {} are served",
                            filter.terms(),
                            filter::MAX_FILTER_TERMS
                        ),
                    ));
                }
                Ok(filter)
            })
            .transpose()?;
        Ok(ListQuery {
            filter,
            start_index: start_index.unwrap_or(1).max(1) as usize,
            count: count
                .unwrap_or(schema::DEFAULT_PAGE as i64)
                .clamp(0, schema::MAX_PAGE as i64) as usize,
            attributes,
            excluded,
        })
    }

    pub(super) fn from_params(params: &[(String, String)]) -> Result<ListQuery, ScimError> {
        let get = |name: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        ListQuery::read(
            get("filter"),
            get("startIndex")
                .map(|v| number("startIndex", v))
                .transpose()?,
            get("count").map(|v| number("count", v)).transpose()?,
            document::attribute_list(get("attributes")),
            document::attribute_list(get("excludedAttributes")),
        )
    }

    pub(super) fn from_search(body: &Value) -> Result<ListQuery, ScimError> {
        let Value::Object(body) = body else {
            return Err(ScimError::new(
                FaultKind::InvalidSyntax,
                "a SearchRequest is a JSON object",
            ));
        };
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let int = |name: &str| -> Result<Option<i64>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_i64()),
                Some(Value::String(s)) => number(name, s).map(Some),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an integer"
                ))),
            }
        };
        let list = |name: &str| -> Vec<String> {
            match get(name) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                Some(Value::String(s)) => document::attribute_list(Some(s)),
                _ => Vec::new(),
            }
        };
        ListQuery::read(
            get("filter").and_then(Value::as_str),
            int("startIndex")?,
            int("count")?,
            list("attributes"),
            list("excludedAttributes"),
        )
    }

    pub(super) fn wants_members(&self) -> bool {
        let names = |p: &String| {
            let p = p.rsplit(':').next().unwrap_or(p);
            p.split('.')
                .next()
                .unwrap_or(p)
                .eq_ignore_ascii_case("members")
        };
        (self.attributes.is_empty() || self.attributes.iter().any(names))
            && !self
                .excluded
                .iter()
                .any(|p| p.eq_ignore_ascii_case("members"))
    }
}

pub(super) type Params = Query<Vec<(String, String)>>;

pub(super) fn user_json(
    state: &AppState,
    headers: &HeaderMap,
    user: &crate::store::scim::ScimUser,
    q: &ListQuery,
) -> Value {
    let mut doc = users::render(user, &base_url(state, headers));
    document::project(&USER_TYPE, &mut doc, &q.attributes, &q.excluded);
    Value::Object(doc)
}

pub(super) fn group_json(
    state: &AppState,
    headers: &HeaderMap,
    group: &ScimGroup,
    q: &ListQuery,
) -> Value {
    let mut doc = groups::render(
        &group.store,
        group.members.as_deref(),
        &base_url(state, headers),
    );
    document::project(&GROUP_TYPE, &mut doc, &q.attributes, &q.excluded);
    Value::Object(doc)
}

/// 201 with `Location` = `meta.location`, or 200.
pub(super) fn resource_response(status: StatusCode, value: Value) -> Response {
    let location = value
        .get("meta")
        .and_then(|m| m.get("location"))
        .and_then(Value::as_str)
        .and_then(|l| HeaderValue::from_str(l).ok());
    let mut response = scim_json(status, value);
    if let (StatusCode::CREATED, Some(location)) = (status, location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub(super) fn patch_operations(body: &Value) -> Result<Vec<PatchOperation>, ScimError> {
    let operations = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("Operations")))
        .map(|(_, v)| v)
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ScimError::new(
                FaultKind::InvalidSyntax,
                "a PatchOp needs an Operations list",
            )
        })?;
    operations
        .iter()
        .enumerate()
        .map(|(i, operation)| {
            let field = |name: &str| {
                operation
                    .as_object()
                    .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                    .map(|(_, v)| v)
            };
            let op = field("op")
                .and_then(Value::as_str)
                .and_then(Op::parse)
                .ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "Operations[{i}].op must be add, replace or remove"
                    ))
                })?;
            let path = match field("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => Some(p.clone()),
                Some(_) => {
                    return Err(ScimError::invalid_path(format!(
                        "Operations[{i}].path must be a string"
                    )))
                }
            };
            Ok(PatchOperation {
                op,
                path,
                value: field("value").filter(|v| !v.is_null()).cloned(),
            })
        })
        .collect()
}
