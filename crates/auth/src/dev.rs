use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cpq_config::Config;
use cpq_core::{Role, TenantId};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::{AuthError, Claims};

/// Mints tokens signed with the development key, for local use and tests. Only constructible when
/// the environment allows dev tokens and a dev key is configured.
pub struct DevSigner {
    key: EncodingKey,
    key_id: String,
    issuer: String,
    audience: String,
}

impl DevSigner {
    pub fn from_config(config: &Config) -> Result<DevSigner, AuthError> {
        if !config.environment.allows_dev_tokens() {
            return Err(AuthError::DevTokensRefused(config.environment.as_str()));
        }
        let path =
            config.auth.dev_signing_key.as_ref().ok_or_else(|| {
                AuthError::Keys("auth.dev_signing_key is not configured".to_owned())
            })?;
        let pem =
            std::fs::read(path).map_err(|e| AuthError::Keys(format!("{}: {e}", path.display())))?;
        Self::from_pem(
            &pem,
            &config.auth.dev_key_id,
            &config.auth.issuer,
            &config.auth.audience,
        )
    }

    /// An Ed25519 PKCS#8 PEM private key.
    pub fn from_pem(
        pem: &[u8],
        key_id: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<DevSigner, AuthError> {
        Ok(DevSigner {
            key: EncodingKey::from_ed_pem(pem).map_err(|e| AuthError::Keys(e.to_string()))?,
            key_id: key_id.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    pub fn mint(
        &self,
        subject: &str,
        tenant: &TenantId,
        roles: &[Role],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        self.mint_with_groups(subject, tenant, roles, &[], ttl)
    }

    /// As [`DevSigner::mint`], with groups (such as approval levels).
    pub fn mint_with_groups(
        &self,
        subject: &str,
        tenant: &TenantId,
        roles: &[Role],
        groups: &[&str],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        self.mint_with_tenants(subject, tenant, roles, groups, &[], ttl)
    }

    /// As [`DevSigner::mint_with_groups`], with the `tenants` claim: further tenants a worker or
    /// operator credential serves, or [`crate::ALL_TENANTS`] for every tenant.
    pub fn mint_with_tenants(
        &self,
        subject: &str,
        tenant: &TenantId,
        roles: &[Role],
        groups: &[&str],
        tenants: &[&str],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| AuthError::Keys(e.to_string()))?
            .as_secs();
        self.sign(&Claims {
            sub: subject.to_owned(),
            tenant: tenant.to_string(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + ttl.as_secs(),
            iat: now,
            nbf: None,
        })
    }

    /// Signs arbitrary claims: tests use it to forge expired or misaddressed tokens.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| AuthError::Keys(e.to_string()))
    }
}
