use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an API key may do. Each key-authenticated route requires exactly one.
#[derive(
    utoipa::ToSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
)]
pub enum Scope {
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    #[serde(rename = "stores:read")]
    StoresRead,
    #[serde(rename = "stores:write")]
    StoresWrite,
    #[serde(rename = "sync:read")]
    SyncRead,
    #[serde(rename = "scim")]
    Scim,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::StoresRead,
        Scope::StoresWrite,
        Scope::SyncRead,
        Scope::Scim,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::StoresRead => "stores:read",
            Scope::StoresWrite => "stores:write",
            Scope::SyncRead => "sync:read",
            Scope::Scim => "scim",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(())
    }
}

/// A set of scopes as bits: copied, not allocated, on every key-authenticated request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeSet(u8);

impl ScopeSet {
    fn bit(scope: Scope) -> u8 {
        1 << (scope as u8)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= Self::bit(scope);
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::default();
        for scope in iter {
            set.insert(scope);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_hold_exactly_their_scopes() {
        let set: ScopeSet = [Scope::UsersRead, Scope::Scim].into_iter().collect();
        for scope in Scope::ALL {
            assert_eq!(
                set.contains(scope),
                matches!(scope, Scope::UsersRead | Scope::Scim),
                "{scope}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        assert!("admin".parse::<Scope>().is_err());
    }
}
