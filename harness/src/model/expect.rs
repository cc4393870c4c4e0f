//! Expectations: typed predicates over facts, parsed and checked at load time.
//!
//! In YAML an expectation names a fact (a probe of the check, optionally `.field` of a record)
//! and exactly one operator, or combines expectations:
//!
//! ```yaml
//! expect: {fact: net-ns, one-of: [y, m]}
//! expect:
//!   any-of:
//!     - {fact: cgroup2, has-word: memory}
//!     - {fact: memcg, exists: true}
//! expect: {fact: release, version-at-least: $min-kernel}   # a profile parameter
//! ```

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::ids::Name;

/// A YAML scalar read as text: `y`, `1`, `true` and `"4.18"` all become strings, so suites need no
/// quoting for kernel config values and sysctls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                // `4.10` is a float to YAML; keep the digits a person wrote where possible.
                Ok(Scalar(format!("{v:?}")))
            }
        }
        // serde_yaml hands a plain scalar's own text to `deserialize_str`, so `4.10` stays 4.10
        // rather than becoming the float 4.1.
        deserializer.deserialize_str(ScalarVisitor)
    }
}

/// A value in an expectation: a literal, `$name`, a parameter the profile may set, or `@name`
/// (`@name.field`), the value of another of the check's facts, so that a check can compare two
/// facts (an image's binary's minimum kernel with its host's kernel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A literal value.
    Literal(String),
    /// A parameter, resolved from the profile (or the suite's default) before evaluation.
    Param(Name),
    /// Another fact of the check, resolved at evaluation.
    Fact(FactRef),
}

impl Operand {
    fn parse(scalar: Scalar) -> Result<Operand, String> {
        if let Some(reference) = scalar.0.strip_prefix('@') {
            return FactRef::parse(reference.to_owned())
                .map(Operand::Fact)
                .map_err(|e| format!("bad fact reference `@{reference}`: {e}"));
        }
        match scalar.0.strip_prefix('$') {
            Some(name) => Name::try_from(name.to_owned())
                .map(Operand::Param)
                .map_err(|e| format!("bad parameter reference: {e}")),
            None => Ok(Operand::Literal(scalar.0)),
        }
    }

    /// The literal value; a parameter or fact must have been resolved before.
    pub fn literal(&self) -> &str {
        match self {
            Operand::Literal(value) => value,
            Operand::Param(name) => name.as_str(),
            Operand::Fact(fact) => fact.probe.as_str(),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Literal(value) => f.write_str(value),
            Operand::Param(name) => write!(f, "${name}"),
            Operand::Fact(fact) => write!(f, "@{fact}"),
        }
    }
}

impl FactRef {
    /// `probe` or `probe.field`.
    fn parse(text: String) -> Result<FactRef, String> {
        let (probe, field) = match text.split_once('.') {
            Some((probe, field)) => (probe.to_owned(), Some(field.to_owned())),
            None => (text, None),
        };
        Ok(FactRef {
            probe: Name::try_from(probe)?,
            field,
        })
    }
}

impl fmt::Display for FactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}.{field}", self.probe),
            None => write!(f, "{}", self.probe),
        }
    }
}

/// Which fact an expectation reads: a probe of the check, and optionally a field of a record
/// fact (`cmd.exit-status`, `ptmx.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactRef {
    /// The probe's name in the check's `probes`.
    pub probe: Name,
    /// A field of a record fact.
    pub field: Option<String>,
}

/// A test of one fact's value.
#[derive(Debug, Clone)]
pub enum Predicate {
    /// The fact is present (`true`) or absent (`false`).
    Exists(bool),
    /// The value equals.
    Equals(Operand),
    /// The value equals one of.
    OneOf(Vec<Operand>),
    /// The text matches a regular expression (searched, not anchored).
    Matches(regex::Regex),
    /// The text contains the substring, or the list contains the item.
    Contains(Operand),
    /// One of the whitespace-separated words of the text equals.
    HasWord(Operand),
    /// None of the words of the text (or items of a list) is one of the operand's words
    /// (separated by commas or whitespace).
    HasNoneOf(Operand),
    /// The value is a number at least this.
    AtLeast(Operand),
    /// The value is a number at most this.
    AtMost(Operand),
    /// The value is a version (leading dotted numbers) at least this.
    VersionAtLeast(Operand),
    /// The value is a version below this.
    VersionBelow(Operand),
    /// The value is a release version that carries an advisory's fix: the operand lists the
    /// fixed version of each release line (`1.2.8, 1.3.3, 1.4.0-rc.3`); see
    /// [`super::fixed_in`].
    FixedIn(Operand),
    /// The value is an installed package (a `package` record) whose version is at least this,
    /// compared as its package manager compares versions (rpm's `rpmverCmp` for rpm packages,
    /// dpkg's for dpkg packages); absent (not installed) is false.
    PackageAtLeast(Operand),
    /// The value is an installed package whose version is below this, compared the same way;
    /// absent (not installed) is false.
    PackageBelow(Operand),
}

