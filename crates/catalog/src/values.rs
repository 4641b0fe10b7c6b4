//! Characteristic values: checking a JSON value against its characteristic's definition and
//! turning it into an expression [`Value`].

use std::str::FromStr;

use regex::Regex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::document::CharacteristicKind;
use crate::expr::Value;

/// A compiled text pattern; serialized as its source.
#[derive(Debug, Clone)]
pub struct Pattern(pub Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Regex::new(&source)
            .map(Pattern)
            .map_err(serde::de::Error::custom)
    }
}

/// Anchors a pattern so that it must match the whole value.
pub fn compile_pattern(pattern: &str) -> Result<Pattern, String> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map(Pattern)
        .map_err(|e| e.to_string())
}

/// Checks `raw` against the characteristic and converts it. The error says what is wrong, for a
/// person.
pub fn check(
    kind: &CharacteristicKind,
    pattern: Option<&Pattern>,
    raw: &serde_json::Value,
) -> Result<Value, String> {
    match kind {
        CharacteristicKind::Enum { values } => match raw.as_str() {
            Some(s) if values.iter().any(|v| v == s) => Ok(Value::Str(s.to_owned())),
            Some(s) => Err(format!("\"{s}\" is not one of {}", values.join(", "))),
            None => Err("must be one of the listed values, as a string".to_owned()),
        },
        CharacteristicKind::Number { min, max, step } => {
            let n = match raw {
                serde_json::Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
                serde_json::Value::String(s) => Decimal::from_str(s).ok(),
                _ => None,
            }
            .ok_or_else(|| "must be a number".to_owned())?;
            if let Some(min) = min {
                if n < *min {
                    return Err(format!("{n} is below the minimum {min}"));
                }
            }
            if let Some(max) = max {
                if n > *max {
                    return Err(format!("{n} is above the maximum {max}"));
                }
            }
            if let Some(step) = step {
                let base = min.unwrap_or(Decimal::ZERO);
                if !step.is_zero() && !((n - base) % *step).is_zero() {
                    return Err(format!("{n} is not a multiple of {step} from {base}"));
                }
            }
            Ok(Value::Num(n.normalize()))
        }
        CharacteristicKind::Text { max_length, .. } => {
            let s = raw.as_str().ok_or_else(|| "must be a string".to_owned())?;
            if let Some(max) = max_length {
                if s.chars().count() > *max {
                    return Err(format!("is longer than {max} characters"));
                }
            }
            if let Some(p) = pattern {
                if !p.0.is_match(s) {
                    return Err("does not match the required pattern".to_owned());
                }
            }
            Ok(Value::Str(s.to_owned()))
        }
        CharacteristicKind::Boolean => raw
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| "must be true or false".to_owned()),
    }
}

/// The text form of a value, as price surcharges name values: `500`, `gold`, `true`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Num(n) => n.normalize().to_string(),
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// The JSON form of a value, as configurations show them.
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Num(n) => serde_json::Value::String(n.normalize().to_string()),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::List(items) => serde_json::Value::Array(items.iter().map(value_json).collect()),
        Value::Missing => serde_json::Value::Null,
    }
}
