//! A store as a SCIM Group: displayName is the store's name (unique in the
//! enterprise, case-insensitively), externalId its external id, and members
//! the people whose store it is. A person has one store, so adding them to a
//! group moves them from their previous one.

use serde_json::{json, Value};

use super::document::Doc;
use super::fault::ScimFault;
use super::schema::GROUP;
use crate::domain::{Store, StoreId, UserId};

/// A member of a store as a group lists them.
pub struct Member {
    pub store: StoreId,
    pub user: UserId,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct GroupWrite {
    pub display_name: String,
    pub external_id: Option<String>,
    /// The members named, ids that are not ours left out (they are ignored,
    /// as clients expect).
    pub members: Vec<UserId>,
}

pub fn read(doc: &Doc) -> Result<GroupWrite, ScimFault> {
    let display_name = doc
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ScimFault::invalid_value("displayName is required"))?
        .to_string();
    if display_name.chars().count() > crate::domain::import::MAX_NAME {
        return Err(ScimFault::invalid_value(format!(
            "displayName is longer than {} characters",
            crate::domain::import::MAX_NAME
        )));
    }
    let members = doc
        .get("members")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str))
                .filter_map(|v| super::users::reference_id(v.trim()).parse::<UserId>().ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(GroupWrite {
        display_name,
        external_id: doc
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        members,
    })
}

/// The resource as a full document; `members` None leaves them out (asked
/// with `excludedAttributes=members`, which keeps a big store cheap).
pub fn render(store: &Store, members: Option<&[Member]>, base: &str) -> Doc {
    let mut doc = Doc::new();
    doc.insert("schemas".into(), json!([GROUP]));
    doc.insert("id".into(), store.id.to_string().into());
    if let Some(external) = &store.external_id {
        doc.insert("externalId".into(), external.clone().into());
    }
    doc.insert("displayName".into(), store.name.clone().into());
    if let Some(members) = members.filter(|m| !m.is_empty()) {
        doc.insert(
            "members".into(),
            members
                .iter()
                .map(|m| {
                    // No display: it is read-only, and clients compare the
                    // members they sent with the ones they get back.
                    json!({
                        "value": m.user.to_string(),
                        "$ref": format!("{base}/Users/{}", m.user),
                        "type": "User",
                    })
                })
                .collect(),
        );
    }
    doc.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": super::meta_time(store.created_at),
            "lastModified": super::meta_time(store.updated_at),
            "location": format!("{base}/Groups/{}", store.id),
        }),
    );
    doc
}
