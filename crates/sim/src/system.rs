//! The simulated external systems and what each answers: its results and its business error
//! codes. Pure.

use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Inventory,
    Provisioning,
    Billing,
    Crm,
    Notification,
}

impl System {
    pub const ALL: [System; 5] = [
        System::Inventory,
        System::Provisioning,
        System::Billing,
        System::Crm,
        System::Notification,
    ];

    pub fn parse(s: &str) -> Option<System> {
        System::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            System::Inventory => "inventory",
            System::Provisioning => "provisioning",
            System::Billing => "billing",
            System::Crm => "crm",
            System::Notification => "notification",
        }
    }

    /// The business error codes a randomly injected permanent failure picks from.
    pub fn business_codes(self) -> &'static [&'static str] {
        match self {
            System::Inventory => &["NO_CAPACITY", "OUT_OF_STOCK"],
            System::Provisioning => &["INVALID_ADDRESS", "NO_CAPACITY"],
            System::Billing => &["CREDIT_CHECK_FAILED", "INVALID_BILLING_ACCOUNT"],
            System::Crm => &["CUSTOMER_NOT_FOUND"],
            System::Notification => &["INVALID_RECIPIENT"],
        }
    }

    /// What a successful execution returns: identifiers derived from the request id, so that the
    /// same request always yields the same result.
    pub fn result(self, operation: &str, request_id: Uuid) -> Value {
        let id = request_id.simple().to_string().to_uppercase();
        let tail = &id[id.len() - 12..];
        match self {
            System::Inventory => json!({
                "operation": operation,
                "reservation_id": format!("RES-{tail}"),
                "status": "reserved",
            }),
            System::Provisioning => json!({
                "operation": operation,
                "service_id": format!("SVC-{tail}"),
                "status": "active",
            }),
            System::Billing => json!({
                "operation": operation,
                "account_id": format!("BA-{tail}"),
                "subscription_id": format!("SUB-{tail}"),
                "status": "active",
            }),
            System::Crm => json!({
                "operation": operation,
                "ticket_id": format!("TCK-{tail}"),
                "status": "open",
            }),
            System::Notification => json!({
                "operation": operation,
                "message_id": format!("MSG-{tail}"),
                "status": "queued",
            }),
        }
    }
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for s in System::ALL {
            assert_eq!(System::parse(s.as_str()), Some(s));
        }
        assert_eq!(System::parse("erp"), None);
        assert_eq!(System::parse("Inventory"), None);
    }

    #[test]
    fn results_are_deterministic_per_request() {
        let id = Uuid::now_v7();
        for s in System::ALL {
            assert_eq!(s.result("op", id), s.result("op", id));
            assert!(!s.business_codes().is_empty());
        }
        assert!(System::Inventory.result("reserve", id)["reservation_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("RES-")));
    }
}
