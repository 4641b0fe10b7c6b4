//! Where dsntk 0.3.0 falls short of FEEL and would answer null where the language defines a
//! value. Such an evaluation is reported as not supported ([`crate::DecisionError::Unsupported`])
//! instead of answering wrongly. Two nets:
//!
//! - before evaluating, the FEEL text of the decision and of everything it requires or invokes is
//!   scanned for literals past the engine's range (`text_gap`): dates with a year beyond
//!   chrono's ±262,142, which FEEL allows up to ±999,999,999;
//! - after evaluating, a null result whose engine message names one of its limits is turned into
//!   the error (`null_gap`): a regular expression with a back-reference (dsntk's `regex` crate has
//!   none, XML Schema regexes do), a rounding scale between 6,145 and 6,176 (FEEL allows up to
//!   6,176, dsntk up to 6,144).
//!
//! A limit met deeper inside an expression whose outer result is not null is not caught.

/// The largest year the engine's dates hold (chrono's `NaiveDate::MAX`); FEEL's is 999,999,999.
const ENGINE_MAX_YEAR: u64 = 262_142;
const FEEL_MAX_YEAR: u64 = 999_999_999;
/// The largest rounding scale the engine takes; FEEL's is 6,176.
const ENGINE_MAX_SCALE: i64 = 6_144;
const FEEL_MAX_SCALE: i64 = 6_176;

fn year_beyond_engine(year: &str) -> bool {
    year.len() <= 10
        && year
            .parse::<u64>()
            .is_ok_and(|y| (ENGINE_MAX_YEAR + 1..=FEEL_MAX_YEAR).contains(&y))
}

/// The first literal in one FEEL text the engine cannot represent, as the reason it is not
/// supported.
pub(crate) fn text_gap(text: &str) -> Option<String> {
    let reason = || {
        Some(format!(
            "dates with a year beyond +-{ENGINE_MAX_YEAR} are not supported (FEEL allows +-{FEEL_MAX_YEAR})"
        ))
    };
    // A date string literal: "YYYYYY-MM-DD..." with an optional sign.
    let mut rest = text;
    while let Some(at) = rest.find('"') {
        let literal = &rest[at + 1..];
        let end = literal.find('"').unwrap_or(literal.len());
        let body = literal[..end].trim_start_matches('-');
        if let Some((year, after)) = body.split_once('-') {
            let date_like = after.len() >= 5
                && after.as_bytes()[..2].iter().all(u8::is_ascii_digit)
                && after.as_bytes()[2] == b'-';
            if date_like && year_beyond_engine(year) {
                return reason();
            }
        }
        rest = literal.get(end + 1..).unwrap_or("");
    }
    // date(year, month, day) with a literal year.
    for (at, _) in text.match_indices("date(") {
        let args = text[at + "date(".len()..]
            .trim_start()
            .trim_start_matches('-');
        let year: String = args.chars().take_while(char::is_ascii_digit).collect();
        if args[year.len()..].trim_start().starts_with(',') && year_beyond_engine(&year) {
            return reason();
        }
    }
    None
}

/// Whether a null result's engine message names one of the engine's limits (not a FEEL error),
/// as the reason it is not supported.
pub(crate) fn null_gap(message: &str) -> Option<String> {
    if let Some(pattern) = message
        .strip_prefix("<FeelRegexError> invalid regex pattern: '")
        .and_then(|p| p.strip_suffix('\''))
    {
        return has_back_reference(pattern)
            .then(|| format!("regular expression '{pattern}': back-references are not supported"));
    }
    let scale = message
        .split_once("invalid scale, allowed range is ")
        .and_then(|(_, rest)| rest.rsplit_once("actual is "))
        .and_then(|(_, n)| n.trim().parse::<i64>().ok())?;
    (scale > ENGINE_MAX_SCALE && scale <= FEEL_MAX_SCALE).then(|| {
        format!("rounding to scale {scale} is not supported (at most {ENGINE_MAX_SCALE}, FEEL allows {FEEL_MAX_SCALE})")
    })
}

/// Whether an XML Schema regular expression refers back to a group it has already opened
/// (`(a)\1`), outside a character class: valid there, refused by the engine. A reference to a
/// group that does not exist, or inside a class, is an error in XML Schema too.
fn has_back_reference(pattern: &str) -> bool {
    let (mut groups, mut in_class) = (0u32, false);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d @ '1'..='9') if !in_class && d.to_digit(10).is_some_and(|n| n <= groups) => {
                    return true;
                }
                _ => {}
            },
            '[' => in_class = true,
            ']' => in_class = false,
            '(' if !in_class && chars.peek() != Some(&'?') => groups += 1,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_past_the_engine_range_but_inside_feel_are_gaps() {
        assert!(text_gap(r#"string(date("999999999-12-31"))"#).is_some());
        assert!(text_gap(r#"date and time("-999999999-12-31T23:59:59@Europe/Paris")"#).is_some());
        assert!(text_gap("string(date(-999999999,12,31))").is_some());
        assert!(text_gap(r#"date("262143-01-01")"#).is_some());
        // Inside the engine's range, or past FEEL's (null is the right answer there).
        assert_eq!(text_gap(r#"date("262142-12-31")"#), None);
        assert_eq!(text_gap(r#"date("9999999999-12-25")"#), None);
        assert_eq!(text_gap("date(1000999999,12,32)"), None);
        assert_eq!(text_gap(r#"duration("P999999999M")"#), None);
        assert_eq!(text_gap(r#""999999999" + "-12-31""#), None);
    }

    #[test]
    fn back_references_and_large_scales_are_gaps_other_nulls_are_not() {
        let regex = |p: &str| null_gap(&format!("<FeelRegexError> invalid regex pattern: '{p}'"));
        assert!(regex(r"(?i)(a)\1").is_some());
        assert!(regex(r"(a)(b)\2").is_some());
        assert_eq!(regex(r"(.)\3"), None);
        assert_eq!(regex(r"\3"), None);
        assert_eq!(regex(r"(asd)[\1]"), None);
        assert_eq!(regex(r"\p{ IsBasicLatin}+"), None);
        let scale = |n: i64| {
            null_gap(&format!(
                "[core::round_up] <FeelNumberError> invalid scale, allowed range is -6111..6144, actual is {n}"
            ))
        };
        assert!(scale(6176).is_some());
        assert!(scale(6145).is_some());
        assert_eq!(scale(6177), None);
        assert_eq!(scale(-6112), None);
        assert_eq!(null_gap("[division] division by zero"), None);
    }
}
