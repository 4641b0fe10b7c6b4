use std::collections::BTreeSet;

use cpq_core::{Principal, Role, TenantId};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The claims the platform reads. `tenant` and `roles` are private claims; unknown role names are
/// ignored so that an identity provider may carry roles of other systems.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Groups, such as approval levels; user tasks are offered to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl Claims {
    pub fn into_principal(self) -> Result<Principal, AuthError> {
        if self.sub.trim().is_empty() || self.sub.len() > 255 {
            return Err(AuthError::BadClaims("sub must be 1-255 characters".into()));
        }
        let tenant = TenantId::parse(&self.tenant)
            .map_err(|e| AuthError::BadClaims(format!("tenant: {}", e.detail)))?;
        let roles: BTreeSet<Role> = self.roles.iter().filter_map(|r| Role::parse(r)).collect();
        Ok(Principal {
            subject: self.sub,
            tenant,
            roles,
            groups: self
                .groups
                .into_iter()
                .filter(|g| !g.trim().is_empty() && g.len() <= 64)
                .collect(),
        })
    }
}
