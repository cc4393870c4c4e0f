//! Suites and checks.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::expect::RawExpect;
pub use super::expect::Scalar;
use super::{CheckId, Expectation, Name, Probe, Severity};
use crate::yaml::{self, YamlError};

/// The kinds of target a check can apply to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// The machine hostcert runs on.
    Local,
    /// A host reached over SSH.
    Ssh,
    /// An offline OS build tree (a root filesystem in a directory).
    OsTree,
    /// A kernel config file alone.
    KernelConfig,
    /// A container image.
    Image,
    /// An OS build booted in a virtual machine (`vm:`) and reached over SSH: it answers the checks
    /// of SSH hosts too.
    Vm,
}

impl TargetKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Local => "local",
            TargetKind::Ssh => "ssh",
            TargetKind::OsTree => "os-tree",
            TargetKind::KernelConfig => "kernel-config",
            TargetKind::Image => "image",
            TargetKind::Vm => "vm",
        }
    }

    /// Whether the target is a running system (as opposed to files read offline).
    pub fn is_live(self) -> bool {
        matches!(self, TargetKind::Local | TargetKind::Ssh | TargetKind::Vm)
    }

    /// Parses the kebab-case name.
    pub fn parse(text: &str) -> Option<TargetKind> {
        [
            TargetKind::Local,
            TargetKind::Ssh,
            TargetKind::OsTree,
            TargetKind::KernelConfig,
            TargetKind::Image,
            TargetKind::Vm,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// Where a check applies. Every list that is empty means "any".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Applicability {
    /// Target kinds the check applies to.
    #[serde(default)]
    pub target_kinds: Vec<TargetKind>,
    /// The target kernel's version range, as a semver requirement (`>=4.15, <5.8`).
    #[serde(default)]
    pub kernel: Option<semver::VersionReq>,
    /// Architectures as `uname -m` prints them (`x86_64`, `aarch64`).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// os-release `ID`s (`debian`, `rhel`).
    #[serde(default)]
    pub os_ids: Vec<String>,
    /// Suite parameters and the values for which the check applies (`kube-proxy-mode: [ipvs]`):
    /// decided when a profile is resolved, so a run asks no fact for a check that cannot apply.
    #[serde(default)]
    pub parameters: BTreeMap<Name, Vec<Scalar>>,
}

impl Applicability {
    /// Whether the check's target kinds cover a target of `kind`, or a pair whose image is of
    /// `image_kind` (a pair answers the checks of both). A VM is reached over SSH, so the checks
    /// of `ssh` targets cover it too.
    pub fn covers_kind(&self, kind: TargetKind, image_kind: Option<TargetKind>) -> bool {
        self.target_kinds.is_empty()
            || self.target_kinds.contains(&kind)
            || (kind == TargetKind::Vm && self.target_kinds.contains(&TargetKind::Ssh))
            || image_kind.is_some_and(|image| self.target_kinds.contains(&image))
    }
}

/// One check: a stable id, what it checks and why, the facts it reads and what it expects of
/// them.
#[derive(Debug, Clone)]
pub struct Check {
    /// Stable dotted id, unique across suites.
    pub id: CheckId,
    /// The check's own version; bumped when its meaning changes.
    pub version: semver::Version,
    /// One line: what is checked.
    pub title: String,
    /// Why a host needs this: what breaks without it.
    pub rationale: String,
    /// How much it matters.
    pub severity: Severity,
    /// Tags for selection (`tag:cgroups` in a profile).
    pub tags: Vec<String>,
    /// Links and documents that back the check.
    pub references: Vec<String>,
    /// Where the check applies.
    pub applies_to: Applicability,
    /// The facts the check reads, by name.
    pub probes: BTreeMap<Name, Probe>,
    /// What the facts must show.
    pub expect: Expectation,
    /// How to fix a failure.
    pub remediation: String,
}

/// A versioned set of checks.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The suite's name (`kernel-features`).
    pub name: Name,
    /// The suite's version. A released version is never edited; a new one sits beside it.
    pub version: semver::Version,
    /// What the suite covers.
    pub description: String,
    /// Parameters checks may reference as `$name`, with their defaults.
    pub parameters: BTreeMap<Name, String>,
    /// The checks, in file order.
    pub checks: Vec<Check>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawSuite {
    name: Name,
    #[serde(deserialize_with = "yaml::semver_version")]
    version: semver::Version,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: BTreeMap<Name, Scalar>,
    checks: Vec<RawCheck>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawCheck {
    id: CheckId,
    #[serde(deserialize_with = "yaml::semver_version")]
    version: semver::Version,
    title: String,
    #[serde(default)]
    rationale: String,
    severity: Severity,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    applies_to: Applicability,
    probes: BTreeMap<Name, Probe>,
    expect: RawExpect,
    #[serde(default)]
    remediation: String,
}

impl Suite {
    /// Parses and validates a suite file. Every error names the file, line and key.
    pub fn parse(file: &str, text: &str) -> Result<Suite, Vec<YamlError>> {
        let raw: RawSuite = yaml::parse(file, text).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let mut checks = Vec::new();
        let mut first_seen: BTreeMap<CheckId, usize> = BTreeMap::new();
        for (index, raw_check) in raw.checks.into_iter().enumerate() {
            let occurrence = first_seen.get(&raw_check.id).map_or(0, |_| 1);
            let anchor = yaml::locate(text, "id", Some(raw_check.id.as_str()), occurrence);
            let at = |key: &str| {
                let position = anchor
                    .and_then(|(line, _)| locate_after(text, line, key))
                    .or(anchor);
                (
                    position,
                    format!("checks[{index}] ({}).{key}", raw_check.id),
                )
            };
            if let Some(first) = first_seen.get(&raw_check.id) {
                let (position, path) = at("id");
                errors.push(YamlError {
                    file: file.to_owned(),
                    position,
                    message: format!(
                        "{path}: duplicate check id `{}` (also checks[{first}])",
                        raw_check.id
                    ),
                });
                continue;
            }
            first_seen.insert(raw_check.id.clone(), index);
            if raw_check.probes.is_empty() {
                let (position, path) = at("probes");
                errors.push(YamlError {
                    file: file.to_owned(),
                    position,
                    message: format!("{path}: a check needs at least one probe"),
                });
                continue;
            }
            let default_fact = if raw_check.probes.len() == 1 {
                raw_check.probes.keys().next()
            } else {
                None
            };
            let expect = match Expectation::from_raw(raw_check.expect, default_fact) {
                Ok(expect) => expect,
                Err(message) => {
                    let (position, path) = at("expect");
                    errors.push(YamlError {
                        file: file.to_owned(),
                        position,
                        message: format!("{path}: {message}"),
                    });
                    continue;
                }
            };
            let mut problems = Vec::new();
            for fact in expect.facts() {
                if !raw_check.probes.contains_key(&fact.probe) {
                    problems.push(format!(
                        "names fact `{}`, which is not one of the check's probes ({})",
                        fact.probe,
                        raw_check
                            .probes
                            .keys()
                            .map(Name::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            for (name, values) in &raw_check.applies_to.parameters {
                if !raw.parameters.contains_key(name) {
                    problems.push(format!("applies-to.parameters names `{name}`, which the suite does not declare under `parameters`"));
                } else if values.is_empty() {
                    problems.push(format!("applies-to.parameters.{name} lists no value"));
                }
            }
            let mut probes = raw_check.probes;
            for probe in probes.values_mut() {
                if let Some(argument) = probe.parameter_argument_mut() {
                    let known = Name::try_from(argument[1..].to_owned())
                        .is_ok_and(|name| raw.parameters.contains_key(&name));
                    if !known {
                        problems.push(format!("a probe uses parameter `{argument}`, which the suite does not declare under `parameters`"));
                    }
                }
            }
            let mut expect = expect;
            for operand in expect.operands_mut() {
                if let super::Operand::Param(name) = operand {
                    if !raw.parameters.contains_key(name) {
                        problems.push(format!("uses parameter `${name}`, which the suite does not declare under `parameters`"));
                    }
                }
            }
            if let Some(problem) = problems.into_iter().next() {
                let (position, path) = at("expect");
                errors.push(YamlError {
                    file: file.to_owned(),
                    position,
                    message: format!("{path}: {problem}"),
                });
                continue;
            }
            checks.push(Check {
                id: raw_check.id,
                version: raw_check.version,
                title: raw_check.title,
                rationale: raw_check.rationale,
                severity: raw_check.severity,
                tags: raw_check.tags,
                references: raw_check.references,
                applies_to: raw_check.applies_to,
                probes,
                expect,
                remediation: raw_check.remediation,
            });
        }
        if checks.is_empty() && errors.is_empty() {
            errors.push(YamlError {
                file: file.to_owned(),
                position: yaml::locate(text, "checks", None, 0),
                message: "checks: a suite needs at least one check".to_owned(),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Suite {
            name: raw.name,
            version: raw.version,
            description: raw.description,
            parameters: raw.parameters.into_iter().map(|(k, v)| (k, v.0)).collect(),
            checks,
        })
    }
}

/// The first line after `line` (1-based) holding `key:`, before the next list item at the same
/// or a lower indentation.
fn locate_after(text: &str, line: usize, key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let anchor = lines.get(line - 1)?;
    let item_indent = anchor.len() - anchor.trim_start().len();
    for (offset, candidate) in lines.iter().enumerate().skip(line - 1) {
        let indent = candidate.len() - candidate.trim_start().len();
        let body = candidate.trim_start();
        if offset >= line && body.starts_with("- ") && indent <= item_indent {
            return None;
        }
        let body = body.strip_prefix("- ").unwrap_or(body);
        if body.starts_with(&format!("{key}:")) {
            return Some((offset + 1, candidate.len() - body.len() + 1));
        }
    }
    None
}