/// The most memory a `matches` pattern may compile to (2 MiB), and the most its lazy DFA may
/// cache, per pattern: a pattern that needs more (`(a{1000}){1000}`, or `\w{100}`, since `\w`
/// is every Unicode word character) is refused when the suite is loaded, with the file and line.
/// Matching is linear in the length of the text with the `regex` crate (no backtracking), and
/// the text is a fact, bounded by what its probe reads.
pub const REGEX_SIZE_LIMIT: usize = 2 << 20;

/// Compiles a `matches` pattern within [`REGEX_SIZE_LIMIT`].
fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "the regular expression `{pattern}` is too large: compiled, it exceeds the limit of {limit} bytes"
            ),
            e => format!("invalid regular expression `{pattern}`: {e}"),
        })
}

/// A typed expectation over a check's facts.
#[derive(Debug, Clone)]
pub enum Expectation {
    /// One fact tested by one predicate.
    Fact {
        /// The fact read.
        fact: FactRef,
        /// The test.
        predicate: Predicate,
    },
    /// Every expectation holds.
    AllOf(Vec<Expectation>),
    /// At least one expectation holds.
    AnyOf(Vec<Expectation>),
    /// The expectation does not hold.
    Not(Box<Expectation>),
}

impl Expectation {
    /// Every fact this expectation reads.
    pub fn facts(&self) -> Vec<&FactRef> {
        match self {
            Expectation::Fact { fact, predicate } => {
                let mut facts = vec![fact];
                facts.extend(predicate.operands().into_iter().filter_map(|o| match o {
                    Operand::Fact(fact) => Some(fact),
                    _ => None,
                }));
                facts
            }
            Expectation::AllOf(all) | Expectation::AnyOf(all) => {
                all.iter().flat_map(Expectation::facts).collect()
            }
            Expectation::Not(inner) => inner.facts(),
        }
    }

    /// Every operand, to resolve or validate parameters.
    pub fn operands_mut(&mut self) -> Vec<&mut Operand> {
        match self {
            Expectation::Fact { predicate, .. } => predicate.operands_mut(),
            Expectation::AllOf(all) | Expectation::AnyOf(all) => {
                all.iter_mut().flat_map(Expectation::operands_mut).collect()
            }
            Expectation::Not(inner) => inner.operands_mut(),
        }
    }
}

impl Predicate {
    /// The predicate's operands.
    pub fn operands(&self) -> Vec<&Operand> {
        match self {
            Predicate::Exists(_) | Predicate::Matches(_) => vec![],
            Predicate::OneOf(values) => values.iter().collect(),
            Predicate::PackageAtLeast(value) | Predicate::PackageBelow(value) => vec![value],
            Predicate::Equals(value)
            | Predicate::Contains(value)
            | Predicate::HasWord(value)
            | Predicate::HasNoneOf(value)
            | Predicate::AtLeast(value)
            | Predicate::AtMost(value)
            | Predicate::VersionAtLeast(value)
            | Predicate::VersionBelow(value)
            | Predicate::FixedIn(value) => vec![value],
        }
    }

    /// The predicate's operands, to resolve parameters and facts.
    pub fn operands_mut(&mut self) -> Vec<&mut Operand> {
        match self {
            Predicate::Exists(_) | Predicate::Matches(_) => vec![],
            Predicate::OneOf(values) => values.iter_mut().collect(),
            Predicate::PackageAtLeast(value) | Predicate::PackageBelow(value) => vec![value],
            Predicate::Equals(value)
            | Predicate::Contains(value)
            | Predicate::HasWord(value)
            | Predicate::HasNoneOf(value)
            | Predicate::AtLeast(value)
            | Predicate::AtMost(value)
            | Predicate::VersionAtLeast(value)
            | Predicate::VersionBelow(value)
            | Predicate::FixedIn(value) => vec![value],
        }
    }
}

