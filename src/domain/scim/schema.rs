//! The SCIM schemas we serve (RFC 7643 §7), as one set of definitions that
//! discovery (`/Schemas`), input reading, PATCH paths, `attributes=` and
//! filters all use, so what we advertise is exactly what we read and return.
//!
//! Only attributes we store and give back unchanged are listed: conformance
//! suites write every advertised attribute and compare the round trip.

use serde_json::{json, Map, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Our extension: the Retail Performer role and store of a person.
pub const RETAIL_USER: &str = "urn:ietf:params:scim:schemas:extension:retailperformer:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SERVICE_PROVIDER_CONFIG: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    DateTime,
    /// A URI or a resource id; the names are the resource types it may point at.
    Reference(&'static [&'static str]),
    Complex(&'static [Attribute]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: Type,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub unique: bool,
    pub canonical_values: &'static [&'static str],
    pub description: &'static str,
}

impl Attribute {
    const fn new(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            unique: false,
            canonical_values: &[],
            description,
        }
    }
    const fn text(name: &'static str, description: &'static str) -> Attribute {
        Attribute::new(name, Type::String, description)
    }
    const fn multi(self) -> Attribute {
        Attribute {
            multi_valued: true,
            ..self
        }
    }
    const fn required(self) -> Attribute {
        Attribute {
            required: true,
            ..self
        }
    }
    const fn case_exact(self) -> Attribute {
        Attribute {
            case_exact: true,
            ..self
        }
    }
    const fn read_only(self) -> Attribute {
        Attribute {
            mutability: Mutability::ReadOnly,
            ..self
        }
    }
    const fn unique(self) -> Attribute {
        Attribute {
            unique: true,
            ..self
        }
    }
    const fn canonical(self, values: &'static [&'static str]) -> Attribute {
        Attribute {
            canonical_values: values,
            ..self
        }
    }

    pub fn sub_attributes(&self) -> &'static [Attribute] {
        match self.ty {
            Type::Complex(subs) => subs,
            _ => &[],
        }
    }

    pub fn sub(&self, name: &str) -> Option<&'static Attribute> {
        find(self.sub_attributes(), name)
    }

    pub fn is_complex(&self) -> bool {
        matches!(self.ty, Type::Complex(_))
    }
}

