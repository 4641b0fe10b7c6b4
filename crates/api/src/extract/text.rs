//! Checks every input string once, at the edge, for what PostgreSQL cannot store: the NUL
//! character (U+0000) is refused in `text` and in `jsonb`, so a NUL that reached a query would be
//! a 500. Bodies are checked at any depth, keys included; query and path parameters by name.
//! Header values cannot carry NUL at all (the HTTP parser refuses them).

use cpq_core::{Error, FieldError};
use serde_json::Value;

const NUL_DETAIL: &str = "must not contain the NUL character (U+0000)";

fn nul_error(field: String) -> FieldError {
    FieldError::new(field, "invalid-character", NUL_DETAIL)
}

/// A readable name for a key or parameter that may itself hold NUL or other control characters.
fn printable(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_unicode().collect::<Vec<char>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn join(path: &str, key: &str) -> String {
    let key = printable(key);
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

fn walk(value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match value {
        Value::String(s) => {
            if s.contains('\0') {
                errors.push(nul_error(path.to_owned()));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let at = join(path, key);
                if key.contains('\0') {
                    errors.push(nul_error(at.clone()));
                }
                walk(item, &at, errors);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Every field of a JSON document whose key or string value holds NUL, by path
/// (`items[2].configuration.offering`).
pub fn nul_fields(value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(value, "", &mut errors);
    errors
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one query component (`+` is a space), as `application/x-www-form-urlencoded`.
fn decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Every query parameter whose name or value holds NUL, by name.
pub fn nul_query_parameters(query: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name);
        let value = decode(value);
        if name.contains(&0) || value.contains(&0) {
            errors.push(nul_error(printable(&String::from_utf8_lossy(&name))));
        }
    }
    errors
}

/// Every path parameter (decoded) that holds NUL, by name.
pub fn nul_path_parameters(params: Vec<(String, String)>) -> Vec<FieldError> {
    params
        .into_iter()
        .filter(|(_, v)| v.contains('\0'))
        .map(|(name, _)| nul_error(name))
        .collect()
}

/// The problem for fields holding NUL.
pub fn refuse_nul(errors: Vec<FieldError>) -> Result<(), Error> {
    if errors.is_empty() {
        return Ok(());
    }
    let fields: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
    Err(Error::Malformed {
        detail: format!("{} {NUL_DETAIL}", fields.join(", ")),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        let mut f: Vec<String> = errors.into_iter().map(|e| e.field).collect();
        f.sort();
        f
    }

    #[test]
    fn nul_is_found_at_any_depth_and_in_keys() {
        let doc = json!({
            "label": "m\u{0}",
            "ok": "fine",
            "items": [{ "line_id": "1" }, { "configuration": { "offering": "\u{0}x" } }],
            "vars": { "a\u{0}b": 1 },
        });
        assert_eq!(
            fields(nul_fields(&doc)),
            vec!["items[1].configuration.offering", "label", "vars.a\\u{0}b"]
        );
        assert!(nul_fields(&json!({ "a": ["b", { "c": "d" }], "e": 1 })).is_empty());
        assert_eq!(fields(nul_fields(&json!("\u{0}"))), vec![""]);
    }

    #[test]
    fn nul_in_a_query_is_named_by_its_parameter() {
        assert_eq!(
            fields(nul_query_parameters(
                "market=%00DE&q=sd-wan&x%00=1&ok=%2500"
            )),
            vec!["market", "x\\u{0}"]
        );
        assert!(nul_query_parameters("a=%0&b=%&c=%zz&d=+").is_empty());
    }
}
