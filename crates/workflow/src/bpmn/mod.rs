//! BPMN 2.0 XML as Camunda Modeler writes it for Camunda 8, read into the engine's model.
//!
//! Supported: none, message and timer start events; none, error, terminate and message end
//! events; service, send and user tasks (native `zeebe:userTask` and the older job-based form);
//! receive tasks; message and timer intermediate catch events; none and message intermediate
//! throw events; timer, error and message boundary events (interrupting or not); exclusive
//! gateways (conditions, default flow); parallel gateways; embedded subprocesses; parallel and
//! sequential multi-instance (`zeebe:loopCharacteristics`) on tasks and subprocesses; the zeebe
//! extensions `taskDefinition`, `taskHeaders`, `ioMapping`, `subscription`, `userTask`,
//! `assignmentDefinition`, `taskSchedule`. Diagram interchange, collaboration pools, data objects
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
