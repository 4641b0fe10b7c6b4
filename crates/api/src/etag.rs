//! Versions as entity tags: a resource at version 7 has `ETag: "7"`. Changes must send
//! `If-Match` with the version they were based on.

use axum::http::HeaderValue;

pub fn format(version: &str) -> String {
    format!("\"{version}\"")
}

pub fn header(version: i64) -> HeaderValue {
    // A quoted integer is always a valid header value.
    HeaderValue::from_str(&format(&version.to_string()))
        .unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The version named by an `If-Match` value: `"7"` → 7. Weak tags, lists and `*` are not accepted:
/// a change must name exactly the version it was based on.
pub fn parse_if_match(raw: &str) -> Option<i64> {
    raw.trim()
        .strip_prefix('"')?
        .strip_suffix('"')?
        .parse()
        .ok()
        .filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_formatted_version_parses_back(v in 1i64..i64::MAX) {
            prop_assert_eq!(parse_if_match(&format(&v.to_string())), Some(v));
        }
    }

    #[test]
    fn only_strong_single_tags_are_accepted() {
        for bad in ["*", "W/\"3\"", "3", "\"3\", \"4\"", "\"-1\"", "\"x\""] {
            assert_eq!(parse_if_match(bad), None, "{bad}");
        }
    }
}
