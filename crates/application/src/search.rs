//! Quote search: pages of the quote search projection (`cpq_quote::store::search`), which the
//! consumer builds from the event topics.

use chrono::{DateTime, Utc};
use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_quote::store::search::{quote_search_list, QuoteSearchEntry, SearchFilter};
use uuid::Uuid;

use crate::{Call, Operation, Services};

const READERS: &[Role] = &[
    Role::Sales,
    Role::Approver,
    Role::OrderOperations,
    Role::Operator,
];

/// One page of the projection, newest event first: at most `limit` after the key `after`
/// (`(updated_at, quote_id)` of the previous page's last row).
pub struct SearchQuotes {
    pub filter: SearchFilter,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl Operation for SearchQuotes {
    type Output = Vec<QuoteSearchEntry>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        quote_search_list(
            tx,
            &call.principal.tenant,
            &self.filter,
            self.after,
            self.limit,
        )
        .await
    }
}
