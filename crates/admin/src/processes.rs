//! `cpq-admin deploy-bpmn`: process and decision definitions from files, as the platform.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cpq_application::workflow::decisions::DeployDecisions;
use cpq_application::workflow::definitions::DeployProcesses;
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

/// Deploys every file through the application's deployment operation (the one
/// `POST /v1/process-definitions` runs: versioned, audited, a `process-definition.deployed` event
/// per new process version), as the platform's operator; a DMN file (by its root element or its
/// `.dmn` name, as the API tells them) through the decision deployment. An unchanged file is a
/// no-op. Every refused file is reported with its problems, and the command fails when one was.
pub async fn deploy(
    config: &Config,
    paths: &[PathBuf],
    release_id: Option<String>,
    source_commit: Option<String>,
    allow_unsupported_job_types: bool,
) -> anyhow::Result<()> {
    if allow_unsupported_job_types && !config.environment.allows_dev_tokens() {
        bail!(
            "--allow-unsupported-job-types is refused in {}",
            config.environment.as_str()
        );
    }
    let files = model_files(paths)?;
    let platform = TenantId::parse("platform").map_err(|e| anyhow::anyhow!(e.detail))?;
    let services = crate::services(config)?;
    let call = crate::operator_call(platform, TenantGrant::All);
    let mut failed = 0;
    for file in &files {
        let xml =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let what = |created: bool| if created { "deployed" } else { "unchanged" };
        let outcome = if cpq_workflow::decisions::is_dmn(Some(&name), &xml) {
            let deploy = DeployDecisions {
                resource_name: Some(name.clone()),
                xml,
            };
            cpq_application::execute(&services, &call, deploy)
                .await
                .map(|deployed| {
                    for d in deployed {
                        println!(
                            "{name}: {} decision {} version {}",
                            what(d.created),
                            d.definition.decision_id,
                            d.definition.version
                        );
                    }
                })
        } else {
            let deploy = DeployProcesses {
                resource_name: Some(name.clone()),
                xml,
                release_id: release_id.clone(),
                source_commit: source_commit.clone(),
                variable_schema_version: None,
                allow_unsupported_job_types,
            };
            cpq_application::execute(&services, &call, deploy)
                .await
                .map(|deployed| {
                    for d in deployed {
                        println!(
                            "{name}: {} {} version {}",
                            what(d.created),
                            d.definition.bpmn_process_id,
                            d.definition.version
                        );
                    }
                })
        };
        match outcome {
            Ok(()) => {}
            Err(cpq_core::Error::Validation { errors }) => {
                failed += 1;
                eprintln!("{name}: refused");
                for e in errors {
                    eprintln!("  {} [{}] {}", e.field, e.code, e.detail);
                }
            }
            Err(e) => bail!("{name}: {e}"),
        }
    }
    services.db.close().await;
    if failed > 0 {
        bail!("{failed} file(s) refused");
    }
    Ok(())
}
