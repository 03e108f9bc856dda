//! Audit events and the hash chain that makes tampering visible.

use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    Anonymous,
    User,
    ApiKey,
    Scim,
    File,
    System,
}

#[derive(utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

/// One audit row's content. `changes` carries ids, counts and before/after of
/// settings, never secrets or business data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub event_id: String,
    pub ts: String,
    pub enterprise_account_id: Option<String>,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Outcome,
    pub reason_code: Option<String>,
    pub changes: Option<String>,
}

impl AuditRecord {
    /// SHA-256 over the previous hash and this row's canonical JSON (field order
    /// is the struct's, so the encoding is stable).
    pub fn chain_hash(&self, prev_hash: &str) -> String {
        let mut input = prev_hash.as_bytes().to_vec();
        input.push(b'\n');
        // Serialising a struct of strings and enums cannot fail.
        input.extend(serde_json::to_vec(self).unwrap_or_default());
        hex(digest(&SHA256, &input).as_ref())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::Anonymous => "anonymous",
            ActorType::User => "user",
            ActorType::ApiKey => "api_key",
            ActorType::Scim => "scim",
            ActorType::File => "file",
            ActorType::System => "system",
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            event_id: "e1".into(),
            ts: "2026-01-01T00:00:00.000Z".into(),
            enterprise_account_id: Some("ent".into()),
            actor_type: ActorType::User,
            actor_id: Some("u1".into()),
            source_ip: Some("127.0.0.1".into()),
            user_agent: None,
            request_id: None,
            action: "api_key.generate".into(),
            target_type: Some("api_key".into()),
            target_id: Some("k1".into()),
            outcome: Outcome::Success,
            reason_code: None,
            changes: None,
        }
    }

    #[test]
    fn hash_depends_on_every_field_and_the_previous_hash() {
        let base = record().chain_hash(GENESIS_HASH);
        assert_eq!(base.len(), 64);
        assert_eq!(base, record().chain_hash(GENESIS_HASH));
        assert_ne!(base, record().chain_hash(&base));
        let mut changed = record();
        changed.outcome = Outcome::Failure;
        assert_ne!(base, changed.chain_hash(GENESIS_HASH));
    }
}
