//! Publishing a message in the caller's tenant: correlated to a waiting instance, starting one,
//! buffered for its time to live, or dropped.

use std::time::Duration;

use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::instances::{self, Message, Publication, MAX_MESSAGE_TTL};
use serde_json::{Map, Value};

use crate::{Call, Operation, Services};

const PUBLISHERS: &[Role] = &[Role::Operator, Role::OrderOperations, Role::Worker];

pub struct PublishMessage {
    pub name: String,
    pub correlation_key: String,
    /// 0 to [`MAX_MESSAGE_TTL`]; 0: correlated at once or dropped.
    pub time_to_live_ms: u64,
    /// Deduplicates while a message with this name and id lives.
    pub message_id: Option<String>,
    pub variables: Map<String, Value>,
}

impl PublishMessage {
    /// Every field problem at once.
    fn validate(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(FieldError::new(
                "name",
                "required",
                "name must not be blank",
            ));
        }
        if self.correlation_key.is_empty() {
            errors.push(FieldError::new(
                "correlation_key",
                "required",
                "correlation_key must not be empty",
            ));
        }
        if u128::from(self.time_to_live_ms) > MAX_MESSAGE_TTL.as_millis() {
            errors.push(FieldError::new(
                "time_to_live_ms",
                "out-of-range",
                format!(
                    "time_to_live_ms is 0 to {} (ten years)",
                    MAX_MESSAGE_TTL.as_millis()
                ),
            ));
        }
        if self
            .message_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            errors.push(FieldError::new(
                "message_id",
                "required",
                "message_id must not be blank (leave it out for no deduplication)",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(errors))
        }
    }
}

impl Operation for PublishMessage {
    type Output = Publication;
    const ROLES: &'static [Role] = PUBLISHERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Publication, Error> {
        self.validate()?;
        let message = Message {
            tenant: &call.meta.tenant,
            name: &self.name,
            correlation_key: &self.correlation_key,
            time_to_live: Duration::from_millis(self.time_to_live_ms),
            message_id: self.message_id.as_deref(),
            variables: self.variables,
            at: call.meta.occurred_at,
        };
        instances::publish_message(tx, &message).await
    }
}
