//! Assets: the customer's installed base, made by order completion (`cpq_order::assets`) and
//! read here.

use cpq_core::{Error, Role};
use cpq_customer::commands as customers;
use cpq_db::Tx;
use cpq_order::assets::{asset_list_for_customer, Asset, AssetFilter, AssetPage};
use uuid::Uuid;

use crate::customers::FetchAccount;
use crate::{Call, Operation, Services};

/// One page of a customer account's assets, newest first, after `page.after`. An account that
/// is not in the caller's tenant is not found (rather than an empty list).
pub struct ListCustomerAssets {
    pub customer_account_id: Uuid,
    pub filter: AssetFilter,
    pub page: AssetPage,
}

impl Operation for ListCustomerAssets {
    type Output = Vec<Asset>;
    /// Whoever may read the customer account.
    const ROLES: &'static [Role] = <FetchAccount as Operation>::ROLES;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Vec<Asset>, Error> {
        let tenant = &call.principal.tenant;
        customers::fetch(tx, tenant, self.customer_account_id).await?;
        asset_list_for_customer(
            tx,
            tenant,
            self.customer_account_id,
            &self.filter,
            self.page,
        )
        .await
    }
}
