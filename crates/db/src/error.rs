//! Driver errors → [`cpq_core::Error`]. What a client may see stays generic; the driver's own text
//! goes into `internal`, which is logged and never sent.

use cpq_core::Error;

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE raised when `statement_timeout` cancels a statement.
const QUERY_CANCELED: &str = "57014";

pub fn db_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => Error::Unavailable {
            dependency: "postgresql",
            internal: e.to_string(),
        },
        sqlx::Error::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
            Error::Unavailable {
                dependency: "postgresql",
                internal: format!("statement timeout: {db}"),
            }
        }
        _ => Error::internal(format!("database: {e}")),
    }
}

/// The name of the unique constraint (or unique index) a statement violated, if that is the error.
pub fn violated_unique_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => {
            db.constraint()
        }
        _ => None,
    }
}
