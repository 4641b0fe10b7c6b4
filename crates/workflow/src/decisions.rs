//! DMN decision definitions: reading a `.dmn` file as Camunda Modeler writes it for deployment
//! (deployed with BPMN files by [`crate::deployment::deploy_resources`], versions per decision
//! id), reading the deployed versions, and evaluating a decision with the decisions it requires.
//!
//! Like process definitions, decision definitions carry no tenant: they are deployed with a
//! release and the same for every tenant.
//!
//! Evaluating reads only the small row of the version asked for; the parsed model of each
//! definition is kept in memory by its key (a definition never changes once deployed), so the
//! file is read and parsed once per process, not per evaluation. [`CalledDecisions`] is what
//! business rule tasks call: the version each one's binding picks (latest, deployment, version
//! tag), loaded before the engine's pure run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use cpq_core::{Error, FieldError};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use cpq_decision::{DecisionError, DecisionKind, DecisionModel};

use crate::bpmn::{ElementKind, Process};
use crate::runtime::{DecisionCall, DecisionEvaluator};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// One deployed version of one decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DecisionDefinition {
    /// The key of this version.
    pub decision_definition_id: Uuid,
    /// The decision's `id` in the file.
    pub decision_id: String,
    pub version: i32,
    pub name: String,
    /// The `<definitions>` (decision requirements graph) the decision belongs to.
    pub decision_requirements_id: String,
    pub decision_requirements_name: String,
    pub checksum: String,
    pub resource_name: String,
    pub deployed_at: DateTime<Utc>,
    pub deployed_by: String,
    /// The decision's `zeebe:versionTag` in the file, if any.
    pub version_tag: Option<String>,
    /// The deployment this version was deployed in, with the other files deployed together.
    pub deployment_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployedDecision {
    pub definition: DecisionDefinition,
    /// False when this exact file was deployed before: no new version.
    pub created: bool,
}

const COLUMNS: &str =
    "decision_definition_id, decision_id, version, name, decision_requirements_id, \
    decision_requirements_name, checksum, resource_name, deployed_at, deployed_by, version_tag, deployment_id";

/// A file the DMN reader refuses, as a field problem naming the element and what is wrong.
pub fn model_error(e: DecisionError) -> Error {
    let message = match e {
        DecisionError::Model { message } => message,
        other => other.to_string(),
    };
    Error::validation(vec![FieldError::new("dmn", "invalid-dmn", message)])
}

/// A DMN file read for deployment: its decisions, checked ([`read_decisions`]).
pub struct ReadDecisions {
    model: DecisionModel,
    /// SHA-256 (hex) of the file's bytes.
    pub checksum: String,
}

impl ReadDecisions {
    /// The file's decisions (not its input data, knowledge sources or models).
    pub fn decisions(&self) -> impl Iterator<Item = &cpq_decision::DecisionInfo> {
        self.model
            .decisions()
            .iter()
            .filter(|d| d.kind == DecisionKind::Decision)
    }
}

/// Reads a DMN file to deploy: refused when the reader refuses it, when its `<definitions>` has
/// no id, or when it has no decision.
pub fn read_decisions(xml: &str) -> Result<ReadDecisions, Error> {
    let model = DecisionModel::parse(xml).map_err(model_error)?;
    let read = ReadDecisions {
        model,
        checksum: hex::encode(Sha256::digest(xml.as_bytes())),
    };
    if read.decisions().next().is_none() {
        return Err(Error::validation(vec![FieldError::new(
            "dmn",
            "no-decision",
            "the file has no <decision> to deploy",
        )]));
    }
    if read.model.id().is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "dmn",
            "invalid-dmn",
            "<definitions> has no id",
        )]));
    }
    Ok(read)
}

