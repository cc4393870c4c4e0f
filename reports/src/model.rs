//! The report model. See the crate docs and `json` for the wire format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the JSON wire format written by this crate.
///
/// It is bumped whenever a field is removed or changes meaning; adding a field does not bump it.
pub const FORMAT_VERSION: u32 = 1;

/// Everything one certification run found: the profile, the targets and one result per
/// (target, check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunReport {
    /// The wire format's version, [`FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// The tool that wrote the report.
    pub tool: ToolInfo,
    /// When the run started, RFC 3339.
    pub started_at: String,
    /// When the run finished, RFC 3339.
    pub finished_at: String,
    /// The profile the run certified against.
    pub profile: ProfileInfo,
    /// The verdict over every target.
    pub verdict: Verdict,
    /// The severities whose failures decide the verdict.
    pub gating_severities: Vec<Severity>,
    /// Every target of the run, in the order given.
    pub targets: Vec<TargetReport>,
    /// One result per (target, check) that ran.
    pub results: Vec<CheckResult>,
    /// Counts of outcomes over `results`.
    pub summary: Summary,
    /// How many (target, check) trials the run's filters left out (libtest's FILTER and
    /// `--skip`); the verdict covers only the checks that ran. Absent when none were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub filtered_out: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// The tool that wrote a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ToolInfo {
    /// Always `hostcert`.
    pub name: String,
    /// The tool's version.
    pub version: String,
}

/// The profile a run certified against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProfileInfo {
    /// The profile's name.
    pub name: String,
    /// The profile's version.
    pub version: String,
    /// Where the profile was read from: a path, or `built-in:<path>`.
    pub source: String,
    /// The sha256 of the profile file's bytes, `sha256:<hex>`.
    pub digest: String,
    /// The suites the profile resolved to.
    pub suites: Vec<SuiteInfo>,
}

/// One suite a profile resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SuiteInfo {
    /// The suite's name.
    pub name: String,
    /// The suite's version.
    pub version: String,
    /// The sha256 of the suite file's bytes, `sha256:<hex>`.
    pub digest: String,
    /// Where the suite was read from: a path, or `built-in:<path>`.
    pub source: String,
}

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Verdict {
    /// Every gating check passed, was waived or did not apply, on every target.
    Certified,
    /// At least one gating check failed (an expired waiver counts as a failure).
    NotCertified,
    /// No gating check failed, but some could not be evaluated (a target could not be read, a
    /// fact was missing), or no check ran at all.
    Incomplete,
}

impl Verdict {
    /// The verdict as a user reads it: `certified`, `not certified`, `incomplete`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Certified => "certified",
            Verdict::NotCertified => "not certified",
            Verdict::Incomplete => "incomplete",
        }
    }
}

/// How much a check matters. Profiles choose which severities gate the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Without it the host cannot do the job at all.
    Critical,
    /// Without it important workloads break.
    High,
    /// Without it some workloads break or security is weaker.
    Medium,
    /// A recommendation.
    Low,
    /// Informational only.
    Info,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The kebab-case name used in YAML and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

/// One target of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TargetReport {
    /// The name used in trial names and results, e.g. `local`.
    pub name: String,
    /// The kind of target: `local`, `ssh`, `os-tree`, `kernel-config`, `image`.
    pub kind: String,
    /// The address as the user gave it.
    pub address: String,
    /// The host name the target reported, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Whether the facts were read live or from a saved snapshot (`live` or the snapshot path).
    pub facts_from: String,
    /// Why the target could not be read at all, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where each fact was read from, keyed by the fact's name (e.g. `CONFIG_NET_NS`).
    pub fact_sources: BTreeMap<String, String>,
    /// Outcome counts of this target's results by check group (the feature area a check id
    /// names: `kernel.namespaces.net` is in `namespaces`); see [`crate::matrix`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Summary>,
}

