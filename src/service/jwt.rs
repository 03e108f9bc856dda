//! Short-lived HS256 access tokens. The algorithm is pinned, issuer and audience
//! are checked, and expiry is checked against the service clock (not the
//! library's), so tests can move time.

use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::secrets::SecretBytes;
use crate::config::AuthConfig;
use crate::domain::{EnterpriseId, Role, UserId};

/// Clock skew tolerated on `exp`, in seconds.
pub const LEEWAY_SECS: i64 = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub tid: EnterpriseId,
    pub role: Role,
    /// The user's token_version when issued; a bump invalidates the token.
    pub tv: i64,
    /// The sign-in (refresh family) the token belongs to: logging out of it
    /// ends the token too. Absent from tokens of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
}

pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

impl TokenIssuer {
    pub fn new(secret: &SecretBytes, config: &AuthConfig) -> TokenIssuer {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        // Expiry is checked in `verify` against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        TokenIssuer {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl_secs: i64::try_from(config.access_token_ttl_secs).unwrap_or(900),
            refresh_ttl_secs: i64::try_from(config.refresh_token_ttl_secs).unwrap_or(1_209_600),
        }
    }

    pub fn issue(
        &self,
        user: UserId,
        enterprise: EnterpriseId,
        role: Role,
        token_version: i64,
        session: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessToken, jsonwebtoken::errors::Error> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user,
            tid: enterprise,
            role,
            tv: token_version,
            sid: Some(session.to_string()),
            jti: uuid::Uuid::new_v4().to_string(),
            iat,
            exp: iat + self.access_ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(AccessToken {
            token,
            expires_in: self.access_ttl_secs,
        })
    }

    /// The claims of a genuine, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        (claims.exp + LEEWAY_SECS > now.timestamp()).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn issuer() -> TokenIssuer {
        let secret = SecretBytes::from_test(b"0123456789abcdef0123456789abcdef");
        TokenIssuer::new(&secret, &AuthConfig::default())
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn round_trip_and_expiry() {
        let tokens = issuer();
        let user = UserId::generate();
        let issued = tokens
            .issue(
                user,
                EnterpriseId::generate(),
                Role::ItAdmin,
                3,
                "family",
                now(),
            )
            .unwrap();
        let claims = tokens.verify(&issued.token, now()).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.tv, 3);
        let later = now() + chrono::Duration::seconds(900 + LEEWAY_SECS);
        assert!(tokens.verify(&issued.token, later).is_none());
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let tokens = issuer();
        let issued = tokens
            .issue(
                UserId::generate(),
                EnterpriseId::generate(),
                Role::ItAdmin,
                0,
                "family",
                now(),
            )
            .unwrap();
        let parts: Vec<&str> = issued.token.split('.').collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for alg in ["none", "HS384", "RS256"] {
            let header = engine.encode(format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}"));
            let forged = format!("{header}.{}.{}", parts[1], parts[2]);
            assert!(tokens.verify(&forged, now()).is_none(), "{alg}");
            let unsigned = format!("{header}.{}.", parts[1]);
            assert!(tokens.verify(&unsigned, now()).is_none(), "{alg} unsigned");
        }
    }
}