/// The newest version of decision `decision_id` deployed from a file with this checksum.
pub(crate) async fn by_checksum(
    tx: &mut Tx,
    decision_id: &str,
    checksum: &str,
) -> Result<Option<DecisionDefinition>, Error> {
    timed(
        "decision_definition_fetch_by_checksum",
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM decision_definition WHERE decision_id = $1 AND checksum = $2 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(decision_id)
        .bind(checksum)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// A new version of decision `d` of the file `dmn` (under its lock, the insert takes the next
/// version itself), in deployment `deployment_id` as resource `name` with content `xml`.
pub(crate) async fn insert(
    tx: &mut Tx,
    dmn: &ReadDecisions,
    d: &cpq_decision::DecisionInfo,
    (deployment_id, name, xml): (Uuid, &str, &str),
    deployed_by: &str,
    at: DateTime<Utc>,
) -> Result<DecisionDefinition, Error> {
    timed(
        "decision_definition_insert",
        sqlx::query_as(&format!(
            "INSERT INTO decision_definition (decision_definition_id, decision_id, version, name, \
             decision_requirements_id, decision_requirements_name, checksum, resource_name, dmn_xml, \
             deployed_at, deployed_by, version_tag, deployment_id) \
             VALUES ($1, $2, (SELECT coalesce(max(version), 0) + 1 FROM decision_definition WHERE decision_id = $2), \
             $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&d.id)
        .bind(&d.name)
        .bind(dmn.model.id())
        .bind(dmn.model.name())
        .bind(&dmn.checksum)
        .bind(name)
        .bind(xml)
        .bind(at)
        .bind(deployed_by)
        .bind(&d.version_tag)
        .bind(deployment_id)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// Every deployed version, in deployment order, after `after` (keyset on the key).
pub async fn list(
    tx: &mut Tx,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DecisionDefinition>, Error> {
    timed(
        "decision_definition_list",
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM decision_definition WHERE ($1::uuid IS NULL OR decision_definition_id > $1) \
             ORDER BY decision_definition_id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// One version by its key.
pub async fn fetch(tx: &mut Tx, key: Uuid) -> Result<DecisionDefinition, Error> {
    timed(
        "decision_definition_fetch",
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM decision_definition WHERE decision_definition_id = $1"
        ))
        .bind(key)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?
    .ok_or_else(|| Error::not_found("decision definition", key.to_string()))
}

/// The version `version` of decision `decision_id`, or its latest when `None`.
pub async fn fetch_version(
    tx: &mut Tx,
    decision_id: &str,
    version: Option<i32>,
) -> Result<DecisionDefinition, Error> {
    find_version(tx, decision_id, version)
        .await?
        .ok_or_else(|| {
            let id = match version {
                Some(v) => format!("{decision_id} version {v}"),
                None => decision_id.to_string(),
            };
            Error::not_found("decision definition", id)
        })
}

async fn find_version(
    tx: &mut Tx,
    decision_id: &str,
    version: Option<i32>,
) -> Result<Option<DecisionDefinition>, Error> {
    timed(
        "decision_definition_fetch_version",
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM decision_definition WHERE decision_id = $1 \
             AND ($2::int4 IS NULL OR version = $2) ORDER BY version DESC LIMIT 1"
        ))
        .bind(decision_id)
        .bind(version)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// A parsed definition and the keys and versions of the decisions deployed with it.
struct Loaded {
    model: DecisionModel,
    /// decision id -> (key, version, name) of the rows deployed from the same file.
    siblings: HashMap<String, (Uuid, i32, String)>,
}

/// Parsed models by definition key. Definitions never change, so an entry is never stale; the
/// map is emptied when it reaches its bound (a deployment a day keeps it far below).
const CACHED_MODELS: usize = 256;

fn cache() -> &'static Mutex<HashMap<Uuid, Arc<Loaded>>> {
    static CACHE: OnceLock<Mutex<HashMap<Uuid, Arc<Loaded>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

async fn load(tx: &mut Tx, definition: &DecisionDefinition) -> Result<Arc<Loaded>, Error> {
    let key = definition.decision_definition_id;
    if let Some(hit) = cache().lock().map_err(Error::internal)?.get(&key) {
        return Ok(hit.clone());
    }
    let xml: String = timed(
        "decision_definition_fetch_xml",
        sqlx::query_scalar(
            "SELECT dmn_xml FROM decision_definition WHERE decision_definition_id = $1",
        )
        .bind(key)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    #[derive(sqlx::FromRow)]
    struct Sibling {
        decision_id: String,
        decision_definition_id: Uuid,
        version: i32,
        name: String,
    }
    let siblings: Vec<Sibling> = timed(
        "decision_definition_siblings",
        sqlx::query_as(
            "SELECT decision_id, decision_definition_id, version, name FROM decision_definition \
             WHERE checksum = $1 AND decision_requirements_id = $2",
        )
        .bind(&definition.checksum)
        .bind(&definition.decision_requirements_id)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    // It was read when deployed, so a refusal now is a bug (an engine upgrade), not bad input.
    let model = DecisionModel::parse(&xml).map_err(Error::internal)?;
    let loaded = Arc::new(Loaded {
        model,
        siblings: siblings
            .into_iter()
            .map(|s| (s.decision_id, (s.decision_definition_id, s.version, s.name)))
            .collect(),
    });
    let mut map = cache().lock().map_err(Error::internal)?;
    if map.len() >= CACHED_MODELS {
        map.clear();
    }
    map.insert(key, loaded.clone());
    Ok(loaded)
}

/// One decision evaluated on the way to the result: the required ones first, the asked one last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluatedDecision {
    pub decision_id: String,
    pub decision_name: String,
    /// The key and version of the deployed decision (deployed from the same file).
    pub decision_definition_id: Option<Uuid>,
    pub version: Option<i32>,
    pub output: Json,
}

/// The answer of an evaluation (Camunda 8's evaluate-decision response, in snake case).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub decision_definition_id: Uuid,
    pub decision_id: String,
    pub decision_name: String,
    pub version: i32,
    pub decision_requirements_id: String,
    /// The decision's result (`null` when no rule of a table matched).
    pub output: Json,
    pub evaluated_decisions: Vec<EvaluatedDecision>,
}

/// Evaluates `definition` (with the decisions it requires) against `variables` (a JSON object of
/// input data by name). An input the engine cannot read or an evaluation that fails (a hit policy
/// violated) is a field problem naming the decision.
pub async fn evaluate_definition(
    tx: &mut Tx,
    definition: &DecisionDefinition,
    variables: &Json,
) -> Result<Evaluation, Error> {
    let loaded = load(tx, definition).await?;
    let failed = |e: DecisionError| {
        let (field, message) = match e {
            DecisionError::Input { decision, message } => (decision, message),
            DecisionError::Evaluation { decision, message } => (decision, message),
            other => (definition.decision_id.clone(), other.to_string()),
        };
        Error::validation(vec![FieldError::new(
            field,
            "decision-evaluation-failed",
            message,
        )])
    };
    let mut evaluated = Vec::new();
    for id in loaded.model.requirement_graph(&definition.decision_id) {
        let output = loaded
            .model
            .evaluate_strict(&id, variables)
            .map_err(failed)?;
        let sibling = loaded.siblings.get(&id);
        evaluated.push(EvaluatedDecision {
            decision_name: sibling
                .map(|s| s.2.clone())
                .or_else(|| {
                    loaded
                        .model
                        .decisions()
                        .iter()
                        .find(|d| d.id == id)
                        .map(|d| d.name.clone())
                })
                .unwrap_or_default(),
            decision_definition_id: sibling.map(|s| s.0),
            version: sibling.map(|s| s.1),
            decision_id: id,
            output,
        });
    }
    let output = evaluated
        .last()
        .map(|d| d.output.clone())
        .unwrap_or(Json::Null);
    Ok(Evaluation {
        decision_definition_id: definition.decision_definition_id,
        decision_id: definition.decision_id.clone(),
        decision_name: definition.name.clone(),
        version: definition.version,
        decision_requirements_id: definition.decision_requirements_id.clone(),
        output,
        evaluated_decisions: evaluated,
    })
}

/// Evaluates version `version` of decision `decision_id` (its latest when `None`): 404 for a
/// decision (or version) never deployed.
pub async fn evaluate(
    tx: &mut Tx,
    decision_id: &str,
    version: Option<i32>,
    variables: &Json,
) -> Result<Evaluation, Error> {
    let definition = fetch_version(tx, decision_id, version).await?;
    evaluate_definition(tx, &definition, variables).await
}

/// The version a business rule task's call picks: the latest of its decision id; with binding
/// `deployment` the latest deployed no later than the calling process's version
/// (`process_definition_id`); with binding `versionTag` the latest carrying that tag.
async fn find_called(
    tx: &mut Tx,
    call: &DecisionCall,
    process_definition_id: Uuid,
) -> Result<Option<DecisionDefinition>, Error> {
    timed(
        "decision_definition_fetch_called",
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM decision_definition WHERE decision_id = $1 \
             AND ($2 <> 'deployment' OR deployment_id = \
                  (SELECT deployment_id FROM process_definition WHERE process_definition_id = $3)) \
             AND ($2 <> 'versionTag' OR version_tag = $4) \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(&call.decision_id)
        .bind(&call.binding)
        .bind(process_definition_id)
        .bind(&call.version_tag)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// How many times one command is run again to load the decisions it met by an expression.
const MAX_DECISION_ROUNDS: usize = 16;

/// The decisions a process's business rule tasks call, loaded before the engine's pure run
/// (which cannot read the database) and evaluated there: each call by a static id (and tag) up
/// front, one row read per call, the parsed models from the cache. A call whose id or version
/// tag is an expression is known only once the run evaluates it: the run records it as missed,
/// [`CalledDecisions::load_missed`] loads it, and the caller runs the same command again on the
/// same state (the run is pure, so the second run is the first one with the decision in hand).
pub struct CalledDecisions {
    /// The calling process version: binding `deployment` picks what was deployed with it.
    process_definition_id: Uuid,
    /// Each call met so far, with its version (`None`: none deployed, an incident).
    resolved: HashMap<DecisionCall, Option<Arc<Loaded>>>,
    missed: Mutex<Vec<DecisionCall>>,
    rounds: usize,
}

impl CalledDecisions {
    /// Loads the decisions `process` (version `process_definition_id`) calls by static ids.
    pub async fn of(
        tx: &mut Tx,
        process: &Process,
        process_definition_id: Uuid,
    ) -> Result<Self, Error> {
        let mut this = Self {
            process_definition_id,
            resolved: HashMap::new(),
            missed: Mutex::new(Vec::new()),
            rounds: 0,
        };
        for element in &process.elements {
            let ElementKind::BusinessRuleTask {
                decision: Some(called),
                ..
            } = &element.kind
            else {
                continue;
            };
            let dynamic = |text: &str| text.starts_with('=');
            if dynamic(&called.decision_id) || called.version_tag.as_deref().is_some_and(dynamic) {
                continue;
            }
            let call = DecisionCall {
                decision_id: called.decision_id.clone(),
                binding: called.binding.clone(),
                version_tag: called.version_tag.clone(),
            };
            this.resolve(tx, call).await?;
        }
        Ok(this)
    }

    async fn resolve(&mut self, tx: &mut Tx, call: DecisionCall) -> Result<(), Error> {
        if self.resolved.contains_key(&call) {
            return Ok(());
        }
        let loaded = match find_called(tx, &call, self.process_definition_id).await? {
            Some(definition) => Some(load(tx, &definition).await?),
            None => None,
        };
        self.resolved.insert(call, loaded);
        Ok(())
    }

    /// Loads the calls the last run met but had not loaded. True when it loaded any: run the
    /// command again. After [`MAX_DECISION_ROUNDS`] it loads no more, and the calls still
    /// missing raise incidents.
    pub async fn load_missed(&mut self, tx: &mut Tx) -> Result<bool, Error> {
        let missed = std::mem::take(&mut *self.missed.lock().map_err(Error::internal)?);
        if missed.is_empty() || self.rounds >= MAX_DECISION_ROUNDS {
            return Ok(false);
        }
        self.rounds += 1;
        for call in missed {
            self.resolve(tx, call).await?;
        }
        Ok(true)
    }
}

impl DecisionEvaluator for CalledDecisions {
    fn evaluate(&self, call: &DecisionCall, variables: &Map<String, Json>) -> Result<Json, String> {
        let id = &call.decision_id;
        match self.resolved.get(call) {
            None => {
                if let Ok(mut missed) = self.missed.lock() {
                    missed.push(call.clone());
                }
                Err(format!(
                    "decision '{id}' was not loaded: one step called more than \
                     {MAX_DECISION_ROUNDS} decisions named by expressions"
                ))
            }
            Some(None) => Err(match (call.binding.as_str(), &call.version_tag) {
                ("deployment", _) => format!(
                    "no decision with id '{id}' was deployed with the calling process (binding type deployment)"
                ),
                ("versionTag", Some(tag)) => {
                    format!("no version of decision '{id}' carries the version tag '{tag}'")
                }
                _ => format!("no decision with id '{id}' is deployed"),
            }),
            Some(Some(loaded)) => loaded
                .model
                .evaluate_strict(id, &Json::Object(variables.clone()))
                .map_err(|e| e.to_string()),
        }
    }
}

/// Whether a deployed file is DMN rather than BPMN: its root element is a DMN `<definitions>`
/// (any DMN version's namespace), or its name ends in `.dmn` (so a broken `.dmn` file is refused
/// as DMN, naming what the DMN reader found).
pub fn is_dmn(resource_name: Option<&str>, xml: &str) -> bool {
    resource_name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".dmn"))
        || cpq_decision::is_dmn(xml)
}
