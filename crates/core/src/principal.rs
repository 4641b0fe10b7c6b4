//! Who is calling: subject, tenant and roles, as proven by a verified token.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, FieldError};

/// A tenant identifier: 1 to 63 characters of lowercase ASCII letters, digits and `-`, starting
/// with a letter or digit. Short and readable because it appears in Redis keys, Kafka headers and
/// every tenant-owned row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let valid = !raw.is_empty()
            && raw.len() <= 63
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-');
        if valid {
            Ok(TenantId(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "tenant",
                "invalid-tenant",
                "a tenant id is 1-63 characters of a-z, 0-9 and '-', not starting with '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        TenantId::parse(&raw).map_err(|e| serde::de::Error::custom(e.detail))
    }
}

/// What a caller may do. Tokens name roles by their kebab-case names; unknown names are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Authors, publishes and activates catalog versions.
    CatalogManager,
    /// Manages customer accounts, builds and converts quotes.
    Sales,
    /// Decides approval tasks.
    Approver,
    /// Follows orders and repairs fulfillment (retry, skip, cancel).
    OrderOperations,
    /// Runs the platform: diagnostics, reconciliation.
    Operator,
    /// A job worker (a service, not a person): activates and completes the workflow jobs of the
    /// tenants it is authorised for (its own, and those its [`TenantGrant`] adds).
    Worker,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::CatalogManager,
        Role::Sales,
        Role::Approver,
        Role::OrderOperations,
        Role::Operator,
        Role::Worker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::CatalogManager => "catalog-manager",
            Role::Sales => "sales",
            Role::Approver => "approver",
            Role::OrderOperations => "order-operations",
            Role::Operator => "operator",
            Role::Worker => "worker",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tenants a caller is authorised for beyond its own `tenant`: the token's `tenants` claim,
/// honoured only for the roles that serve several tenants (`worker`, `operator`), as a Camunda 8
/// client is authorised for a list of tenants. Every other caller acts for its own tenant only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TenantGrant {
    /// Its own tenant only.
    #[default]
    Own,
    /// Its own tenant and these.
    Listed(BTreeSet<TenantId>),
    /// Every tenant (`"tenants": ["*"]`): the platform's own services and operators.
    All,
}

/// An authenticated caller. The tenant comes only from here, never from a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub tenant: TenantId,
    pub roles: BTreeSet<Role>,
    /// Groups the identity provider puts the caller in (for example the approval levels
    /// `manager`, `finance`): user tasks are offered to groups.
    pub groups: BTreeSet<String>,
    /// Other tenants it may act for (job workers); [`TenantGrant::Own`] for everyone else.
    pub grant: TenantGrant,
}

impl Principal {
    /// Everything a user task can be offered to: the caller's groups and role names.
    pub fn task_groups(&self) -> Vec<String> {
        self.roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .chain(self.groups.iter().cloned())
            .collect()
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the caller is authorised for `tenant`: its own, or one its grant adds.
    pub fn may_act_for(&self, tenant: &TenantId) -> bool {
        *tenant == self.tenant
            || match &self.grant {
                TenantGrant::Own => false,
                TenantGrant::Listed(t) => t.contains(tenant),
                TenantGrant::All => true,
            }
    }

    /// Whether the caller is authorised for every tenant.
    pub fn all_tenants(&self) -> bool {
        self.grant == TenantGrant::All
    }

    /// Allows changes to what every tenant shares (worker groups, process version routing): only
    /// a platform credential, the operator role with the all-tenants grant.
    pub fn require_platform_operator(&self) -> Result<(), Error> {
        if self.has_role(Role::Operator) && self.all_tenants() {
            Ok(())
        } else {
            Err(Error::Forbidden {
                detail: "this is shared by every tenant: changing it needs a platform credential \
                         (the operator role and the all-tenants grant, \"tenants\": [\"*\"])"
                    .into(),
            })
        }
    }

    /// Allows the call when the principal holds at least one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.iter().any(|r| self.has_role(*r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(Error::Forbidden {
                detail: format!("this action needs one of the roles: {}", names.join(", ")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn accepted_tenant_ids_only_use_the_allowed_alphabet(raw in "\\PC{0,70}") {
            if let Ok(t) = TenantId::parse(&raw) {
                prop_assert!(t.as_str().len() <= 63 && !t.as_str().is_empty());
                prop_assert!(t.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                prop_assert!(!t.as_str().starts_with('-'));
            }
        }

        #[test]
        fn well_formed_tenant_ids_parse(raw in "[a-z0-9][a-z0-9-]{0,62}") {
            prop_assert_eq!(TenantId::parse(&raw).map(|t| t.0), Ok(raw.clone()));
        }
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn require_any_names_the_missing_roles() {
        let p = Principal {
            subject: "u1".into(),
            tenant: TenantId::parse("acme").unwrap(),
            roles: [Role::Approver].into(),
            groups: BTreeSet::new(),
            grant: TenantGrant::Own,
        };
        assert!(p.require_any(&[Role::Approver, Role::Sales]).is_ok());
        let err = p.require_any(&[Role::Sales]).unwrap_err();
        assert!(matches!(err, Error::Forbidden { detail } if detail.contains("sales")));
    }

    #[test]
    fn a_grant_adds_tenants_and_only_the_all_tenants_operator_is_the_platform() {
        let t = |s: &str| TenantId::parse(s).unwrap();
        let mut p = Principal {
            subject: "w".into(),
            tenant: t("acme"),
            roles: [Role::Worker].into(),
            groups: BTreeSet::new(),
            grant: TenantGrant::Own,
        };
        assert!(p.may_act_for(&t("acme")) && !p.may_act_for(&t("globex")));
        p.grant = TenantGrant::Listed([t("globex")].into());
        assert!(p.may_act_for(&t("globex")) && !p.may_act_for(&t("initech")));
        assert!(p.require_platform_operator().is_err());
        p.grant = TenantGrant::All;
        assert!(p.may_act_for(&t("initech")));
        assert!(
            p.require_platform_operator().is_err(),
            "a worker is not an operator"
        );
        p.roles = [Role::Operator].into();
        assert!(p.require_platform_operator().is_ok());
        p.grant = TenantGrant::Own;
        assert!(
            p.require_platform_operator().is_err(),
            "a tenant's operator is not the platform"
        );
    }
}
