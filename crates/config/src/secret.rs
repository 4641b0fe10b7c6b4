use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that must never be printed: logs, errors and dumped configuration show `[redacted]`.
/// The only way to the value is [`Secret::expose`], which is greppable.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

pub const REDACTED: &str = "[redacted]";

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(
            toml::to_string(
                &[("k", &s)]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()
            )
            .unwrap()
            .trim(),
            "k = \"[redacted]\""
        );
        assert_eq!(s.expose(), "hunter2");
    }
}
