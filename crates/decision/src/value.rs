//! Values that go into and come out of a decision, in our own terms: the rest of the platform
//! never sees the engine's types. Numbers are kept as exact decimal text (FEEL numbers have 34
//! significant digits, more than `f64` or `rust_decimal` hold); temporal values as ISO 8601
//! text, as Camunda's REST API returns them.

use dsntk_feel::context::FeelContext;
use dsntk_feel::values::Value;
use dsntk_feel::Name;

/// A FEEL value as the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionValue {
    Null,
    Boolean(bool),
    /// Exact decimal text as the engine prints it, e.g. `"0.1"`, `"-12"`, `"100.00"`.
    Number(String),
    String(String),
    /// `2026-12-05`
    Date(String),
    /// `10:15:00` or `10:15:00+01:00` or `10:15:00@Europe/Paris`
    Time(String),
    /// `2026-12-05T10:15:00Z`
    DateTime(String),
    /// ISO 8601 duration: `P1Y2M` or `P1DT2H`
    Duration(String),
    List(Vec<DecisionValue>),
    /// Entries in their order.
    Context(Vec<(String, DecisionValue)>),
}

/// Why a value could not cross the boundary.
pub(crate) type ConversionError = String;

impl DecisionValue {
    /// Into the engine's value; text is checked (a bad date is an error, not a null).
    pub(crate) fn to_engine(&self) -> Result<Value, ConversionError> {
        let typed = |r: dsntk_common::Result<Value>, what: &str, text: &str| {
            r.map_err(|e| format!("'{text}' is not a valid {what}: {e}"))
        };
        Ok(match self {
            DecisionValue::Null => Value::Null(None),
            DecisionValue::Boolean(b) => Value::Boolean(*b),
            DecisionValue::Number(n) => typed(Value::try_from_xsd_decimal(n), "number", n)?,
            DecisionValue::String(s) => Value::String(s.clone()),
            DecisionValue::Date(s) => typed(Value::try_from_xsd_date(s), "date", s)?,
            DecisionValue::Time(s) => typed(Value::try_from_xsd_time(s), "time", s)?,
            DecisionValue::DateTime(s) => {
                typed(Value::try_from_xsd_date_time(s), "date and time", s)?
            }
            DecisionValue::Duration(s) => typed(Value::try_from_xsd_duration(s), "duration", s)?,
            DecisionValue::List(items) => Value::List(
                items
                    .iter()
                    .map(DecisionValue::to_engine)
                    .collect::<Result<_, _>>()?,
            ),
            DecisionValue::Context(entries) => Value::Context(context_to_engine(entries)?),
        })
    }

    /// From the engine's value; functions, ranges and types have no representation here.
    pub(crate) fn from_engine(value: &Value) -> Result<Self, ConversionError> {
        Ok(match value {
            Value::Null(_) => DecisionValue::Null,
            Value::Boolean(b) => DecisionValue::Boolean(*b),
            Value::Number(n) => DecisionValue::Number(n.to_string()),
            Value::String(s) => DecisionValue::String(s.clone()),
            Value::Date(d) => DecisionValue::Date(d.to_string()),
            Value::Time(t) => DecisionValue::Time(t.to_string()),
            Value::DateTime(t) => DecisionValue::DateTime(t.to_string()),
            Value::DaysAndTimeDuration(d) => DecisionValue::Duration(d.to_string()),
            Value::YearsAndMonthsDuration(d) => DecisionValue::Duration(d.to_string()),
            Value::List(items) => DecisionValue::List(
                items
                    .iter()
                    .map(DecisionValue::from_engine)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Context(ctx) => DecisionValue::Context(
                ctx.iter()
                    .map(|(k, v)| Ok((k.to_string(), DecisionValue::from_engine(v)?)))
                    .collect::<Result<_, ConversionError>>()?,
            ),
            other => {
                return Err(format!(
                    "the result is a {}, which has no JSON form",
                    other.type_of()
                ))
            }
        })
    }

    /// Nesting depth: 1 for a scalar, one more per list or context level (iterative, so any
    /// depth is measured without recursion).
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((value, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            match value {
                DecisionValue::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
                DecisionValue::Context(entries) => {
                    stack.extend(entries.iter().map(|(_, v)| (v, depth + 1)))
                }
                _ => {}
            }
        }
        deepest
    }

    /// The engine's canonical form of this value (a date re-printed as the engine prints it, a
    /// number without redundant digits), or why the text is not a valid value of its type.
    pub fn canonical(&self) -> Result<DecisionValue, String> {
        let run = || DecisionValue::from_engine(&self.to_engine()?);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .unwrap_or_else(|_| Err("the DMN engine panicked on this value".to_string()))
    }

    /// From JSON: numbers keep their exact text; strings stay strings (a FEEL expression that
    /// needs a date converts with `date(x)`, as in Camunda).
    pub fn from_json(json: &serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => DecisionValue::Null,
            serde_json::Value::Bool(b) => DecisionValue::Boolean(*b),
            serde_json::Value::Number(n) => DecisionValue::Number(n.to_string()),
            serde_json::Value::String(s) => DecisionValue::String(s.clone()),
            serde_json::Value::Array(items) => {
                DecisionValue::List(items.iter().map(DecisionValue::from_json).collect())
            }
            serde_json::Value::Object(map) => DecisionValue::Context(
                map.iter()
                    .map(|(k, v)| (k.clone(), DecisionValue::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// To JSON: a number becomes a JSON number when that is exact (an integer, or a decimal
    /// whose shortest `f64` form is the same value), otherwise its exact decimal text; dates, times
    /// and durations become ISO 8601 strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            DecisionValue::Null => J::Null,
            DecisionValue::Boolean(b) => J::Bool(*b),
            DecisionValue::Number(n) => {
                exact_json_number(n).unwrap_or_else(|| J::String(n.clone()))
            }
            DecisionValue::String(s)
            | DecisionValue::Date(s)
            | DecisionValue::Time(s)
            | DecisionValue::DateTime(s)
            | DecisionValue::Duration(s) => J::String(s.clone()),
            DecisionValue::List(items) => J::Array(items.iter().map(Self::to_json).collect()),
            DecisionValue::Context(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

pub(crate) fn context_to_engine(
    entries: &[(String, DecisionValue)],
) -> Result<FeelContext, ConversionError> {
    let mut ctx = FeelContext::default();
    for (name, value) in entries {
        let value = value
            .to_engine()
            .map_err(|e| format!("input '{name}': {e}"))?;
        ctx.set_entry(&Name::from(name.as_str()), value);
    }
    Ok(ctx)
}

fn exact_json_number(text: &str) -> Option<serde_json::Value> {
    // Trailing fractional zeros are scale, not value.
    let text = if text.contains('.') && !text.contains(['e', 'E']) {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    };
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    let f = text.parse::<f64>().ok()?;
    if f.is_finite() && f.to_string() == text {
        serde_json::Number::from_f64(f).map(serde_json::Value::Number)
    } else {
        None
    }
}
