//! The execution core: one process instance as a pure state machine.
//!
//! [`apply`] takes a process, the instance's [`InstanceState`], one [`Command`] (start, a job
//! completed, a job threw a BPMN error, cancel) and the current instant, and returns the next
//! state and the [`Effect`]s the caller must carry out in the same transaction (create or cancel
//! jobs, raise incidents). Pure: no I/O, no clock, no randomness, so that persistence can run it
//! under the instance's row lock and tests can drive every path directly.
//!
//! Semantics follow Zeebe: an activity with several outgoing flows takes all of them; an exclusive
//! gateway takes the first flow (in XML order) whose condition is `true`, else its default, else
//! raises an incident; a parallel gateway joins one token per incoming flow and forks to every
//! outgoing flow; an embedded subprocess completes when nothing is left active inside it; a
//! terminate end event ends its scope; an error (thrown by a job or an error end event) is caught
//! by the nearest matching error boundary event up the scope chain, else raises an incident.
//! Variables: input mappings create local variables; job results and output mappings are set in
//! the nearest enclosing scope that already has the variable, else in the process scope.
//!
//! Timers (intermediate catch and boundary events, interrupting or not, ISO 8601 dates,
//! durations and cycles, or FEEL) become [`Effect::ScheduleTimer`]s that the caller fires back as
//! [`Command::TimerFired`]; message catch events, receive tasks and message boundary events open
//! subscriptions (name and evaluated correlation key) that a published message fires back as
//! [`Command::CorrelateMessage`]. Leaving an element cancels its timers and subscriptions.
//!
//! Multi-instance activities (parallel or sequential over `inputCollection`) run a body with one
//! inner instance per item (`inputElement`, `loopCounter`), gather `outputElement` into
//! `outputCollection`, and complete when every inner instance has.
//!
//! Native user tasks (`zeebe:userTask`) become [`Effect::CreateUserTask`] (assignee, candidate
//! groups, due date) and continue on [`Command::CompleteUserTask`].
//!
//! A message start event starts an instance when a published message meets no subscription
//! ([`Command::StartByMessage`]).
//!
//! Timer start events are scheduled at deploy (see `deployment`) for the deploying tenant and start
//! instances through [`Command::StartByTimer`].

mod engine;

pub(crate) use engine::timer_due;
pub use engine::{
    apply, apply_with_decisions, Command, Completed, DecisionCall, DecisionEvaluator, Effect,
    ElementInstance, InstanceState, InstanceStatus, Key, NoDecisions, Repeat, RuntimeError, ROOT,
};
