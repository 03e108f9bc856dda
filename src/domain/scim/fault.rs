//! What is wrong with a SCIM request, in the protocol's own terms (RFC 7644
//! §3.12): the kind names the `scimType` where the RFC has one, and the
//! adapter under `/scim/v2` picks the HTTP status from the kind.

/// The class of a SCIM error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    InvalidValue,
    InvalidPath,
    InvalidSyntax,
    InvalidFilter,
    TooMany,
    NoTarget,
    Mutability,
    /// Another resource of the enterprise holds the value (409).
    Uniqueness,
    NotFound,
    /// Every purchased seat is in use (403).
    SeatLimit,
    /// No usable credential (401).
    Unauthenticated,
    /// A body of a media type SCIM does not take (415).
    UnsupportedMediaType,
}

impl FaultKind {
    /// The RFC's `scimType`, for the kinds it names.
    pub fn scim_type(self) -> Option<&'static str> {
        Some(match self {
            FaultKind::InvalidValue => "invalidValue",
            FaultKind::InvalidPath => "invalidPath",
            FaultKind::InvalidSyntax => "invalidSyntax",
            FaultKind::InvalidFilter => "invalidFilter",
            FaultKind::TooMany => "tooMany",
            FaultKind::NoTarget => "noTarget",
            FaultKind::Mutability => "mutability",
            FaultKind::Uniqueness => "uniqueness",
            FaultKind::NotFound
            | FaultKind::SeatLimit
            | FaultKind::Unauthenticated
            | FaultKind::UnsupportedMediaType => return None,
        })
    }
}

/// A SCIM error: its kind and the sentence the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimFault {
    pub kind: FaultKind,
    pub detail: String,
}

impl ScimFault {
    pub fn new(kind: FaultKind, detail: impl Into<String>) -> Self {
        ScimFault {
            kind,
            detail: detail.into(),
        }
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        ScimFault::new(FaultKind::InvalidValue, detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        ScimFault::new(FaultKind::InvalidPath, detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        ScimFault::new(FaultKind::InvalidSyntax, detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimFault::new(FaultKind::Uniqueness, detail)
    }
    pub fn not_found(resource: &str, id: &str) -> Self {
        ScimFault::new(FaultKind::NotFound, format!("{resource} {id} not found"))
    }
}

impl std::fmt::Display for ScimFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}
