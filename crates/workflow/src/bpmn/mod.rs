//! BPMN 2.0 XML as Camunda Modeler writes it for Camunda 8, read into the engine's model.
//!
//! Supported: none, message and timer start events; none, error, terminate and message end
//! events; service, send and user tasks (native `zeebe:userTask` and the older job-based form);
//! receive tasks; message and timer intermediate catch events; none and message intermediate
//! throw events; timer, error and message boundary events (interrupting or not); exclusive
//! gateways (conditions, default flow); parallel gateways; embedded subprocesses; parallel and
//! sequential multi-instance (`zeebe:loopCharacteristics`) on tasks and subprocesses; the zeebe
//! extensions `taskDefinition`, `taskHeaders`, `ioMapping`, `subscription`, `userTask`,
//! `assignmentDefinition`, `taskSchedule`. Diagram interchange, collaboration pools, text
//! annotations and attributes of other namespaces are ignored. Any other element inside a process
//! makes [`read`] fail with one [`DeployError::Unsupported`] that names each by id and type.

mod check;
mod model;
mod read;

pub use check::element_type;
pub use model::*;
pub use read::{read, DeployError, USER_TASK_JOB_TYPE};
