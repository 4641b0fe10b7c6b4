use std::future::Future;
use std::time::Instant;

/// Runs one named query and records its duration in `db_query_duration_seconds{query, outcome}`.
/// Every statement the platform sends goes through here, so that each shows up by name in
/// metrics and in plan-baseline tests.
pub async fn timed<T, E, F>(query: &'static str, fut: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let result = fut.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!("db_query_duration_seconds", "query" => query, "outcome" => outcome)
        .record(start.elapsed().as_secs_f64());
    result
}