/// The attribute named `name` (case-insensitively) in `attributes`.
pub fn find(attributes: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

const TYPES: &[&str] = &["work", "home", "other"];

/// The sub-attributes of a typed multi-valued attribute (emails, phones).
const fn typed_value(value: Attribute) -> [Attribute; 4] {
    [
        value,
        Attribute::text("display", "A human-readable name, for display."),
        Attribute::text("type", "The kind of value: work, home or other.").canonical(TYPES),
        Attribute::new(
            "primary",
            Type::Boolean,
            "Whether this is the preferred value.",
        ),
    ]
}

const NAME: &[Attribute] = &[
    Attribute::text("formatted", "The full name, for display."),
    Attribute::text("familyName", "The family name."),
    Attribute::text("givenName", "The given name."),
    Attribute::text("middleName", "The middle name(s)."),
    Attribute::text("honorificPrefix", "Honorific prefix (Ms., Dr.)."),
    Attribute::text("honorificSuffix", "Honorific suffix (III, Jr.)."),
];

const EMAILS: &[Attribute] = &typed_value(Attribute::text("value", "An email address.").required());
const PHONE_NUMBERS: &[Attribute] = &typed_value(Attribute::text("value", "A phone number."));
const ROLES: &[Attribute] = &[
    Attribute::text(
        "value",
        "A role; manager or seller set the Retail Performer role.",
    ),
    Attribute::text("display", "A human-readable name, for display."),
    Attribute::text("type", "A label for the role."),
    Attribute::new("primary", Type::Boolean, "Whether this is the main role."),
];
const USER_GROUPS: &[Attribute] = &[
    Attribute::text("value", "The store's id.").read_only(),
    Attribute::new("$ref", Type::Reference(&["Group"]), "The store's URI.").read_only(),
    Attribute::text("display", "The store's name.").read_only(),
    Attribute::text("type", "direct: a person belongs to one store.").read_only(),
];

pub const USER_ATTRIBUTES: &[Attribute] = &[
    Attribute::text(
        "userName",
        "The identity provider's unique name for the person (case-insensitive).",
    )
    .required()
    .unique(),
    Attribute::new("name", Type::Complex(NAME), "The person's name, in parts."),
    Attribute::text("displayName", "The name shown in Retail Performer."),
    Attribute::text("nickName", "A casual name."),
    Attribute::text("title", "The job title."),
    Attribute::text("userType", "The kind of employment."),
    Attribute::text("preferredLanguage", "The preferred language (fr, en-US)."),
    Attribute::text("locale", "The locale for formatting (fr-FR)."),
    Attribute::text("timezone", "The time zone (Europe/Paris)."),
    // Required because every person is active or not: a provider that
    // leaves it out gets true, and it cannot be removed.
    Attribute::new(
        "active",
        Type::Boolean,
        "false deactivates the person: they can no longer sign in and free a seat.",
    )
    .required(),
    Attribute::new(
        "emails",
        Type::Complex(EMAILS),
        "Email addresses; the primary (else the work, else the first) one is the sign-in email.",
    )
    .multi()
    .required(),
    Attribute::new(
        "phoneNumbers",
        Type::Complex(PHONE_NUMBERS),
        "Phone numbers.",
    )
    .multi(),
    Attribute::new(
        "roles",
        Type::Complex(ROLES),
        "Roles; a value manager or seller sets the Retail Performer role.",
    )
    .multi(),
    Attribute::new(
        "groups",
        Type::Complex(USER_GROUPS),
        "The person's store, as a group (set through group membership).",
    )
    .multi()
    .read_only(),
];

const MANAGER: &[Attribute] = &[
    Attribute::text("value", "The manager's id."),
    Attribute::new("$ref", Type::Reference(&["User"]), "The manager's URI."),
    Attribute::text("displayName", "The manager's name.").read_only(),
];

pub const ENTERPRISE_USER_ATTRIBUTES: &[Attribute] = &[
    Attribute::text("employeeNumber", "The employee number."),
    Attribute::text("costCenter", "The cost center."),
    Attribute::text("organization", "The organization."),
    Attribute::text("division", "The division."),
    Attribute::text("department", "The department."),
    Attribute::new(
        "manager",
        Type::Complex(MANAGER),
        "The person's manager; a Retail Performer manager of the same enterprise becomes their manager in the product.",
    ),
];

pub const RETAIL_USER_ATTRIBUTES: &[Attribute] = &[
    Attribute::text("role", "The Retail Performer role: manager or seller.")
        .canonical(&["manager", "seller"]),
    Attribute::new(
        "store",
        Type::Reference(&["Group"]),
        "The person's store: its id, its externalId, or its Group URI.",
    ),
];

const MEMBERS: &[Attribute] = &[
    Attribute::text("value", "The member's id.").case_exact(),
    Attribute::new("$ref", Type::Reference(&["User"]), "The member's URI."),
    Attribute::text("display", "The member's name.").read_only(),
    Attribute::text("type", "User: stores hold people only.").canonical(&["User"]),
];

pub const GROUP_ATTRIBUTES: &[Attribute] = &[
    Attribute::text("displayName", "The store's name, unique in the enterprise.")
        .required()
        .unique(),
    Attribute::new(
        "members",
        Type::Complex(MEMBERS),
        "The store's staff. A person belongs to one store: adding them here moves them.",
    )
    .multi(),
];

/// A schema: its URN, name and attributes.
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

pub const USER_SCHEMA: Schema = Schema {
    id: USER,
    name: "User",
    description: "A person of the enterprise's staff",
    attributes: USER_ATTRIBUTES,
};
pub const ENTERPRISE_USER_SCHEMA: Schema = Schema {
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_USER_ATTRIBUTES,
};
pub const RETAIL_USER_SCHEMA: Schema = Schema {
    id: RETAIL_USER,
    name: "RetailPerformerUser",
    description: "A person's Retail Performer role and store",
    attributes: RETAIL_USER_ATTRIBUTES,
};
pub const GROUP_SCHEMA: Schema = Schema {
    id: GROUP,
    name: "Group",
    description: "A store of the enterprise; its members are the store's staff",
    attributes: GROUP_ATTRIBUTES,
};

pub const ALL: [&Schema; 4] = [
    &USER_SCHEMA,
    &ENTERPRISE_USER_SCHEMA,
    &RETAIL_USER_SCHEMA,
    &GROUP_SCHEMA,
];

/// A resource type: its core schema and extensions.
pub struct ResourceType {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
    pub extensions: &'static [&'static Schema],
}

