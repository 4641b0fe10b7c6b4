//! FEEL, the expression language of Zeebe processes (conditions, mappings, correlation keys,
//! timers, job properties), with Zeebe's conventions.
//!
//! An expression starting with `=` is FEEL; anything else is a static string (as in Zeebe).
//! Variables come in as JSON (a missing variable is `null`); results go out as [`Value`], whose
//! [`Value::to_json`] is what a mapping stores (dates, times and durations as ISO 8601 text).
//! The whole language (DMN 1.5 FEEL: ranges, `in`, `between`, `for`, `some`/`every`, filters,
//! paths, function definitions and lambdas, contexts, `instance of`, `@` literals) and DMN's
//! built-in library (string, list, numeric, context, conversion, temporal and range functions)
//! are evaluated by the dsntk engine (`full.rs`), with Camunda's extension functions added in
//! Rust (`full::EXTENSIONS`). Pure: `now()` and `today()` read the instant passed in [`Env`],
//! never the clock (`uuid()` and `random number()` are the only non-deterministic functions).
//! A condition that is not `true` does not hold.
//!
//! Why dsntk rather than extending our own evaluator: dsntk passes 3,399 of the DMN TCK's
//! 3,433 cases in `cpq-decision`, and through this module (Zeebe's conventions, JSON variables)
//! 1,795 of the 1,857 literal-expression cases of the TCK's FEEL folders, where ours covered a
//! subset (comparisons, paths, 13 functions); the crates were already in the workspace for
//! `cpq-decision` (one copy in the tree, though it brings an HTTP client for dsntk's Java
//! functions, which we refuse at parse time); a parsed expression is cached by source, so the
//! engine's parse-per-evaluation costs a map look-up. Numbers leave dsntk as exact text and are
//! rounded to rust_decimal's 28 digits. Differences from feel-scala: README and
//! `tests/feel_conformance.rs`.

mod full;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Decimal),
    String(String),
    List(Vec<Value>),
    Context(BTreeMap<String, Value>),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    /// Days and time.
    Duration(TimeDelta),
    /// Years and months, in months.
    Months(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FeelError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, FeelError> {
    Err(FeelError(msg.into()))
}

/// Variables and the current instant.
pub struct Env<'a> {
    pub variables: &'a serde_json::Map<String, serde_json::Value>,
    /// Outer scopes' variables, innermost first: read for a name `variables` lacks (the
    /// engine's scopes, borrowed rather than merged into one copy).
    pub outer: &'a [&'a serde_json::Map<String, serde_json::Value>],
    pub now: DateTime<Utc>,
}

impl<'a> Env<'a> {
    /// These variables alone at `now`.
    pub fn new(
        variables: &'a serde_json::Map<String, serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Self {
        Env {
            variables,
            outer: &[],
            now,
        }
    }
}

impl Value {
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&n.to_string()))
                .map(Value::Number)
                .unwrap_or(Value::Null),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Context(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The JSON a variable holds after a mapping: temporal values as ISO 8601 strings.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => {
                let n = n.normalize();
                if n.scale() == 0 {
                    n.to_i64()
                        .map(serde_json::Value::from)
                        .unwrap_or_else(|| serde_json::Value::String(n.to_string()))
                } else {
                    n.to_f64()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Context(c) => {
                serde_json::Value::Object(c.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Date(d) => serde_json::Value::String(d.to_string()),
            Value::DateTime(d) => serde_json::Value::String(d.to_rfc3339()),
            Value::Duration(d) => serde_json::Value::String(format_duration(*d)),
            Value::Months(m) => serde_json::Value::String(format!("P{}Y{}M", m / 12, m % 12)),
        }
    }
}

pub fn format_duration(d: TimeDelta) -> String {
    let secs = d.num_seconds();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, (rest % 3600) / 60, rest % 60);
    let mut out = String::from(if secs < 0 { "-P" } else { "P" });
    if days != 0 {
        out.push_str(&format!("{}D", days.abs()));
    }
    out.push('T');
    out.push_str(&format!("{}H{}M{}S", h.abs(), m.abs(), s.abs()));
    out
}

/// Parses an ISO 8601 duration: `P1DT2H30M`, `PT15M`, `PT0.5S`, `P2W` (days and time), or
/// `P1Y6M` (years and months).
pub fn parse_duration(text: &str) -> Result<Value, FeelError> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let body = body
        .strip_prefix('P')
        .ok_or_else(|| FeelError(format!("\"{text}\" is not an ISO 8601 duration")))?;
    let (date_part, time_part) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let mut months = 0i64;
    let mut millis = 0i64;
    let mut any = false;
    let mut number = String::new();
    for c in date_part.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number
            .parse()
            .map_err(|_| FeelError(format!("\"{text}\" is not an ISO 8601 duration")))?;
        number.clear();
        any = true;
        let (total, per_unit) = match c {
            'Y' => (&mut months, 12),
            'M' => (&mut months, 1),
            'W' => (&mut millis, 7 * 86_400_000),
            'D' => (&mut millis, 86_400_000),
            _ => return err(format!("\"{text}\" is not an ISO 8601 duration")),
        };
        *total = n
            .checked_mul(per_unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| too_long(text))?;
    }
    if let Some(t) = time_part {
        for c in t.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let n = Decimal::from_str(&number)
                .map_err(|_| FeelError(format!("\"{text}\" is not an ISO 8601 duration")))?;
            number.clear();
            any = true;
            let unit = match c {
                'H' => 3_600_000,
                'M' => 60_000,
                'S' => 1_000,
                _ => return err(format!("\"{text}\" is not an ISO 8601 duration")),
            };
            millis = n
                .checked_mul(Decimal::from(unit))
                .and_then(|v| v.to_i64())
                .and_then(|v| millis.checked_add(v))
                .ok_or_else(|| too_long(text))?;
        }
    }
    if !any || !number.is_empty() {
        return err(format!("\"{text}\" is not an ISO 8601 duration"));
    }
    let sign = if negative { -1 } else { 1 };
    match (months, millis) {
        (m, 0) if m != 0 => Ok(Value::Months(sign * m)),
        (0, ms) => TimeDelta::try_milliseconds(sign * ms)
            .map(Value::Duration)
            .ok_or_else(|| too_long(text)),
        _ => err(format!("\"{text}\" mixes years/months with days/time")),
    }
}

