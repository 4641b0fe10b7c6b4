//! `cpq-admin deploy-bpmn`: process and decision definitions from files, as the platform.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cpq_application::workflow::definitions::{DeployResource, DeployResources};
use cpq_config::Config;
use cpq_core::{TenantGrant, TenantId};

/// The files to deploy: each path, or every `.dmn` and then every `.bpmn` of a folder (each
/// sorted): decisions go first, so a business rule task bound by `deployment` finds the
/// decisions deployed with its process.
fn model_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "bpmn" || x == "dmn"))
                .collect();
            found.sort_by_key(|f| (f.extension().is_some_and(|x| x == "bpmn"), f.clone()));
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// What every deployment of one `deploy-bpmn` run is given.
pub struct Options {
    pub release_id: Option<String>,
    pub source_commit: Option<String>,
    pub allow_unsupported_job_types: bool,
}

/// Deploys the files through the application's deployment operation (the one
/// `POST /v1/process-definitions` and `POST /v1/deployments` run: versioned, audited, a
/// `process-definition.deployed` or `decision-definition.deployed` event per new version), as the
/// platform's operator: each file as its own deployment, or all as one (`together`). Unchanged
/// files are a no-op. Every refused deployment is reported with its problems, and the command
/// fails when one was.
pub async fn deploy(
    config: &Config,
    paths: &[PathBuf],
    together: bool,
    options: Options,
) -> anyhow::Result<()> {
    if options.allow_unsupported_job_types && !config.environment.allows_dev_tokens() {
        bail!(
            "--allow-unsupported-job-types is refused in {}",
            config.environment.as_str()
        );
    }
    let mut resources = Vec::new();
    for file in model_files(paths)? {
        let xml = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        resources.push(DeployResource { name, xml });
    }
    let deployments: Vec<Vec<DeployResource>> = if together {
        vec![resources]
    } else {
        resources.into_iter().map(|r| vec![r]).collect()
    };
    let platform = TenantId::parse("platform").map_err(|e| anyhow::anyhow!(e.detail))?;
    let services = crate::services(config)?;
    let call = crate::operator_call(platform, TenantGrant::All);
    let mut failed = 0;
    for resources in deployments {
        let names: Vec<String> = resources.iter().map(|r| r.name.clone()).collect();
        let label = names.join(", ");
        let deploy = DeployResources {
            resources,
            release_id: options.release_id.clone(),
            source_commit: options.source_commit.clone(),
            variable_schema_version: None,
            allow_unsupported_job_types: options.allow_unsupported_job_types,
        };
        match cpq_application::execute(&services, &call, deploy).await {
            Ok(d) => {
                let what = if d.created { "deployed" } else { "unchanged" };
                for p in &d.processes {
                    let def = &p.definition;
                    println!(
                        "{}: {what} {} version {}",
                        def.resource_name, def.bpmn_process_id, def.version
                    );
                }
                for decision in &d.decisions {
                    let def = &decision.definition;
                    println!(
                        "{}: {what} decision {} version {}",
                        def.resource_name, def.decision_id, def.version
                    );
                }
            }
            Err(cpq_core::Error::Validation { errors }) => {
                failed += 1;
                eprintln!("{label}: refused");
                for e in errors {
                    eprintln!("  {} [{}] {}", e.field, e.code, e.detail);
                }
            }
            Err(e) => bail!("{label}: {e}"),
        }
    }
    services.db.close().await;
    if failed > 0 {
        bail!("{failed} deployment(s) refused");
    }
    Ok(())
}
