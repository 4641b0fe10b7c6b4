//! The server side of each step: `cpq-api`'s own `http_request_duration_seconds` (from its
//! `/metrics`, read before and after the run) against what the load generator measured, per
//! route. The difference is the network, the client and waiting for a core: on one machine
//! with two cores, the load generator competes with the API and PostgreSQL for them.

use std::collections::BTreeMap;

use goose::metrics::GooseMetrics;

/// Per (method, route): seconds summed and requests counted, over every status.
pub type Scrape = BTreeMap<(String, String), (f64, u64)>;

/// The API's request durations now, or `None` when `/metrics` does not answer.
pub async fn scrape(host: &str) -> Option<Scrape> {
    let text = reqwest::get(format!("{}/metrics", host.trim_end_matches('/')))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut out = Scrape::new();
    for line in text.lines() {
        let (sum, rest) = if let Some(r) = line.strip_prefix("http_request_duration_seconds_sum{") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("http_request_duration_seconds_count{") {
            (false, r)
        } else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
        };
        let (Some(method), Some(route), Ok(v)) =
            (label("method"), label("route"), value.parse::<f64>())
        else {
            continue;
        };
        let e = out.entry((method, route)).or_default();
        if sum {
            e.0 += v;
        } else {
            e.1 += v as u64;
        }
    }
    Some(out)
}

/// A Markdown table per route: requests, mean time in the API, mean time the client saw, and the
/// API's share of it.
pub fn print_share(
    m: &GooseMetrics,
    routes: &[(&str, &str, &str)],
    before: &Scrape,
    after: &Scrape,
) {
    // Client side, per route: total microseconds and requests of the steps that use it.
    let mut client: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for r in m.requests.values() {
        if let Some((_, method, route)) = routes.iter().find(|(step, _, _)| *step == r.path) {
            let e = client
                .entry(((*method).to_owned(), (*route).to_owned()))
                .or_default();
            e.0 += r.raw_data.total_time_us;
            e.1 += r.raw_data.counter as u64;
        }
    }
    println!();
    println!(
        "server-side share (cpq-api's http_request_duration_seconds, before and after the run):"
    );
    println!();
    println!("| route | requests | server mean (ms) | client mean (ms) | server share |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (key, (client_us, client_n)) in &client {
        let (s1, n1) = after.get(key).copied().unwrap_or_default();
        let (s0, n0) = before.get(key).copied().unwrap_or_default();
        let n = n1.saturating_sub(n0);
        if n == 0 || *client_n == 0 {
            continue;
        }
        let server_ms = (s1 - s0) * 1000.0 / n as f64;
        let client_ms = *client_us as f64 / 1000.0 / *client_n as f64;
        println!(
            "| {} {} | {n} | {server_ms:.2} | {client_ms:.2} | {:.0} % |",
            key.0,
            key.1,
            100.0 * server_ms / client_ms
        );
    }
}
