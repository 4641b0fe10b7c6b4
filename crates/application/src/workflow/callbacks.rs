//! Callbacks from asynchronous external systems (`POST /v1/callbacks/{system}`, issue 15 item 2).
//!
//! A worker's request to an asynchronous system (provisioning) is accepted with 202; the system
//! calls back later, signed with its secret (checked by the entry point, which knows the secrets),
//! naming the request by the idempotency key the worker sent. [`callback_tenant`] finds whose
//! request it was; [`ReceiveCallback`] then runs in that tenant: it keeps the callback by its id
//! (a redelivery is answered [`Received::Duplicate`] and changes nothing), publishes it to the
//! waiting process as the message [`CALLBACK_MESSAGE`] correlated on the idempotency key, and
//! writes its audit record, in one transaction. The message lives for [`CALLBACK_TTL`], so a
//! callback that arrives before the process waits for it (the worker's report of the 202 still
//! in flight) is correlated when it does.

use std::time::Duration;

use cpq_audit::{record, AuditEntry};
use cpq_core::{Error, Role, TenantId};
use cpq_db::Tx;
use cpq_workflow::instances::{self, Message, NewCallback};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::{Call, Operation, Services};

/// The message a callback becomes; the fulfillment process's receive task waits for it.
pub const CALLBACK_MESSAGE: &str = "external-callback";
/// How long a callback waits for its process (buffered) before it is dropped.
pub const CALLBACK_TTL: Duration = Duration::from_secs(24 * 3600);

/// The tenant whose request `idempotency_key` names; 404 (nothing written) when no worker of
/// any tenant sent it.
pub async fn callback_tenant(
    services: &Services,
    idempotency_key: &str,
) -> Result<TenantId, Error> {
    instances::external_call_tenant(&services.db, idempotency_key)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "external request",
            id: idempotency_key.to_owned(),
        })
}

/// What a system reported for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    Succeeded,
    Failed,
}

impl CallbackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackOutcome::Succeeded => "succeeded",
            CallbackOutcome::Failed => "failed",
        }
    }
}

/// One callback, its signature already checked, run in the request's tenant.
pub struct ReceiveCallback {
    pub system: String,
    pub callback_id: Uuid,
    pub idempotency_key: String,
    pub request_id: Option<String>,
    pub outcome: CallbackOutcome,
    /// What the system said on success, or its error on failure.
    pub result: Option<Value>,
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Kept and published to the process.
    Accepted,
    /// Received before: nothing changed.
    Duplicate,
}

impl Operation for ReceiveCallback {
    type Output = Received;
    /// The entry point acts for the system as the platform's integration role.
    const ROLES: &'static [Role] = &[Role::Worker];

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Received, Error> {
        let callback = json!({
            "system": self.system,
            "callback_id": self.callback_id,
            "request_id": self.request_id,
            "outcome": self.outcome.as_str(),
            "result": self.result,
            "error": self.error,
        });
        let kept = instances::external_callback_insert(
            tx,
            &NewCallback {
                tenant: &call.meta.tenant,
                system: &self.system,
                callback_id: self.callback_id,
                idempotency_key: &self.idempotency_key,
                request_id: self.request_id.as_deref(),
                outcome: self.outcome.as_str(),
                body: &callback,
                received_at: call.meta.occurred_at,
            },
        )
        .await?;
        if !kept {
            return Ok(Received::Duplicate);
        }
        let mut variables = Map::new();
        variables.insert("callback".into(), callback.clone());
        let message_id = self.callback_id.to_string();
        instances::publish_message(
            tx,
            &Message {
                tenant: &call.meta.tenant,
                name: CALLBACK_MESSAGE,
                correlation_key: &self.idempotency_key,
                time_to_live: CALLBACK_TTL,
                message_id: Some(&message_id),
                variables,
                at: call.meta.occurred_at,
            },
        )
        .await?;
        let entry = AuditEntry {
            action: "external-callback.receive",
            aggregate_type: "external-callback",
            aggregate_id: self.callback_id,
            before: None,
            after: Some(callback),
            reason: None,
        };
        record(tx, &call.meta, &entry, &[]).await?;
        Ok(Received::Accepted)
    }
}