fn too_long(text: &str) -> FeelError {
    FeelError(format!("\"{text}\" is too long a duration"))
}

enum Kind {
    /// Text without the `=` prefix: a static string.
    Static(Value),
    Feel(Arc<full::Compiled>),
}

/// A parsed expression: FEEL (source began with `=`) or a static string.
pub struct Expression {
    source: String,
    kind: Kind,
}

impl Clone for Expression {
    fn clone(&self) -> Self {
        Expression {
            source: self.source.clone(),
            kind: match &self.kind {
                Kind::Static(v) => Kind::Static(v.clone()),
                Kind::Feel(c) => Kind::Feel(Arc::clone(c)),
            },
        }
    }
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expression")
            .field("source", &self.source)
            .finish()
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Parsed FEEL texts by source: the engine parses an expression each time it evaluates one,
/// and a process has a handful, so a parse after the first is a map look-up.
static PARSED: OnceLock<Mutex<HashMap<String, Arc<full::Compiled>>>> = OnceLock::new();
/// Past this many distinct texts the cache starts over.
const PARSED_MAX: usize = 4096;

fn compiled(feel: &str) -> Result<Arc<full::Compiled>, FeelError> {
    let cache = PARSED.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(c) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(feel) {
        return Ok(Arc::clone(c));
    }
    let c = Arc::new(full::parse(feel)?);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= PARSED_MAX {
        map.clear();
    }
    map.insert(feel.to_owned(), Arc::clone(&c));
    Ok(c)
}

impl Expression {
    pub fn parse(source: &str) -> Result<Expression, FeelError> {
        let kind = match source.trim_start().strip_prefix('=') {
            Some(feel) if feel.trim().is_empty() => return err("empty FEEL expression"),
            Some(feel) => Kind::Feel(compiled(feel)?),
            None => Kind::Static(Value::String(source.to_owned())),
        };
        Ok(Expression {
            source: source.to_owned(),
            kind,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn evaluate(&self, env: &Env) -> Result<Value, FeelError> {
        match &self.kind {
            Kind::Static(v) => Ok(v.clone()),
            Kind::Feel(c) => {
                let feel = self.source.trim_start().strip_prefix('=').unwrap_or("");
                full::evaluate(c, feel, env)
            }
        }
    }

    /// The result as JSON (temporal values as ISO 8601 strings), as a mapping stores it.
    pub fn evaluate_json(&self, env: &Env) -> Result<serde_json::Value, FeelError> {
        self.evaluate(env).map(|v| v.to_json())
    }

    /// Condition semantics: only `true` holds (`null` and `false` do not); other types are errors.
    pub fn holds(&self, env: &Env) -> Result<bool, FeelError> {
        match self.evaluate(env)? {
            Value::Bool(b) => Ok(b),
            Value::Null => Ok(false),
            other => err(format!(
                "condition '{}' gave {other:?}, not a boolean",
                self.source
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn vars() -> serde_json::Map<String, serde_json::Value> {
        json!({
            "total": 120.5, "customer": { "tier": "gold", "id": "C-1" }, "items": [ { "qty": 2 }, { "qty": 3 } ],
            "approved": true, "nothing": null, "due": "2026-12-01"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn ev(src: &str) -> Value {
        let v = vars();
        let env = Env {
            variables: &v,
            outer: &[],
            now: DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
                .unwrap()
                .to_utc(),
        };
        Expression::parse(src).unwrap().evaluate(&env).unwrap()
    }

    fn n(x: i64) -> Value {
        Value::Number(Decimal::from(x))
    }

    /// The fuzzer's `=order.id.id...` (20,000 steps) took 136 s in dsntk's lexer: paths are
    /// bounded at 256 steps, numbers and string literals do not count.
    #[test]
    fn paths_are_bounded_at_256_steps() {
        let path = |steps: usize| format!("=customer{}", ".id".repeat(steps));
        let refused = Expression::parse(&path(20_000)).unwrap_err();
        assert!(
            refused
                .0
                .contains("too many path steps (20000, at most 256)"),
            "{refused}"
        );
        assert!(Expression::parse(&path(257)).is_err());
        assert_eq!(ev(&path(256)), Value::Null);
        assert_eq!(ev(&path(1)), Value::String("C-1".into()));
        let numbers = format!("={}", vec!["1.5"; 300].join(" + ").replace(" + ", ","));
        assert!(Expression::parse(&format!("=sum([{}])", &numbers[1..])).is_ok());
        assert!(Expression::parse(&format!("=\"{}\"", "a.b".repeat(300))).is_ok());
    }

    #[test]
    fn conditions_and_paths() {
        assert_eq!(
            ev("=total > 100 and customer.tier = \"gold\""),
            Value::Bool(true)
        );
        assert_eq!(ev("=not(approved) or total < 10"), Value::Bool(false));
        assert_eq!(ev("=missing > 3"), Value::Null);
        assert_eq!(ev("=is defined(customer.id)"), Value::Bool(true));
        assert_eq!(ev("=is defined(customer.address)"), Value::Bool(false));
        assert_eq!(ev("=is defined(nothing)"), Value::Bool(true));
        assert_eq!(ev("=nothing = null"), Value::Bool(true));
        assert_eq!(
            ev("=if total > 100 then \"big\" else \"small\""),
            Value::String("big".into())
        );
    }

    #[test]
    fn lists_contexts_and_functions() {
        assert_eq!(ev("=sum(items.qty)"), n(5));
        assert_eq!(ev("=count(items)"), n(2));
        assert_eq!(ev("=items[2].qty"), n(3));
        assert_eq!(ev("=items[-1].qty"), n(3));
        assert_eq!(ev("=contains(customer.id, \"C-\")"), Value::Bool(true));
        assert_eq!(ev("={a: 1, \"b c\": [1, 2]}.a"), n(1));
        assert_eq!(
            ev("=\"order-\" + customer.id"),
            Value::String("order-C-1".into())
        );
        assert_eq!(ev("=2 ** 10"), n(1024));
        assert_eq!(ev("plain text"), Value::String("plain text".into()));
    }

    #[test]
    fn dates_durations_and_now() {
        assert_eq!(
            ev("=date(due) + duration(\"P2D\")"),
            Value::Date(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap())
        );
        assert_eq!(
            ev("=now() + duration(\"PT15M\")").to_json(),
            json!("2026-11-22T10:15:00+00:00")
        );
        assert_eq!(ev("=date(due) > today()"), Value::Bool(true));
        assert_eq!(
            ev("=duration(\"P1DT2H\") > duration(\"PT25H\")"),
            Value::Bool(true)
        );
        assert_eq!(parse_duration("P1Y6M").unwrap(), Value::Months(18));
        assert!(parse_duration("P1Y2D").is_err());
        assert!(parse_duration("15M").is_err());
    }

    #[test]
    fn out_of_range_dates_durations_and_sums_are_errors_or_null_never_a_panic() {
        for text in [
            "P9223372036854775807D",
            "P999999999999999999W",
            "PT9999999999999999999999H",
            "P9223372036854775807Y",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
        assert_eq!(ev("=date(due) + duration(\"P99999999999D\")"), Value::Null);
        assert_eq!(ev("=now() + duration(\"P99999999999D\")"), Value::Null);
        assert_eq!(ev("=duration(\"P99999999999D\") * 99999"), Value::Null);
        assert_eq!(ev("=date(due) + duration(\"P99999999Y\")"), Value::Null);
        assert_eq!(
            ev("=sum([79228162514264337593543950335, 79228162514264337593543950335])"),
            Value::Null
        );
    }

    #[test]
    fn syntax_errors_are_errors() {
        for bad in ["=total >", "=(1 + 2", "=\"open", "=a ? b", "=1 2"] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_duration_text_parses_or_is_refused(text in "-?P[0-9]{0,22}[YMWD]?(T[0-9.]{0,24}[HMS]?)?") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn integer_arithmetic_matches(a in -10_000i64..10_000, b in -10_000i64..10_000, c in 1i64..100) {
            prop_assert_eq!(ev(&format!("={a} + {b} * {c} - ({a} - {b})")), n(a + b * c - (a - b)));
            prop_assert_eq!(ev(&format!("={a} < {b}")), Value::Bool(a < b));
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(src in "=\\PC{0,30}") {
            let v = vars();
            let env = Env::new(&v, Utc::now());
            if let Ok(e) = Expression::parse(&src) {
                let _ = e.evaluate(&env);
            }
        }
    }
}
