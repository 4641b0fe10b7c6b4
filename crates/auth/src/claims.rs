use std::collections::BTreeSet;

use cpq_core::{Principal, Role, TenantGrant, TenantId};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The claim value that grants every tenant.
pub const ALL_TENANTS: &str = "*";

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
    /// Further tenants a service credential serves besides `tenant` (tenant ids, or `"*"` for
    /// every tenant). Honoured only together with the `worker` or `operator` role; ignored on any
    /// other token, whose caller acts for its own tenant only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
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
        let serves_tenants = roles.contains(&Role::Worker) || roles.contains(&Role::Operator);
        let grant = if !serves_tenants {
            TenantGrant::Own
        } else if self.tenants.iter().any(|t| t == ALL_TENANTS) {
            TenantGrant::All
        } else {
            let listed = self
                .tenants
                .iter()
                .map(|t| {
                    TenantId::parse(t).map_err(|e| {
                        AuthError::BadClaims(format!("tenants: \"{t}\": {}", e.detail))
                    })
                })
                .collect::<Result<BTreeSet<TenantId>, _>>()?;
            if listed.is_empty() {
                TenantGrant::Own
            } else {
                TenantGrant::Listed(listed)
            }
        };
        Ok(Principal {
            subject: self.sub,
            tenant,
            roles,
            groups: self
                .groups
                .into_iter()
                .filter(|g| !g.trim().is_empty() && g.len() <= 64)
                .collect(),
            grant,
        })
    }
}
