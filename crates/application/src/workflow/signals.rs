//! Broadcasting a signal in the caller's tenant (Camunda 8's broadcast-signal): every signal
//! catch event, boundary event and event subprocess start waiting on its name is triggered, and
//! every process whose latest version starts with a signal start event of the name starts.

use cpq_core::{Error, FieldError, Role};
use cpq_db::Tx;
use cpq_workflow::instances::{self, Broadcast};
use serde_json::{Map, Value};

use crate::{Call, Operation, Services};

const BROADCASTERS: &[Role] = &[Role::Operator, Role::OrderOperations, Role::Worker];

pub struct BroadcastSignal {
    pub signal_name: String,
    pub variables: Map<String, Value>,
}

impl Operation for BroadcastSignal {
    type Output = Broadcast;
    const ROLES: &'static [Role] = BROADCASTERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Broadcast, Error> {
        if self.signal_name.trim().is_empty() {
            return Err(Error::validation(vec![FieldError::new(
                "signal_name",
                "required",
                "signal_name must not be blank",
            )]));
        }
        instances::broadcast_signal(
            tx,
            call.meta.tenant.as_str(),
            &self.signal_name,
            self.variables,
            call.meta.occurred_at,
        )
        .await
    }
}