impl Expectation {
    /// Parses the YAML shape. `default_fact` is the check's only probe, used when `fact` is left
    /// out.
    pub(crate) fn from_raw(
        raw: RawExpect,
        default_fact: Option<&Name>,
    ) -> Result<Expectation, String> {
        let RawExpect {
            fact,
            exists,
            equals,
            one_of,
            matches,
            contains,
            has_word,
            has_none_of,
            at_least,
            at_most,
            version_at_least,
            version_below,
            fixed_in,
            package_at_least,
            package_below,
            all_of,
            any_of,
            not,
        } = raw;
        let mut operators: Vec<(&str, Predicate)> = Vec::new();
        if let Some(v) = exists {
            operators.push(("exists", Predicate::Exists(v)));
        }
        if let Some(v) = equals {
            operators.push(("equals", Predicate::Equals(Operand::parse(v)?)));
        }
        if let Some(values) = one_of {
            let values = values
                .into_iter()
                .map(Operand::parse)
                .collect::<Result<_, _>>()?;
            operators.push(("one-of", Predicate::OneOf(values)));
        }
        if let Some(pattern) = matches {
            operators.push(("matches", Predicate::Matches(compile_regex(&pattern)?)));
        }
        if let Some(v) = contains {
            operators.push(("contains", Predicate::Contains(Operand::parse(v)?)));
        }
        if let Some(v) = has_word {
            operators.push(("has-word", Predicate::HasWord(Operand::parse(v)?)));
        }
        if let Some(v) = has_none_of {
            operators.push(("has-none-of", Predicate::HasNoneOf(Operand::parse(v)?)));
        }
        for (key, value, make) in [
            (
                "at-least",
                at_least,
                Predicate::AtLeast as fn(Operand) -> Predicate,
            ),
            ("at-most", at_most, Predicate::AtMost),
        ] {
            if let Some(v) = value {
                let operand = Operand::parse(v)?;
                if let Operand::Literal(text) = &operand {
                    text.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("{key} needs a number, not `{text}`"))?;
                }
                operators.push((key, make(operand)));
            }
        }
        for (key, value, make) in [
            (
                "version-at-least",
                version_at_least,
                Predicate::VersionAtLeast as fn(Operand) -> Predicate,
            ),
            ("version-below", version_below, Predicate::VersionBelow),
        ] {
            if let Some(v) = value {
                let operand = Operand::parse(v)?;
                if let Operand::Literal(text) = &operand {
                    if super::compare_dotted(text, text).is_none() {
                        return Err(format!("{key} needs a version such as 4.15, not `{text}`"));
                    }
                }
                operators.push((key, make(operand)));
            }
        }
        if let Some(v) = fixed_in {
            let operand = Operand::parse(v)?;
            if let Operand::Literal(text) = &operand {
                fixed_versions(text)?;
            }
            operators.push(("fixed-in", Predicate::FixedIn(operand)));
        }
        for (key, value, make) in [
            (
                "package-at-least",
                package_at_least,
                Predicate::PackageAtLeast as fn(Operand) -> Predicate,
            ),
            ("package-below", package_below, Predicate::PackageBelow),
        ] {
            if let Some(v) = value {
                let operand = Operand::parse(v)?;
                if let Operand::Literal(text) = &operand {
                    package_version(text).map_err(|reason| format!("{key}: {reason}"))?;
                }
                operators.push((key, make(operand)));
            }
        }
        let mut combinators: Vec<(&str, Expectation)> = Vec::new();
        if let Some(all) = all_of {
            combinators.push((
                "all-of",
                Expectation::AllOf(Self::from_list("all-of", all, default_fact)?),
            ));
        }
        if let Some(any) = any_of {
            combinators.push((
                "any-of",
                Expectation::AnyOf(Self::from_list("any-of", any, default_fact)?),
            ));
        }
        if let Some(inner) = not {
            combinators.push((
                "not",
                Expectation::Not(Box::new(Self::from_raw(*inner, default_fact)?)),
            ));
        }
        let used: Vec<&str> = operators
            .iter()
            .map(|(key, _)| *key)
            .chain(combinators.iter().map(|(key, _)| *key))
            .collect();
        if used.len() > 1 {
            return Err(format!(
                "an expectation takes exactly one operator, found {}",
                used.join(", ")
            ));
        }
        if let Some((_, combinator)) = combinators.pop() {
            if fact.is_some() {
                return Err(
                    "`fact` goes inside the expectations of a combination, not beside it"
                        .to_owned(),
                );
            }
            return Ok(combinator);
        }
        let Some((_, predicate)) = operators.pop() else {
            return Err("an expectation needs an operator: exists, equals, one-of, matches, contains, has-word, has-none-of, at-least, at-most, version-at-least, version-below, fixed-in, package-at-least, package-below, all-of, any-of or not".to_owned());
        };
        let fact = match fact {
            Some(text) => FactRef::parse(text)?,
            None => FactRef {
                probe: default_fact
                    .cloned()
                    .ok_or("`fact` is needed when a check has more than one probe")?,
                field: None,
            },
        };
        Ok(Expectation::Fact { fact, predicate })
    }

    fn from_list(
        key: &str,
        list: Vec<RawExpect>,
        default_fact: Option<&Name>,
    ) -> Result<Vec<Expectation>, String> {
        if list.is_empty() {
            return Err(format!("{key} needs at least one expectation"));
        }
        list.into_iter()
            .map(|raw| Self::from_raw(raw, default_fact))
            .collect()
    }
}

