//! BPMN 2.0 XML as Camunda Modeler writes it for Camunda 8, read into the engine's model.
//!
//! Supported: none, message and timer start events; none, error, terminate, message and
//! escalation end events; service, send, script (FEEL `zeebe:script` or job-based), business rule
//! (`zeebe:calledDecision` or job-based), manual, plain and user tasks (native `zeebe:userTask` and
//! the older job-based form); receive tasks; call activities (`zeebe:calledElement`, binding
//! `latest`, `deployment` or `versionTag` (the process's `zeebe:versionTag`)); message, timer and link intermediate catch
//! events; none, message, link and escalation intermediate throw events; timer, error, message and
//! escalation boundary events (interrupting or not); exclusive and inclusive gateways (conditions,
//! default flow), parallel gateways, event-based gateways (to message and timer catch events);
//! embedded subprocesses; parallel and sequential multi-instance (`zeebe:loopCharacteristics`) on
//! tasks, subprocesses and call activities; the zeebe
//! extensions `taskDefinition` (type and retries may be FEEL, evaluated when the job is created),
//! `taskHeaders`, `ioMapping`, `subscription`, `userTask`, `assignmentDefinition`, `taskSchedule`,
//! `script`, `calledDecision`, `calledElement`; event subprocesses (in the process or an embedded
//! subprocess) with a message, timer, error, escalation or signal start event, interrupting or
//! not; signal start, intermediate catch and throw, boundary and end events (a static signal name).
//! Compensation: boundary compensation events associated with a handler marked
//! `isForCompensation`, intermediate throw and end compensation events (optionally `activityRef`).
//! `zeebe:executionListeners` (start and end, as jobs; their job types are recorded at deploy). Diagram interchange, collaboration pools, data objects
//! and stores and their associations, text annotations, groups, categories, attributes of other
//! namespaces, and every process marked `isExecutable="false"` are ignored. Any other element
//! inside an executable process makes [`read`] fail with one [`DeployError::Unsupported`] that
//! names each by id and type.
//!
//! Deploy-time checks as Zeebe's (in `check`), each problem of the file listed in one
//! [`DeployError::Invalid`] naming element id, type and attribute: every FEEL expression (`=...`)
//! parses; conditions, output sources, correlation keys and multi-instance collections and output
//! elements are expressions, not static values; mapping targets are variable paths; static timers
//! are ISO 8601; an executable process has an id; an embedded subprocess has exactly one none start
//! event. A Camunda 7 file (`camunda:` extensions, no `zeebe:`) is refused with one message saying so.

mod check;
mod limits;
mod model;
mod read;

pub use check::element_type;
pub use model::*;
pub use read::{read, DeployError, USER_TASK_JOB_TYPE};
