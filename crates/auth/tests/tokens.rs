#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Tokens minted with the dev key verify; every way a token can be wrong is refused.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cpq_auth::{AuthError, Claims, DevSigner, Verifier};
use cpq_config::{load, Config, Sources};
use cpq_core::{Role, TenantGrant, TenantId};

fn config(env: &str) -> Config {
    load(&Sources {
        environment: Some(env.to_owned()),
        config_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config"),
        extra_files: vec![],
        vars: vec![
            ("CPQ_DATABASE__APP_PASSWORD".into(), "x".into()),
            ("CPQ_DATABASE__OWNER_PASSWORD".into(), "y".into()),
        ],
    })
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(c: &Config) -> Claims {
    Claims {
        sub: "rep-1".into(),
        tenant: "acme".into(),
        roles: vec!["sales".into(), "something-else".into()],
        groups: vec![],
        tenants: vec![],
        iss: c.auth.issuer.clone(),
        aud: c.auth.audience.clone(),
        exp: now() + 600,
        iat: now(),
        nbf: None,
    }
}

#[tokio::test]
async fn a_minted_token_verifies_into_its_principal() {
    let c = config("local");
    let signer = DevSigner::from_config(&c).unwrap();
    let verifier = Verifier::from_config(&c.auth).await.unwrap();
    let token = signer
        .mint(
            "rep-1",
            &TenantId::parse("acme").unwrap(),
            &[Role::Sales, Role::Approver],
            Duration::from_secs(60),
        )
        .unwrap();
    let p = verifier.verify(&token).await.unwrap();
    assert_eq!(p.subject, "rep-1");
    assert_eq!(p.tenant.as_str(), "acme");
    assert_eq!(p.roles, [Role::Sales, Role::Approver].into());
}

#[tokio::test]
async fn the_tenants_claim_is_honoured_only_for_workers_and_operators() {
    let c = config("local");
    let signer = DevSigner::from_config(&c).unwrap();
    let verifier = Verifier::from_config(&c.auth).await.unwrap();
    let principal = |roles: &[&str], tenants: &[&str]| {
        let mut cl = claims(&c);
        cl.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        cl.tenants = tenants.iter().map(|t| (*t).to_owned()).collect();
        let token = signer.sign(&cl).unwrap();
        let verifier = &verifier;
        async move { verifier.verify(&token).await }
    };
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();

    let sales = principal(&["sales"], &["*"]).await.unwrap();
    assert_eq!(
        sales.grant,
        TenantGrant::Own,
        "a person's token never spans tenants"
    );
    assert!(!sales.may_act_for(&globex));

    let worker = principal(&["worker"], &["globex"]).await.unwrap();
    assert!(worker.may_act_for(&acme) && worker.may_act_for(&globex));
    assert!(!worker.all_tenants());

    let platform = principal(&["operator"], &["*"]).await.unwrap();
    assert_eq!(platform.grant, TenantGrant::All);
    assert!(platform.require_platform_operator().is_ok());

    assert!(matches!(
        principal(&["worker"], &["Not A Tenant"]).await,
        Err(AuthError::BadClaims(_))
    ));

    let minted = signer
        .mint_with_tenants(
            "cpq-worker",
            &TenantId::parse("platform").unwrap(),
            &[Role::Worker],
            &[],
            &[cpq_auth::ALL_TENANTS],
            Duration::from_secs(60),
        )
        .unwrap();
    assert!(verifier.verify(&minted).await.unwrap().all_tenants());
}

#[tokio::test]
async fn wrong_tokens_are_refused_for_the_right_reason() {
    let c = config("local");
    let signer = DevSigner::from_config(&c).unwrap();
    let verifier = Verifier::from_config(&c.auth).await.unwrap();
    let skew = c.auth.clock_skew_secs;

    let mut expired = claims(&c);
    expired.exp = now() - skew - 5;
    assert!(matches!(
        verifier.verify(&signer.sign(&expired).unwrap()).await,
        Err(AuthError::Expired)
    ));

    // Within the allowed skew an expired token still passes: the skew is bounded, not zero.
    let mut just_expired = claims(&c);
    just_expired.exp = now() - 1;
    assert!(verifier
        .verify(&signer.sign(&just_expired).unwrap())
        .await
        .is_ok());

    let mut future = claims(&c);
    future.nbf = Some(now() + skew + 60);
    assert!(matches!(
        verifier.verify(&signer.sign(&future).unwrap()).await,
        Err(AuthError::NotYetValid)
    ));

    let mut other_issuer = claims(&c);
    other_issuer.iss = "https://evil.example".into();
    assert!(matches!(
        verifier.verify(&signer.sign(&other_issuer).unwrap()).await,
        Err(AuthError::WrongIssuer)
    ));

    let mut other_audience = claims(&c);
    other_audience.aud = "another-api".into();
    assert!(matches!(
        verifier
            .verify(&signer.sign(&other_audience).unwrap())
            .await,
        Err(AuthError::WrongAudience)
    ));

    let mut bad_tenant = claims(&c);
    bad_tenant.tenant = "Not A Tenant".into();
    assert!(matches!(
        verifier.verify(&signer.sign(&bad_tenant).unwrap()).await,
        Err(AuthError::BadClaims(_))
    ));

    // Signed by a key the JWKS does not hold, under the trusted key's id.
    let untrusted = DevSigner::from_pem(
        include_bytes!("fixtures/untrusted-signing-key.pem"),
        &c.auth.dev_key_id,
        &c.auth.issuer,
        &c.auth.audience,
    )
    .unwrap();
    assert!(matches!(
        verifier.verify(&untrusted.sign(&claims(&c)).unwrap()).await,
        Err(AuthError::BadSignature)
    ));

    // Tampered payload.
    let token = signer.sign(&claims(&c)).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = claims(&c);
    forged.tenant = "globex".into();
    let other = signer.sign(&forged).unwrap();
    parts[1] = other.split('.').nth(1).unwrap().to_owned();
    assert!(matches!(
        verifier.verify(&parts.join(".")).await,
        Err(AuthError::BadSignature)
    ));

    assert!(matches!(
        verifier.verify("not-a-jwt").await,
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn dev_tokens_are_refused_in_staging_and_production() {
    for env in ["staging", "production"] {
        let mut c = config(env);
        c.auth.dev_signing_key = Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../config/dev-keys/dev-signing-key.pem"),
        );
        assert!(
            matches!(
                DevSigner::from_config(&c),
                Err(AuthError::DevTokensRefused(_))
            ),
            "{env}"
        );
    }
}

/// A verified token is remembered (by digest) only until it expires: afterwards it is refused as
/// expired, exactly as if it had never been seen.
#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let mut c = config("local");
    c.auth.clock_skew_secs = 0;
    let signer = DevSigner::from_config(&c).unwrap();
    let verifier = Verifier::from_config(&c.auth).await.unwrap();
    let token = signer
        .mint(
            "rep-1",
            &TenantId::parse("acme").unwrap(),
            &[Role::Sales],
            Duration::from_secs(1),
        )
        .unwrap();
    let first = verifier.verify(&token).await.unwrap();
    let again = verifier.verify(&token).await.unwrap();
    assert_eq!(first.subject, again.subject);
    assert_eq!(first.tenant, again.tenant);
    // exp is whole seconds: 2 s later it has passed whatever the sub-second start.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(matches!(
        verifier.verify(&token).await,
        Err(AuthError::Expired)
    ));
}