/// The YAML shape of an expectation; [`Expectation::from_raw`] types it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct RawExpect {
    fact: Option<String>,
    exists: Option<bool>,
    equals: Option<Scalar>,
    one_of: Option<Vec<Scalar>>,
    matches: Option<String>,
    contains: Option<Scalar>,
    has_word: Option<Scalar>,
    has_none_of: Option<Scalar>,
    at_least: Option<Scalar>,
    at_most: Option<Scalar>,
    version_at_least: Option<Scalar>,
    version_below: Option<Scalar>,
    fixed_in: Option<Scalar>,
    package_at_least: Option<Scalar>,
    package_below: Option<Scalar>,
    all_of: Option<Vec<RawExpect>>,
    any_of: Option<Vec<RawExpect>>,
    not: Option<Box<RawExpect>>,
}

impl Expectation {
    /// Checks that every operand (after parameters are resolved) fits its operator: numbers for
    /// `at-least`/`at-most`, versions for `version-*`.
    pub fn validate_operands(&self) -> Result<(), String> {
        match self {
            Expectation::Fact { predicate, .. } => match predicate {
                _ if predicate
                    .operands()
                    .iter()
                    .any(|o| matches!(o, Operand::Fact(_))) =>
                {
                    Ok(())
                }
                Predicate::AtLeast(value) | Predicate::AtMost(value) => value
                    .literal()
                    .trim()
                    .parse::<f64>()
                    .map(drop)
                    .map_err(|_| format!("`{}` is not a number", value.literal())),
                Predicate::VersionAtLeast(value) | Predicate::VersionBelow(value) => {
                    super::compare_dotted(value.literal(), value.literal())
                        .map(drop)
                        .ok_or_else(|| {
                            format!("`{}` is not a version such as 4.15", value.literal())
                        })
                }
                Predicate::FixedIn(value) => fixed_versions(value.literal()).map(drop),
                Predicate::PackageAtLeast(value) | Predicate::PackageBelow(value) => {
                    package_version(value.literal()).map(drop)
                }
                _ => Ok(()),
            },
            Expectation::AllOf(all) | Expectation::AnyOf(all) => {
                all.iter().try_for_each(Expectation::validate_operands)
            }
            Expectation::Not(inner) => inner.validate_operands(),
        }
    }
}

/// The version of a `package-at-least` or `package-below` operand: one word that starts with a
/// digit (or an epoch, `1:2.0-3`), as package managers print versions.
pub fn package_version(text: &str) -> Result<&str, String> {
    let version = text.trim();
    let body = match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        _ => version,
    };
    if body.starts_with(|c: char| c.is_ascii_digit())
        && !version.contains(char::is_whitespace)
        && version.is_ascii()
    {
        Ok(version)
    } else {
        Err(format!(
            "`{text}` is not a package version such as 1.1.12 or 2:1.1.12-1.el9"
        ))
    }
}

/// The fixed versions of a `fixed-in` operand: release versions separated by commas or
/// whitespace, at least one.
pub fn fixed_versions(list: &str) -> Result<Vec<&str>, String> {
    let versions: Vec<&str> = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    if versions.is_empty() {
        return Err("fixed-in needs at least one fixed version such as 1.1.12".to_owned());
    }
    for version in &versions {
        if super::ReleaseVersion::parse(version).is_none() {
            return Err(format!(
                "fixed-in needs release versions such as 1.4.0-rc.3, not `{version}`"
            ));
        }
    }
    Ok(versions)
}
