//! Webhook events and the Standard Webhooks signature
//! (<https://www.standardwebhooks.com/>): `webhook-signature: v1,<base64>` where
//! the base64 is HMAC-SHA256, keyed with the secret's decoded bytes, over
//! `{webhook-id}.{webhook-timestamp}.{body}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// What an endpoint can subscribe to.
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
pub enum EventType {
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deactivated")]
    UserDeactivated,
    #[serde(rename = "store.created")]
    StoreCreated,
    #[serde(rename = "store.updated")]
    StoreUpdated,
    #[serde(rename = "store.deactivated")]
    StoreDeactivated,
    #[serde(rename = "sync.completed")]
    SyncCompleted,
    #[serde(rename = "sync.failed")]
    SyncFailed,
    #[serde(rename = "file.held")]
    FileHeld,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeactivated,
        EventType::StoreCreated,
        EventType::StoreUpdated,
        EventType::StoreDeactivated,
        EventType::SyncCompleted,
        EventType::SyncFailed,
        EventType::FileHeld,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeactivated => "user.deactivated",
            EventType::StoreCreated => "store.created",
            EventType::StoreUpdated => "store.updated",
            EventType::StoreDeactivated => "store.deactivated",
            EventType::SyncCompleted => "sync.completed",
            EventType::SyncFailed => "sync.failed",
            EventType::FileHeld => "file.held",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// Prefix of endpoint secrets, as in the Standard Webhooks libraries.
pub const SECRET_PREFIX: &str = "whsec_";

/// `whsec_` + base64 of the key bytes.
pub fn format_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a `whsec_…` secret.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// The `webhook-signature` header value for one message.
pub fn sign(key: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut context = hmac::Context::with_key(&key);
    context.update(message_id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

/// What a receiver does: true when any `v1` signature of the header matches
/// (the header may carry several, space-separated, during a secret rotation).
/// The comparison is constant-time.
pub fn verify(key: &[u8], message_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut signed = Vec::with_capacity(message_id.len() + body.len() + 24);
    signed.extend_from_slice(message_id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    header.split(' ').any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|tag| hmac::verify(&hmac_key, &signed, &tag).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification and its libraries.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &format!("v1,bm90IHRoaXMgb25l {signature}")
        ));
    }

    #[test]
    fn event_names_round_trip() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
        }
        assert_eq!(EventType::parse("user.deleted"), None);
    }

    proptest! {
        #[test]
        fn any_flipped_byte_fails_verification(
            body in proptest::collection::vec(any::<u8>(), 1..300),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let key = b"0123456789abcdef0123456789abcdef";
            let header = sign(key, "msg_1", 1_700_000_000, &body);
            prop_assert!(verify(key, "msg_1", 1_700_000_000, &body, &header));
            let mut tampered = body.clone();
            let at = flip.index(tampered.len());
            tampered[at] ^= 1 << bit;
            prop_assert!(!verify(key, "msg_1", 1_700_000_000, &tampered, &header));
            prop_assert!(!verify(key, "msg_1", 1_700_000_001, &body, &header));
        }
    }
}
