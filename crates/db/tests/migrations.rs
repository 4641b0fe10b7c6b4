#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Migrations: all of them apply to an empty database, re-running changes nothing, the schema
//! version is read correctly, and the application role cannot bypass row-level security.

use cpq_db::migrations::{migrate, required_version, schema_status, MIGRATOR};
use cpq_testkit::TestDb;
use sqlx::PgPool;

/// A description of the schema: tables, columns, indexes, policies, grants.
async fn schema_snapshot(pool: &PgPool) -> Vec<String> {
    let mut rows: Vec<String> = sqlx::query_scalar(
        "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
           FROM information_schema.columns WHERE table_schema = 'public' \
         UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' \
         UNION ALL SELECT 'policy ' || tablename || '.' || policyname || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '') \
           FROM pg_policies WHERE schemaname = 'public' \
         UNION ALL SELECT 'rls ' || relname || ' ' || relrowsecurity FROM pg_class \
           WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' \
         UNION ALL SELECT 'grant ' || table_name || ' ' || grantee || ' ' || privilege_type \
           FROM information_schema.role_table_grants WHERE table_schema = 'public'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.sort();
    rows
}

#[tokio::test]
async fn all_migrations_apply_to_an_empty_database_and_rerunning_is_a_no_op() {
    let db = TestDb::empty().await;
    let pool = db.owner_pool().await;

    let before = schema_status(&pool).await.unwrap();
    assert_eq!(before.applied, None);
    assert!(before
        .incompatibility()
        .unwrap()
        .contains("no migrations applied"));

    let first = migrate(&pool).await.unwrap();
    assert_eq!(first.before, None);
    assert_eq!(first.after, Some(required_version()));
    assert_eq!(first.applied.len(), MIGRATOR.iter().count());

    let schema = schema_snapshot(&pool).await;
    assert!(schema
        .iter()
        .any(|r| r.starts_with("column customer_account.tenant_id")));
    let migrations_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();

    let second = migrate(&pool).await.unwrap();
    assert!(
        second.applied.is_empty(),
        "re-run applied {:?}",
        second.applied
    );
    assert_eq!(second.after, first.after);
    assert_eq!(
        schema_snapshot(&pool).await,
        schema,
        "re-running changed the schema"
    );
    let rows_after: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows_after, migrations_rows);

    assert_eq!(schema_status(&pool).await.unwrap().incompatibility(), None);
    pool.close().await;
}

#[tokio::test]
async fn an_older_schema_is_reported_behind() {
    let n = MIGRATOR.iter().count();
    assert!(
        n >= 2,
        "needs at least two migrations to build an older schema"
    );
    let db = TestDb::migrated_to(n - 1).await;
    let pool = db.app_pool().await;
    let status = schema_status(&pool).await.unwrap();
    assert!(status.applied < Some(required_version()));
    let reason = status.incompatibility().unwrap();
    assert!(reason.contains("older than version"), "{reason}");
    pool.close().await;
}

#[tokio::test]
async fn every_tenant_owned_table_has_row_level_security_that_the_app_role_cannot_bypass() {
    let db = TestDb::fresh().await;
    let owner = db.owner_pool().await;
    let tables: Vec<(String, bool, i64)> = sqlx::query_as(
        "SELECT c.relname, c.relrowsecurity, \
                (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname AND p.schemaname = 'public') \
           FROM pg_class c JOIN information_schema.columns col \
             ON col.table_name = c.relname AND col.table_schema = 'public' AND col.column_name = 'tenant_id' \
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert!(tables.len() >= 4, "{tables:?}");
    for (table, rls, policies) in &tables {
        assert!(*rls, "{table} has no row-level security");
        assert!(*policies >= 1, "{table} has no policy");
    }

    let app = db.app_pool().await;
    let (bypass, superuser): (bool, bool) =
        sqlx::query_as("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&app)
            .await
            .unwrap();
    assert!(!bypass && !superuser);
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND pg_get_userbyid(relowner) = current_user",
    )
    .fetch_one(&app)
    .await
    .unwrap();
    assert_eq!(owned, 0, "the application role must own no table");
    app.close().await;
    owner.close().await;
}
