//! The one place YAML is parsed. Everything else receives typed values, so a maintained fork of
//! `serde_yaml` can replace it here alone.
//!
//! Errors carry the file, the line and column, and the key path (`checks[3].severity`) that
//! `serde_yaml` reports. Errors found after parsing (a duplicate id, an unresolvable suite
//! requirement) are placed with [`locate`], which finds the line that holds a key.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

/// A problem in a YAML file, placed at a line and column when the place is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct YamlError {
    /// The file, as the user named it (or `built-in:<path>`).
    pub file: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong, starting with the key path when there is one.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Parses `text` (read from `file`) into `T`, rejecting unknown keys where `T` does.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(|error| {
        let position = error.location().map(|l| (l.line(), l.column()));
        // serde_yaml says " at line L column C" inside its message; the position is in front.
        let message = position_words()
            .replace_all(&error.to_string(), "")
            .into_owned();
        // A list at the top level (a waivers file) has paths like `.[0]`; say `[0]`.
        let message = match message.strip_prefix(".[") {
            Some(rest) => format!("[{rest}"),
            None => message,
        };
        YamlError {
            file: file.to_owned(),
            position,
            message,
        }
    })
}

fn position_words() -> &'static regex::Regex {
    static WORDS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| regex::Regex::new(r" at line \d+ column \d+").expect("valid regex"))
}

/// Deserializes a semver version with an error that names the value and the expected form.
/// The check runs inside the visitor, where serde_yaml still knows the position.
pub fn semver_version<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<semver::Version, D::Error> {
    struct VersionVisitor;
    impl VersionVisitor {
        fn parse<E: serde::de::Error>(text: &str) -> Result<semver::Version, E> {
            semver::Version::parse(text).map_err(|e| {
                E::custom(format!(
                    "`{text}` is not a version of the form MAJOR.MINOR.PATCH ({e})"
                ))
            })
        }
    }
    impl serde::de::Visitor<'_> for VersionVisitor {
        type Value = semver::Version;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a version of the form MAJOR.MINOR.PATCH")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<semver::Version, E> {
            Self::parse(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<semver::Version, E> {
            Self::parse(&v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<semver::Version, E> {
            Self::parse(&v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<semver::Version, E> {
            Self::parse(&format!("{v:?}"))
        }
    }
    deserializer.deserialize_str(VersionVisitor)
}

/// The keys of a YAML document's top-level mapping (empty when it is not a mapping), to tell a
/// suite from a profile before typing it.
pub fn top_level_keys(file: &str, text: &str) -> Result<Vec<String>, YamlError> {
    let value: serde_yaml::Value = parse(file, text)?;
    Ok(value
        .as_mapping()
        .map(|mapping| {
            mapping
                .keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Whether a YAML document is a list at its top level (a waivers file is; suites and
/// profiles are mappings).
pub fn is_list(file: &str, text: &str) -> Result<bool, YamlError> {
    let value: serde_yaml::Value = parse(file, text)?;
    Ok(value.is_sequence())
}

/// Finds the line and column of the `nth` (0-based) line in `text` that holds `key:` followed by
/// `value` (or any value when `value` is `None`), in block-style YAML. Used to place errors that
/// are found only after parsing.
pub fn locate(text: &str, key: &str, value: Option<&str>, nth: usize) -> Option<(usize, usize)> {
    let mut seen = 0;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let body = trimmed.strip_prefix("- ").unwrap_or(trimmed).trim_start();
        let Some(rest) = body.strip_prefix(key) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let found = rest.split(" #").next().unwrap_or("").trim();
        let found = found.trim_matches(|c| c == '"' || c == '\'');
        if value.is_none_or(|v| v == found) {
            if seen == nth {
                let column = line.len() - body.len() + 1;
                return Some((index + 1, column));
            }
            seen += 1;
        }
    }
    None
}

/// Reads a YAML file's text (a regular file of at most `cap` bytes, see [`crate::fsio`]),
/// naming the file in the error: `FILE: cannot read the WHAT: REASON`.
pub fn read_file(path: &Path, cap: u64, what: &str) -> Result<String, YamlError> {
    crate::fsio::read_regular_text(path, cap, what).map_err(YamlError::from)
}

impl From<crate::fsio::FileError> for YamlError {
    fn from(error: crate::fsio::FileError) -> YamlError {
        YamlError {
            file: error.path,
            position: None,
            message: error.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_the_nth_key_value_line() {
        let text = "checks:\n  - id: a.b\n    title: x\n  - id: a.b\n";
        assert_eq!(locate(text, "id", Some("a.b"), 0), Some((2, 5)));
        assert_eq!(locate(text, "id", Some("a.b"), 1), Some((4, 5)));
        assert_eq!(locate(text, "title", None, 0), Some((3, 5)));
        assert_eq!(locate(text, "id", Some("zzz"), 0), None);
    }

    #[test]
    fn parse_error_names_file_line_column_and_key() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Doc {
            name: String,
        }
        let error = parse::<Doc>("x.yaml", "name: a\ncolour: red\n").unwrap_err();
        assert_eq!(error.position, Some((2, 1)));
        assert_eq!(
            error.to_string(),
            "x.yaml:2:1: unknown field `colour`, expected `name`"
        );
    }
}
