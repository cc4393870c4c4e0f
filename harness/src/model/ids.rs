//! Validated identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable, dotted check id such as `kernel.namespaces.net`: lowercase segments of letters,
/// digits and dashes, separated by dots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CheckId(String);

impl CheckId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CheckId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let ok = !value.is_empty()
            && value.split('.').all(|segment| {
                segment
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if ok {
            Ok(CheckId(value))
        } else {
            Err(format!(
                "invalid check id `{value}` (expected dotted lowercase segments such as `kernel.namespaces.net`)"
            ))
        }
    }
}

impl From<CheckId> for String {
    fn from(id: CheckId) -> String {
        id.0
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A kebab-case name: suites, profiles, probe names and parameters
/// (`kernel-features`, `min-kernel`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let ok = value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Name(value))
        } else {
            Err(format!(
                "invalid name `{value}` (expected kebab-case such as `kernel-features`)"
            ))
        }
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_are_dotted_lowercase() {
        for good in ["kernel.namespaces.net", "a", "os.release-id.2"] {
            assert!(CheckId::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["", "Kernel.x", "a..b", "a.b.", "a b", ".a", "a.-b"] {
            assert!(CheckId::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_kebab_case() {
        assert!(Name::try_from("kernel-features".to_owned()).is_ok());
        for bad in ["", "Kernel", "a_b", "-a", "a.b"] {
            assert!(Name::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
