//! A person as a SCIM User, and a User document as the row the import engine
//! takes. The product reads users.email/name/role; SCIM keeps the provider's
//! own attributes beside them for the round trip, and derives ours from them:
//!
//! - email: the primary email, else the `work` one, else the first, else the
//!   userName when it is an email address;
//! - name: displayName, else name.formatted, else given and family names,
//!   else the userName;
//! - role: our extension's `role`, else a `roles` value of `manager` or
//!   `seller`; unchanged when none is given (new people are sellers);
//! - store: our extension's `store` (our id, its externalId or its Group URI);
//!   otherwise group membership decides;
//! - manager: the enterprise extension's `manager.value` when it names a
//!   Retail Performer manager of the enterprise (the provider's org chart may
//!   name someone else: kept for the round trip, not used).

use serde_json::{json, Map, Value};

use super::document::Doc;
use super::fault::ScimFault;
use super::schema::{ENTERPRISE_USER, RETAIL_USER, USER};
use crate::domain::User;
use crate::domain::{email, Role};

/// Longest userName kept.
/// A person with what SCIM keeps beside the product's columns.
#[derive(Debug, Clone)]
pub struct ScimUser {
    pub user: User,
    pub user_name: Option<String>,
    /// The JSON object of round-trip attributes (None: never written by SCIM).
    pub attributes: Option<String>,
    pub store_name: Option<String>,
    pub store_external_id: Option<String>,
}

pub const MAX_USER_NAME: usize = 255;

/// What a User document asks of the person.
#[derive(Debug, Clone)]
pub struct UserWrite {
    pub user_name: String,
    pub email: Option<String>,
    pub name: String,
    pub role: Option<Role>,
    pub store_ref: Option<String>,
    /// The enterprise extension's manager.value, to resolve.
    pub manager_ref: Option<String>,
    pub external_id: Option<String>,
    pub active: bool,
    /// Whether our extension names a store (removing it unassigns the store).
    pub names_store: bool,
    /// The document without what lives in columns, as stored.
    pub attributes: Doc,
}

fn text<'d>(doc: &'d Doc, key: &str) -> Option<&'d str> {
    doc.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn extension<'d>(doc: &'d Doc, urn: &str) -> Option<&'d Map<String, Value>> {
    doc.get(urn).and_then(Value::as_object)
}

/// The email the product signs this person in with.
fn chosen_email(doc: &Doc) -> Option<String> {
    let emails = doc.get("emails").and_then(Value::as_array)?;
    let value = |e: &Value| {
        e.get("value")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    emails
        .iter()
        .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        .and_then(value)
        .or_else(|| {
            emails
                .iter()
                .find(|e| {
                    e.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.eq_ignore_ascii_case("work"))
                })
                .and_then(value)
        })
        .or_else(|| emails.iter().find_map(value))
}

fn parse_role(text: &str) -> Option<Role> {
    if text.eq_ignore_ascii_case("manager") {
        Some(Role::Manager)
    } else if text.eq_ignore_ascii_case("seller") {
        Some(Role::Seller)
    } else {
        None
    }
}

/// The last segment of a Group URI, or the reference as given.
pub fn reference_id(reference: &str) -> &str {
    match reference
        .rfind("/Groups/")
        .or_else(|| reference.rfind("/Users/"))
    {
        Some(i) => {
            let rest = &reference[i..];
            rest.rsplit('/').next().unwrap_or(reference)
        }
        None => reference,
    }
}

