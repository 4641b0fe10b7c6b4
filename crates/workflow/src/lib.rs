//! The workflow engine. So far: the BPMN reader and validator ([`bpmn`]), which turns a Camunda
//! Modeler file into a [`bpmn::Definitions`] model of the elements the engine supports, and
//! refuses anything else with one error naming each unsupported element by id and type.

pub mod bpmn;
pub mod decisions;
pub mod deployment;
pub mod feel;
pub mod instances;
pub mod routing;
pub mod runtime;
