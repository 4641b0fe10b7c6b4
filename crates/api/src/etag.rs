//! Versions as entity tags: a resource at version 7 has `ETag: "7"`. Changes must send
//! `If-Match` with the version they were based on.
//!
//! An entity tag is opaque to clients (RFC 9110 section 8.8.3): any syntactically valid
//! `If-Match` list is a precondition, and one that names none of the resource's current tag fails
//! with 412, whatever its tags look like. Only a value that is not an entity-tag list at all is
//! malformed (400); `*` is refused with 428 because a change must name the version it is based on.

use axum::http::HeaderValue;

pub fn format(version: &str) -> String {
    format!("\"{version}\"")
}

pub fn header(version: i64) -> HeaderValue {
    // A quoted integer is always a valid header value.
    HeaderValue::from_str(&format(&version.to_string()))
        .unwrap_or(HeaderValue::from_static("\"0\""))
}

/// What an `If-Match` field value says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatchValue {
    /// `*`.
    Any,
    /// An empty list (`""`, or only commas and whitespace).
    Empty,
    /// One or more entity tags; for each, the version it names when it is one of ours (a strong
    /// tag `"N"` with N ≥ 1), else `None` (a weak tag, or a tag this API never issues: it matches
    /// nothing under the strong comparison `If-Match` uses).
    Tags(Vec<Option<i64>>),
}

fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses an `If-Match` field value (RFC 9110: `"*" / #entity-tag`, entity-tag =
/// `[ W/ ] DQUOTE *etagc DQUOTE`). `None`: not a valid field value.
pub fn parse_if_match(raw: &[u8]) -> Option<IfMatchValue> {
    let trimmed = raw.trim_ascii();
    if trimmed == b"*" {
        return Some(IfMatchValue::Any);
    }
    let mut tags = Vec::new();
    let mut rest = trimmed;
    loop {
        // Empty list elements (`, ,`) are allowed and ignored.
        while let Some((&b, tail)) = rest.split_first() {
            if is_ows(b) || b == b',' {
                rest = tail;
            } else {
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
        let (weak, tag) = match rest.strip_prefix(b"W/") {
            Some(t) => (true, t),
            None => (false, rest),
        };
        let tag = tag.strip_prefix(b"\"")?;
        let end = tag.iter().position(|&b| b == b'"')?;
        let opaque = &tag[..end];
        if !opaque.iter().all(|&b| is_etagc(b)) {
            return None;
        }
        rest = &tag[end + 1..];
        // After a tag: optional whitespace, then a comma or the end.
        let after = rest.trim_ascii_start();
        if !(after.is_empty() || after.starts_with(b",")) {
            return None;
        }
        rest = after;
        let ours = (!weak)
            .then(|| std::str::from_utf8(opaque).ok())
            .flatten()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|v| *v > 0);
        tags.push(ours);
    }
    Some(if tags.is_empty() {
        IfMatchValue::Empty
    } else {
        IfMatchValue::Tags(tags)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Option<IfMatchValue> {
        parse_if_match(s.as_bytes())
    }

    proptest! {
        #[test]
        fn a_formatted_version_parses_back(v in 1i64..i64::MAX) {
            prop_assert_eq!(parse(&format(&v.to_string())), Some(IfMatchValue::Tags(vec![Some(v)])));
        }

        #[test]
        fn any_quoted_tag_is_a_valid_precondition(tag in "[!#-~]{0,40}") {
            let strong = parse(&format!("\"{tag}\""));
            let weak = parse(&format!("W/\"{tag}\""));
            prop_assert!(matches!(strong, Some(IfMatchValue::Tags(_))));
            prop_assert_eq!(weak, Some(IfMatchValue::Tags(vec![None])));
        }
    }

    #[test]
    fn tags_that_are_not_ours_match_nothing() {
        for other in [
            "\"stale\"",
            "W/\"3\"",
            "\"-1\"",
            "\"0\"",
            "\"x\"",
            "\"\"",
            "\"99999999999999999999\"",
            "\"+3\"",
        ] {
            assert_eq!(
                parse(other),
                Some(IfMatchValue::Tags(vec![None])),
                "{other}"
            );
        }
        assert_eq!(
            parse(" \"3\" , W/\"4\",\"a\" "),
            Some(IfMatchValue::Tags(vec![Some(3), None, None]))
        );
        assert_eq!(
            parse_if_match(b"\"\xff\""),
            Some(IfMatchValue::Tags(vec![None]))
        );
    }

    #[test]
    fn star_empty_and_malformed_values() {
        assert_eq!(parse("*"), Some(IfMatchValue::Any));
        assert_eq!(parse(" * "), Some(IfMatchValue::Any));
        assert_eq!(parse(""), Some(IfMatchValue::Empty));
        assert_eq!(parse(" , "), Some(IfMatchValue::Empty));
        for bad in [
            "3",
            "stale",
            "\"3",
            "\"3\"x",
            "\"3\" \"4\"",
            "*, \"3\"",
            "w/\"3\"",
            "\"a b\"",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