/// The outcome of one check on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// The expectation held.
    Pass,
    /// The expectation did not hold, or a waiver for it has expired.
    Fail,
    /// The check does not apply to this target; the message says why.
    Skip,
    /// The expectation did not hold, but a valid waiver covers it.
    Waived,
    /// The check could not be evaluated: a fact could not be read.
    Error,
}

impl Outcome {
    /// The kebab-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Waived => "waived",
            Outcome::Error => "error",
        }
    }
}

/// One fact a result was decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Evidence {
    /// The fact's name, e.g. `CONFIG_NET_NS` or `sysctl net.ipv4.ip_forward`.
    pub fact: String,
    /// Where it was read, e.g. `/proc/config.gz`.
    pub source: String,
    /// What was observed, e.g. `y`, `not set`, `absent`, or the error that prevented reading.
    pub observed: String,
}

/// A waiver that decided or touched a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WaiverInfo {
    /// The check id or glob the waiver names.
    pub check: String,
    /// Why the failure is accepted.
    pub reason: String,
    /// Who accepted it.
    pub approver: String,
    /// The last day the waiver is valid, `YYYY-MM-DD`.
    pub expires: String,
    /// Whether the waiver had expired at the time of the run.
    pub expired: bool,
}

/// The result of one check on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CheckResult {
    /// The target's name (see [`TargetReport::name`]).
    pub target: String,
    /// The suite's name.
    pub suite: String,
    /// The suite's version.
    pub suite_version: String,
    /// The sha256 of the suite file's bytes, `sha256:<hex>`.
    pub suite_digest: String,
    /// The check's id.
    pub check: String,
    /// The check's version.
    pub check_version: String,
    /// The check's title.
    pub title: String,
    /// The check's severity.
    pub severity: Severity,
    /// Whether this check's failure decides the verdict under the run's profile.
    pub gating: bool,
    /// What happened.
    pub outcome: Outcome,
    /// One line that says why: expected versus observed for a failure, the reason for a skip,
    /// waiver or error.
    pub message: String,
    /// What the check expected, in words.
    pub expected: String,
    /// Every fact the check read, with its source and value.
    pub evidence: Vec<Evidence>,
    /// The waiver that applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<WaiverInfo>,
    /// How to fix a failure.
    pub remediation: String,
    /// How long evaluating the check took, in seconds.
    pub duration_secs: f64,
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Summary {
    /// All results.
    pub total: usize,
    /// Results that passed.
    pub pass: usize,
    /// Results that failed.
    pub fail: usize,
    /// Results that were skipped.
    pub skip: usize,
    /// Results that were waived.
    pub waived: usize,
    /// Results that could not be evaluated.
    pub error: usize,
    /// Failures of gating checks.
    pub gating_fail: usize,
    /// Errors of gating checks.
    pub gating_error: usize,
}

impl Summary {
    /// Counts the outcomes of `results`.
    pub fn of(results: &[CheckResult]) -> Summary {
        let mut summary = Summary {
            total: results.len(),
            ..Summary::default()
        };
        for result in results {
            match result.outcome {
                Outcome::Pass => summary.pass += 1,
                Outcome::Fail => summary.fail += 1,
                Outcome::Skip => summary.skip += 1,
                Outcome::Waived => summary.waived += 1,
                Outcome::Error => summary.error += 1,
            }
            if result.gating && result.outcome == Outcome::Fail {
                summary.gating_fail += 1;
            }
            if result.gating && result.outcome == Outcome::Error {
                summary.gating_error += 1;
            }
        }
        summary
    }

    /// The verdict these counts give, given whether every target could be read.
    pub fn verdict(&self, every_target_read: bool) -> Verdict {
        if self.gating_fail > 0 {
            Verdict::NotCertified
        } else if self.gating_error > 0 || !every_target_read || self.total == 0 {
            Verdict::Incomplete
        } else {
            Verdict::Certified
        }
    }
}
