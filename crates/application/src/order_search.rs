//! The operational order search and stuck fulfillment tasks (`cpq_order::search`): pages for
//! order operations, and the stuck-task counts the worker publishes as a gauge.

use chrono::{DateTime, Utc};
use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_order::search::{
    order_search_list, stuck_task_counts, stuck_task_list, OrderFilter, OrderSummary, StuckFilter,
    StuckKey, StuckTask, DEFAULT_STUCK_AFTER,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Call, Operation, Services};

/// Orders and their tasks are read by whoever may read orders.
const READERS: &[Role] = crate::quotes::READERS;

/// One page of orders, newest first: at most `limit` after the key `after`
/// (`(created_at, order_id)` of the previous page's last row).
pub struct SearchOrders {
    pub filter: OrderFilter,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl Operation for SearchOrders {
    type Output = Vec<OrderSummary>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        order_search_list(
            tx,
            &call.principal.tenant,
            &self.filter,
            self.after,
            self.limit,
        )
        .await
    }
}

/// One page of stuck tasks, the longest stuck first: at most `limit` after the key `after`.
pub struct ListStuckTasks {
    pub filter: StuckFilter,
    pub after: Option<StuckKey>,
    pub limit: i64,
}

impl Operation for ListStuckTasks {
    type Output = Vec<StuckTask>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        stuck_task_list(
            tx,
            &call.principal.tenant,
            &self.filter,
            self.after.as_ref(),
            self.limit,
        )
        .await
    }
}

/// Sets the gauge `fulfillment_tasks_stuck{system}` from the count across tenants (tasks in
/// flight for longer than 15 minutes), every system listed; the worker calls it on its timer
/// scan.
pub async fn publish_stuck_tasks(pool: &PgPool) -> Result<(), Error> {
    for (system, n) in stuck_task_counts(pool, DEFAULT_STUCK_AFTER).await? {
        metrics::gauge!("fulfillment_tasks_stuck", "system" => system).set(n as f64);
    }
    Ok(())
}
