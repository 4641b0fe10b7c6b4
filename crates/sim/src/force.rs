//! Forcing an outcome, for black-box tests of the platform: a payload field `"sim_force"` (applies
//! to every execution of that request) or a queue per system filled through
//! `POST /admin/systems/{system}/force` (each entry applies to one execution). Pure.
//!
//! | marker | effect |
//! | --- | --- |
//! | `success` | executes and succeeds, whatever the rates say |
//! | `transient` | answers 500 without executing, on every attempt |
//! | `transient:N` | the first N attempts of the key answer 500, then it succeeds (payload only) |
//! | `timeout` | executes and stores its answer, then answers only after `timeout_delay_ms` |
//! | `permanent:CODE` | rejected with business code CODE (422, stored), on any system |
//! | `callback_failed:CODE` | asynchronous: accepted, the callback reports failure CODE (a synchronous system answers 422 CODE) |
//! | `callback_drop` | asynchronous: accepted and succeeds, but the callback is never sent |

use std::fmt;

/// The payload field that forces an outcome.
pub const MARKER_FIELD: &str = "sim_force";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Force {
    Success,
    /// `None`: every attempt; `Some(n)`: the first n attempts of the key.
    Transient(Option<u32>),
    Timeout,
    Permanent(String),
    CallbackFailed(String),
    CallbackDrop,
}

impl Force {
    pub fn parse(s: &str) -> Result<Force, String> {
        let (head, arg) = match s.split_once(':') {
            Some((h, a)) => (h, Some(a)),
            None => (s, None),
        };
        match (head, arg) {
            ("success", None) => Ok(Force::Success),
            ("transient", None) => Ok(Force::Transient(None)),
            ("transient", Some(n)) => match n.parse::<u32>() {
                Ok(n) if n > 0 => Ok(Force::Transient(Some(n))),
                _ => Err(format!(
                    "transient:N takes a count of attempts above 0, not \"{n}\""
                )),
            },
            ("timeout", None) => Ok(Force::Timeout),
            ("permanent", Some(code)) => business_code(code).map(Force::Permanent),
            ("callback_failed", Some(code)) => business_code(code).map(Force::CallbackFailed),
            ("callback_drop", None) => Ok(Force::CallbackDrop),
            ("permanent" | "callback_failed", None) => Err(format!(
                "{head} needs a business code, e.g. {head}:INVALID_ADDRESS"
            )),
            _ => Err(format!(
                "\"{s}\" is not a forced outcome; expected success, transient, transient:N, \
                 timeout, permanent:CODE, callback_failed:CODE or callback_drop"
            )),
        }
    }
}

impl fmt::Display for Force {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Force::Success => f.write_str("success"),
            Force::Transient(None) => f.write_str("transient"),
            Force::Transient(Some(n)) => write!(f, "transient:{n}"),
            Force::Timeout => f.write_str("timeout"),
            Force::Permanent(c) => write!(f, "permanent:{c}"),
            Force::CallbackFailed(c) => write!(f, "callback_failed:{c}"),
            Force::CallbackDrop => f.write_str("callback_drop"),
        }
    }
}

/// Business codes are upper-case words joined by underscores, as real systems send them.
fn business_code(code: &str) -> Result<String, String> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.starts_with(|c: char| c.is_ascii_uppercase())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(code.to_owned())
    } else {
        Err(format!(
            "\"{code}\" is not a business code (upper-case letters, digits and _, at most 64)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_documented_marker() {
        assert_eq!(Force::parse("success"), Ok(Force::Success));
        assert_eq!(Force::parse("transient"), Ok(Force::Transient(None)));
        assert_eq!(Force::parse("transient:2"), Ok(Force::Transient(Some(2))));
        assert_eq!(Force::parse("timeout"), Ok(Force::Timeout));
        assert_eq!(
            Force::parse("permanent:INVALID_ADDRESS"),
            Ok(Force::Permanent("INVALID_ADDRESS".into()))
        );
        assert_eq!(
            Force::parse("callback_failed:NO_CAPACITY"),
            Ok(Force::CallbackFailed("NO_CAPACITY".into()))
        );
        assert_eq!(Force::parse("callback_drop"), Ok(Force::CallbackDrop));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            "",
            "permanent",
            "permanent:",
            "permanent:lower",
            "transient:0",
            "transient:x",
            "timeout:5",
            "explode",
        ] {
            assert!(Force::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(code in "[A-Z][A-Z0-9_]{0,20}", n in 1u32..1000) {
            for f in [
                Force::Success,
                Force::Transient(None),
                Force::Transient(Some(n)),
                Force::Timeout,
                Force::Permanent(code.clone()),
                Force::CallbackFailed(code.clone()),
                Force::CallbackDrop,
            ] {
                prop_assert_eq!(Force::parse(&f.to_string()), Ok(f.clone()));
            }
        }
    }
}
