//! JWT bearer tokens: HS256, user tokens with `sub` = the user id, service tokens with
//! `role: service`.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::context::Caller;
use crate::error::ServiceError;

/// Value of the `role` claim of service tokens.
pub const SERVICE_ROLE: &str = "service";
/// Subject of service tokens.
pub const SERVICE_SUBJECT: &str = "service";
/// Allowed clock difference between the issuing and the verifying process.
pub const CLOCK_LEEWAY: Duration = Duration::from_secs(5);
/// Maximum number of verified tokens kept, so a client's repeated calls skip the HMAC and the
/// claims' JSON decoding.
const VERIFIED_CAPACITY: u64 = 10_000;
/// How long a verified token stays in that cache. Its expiry is still checked on every call.
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Claims of a Beehive token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id as a decimal string, or `service` for service tokens.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: u64,
    /// `service` on service tokens, absent on user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Why a token was rejected.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("cannot sign token: {0}")]
    Signing(String),
    #[error("invalid signing key: {0}")]
    Key(String),
}

impl AuthError {
    /// Returns the message a rejected caller receives. Decoder details (base64, JSON, algorithm)
    /// stay in the log, because they help nobody but a caller probing the verifier.
    pub fn client_message(&self) -> &'static str {
        match self {
            Self::Expired => "token expired, log in again to get a new one",
            Self::Invalid(_) => "invalid token",
            Self::Signing(_) | Self::Key(_) => "token check failed",
        }
    }
}

impl From<AuthError> for ServiceError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Signing(reason) | AuthError::Key(reason) => ServiceError::internal(reason),
            rejected => {
                tracing::debug!(error = %rejected, "rejected a token");
                ServiceError::unauthenticated(rejected.client_message())
            }
        }
    }
}

