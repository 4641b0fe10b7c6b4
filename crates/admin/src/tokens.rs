//! `cpq-admin token`: development tokens (local and integration only).

use std::time::Duration;

use anyhow::bail;
use cpq_config::Config;
use cpq_core::{Role, TenantId};

pub struct TokenRequest {
    pub tenant: String,
    pub subject: String,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub all_tenants: bool,
    pub ttl_secs: u64,
}

/// Prints a token signed with the development key.
pub fn mint(config: &Config, r: &TokenRequest) -> anyhow::Result<()> {
    let signer = cpq_auth::DevSigner::from_config(config)?;
    let tenant =
        TenantId::parse(&r.tenant).map_err(|e| anyhow::anyhow!("--tenant: {}", e.detail))?;
    let mut roles = Vec::new();
    for name in &r.roles {
        match Role::parse(name) {
            Some(role) => roles.push(role),
            None => bail!(
                "unknown role \"{name}\"; expected one of {}",
                Role::ALL.map(Role::as_str).join(", ")
            ),
        }
    }
    if r.all_tenants
        && !roles
            .iter()
            .any(|r| matches!(r, Role::Worker | Role::Operator))
    {
        bail!("--all-tenants is only honoured with --role worker or --role operator");
    }
    let tenants: &[&str] = if r.all_tenants {
        &[cpq_auth::ALL_TENANTS]
    } else {
        &[]
    };
    println!(
        "{}",
        signer.mint_with_tenants(
            &r.subject,
            &tenant,
            &roles,
            &r.groups.iter().map(String::as_str).collect::<Vec<_>>(),
            tenants,
            Duration::from_secs(r.ttl_secs)
        )?
    );
    Ok(())
}
