//! Authentication: who is calling, proven by a bearer JWT.
//!
//! [`Verifier`] checks signature (against keys from a JWKS file or URL, the algorithm taken from
//! the key, never from the token alone), issuer, audience, expiry and not-before with a bounded
//! clock skew, then reads the claims into a [`Principal`]: `sub`, `tenant`, `roles`, `groups` and,
//! for workers and operators, `tenants` (further tenants served, or `"*"` for all).
//! [`DevSigner`] mints tokens from the checked-in development key, and refuses outside local and
//! integration.

mod claims;
mod dev;
mod verify;

pub use claims::{Claims, ALL_TENANTS};
pub use dev::DevSigner;
pub use verify::Verifier;

/// Why a token was not accepted. The `Display` text is fit for a client: it says what is wrong
/// with the token, never anything about keys or internals.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not trusted")]
    WrongIssuer,
    #[error("token audience is not this service")]
    WrongAudience,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
    #[error("cannot load signing keys: {0}")]
    Keys(String),
    #[error("dev tokens are refused in {0}: they are for local and integration only")]
    DevTokensRefused(&'static str),
}
