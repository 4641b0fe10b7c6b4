//! Customer accounts: create, change, close, read and list.

use cpq_core::{Error, Role};
use cpq_customer::store::{customer_account_list, AccountFilter};
use cpq_customer::{commands, AccountInput, AccountPatch, CustomerAccount};
use cpq_db::Tx;
use uuid::Uuid;

use crate::{Call, Operation, Services};

const SELLERS: &[Role] = &[Role::Sales];
const READERS: &[Role] = &[
    Role::Sales,
    Role::Approver,
    Role::OrderOperations,
    Role::Operator,
    Role::CatalogManager,
];

/// Opens an account; every field problem is reported at once.
pub struct CreateAccount(pub AccountInput);

impl Operation for CreateAccount {
    type Output = CustomerAccount;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<CustomerAccount, Error> {
        commands::create(tx, &call.meta, &self.0).await
    }
}

/// A merge patch of the account at `expected_version`.
pub struct UpdateAccount {
    pub id: Uuid,
    pub expected_version: i64,
    pub patch: AccountPatch,
}

impl Operation for UpdateAccount {
    type Output = CustomerAccount;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<CustomerAccount, Error> {
        commands::update(tx, &call.meta, self.id, self.expected_version, &self.patch).await
    }
}

pub struct CloseAccount {
    pub id: Uuid,
    pub expected_version: i64,
    pub reason: String,
}

impl Operation for CloseAccount {
    type Output = CustomerAccount;
    const ROLES: &'static [Role] = SELLERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<CustomerAccount, Error> {
        commands::close(tx, &call.meta, self.id, self.expected_version, &self.reason).await
    }
}

pub struct FetchAccount(pub Uuid);

impl Operation for FetchAccount {
    type Output = CustomerAccount;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<CustomerAccount, Error> {
        commands::fetch(tx, &call.principal.tenant, self.0).await
    }
}

/// One page of accounts in id order: at most `limit` after `after`.
pub struct ListAccounts {
    pub filter: AccountFilter,
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl Operation for ListAccounts {
    type Output = Vec<CustomerAccount>;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        customer_account_list(
            tx,
            &call.principal.tenant,
            &self.filter,
            self.after,
            self.limit,
        )
        .await
    }
}
