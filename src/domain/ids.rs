//! Identifier newtypes, so a store id can never be passed where a user id is due.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(
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
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id (UUID v7): ids sort by creation time.
            pub fn generate() -> Self {
                $name(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.to_string()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                text.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

id_type!(EnterpriseId);
id_type!(UserId);
id_type!(StoreId);
id_type!(ApiKeyId);
id_type!(WebhookId);

/// Time-ordered user ids for the many rows of one import: the first a fresh
/// UUID v7, each next one the one before plus one in its 62 low random bits.
/// They stay unique and in order, without a lock on the shared clock, a
/// clock read and fresh random bits for each id (a tenth of reading a large
/// body's rows went to them).
pub struct UserIdSequence {
    next: u128,
}

impl UserIdSequence {
    /// The variant's low 62 bits, which v7 fills at random.
    const RANDOM_LOW: u128 = (1 << 62) - 1;

    pub fn new() -> Self {
        UserIdSequence {
            next: Uuid::now_v7().as_u128(),
        }
    }

    /// The next id, as the text the database stores.
    pub fn next_text(&mut self) -> String {
        let id = Uuid::from_u128(self.next);
        // A start this close to the top of its range (one chance in 2^42
        // for a million ids) moves on to a fresh id instead of wrapping.
        self.next = if self.next & Self::RANDOM_LOW == Self::RANDOM_LOW {
            Uuid::now_v7().as_u128()
        } else {
            self.next + 1
        };
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut text).to_string()
    }
}

impl Default for UserIdSequence {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_gives_distinct_ordered_v7_ids() {
        let mut ids = UserIdSequence::new();
        let texts: Vec<String> = (0..1000).map(|_| ids.next_text()).collect();
        assert!(texts.windows(2).all(|pair| pair[0] < pair[1]));
        for text in &texts {
            let id: UserId = text.parse().expect("a UUID");
            assert_eq!(id.0.get_version_num(), 7);
            assert_eq!(id.0.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(id.to_string(), *text);
        }
        // At the top of its range it starts over from a fresh id.
        let mut top = UserIdSequence {
            next: Uuid::now_v7().as_u128() | UserIdSequence::RANDOM_LOW,
        };
        let last = top.next_text();
        let fresh = top.next_text();
        assert_ne!(last, fresh);
        assert_eq!(
            fresh.parse::<UserId>().expect("a UUID").0.get_version_num(),
            7
        );
    }
}