/// Issues and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// Tokens that passed [`Authenticator::verify`], with the caller and the `exp` claim.
    verified: moka::sync::Cache<String, (Caller, u64)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Builds an authenticator whose tokens live for `ttl`; fails on an empty secret.
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_LEEWAY.as_secs();
        validation.set_required_spec_claims(&["exp", "sub"]);
        let key_error = |err: jsonwebtoken::errors::Error| AuthError::Key(err.to_string());
        Ok(Self {
            encoding: EncodingKey::from_secret(secret).map_err(key_error)?,
            decoding: DecodingKey::from_secret(secret).map_err(key_error)?,
            validation,
            ttl,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_TTL)
                .build(),
        })
    }

    /// Builds an authenticator from `auth.jwt_secret` and `auth.token_ttl_secs`.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        Self::new(
            config.jwt_secret.as_bytes(),
            Duration::from_secs(config.token_ttl_secs),
        )
    }

    /// Lifetime of issued tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for user `user_id`, valid for the configured lifetime (7 days by default).
    pub fn issue_user_token(&self, user_id: i64) -> Result<String, AuthError> {
        self.sign(user_id.to_string(), None)
    }

    /// Issues a service token (`role: service`) for calls between services.
    pub fn issue_service_token(&self) -> Result<String, AuthError> {
        self.sign(SERVICE_SUBJECT.to_owned(), Some(SERVICE_ROLE.to_owned()))
    }

    /// Signs arbitrary claims; meant for tests and tools that need unusual tokens.
    pub fn sign_claims(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|err| AuthError::Signing(err.to_string()))
    }

    fn sign(&self, sub: String, role: Option<String>) -> Result<String, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub,
            exp: now.saturating_add(self.ttl.as_secs()),
            iat: now,
            role,
        };
        self.sign_claims(&claims)
    }

    /// Checks signature, algorithm and expiry, and returns the claims.
    pub fn verify_claims(&self, token: &str) -> Result<Claims, AuthError> {
        use jsonwebtoken::errors::ErrorKind;

        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(err) => Err(match err.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".to_owned()),
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthError::Invalid("algorithm must be HS256".to_owned())
                }
                _ => AuthError::Invalid(err.to_string()),
            }),
        }
    }

    /// Verifies `token` and returns the caller it identifies.
    ///
    /// A token verified before is read from a cache keyed by the whole token text, so only a
    /// byte-identical token matches. Its expiry is still checked on every call.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        if let Some((caller, exp)) = self.verified.get(token) {
            let now = jsonwebtoken::get_current_timestamp();
            if now <= exp.saturating_add(CLOCK_LEEWAY.as_secs()) {
                return Ok(caller);
            }
            self.verified.invalidate(token);
        }
        let claims = self.verify_claims(token)?;
        let caller = match claims.role.as_deref() {
            Some(SERVICE_ROLE) => Caller::Service,
            Some(other) => return Err(AuthError::Invalid(format!("unknown role `{other}`"))),
            None => claims.sub.parse::<i64>().map(Caller::User).map_err(|_| {
                AuthError::Invalid(format!("subject `{}` is not a user id", claims.sub))
            })?,
        };
        self.verified
            .insert(token.to_owned(), (caller.clone(), claims.exp));
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    fn authenticator(secret: &[u8]) -> Authenticator {
        match Authenticator::new(secret, WEEK) {
            Ok(auth) => auth,
            Err(err) => panic!("test secret rejected: {err}"),
        }
    }

    #[test]
    fn empty_secret_rejected() {
        assert!(matches!(
            Authenticator::new(b"", WEEK),
            Err(AuthError::Key(_))
        ));
    }

    #[test]
    fn user_token_round_trip() {
        let auth = authenticator(SECRET);
        let token = auth.issue_user_token(42).ok();
        let caller = token.as_deref().map(|token| auth.verify(token).ok());
        assert_eq!(caller, Some(Some(Caller::User(42))));
    }

    #[test]
    fn cached_token_only_matches_itself() {
        let auth = authenticator(SECRET);
        let token = auth.issue_user_token(42).unwrap_or_default();
        assert_eq!(auth.verify(&token).ok(), Some(Caller::User(42)));
        // The second call reads the cache of verified tokens.
        assert_eq!(auth.verify(&token).ok(), Some(Caller::User(42)));
        assert_eq!(
            auth.verified.get(&token).map(|(caller, _)| caller),
            Some(Caller::User(42))
        );

        let mut tampered = token.clone();
        let last = tampered.pop().unwrap_or('A');
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(matches!(auth.verify(&tampered), Err(AuthError::Invalid(_))));
        assert!(auth.verified.get(&tampered).is_none());
    }

    #[test]
    fn expired_token_is_not_cached() {
        let auth = authenticator(SECRET);
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: "42".to_owned(),
            exp: now - 3600,
            iat: now - 7200,
            role: None,
        };
        let token = auth.sign_claims(&claims).unwrap_or_default();
        assert!(matches!(auth.verify(&token), Err(AuthError::Expired)));
        assert!(matches!(auth.verify(&token), Err(AuthError::Expired)));
        assert!(auth.verified.get(&token).is_none());
    }

    #[test]
    fn user_token_lasts_seven_days() {
        let auth = authenticator(SECRET);
        let token = auth.issue_user_token(7).unwrap_or_default();
        let claims = auth.verify_claims(&token).ok();
        let claims = claims.as_ref();
        assert_eq!(claims.map(|c| c.exp - c.iat), Some(WEEK.as_secs()));
        assert_eq!(claims.map(|c| c.sub.as_str()), Some("7"));
        assert_eq!(claims.and_then(|c| c.role.clone()), None);
    }

    #[test]
    fn service_token_has_service_role() {
        let auth = authenticator(SECRET);
        let token = auth.issue_service_token().unwrap_or_default();
        assert_eq!(auth.verify(&token).ok(), Some(Caller::Service));
        let claims = auth.verify_claims(&token).ok();
        assert_eq!(claims.and_then(|c| c.role), Some("service".to_owned()));
    }

    #[test]
    fn expired_token_rejected() {
        let auth = authenticator(SECRET);
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: "1".to_owned(),
            exp: now - 60,
            iat: now - 3600,
            role: None,
        };
        let token = auth.sign_claims(&claims).unwrap_or_default();
        assert!(matches!(auth.verify(&token), Err(AuthError::Expired)));
    }

    #[test]
    fn foreign_key_rejected() {
        let ours = authenticator(SECRET);
        let theirs = authenticator(b"another-secret-of-32-bytes-long!");
        let token = theirs.issue_user_token(1).unwrap_or_default();
        assert!(matches!(ours.verify(&token), Err(AuthError::Invalid(_))));
    }
}