pub const USER_TYPE: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    description: "Staff of the enterprise (IT administrators are never SCIM resources)",
    schema: &USER_SCHEMA,
    extensions: &[&ENTERPRISE_USER_SCHEMA, &RETAIL_USER_SCHEMA],
};
pub const GROUP_TYPE: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    description: "Stores of the enterprise",
    schema: &GROUP_SCHEMA,
    extensions: &[],
};

pub const RESOURCE_TYPES: [&ResourceType; 2] = [&USER_TYPE, &GROUP_TYPE];

impl ResourceType {
    /// The extension whose URN is `urn` (case-insensitively).
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The schema whose URN is `urn`: the core one or an extension.
    pub fn schema_named(&self, urn: &str) -> Option<&'static Schema> {
        if self.schema.id.eq_ignore_ascii_case(urn) {
            Some(self.schema)
        } else {
            self.extension(urn)
        }
    }

    pub fn json(&self, base: &str) -> Value {
        json!({
            "schemas": [RESOURCE_TYPE],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": self.extensions.iter().map(|s| json!({
                "schema": s.id,
                "required": false,
            })).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/{}", self.name),
            },
        })
    }
}

fn attribute_json(attribute: &Attribute) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), attribute.name.into());
    let (ty, references) = match attribute.ty {
        Type::String => ("string", None),
        Type::Boolean => ("boolean", None),
        Type::DateTime => ("dateTime", None),
        Type::Reference(to) => ("reference", Some(to)),
        Type::Complex(_) => ("complex", None),
    };
    out.insert("type".into(), ty.into());
    out.insert("multiValued".into(), attribute.multi_valued.into());
    out.insert("description".into(), attribute.description.into());
    out.insert("required".into(), attribute.required.into());
    if let Type::Complex(subs) = attribute.ty {
        out.insert(
            "subAttributes".into(),
            subs.iter().map(attribute_json).collect(),
        );
    } else {
        out.insert("caseExact".into(), attribute.case_exact.into());
    }
    if !attribute.canonical_values.is_empty() {
        out.insert(
            "canonicalValues".into(),
            attribute.canonical_values.iter().copied().collect(),
        );
    }
    if let Some(to) = references {
        out.insert("referenceTypes".into(), to.iter().copied().collect());
    }
    let mutability = match attribute.mutability {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
    };
    out.insert("mutability".into(), mutability.into());
    out.insert("returned".into(), "default".into());
    out.insert(
        "uniqueness".into(),
        if attribute.unique { "server" } else { "none" }.into(),
    );
    Value::Object(out)
}

impl Schema {
    pub fn json(&self, base: &str) -> Value {
        json!({
            "schemas": [SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(attribute_json).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base}/Schemas/{}", self.id),
            },
        })
    }
}

/// Longest page a list answers, whatever `count` asks.
pub const MAX_PAGE: usize = 1000;
/// Default page size.
pub const DEFAULT_PAGE: usize = 100;
/// Operations one PATCH request may carry.
pub const MAX_PATCH_OPERATIONS: usize = 1000;

/// No documentationUri: the guide (docs/scim.md) ships with the package, not
/// at an address this appliance knows.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_PAGE},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "An enterprise-sync API key with the scim scope, sent as Authorization: Bearer <key>",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_a_resource_type_names_is_served() {
        for resource in RESOURCE_TYPES {
            for schema in
                std::iter::once(resource.schema).chain(resource.extensions.iter().copied())
            {
                assert!(ALL.iter().any(|s| s.id == schema.id), "{}", schema.id);
            }
        }
    }

    #[test]
    fn attribute_names_are_unique_within_each_schema_ignoring_case() {
        for schema in ALL {
            let mut seen = std::collections::HashSet::new();
            for attribute in schema.attributes {
                assert!(seen.insert(attribute.name.to_ascii_lowercase()));
            }
        }
    }
}