/// Reads a (canonical) User document.
pub fn read(doc: &Doc) -> Result<UserWrite, ScimFault> {
    let user_name = text(doc, "userName")
        .ok_or_else(|| ScimFault::invalid_value("userName is required"))?
        .to_string();
    if user_name.chars().count() > MAX_USER_NAME {
        return Err(ScimFault::invalid_value(format!(
            "userName is longer than {MAX_USER_NAME} characters"
        )));
    }
    let email = chosen_email(doc).or_else(|| {
        email::problem(&email::normalize(&user_name))
            .is_none()
            .then(|| user_name.clone())
    });
    let name_parts = doc.get("name").and_then(Value::as_object);
    let part = |key: &str| {
        name_parts
            .and_then(|n| n.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let joined = [part("givenName"), part("familyName")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let name = text(doc, "displayName")
        .or_else(|| part("formatted"))
        .map(str::to_string)
        .or_else(|| (!joined.is_empty()).then_some(joined))
        .unwrap_or_else(|| user_name.clone());
    let retail = extension(doc, RETAIL_USER);
    let role = match retail.and_then(|r| r.get("role")).and_then(Value::as_str) {
        Some(given) => Some(parse_role(given.trim()).ok_or_else(|| {
            ScimFault::invalid_value(format!(
                "{RETAIL_USER}:role must be manager or seller, not {given:?}"
            ))
        })?),
        None => {
            let roles = doc.get("roles").and_then(Value::as_array);
            let mut values: Vec<&Value> = roles.map(|r| r.iter().collect()).unwrap_or_default();
            // The primary role first.
            values.sort_by_key(|r| r.get("primary") != Some(&Value::Bool(true)));
            values
                .iter()
                .filter_map(|r| r.get("value").and_then(Value::as_str))
                .find_map(|v| parse_role(v.trim()))
        }
    };
    let store_ref = retail
        .and_then(|r| r.get("store"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| reference_id(s).to_string());
    let manager_ref = extension(doc, ENTERPRISE_USER)
        .and_then(|e| e.get("manager"))
        .and_then(|m| m.get("value"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| reference_id(s).to_string());
    let mut attributes = doc.clone();
    for column in ["userName", "externalId", "active"] {
        attributes.remove(column);
    }
    let names_store = store_ref.is_some();
    Ok(UserWrite {
        user_name,
        email,
        name,
        role,
        store_ref,
        manager_ref,
        external_id: text(doc, "externalId").map(str::to_string),
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        names_store,
        attributes,
    })
}

/// The resource as a full canonical document (before any projection).
pub fn render(row: &ScimUser, base: &str) -> Doc {
    let user = &row.user;
    let stored: Option<Doc> = row
        .attributes
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok());
    let scim_managed = stored.is_some();
    let mut doc = stored.unwrap_or_default();
    let mut schemas = vec![Value::from(USER)];
    doc.insert("id".into(), user.id.to_string().into());
    if let Some(external) = &user.external_id {
        doc.insert("externalId".into(), external.clone().into());
    }
    doc.insert(
        "userName".into(),
        row.user_name
            .clone()
            .unwrap_or_else(|| user.email.clone())
            .into(),
    );
    if !scim_managed {
        doc.insert("displayName".into(), user.name.clone().into());
    }
    doc.insert("active".into(), user.active.into());
    if !doc.contains_key("emails") {
        doc.insert(
            "emails".into(),
            json!([{"value": user.email, "type": "work", "primary": true}]),
        );
    }
    if let Some(store) = user.store_id {
        let mut group = json!({
            "value": store.to_string(),
            "$ref": format!("{base}/Groups/{store}"),
            "type": "direct",
        });
        if let Some(name) = &row.store_name {
            group["display"] = name.clone().into();
        }
        doc.insert("groups".into(), json!([group]));
    }
    let enterprise = doc
        .entry(ENTERPRISE_USER.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(enterprise) = enterprise {
        if !enterprise.contains_key("manager") {
            if let Some(manager) = user.manager_id {
                enterprise.insert(
                    "manager".into(),
                    json!({"value": manager.to_string(), "$ref": format!("{base}/Users/{manager}")}),
                );
            }
        }
    }
    if matches!(doc.get(ENTERPRISE_USER), Some(Value::Object(o)) if o.is_empty()) {
        doc.remove(ENTERPRISE_USER);
    } else {
        schemas.push(ENTERPRISE_USER.into());
    }
    // Our extension shows what the provider set, kept true to the product:
    // the role when it set one (people SCIM never wrote always show theirs),
    // the store as it named it while that still names their store.
    let retail = doc
        .entry(RETAIL_USER.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(retail) = retail {
        if !scim_managed || retail.contains_key("role") {
            retail.insert("role".into(), user.role.as_str().into());
        }
        match user.store_id {
            Some(store) => {
                let given = retail
                    .get("store")
                    .and_then(Value::as_str)
                    .map(reference_id);
                let still = given.is_some_and(|g| {
                    g == store.to_string() || row.store_external_id.as_deref() == Some(g)
                });
                if !still && (given.is_some() || !scim_managed) {
                    retail.insert("store".into(), store.to_string().into());
                }
            }
            None => {
                retail.remove("store");
            }
        }
    }
    if matches!(doc.get(RETAIL_USER), Some(Value::Object(o)) if o.is_empty()) {
        doc.remove(RETAIL_USER);
    } else {
        schemas.push(RETAIL_USER.into());
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    doc.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": super::meta_time(user.created_at),
            "lastModified": super::meta_time(user.updated_at),
            "location": format!("{base}/Users/{}", user.id),
        }),
    );
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scim::document;
    use crate::domain::scim::schema::USER_TYPE;

    fn write(body: Value) -> UserWrite {
        read(&document::read(&USER_TYPE, &body).unwrap()).unwrap()
    }

    #[test]
    fn the_email_is_the_primary_then_work_then_first_then_user_name() {
        let w = write(json!({"userName": "u", "emails": [
            {"value": "home@x.io", "type": "home"},
            {"value": "work@x.io", "type": "work"},
            {"value": "main@x.io", "primary": true}]}));
        assert_eq!(w.email.as_deref(), Some("main@x.io"));
        let w = write(json!({"userName": "u", "emails": [
            {"value": "home@x.io", "type": "home"}, {"value": "work@x.io", "type": "Work"}]}));
        assert_eq!(w.email.as_deref(), Some("work@x.io"));
        let w = write(json!({"userName": "Ada@Example.com"}));
        assert_eq!(w.email.as_deref(), Some("Ada@Example.com"));
        assert_eq!(write(json!({"userName": "ada"})).email, None);
    }

    #[test]
    fn the_name_falls_back_from_display_name_to_parts_to_user_name() {
        assert_eq!(
            write(json!({"userName": "u", "displayName": "D", "name": {"formatted": "F"}})).name,
            "D"
        );
        assert_eq!(
            write(json!({"userName": "u", "name": {"formatted": "F", "givenName": "G"}})).name,
            "F"
        );
        assert_eq!(
            write(json!({"userName": "u", "name": {"givenName": "G", "familyName": "H"}})).name,
            "G H"
        );
        assert_eq!(write(json!({"userName": "u"})).name, "u");
    }

    #[test]
    fn the_role_comes_from_the_extension_or_the_roles() {
        let w = write(json!({"userName": "u", RETAIL_USER: {"role": "Manager"}}));
        assert_eq!(w.role, Some(Role::Manager));
        let w = write(
            json!({"userName": "u", "roles": [{"value": "Cashier"}, {"value": "seller", "primary": "True"}]}),
        );
        assert_eq!(w.role, Some(Role::Seller));
        assert_eq!(
            write(json!({"userName": "u", "roles": [{"value": "x"}]})).role,
            None
        );
        let bad = document::read(
            &USER_TYPE,
            &json!({"userName": "u", RETAIL_USER: {"role": "it_admin"}}),
        )
        .unwrap();
        assert!(read(&bad).is_err());
    }

    #[test]
    fn references_may_be_uris() {
        let w = write(json!({"userName": "u",
            RETAIL_USER: {"store": "https://h/scim/v2/Groups/abc"},
            ENTERPRISE_USER: {"manager": "m-1"}}));
        assert_eq!(w.store_ref.as_deref(), Some("abc"));
        assert_eq!(w.manager_ref.as_deref(), Some("m-1"));
    }
}
