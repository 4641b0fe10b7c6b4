use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cpq_config::{AuthConfig, JwksSource};
use cpq_core::Principal;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use crate::{AuthError, Claims};

/// A token naming an unknown key triggers a reload of the key set, at most this often, so that
/// rotated keys are picked up without letting garbage tokens hammer the identity provider.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

type KeyMap = HashMap<String, (DecodingKey, Algorithm)>;

/// At most this many verified tokens are remembered; when full, the memory starts over.
const MAX_REMEMBERED: usize = 10_000;

/// Tokens already verified, by SHA-256 of the token (not the token: a bearer credential is not
/// kept), with the principal they proved and their `exp`. A client sends the same token with
/// every request until it expires, and checking an EdDSA signature is the most expensive thing an
/// API request does besides its database round trips. Forgotten when the key set is reloaded.
type Remembered = HashMap<[u8; 32], (Principal, u64)>;

/// Verifies bearer tokens against the configured JWKS.
pub struct Verifier {
    issuer: String,
    audience: String,
    leeway_secs: u64,
    source: JwksSource,
    keys: RwLock<KeyMap>,
    remembered: Mutex<Remembered>,
    last_load: tokio::sync::Mutex<Instant>,
    http: reqwest::Client,
}

impl Verifier {
    /// Loads the key set once; fails when it cannot be read or holds no usable key.
    pub async fn from_config(config: &AuthConfig) -> Result<Verifier, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AuthError::Keys(e.to_string()))?;
        let keys = load_keys(&config.jwks, &http).await?;
        Ok(Verifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_secs: config.clock_skew_secs,
            source: config.jwks.clone(),
            keys: RwLock::new(keys),
            remembered: Mutex::new(Remembered::new()),
            last_load: tokio::sync::Mutex::new(Instant::now()),
            http,
        })
    }

    pub fn key_count(&self) -> usize {
        self.keys.read().map(|k| k.len()).unwrap_or(0)
    }

    pub fn source(&self) -> &JwksSource {
        &self.source
    }

    fn lookup(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    /// Reloads the key set unless it was loaded recently. Errors are logged: the old keys stay.
    async fn refresh(&self) {
        let mut last = self.last_load.lock().await;
        if last.elapsed() < MIN_REFRESH_INTERVAL {
            return;
        }
        *last = Instant::now();
        match load_keys(&self.source, &self.http).await {
            Ok(keys) => {
                if let Ok(mut current) = self.keys.write() {
                    *current = keys;
                }
                if let Ok(mut remembered) = self.remembered.lock() {
                    remembered.clear();
                }
            }
            Err(e) => tracing::warn!(error = %e, "JWKS reload failed; keeping the previous keys"),
        }
    }

    /// The principal a token proves: its signature by a key of the set, issuer, audience, time
    /// window (with the configured leeway) and claims. A token verified before is recognised by
    /// its digest until its `exp` (plus leeway) passes.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some((principal, exp)) = self
            .remembered
            .lock()
            .ok()
            .and_then(|r| r.get(&digest).cloned())
        {
            if now < exp.saturating_add(self.leeway_secs) {
                return Ok(principal);
            }
        }
        let (principal, exp) = self.verify_signed(token).await?;
        if let Ok(mut remembered) = self.remembered.lock() {
            if remembered.len() >= MAX_REMEMBERED {
                remembered.clear();
            }
            remembered.insert(digest, (principal.clone(), exp));
        }
        Ok(principal)
    }

    async fn verify_signed(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("the header has no kid".to_owned()))?;
        let (key, alg) = match self.lookup(&kid) {
            Some(found) => found,
            None => {
                self.refresh().await;
                self.lookup(&kid).ok_or(AuthError::UnknownKey)?
            }
        };
        // The algorithm comes from the key; a token claiming another one is refused.
        if header.alg != alg {
            return Err(AuthError::BadSignature);
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        let data = decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::MissingRequiredClaim(c) => AuthError::BadClaims(format!("missing {c}")),
            ErrorKind::Json(e) => AuthError::BadClaims(e.to_string()),
            _ => AuthError::Malformed(e.to_string()),
        })?;
        let exp = data.claims.exp;
        Ok((data.claims.into_principal()?, exp))
    }
}

async fn load_keys(source: &JwksSource, http: &reqwest::Client) -> Result<KeyMap, AuthError> {
    let set: JwkSet = match source {
        JwksSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| AuthError::Keys(format!("{}: {e}", path.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| AuthError::Keys(format!("{}: {e}", path.display())))?
        }
        JwksSource::Url(url) => http
            .get(url.clone())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Keys(format!("{url}: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Keys(format!("{url}: {e}")))?,
    };
    let mut keys = KeyMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            tracing::warn!("JWKS key without kid ignored");
            continue;
        };
        let Some(alg) = algorithm_for(jwk) else {
            tracing::warn!(kid, "JWKS key of an unsupported type or algorithm ignored");
            continue;
        };
        let key =
            DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Keys(format!("key {kid}: {e}")))?;
        keys.insert(kid, (key, alg));
    }
    if keys.is_empty() {
        return Err(AuthError::Keys(
            "the key set holds no usable signing key".to_owned(),
        ));
    }
    Ok(keys)
}

/// The one algorithm a key may verify. Symmetric keys are refused: a JWKS is public.
fn algorithm_for(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let declared = jwk.common.key_algorithm.and_then(|a| match a {
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::RS384 => Some(Algorithm::RS384),
        KeyAlgorithm::RS512 => Some(Algorithm::RS512),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        KeyAlgorithm::PS384 => Some(Algorithm::PS384),
        KeyAlgorithm::PS512 => Some(Algorithm::PS512),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    });
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        _ => None,
    };
    match (declared, by_type) {
        (Some(d), Some(t)) if family(d) == family(t) => Some(d),
        (None, t) => t,
        _ => None,
    }
}

fn family(alg: Algorithm) -> u8 {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => 1,
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => 2,
        Algorithm::EdDSA => 3,
        _ => 0,
    }
}
