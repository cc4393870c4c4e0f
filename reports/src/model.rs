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
    /// The verdict over every target: derived from `results` and `targets` by
    /// [`RunReport::derived_verdict`], and checked against them whenever a report is read
    /// ([`RunReport::check_derived`]).
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
    /// Every waiver in force for the run, from the profile and from `--waivers` files, whether
    /// or not it matched a failure. Absent when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<WaiverInfo>,
    /// The baseline the run was gated against (`hostcert run --baseline OLD.json`): only
    /// failures new against it decide [`BaselineInfo::verdict`], which the exit code follows.
    /// Absent when the run had no baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineInfo>,
    /// The compatibility matrix of a run with images (`--image`): images as rows, hosts as
    /// columns, the verdict of each pair, derived from `targets` (their `pair`) and `results`
    /// like every verdict. Absent when the run had no pair with an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<PairMatrix>,
}

/// The compatibility matrix: which image runs on which host (`run --image A --image B
/// --target h1 --target h2`). Every cell is one pair of the report, `<image>@<host>`, and its
/// verdict is that target's; see [`crate::matrix`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PairMatrix {
    /// The rows: images by name, in the order their first pair appears in `targets`.
    pub images: Vec<String>,
    /// The columns: hosts by name, in the order their first pair appears in `targets`.
    pub hosts: Vec<String>,
    /// One cell per pair, in the order of `targets`.
    pub cells: Vec<MatrixCell>,
}

/// One pair of the compatibility matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MatrixCell {
    /// The image's name (a row of [`PairMatrix::images`]).
    pub image: String,
    /// The host's name (a column of [`PairMatrix::hosts`]).
    pub host: String,
    /// The pair's target name, `<image>@<host>`.
    pub target: String,
    /// The pair's own verdict.
    pub verdict: Verdict,
    /// The gating checks that failed on the pair, in report order. Absent when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    /// The gating checks that could not be evaluated on the pair. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// What a pair target is made of: the image and the host it runs on (`run --image`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PairInfo {
    /// The image's name (an image target's name, `busybox:1.0`, or an OS tree's).
    pub image: String,
    /// The host's name (`local`, `db-1`, `root@10.0.0.5`).
    pub host: String,
}

/// The baseline a run was gated against, and what the gate decided.
///
/// A failure is *known* when the same check also failed on the same target (same target name,
/// same check id) in the baseline; every other failure is *new*. Errors are never known: a
/// check that could not be evaluated is not the same failure as one that was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BaselineInfo {
    /// The baseline report as the user named it.
    pub source: String,
    /// The sha256 of the baseline file's bytes, `sha256:<hex>`.
    pub digest: String,
    /// When the baseline run started, RFC 3339.
    pub started_at: String,
    /// The baseline run's own verdict.
    pub baseline_verdict: Verdict,
    /// The verdict when only failures new against the baseline count: `not-certified` when a
    /// gating check failed and did not fail in the baseline, else as the run's verdict would be
    /// (see [`crate::verdict`]).
    pub verdict: Verdict,
    /// Failures (of any severity) that also failed in the baseline.
    pub known_failures: usize,
    /// Failures (of any severity) that did not fail in the baseline.
    pub new_failures: usize,
    /// Failures of gating checks that did not fail in the baseline.
    pub new_gating_failures: usize,
}

impl RunReport {
    /// The verdict the exit code follows: the baseline's gate when the run had a baseline,
    /// else [`RunReport::verdict`].
    pub fn gate_verdict(&self) -> Verdict {
        self.baseline.as_ref().map_or(self.verdict, |b| b.verdict)
    }

    /// The day the run started (UTC), the reference for "expires within N days"; `None` when
    /// `started-at` is not RFC 3339.
    pub fn run_date(&self) -> Option<time::Date> {
        time::OffsetDateTime::parse(
            &self.started_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
        .map(|t| t.to_offset(time::UtcOffset::UTC).date())
    }

    /// Every waiver of the run: [`RunReport::waivers`], or, for a report written before that
    /// field existed, the distinct waivers its results name.
    pub fn all_waivers(&self) -> Vec<WaiverInfo> {
        if !self.waivers.is_empty() {
            return self.waivers.clone();
        }
        let mut waivers: Vec<WaiverInfo> = Vec::new();
        for waiver in self.results.iter().filter_map(|r| r.waiver.as_ref()) {
            if !waivers.contains(waiver) {
                waivers.push(waiver.clone());
            }
        }
        waivers
    }

    /// The run's waivers that had not expired when it started but expire within `days` days of
    /// that day, with the number of days left (0: the run's day is the last valid one),
    /// soonest first.
    pub fn expiring_waivers(&self, days: u32) -> Vec<(WaiverInfo, i64)> {
        expiring(&self.all_waivers(), self.run_date(), days)
    }

    /// The results of one target, in report order.
    pub fn results_of<'a>(&'a self, target: &'a str) -> impl Iterator<Item = &'a CheckResult> {
        self.results.iter().filter(move |r| r.target == target)
    }
}

/// The waivers of `waivers` that had not expired on `today` (the run's day) but expire within
/// `days` days of it, with the number of days left, soonest first.
pub(crate) fn expiring(
    waivers: &[WaiverInfo],
    today: Option<time::Date>,
    days: u32,
) -> Vec<(WaiverInfo, i64)> {
    let Some(today) = today else {
        return Vec::new();
    };
    let mut expiring: Vec<(WaiverInfo, i64)> = waivers
        .iter()
        .filter(|w| !w.expired)
        .filter_map(|w| w.days_left(today).map(|left| (w.clone(), left)))
        .filter(|(_, left)| (0..=i64::from(days)).contains(left))
        .collect();
    expiring.sort_by(|(a, left_a), (b, left_b)| (left_a, &a.check).cmp(&(left_b, &b.check)));
    expiring
}

/// Options of the renderers for people ([`crate::html`], [`crate::markdown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    /// A waiver that expires within this many days of the run is shown as a warning.
    pub waiver_warning_days: u32,
}

impl Default for RenderOptions {
    /// Warn about waivers expiring within 30 days.
    fn default() -> RenderOptions {
        RenderOptions {
            waiver_warning_days: 30,
        }
    }
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

fn is_false(flag: &bool) -> bool {
    !*flag
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
    /// On every target at least one gating check was evaluated, and every gating check passed,
    /// was waived or did not apply; every target was read in full.
    Certified,
    /// At least one gating check failed (an expired waiver counts as a failure), whatever else
    /// could not be evaluated.
    NotCertified,
    /// No gating check failed, but a gating check could not be evaluated, a target could not be
    /// read (in full), a target had no gating check evaluated (every one skipped, or none ran),
    /// or the run had no target.
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
    /// Why gathering stopped before every fact was read, when it did (a host lost mid-batch, an
    /// image that could not be unpacked): the facts read before were judged, and every other
    /// fact is an `error` with this reason. The target is at best `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gather_error: Option<String>,
    /// Where each fact was read from, keyed by the fact's name (e.g. `CONFIG_NET_NS`).
    pub fact_sources: BTreeMap<String, String>,
    /// The sha256 of the facts the target gave, `sha256:<hex>`: the compact JSON array of its
    /// facts sorted by probe, as a fact snapshot's `facts` field holds them. The subject of a
    /// signed attestation. Absent when the target could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts_digest: Option<String>,
    /// The digests of the image an image target (or a pair's image) read, by kind: `manifest`
    /// (the manifest certified) and `index` (the index it was chosen from, when there is one).
    /// Subjects of a signed attestation. Absent when there is none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_digests: BTreeMap<String, String>,
    /// Outcome counts of this target's results by check group (the feature area a check id
    /// names: `kernel.namespaces.net` is in `namespaces`); see [`crate::matrix`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Summary>,
    /// The image and the host this target pairs (`run --image`); absent for every other
    /// target. The report's `matrix` is made of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<PairInfo>,
}

impl TargetReport {
    /// Whether every fact asked was read: the target could be read and gathering did not stop
    /// early.
    pub fn fully_read(&self) -> bool {
        self.error.is_none() && self.gather_error.is_none()
    }
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
    /// Every outcome, in the order reports for people list them: failures first.
    pub const ALL: [Outcome; 5] = [
        Outcome::Fail,
        Outcome::Error,
        Outcome::Waived,
        Outcome::Skip,
        Outcome::Pass,
    ];

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
    /// The target names (globs) it covers; absent means every target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Where the waiver was read: a `--waivers` file; absent for the profile's own waivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl WaiverInfo {
    /// Days from `today` to the waiver's last valid day (0 on that day, negative after it);
    /// `None` when `expires` is not `YYYY-MM-DD`.
    pub fn days_left(&self, today: time::Date) -> Option<i64> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let expires = time::Date::parse(&self.expires, &format).ok()?;
        Some((expires - today).whole_days())
    }

    /// The targets it covers, as a user reads them: `every target`, or its globs joined, each
    /// passed through `escape` for the format it is written into.
    pub fn scope(&self, escape: impl Fn(&str) -> String) -> String {
        if self.targets.is_empty() {
            "every target".to_owned()
        } else {
            self.targets
                .iter()
                .map(|t| escape(t))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// Where the waiver came from, as a user reads it: the file, or `the profile`.
    pub fn origin(&self) -> &str {
        self.source.as_deref().unwrap_or("the profile")
    }
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
    /// Present and `true` on a failure that also failed on the same target in the run's
    /// baseline (see [`BaselineInfo`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub known_failure: bool,
    /// How to fix a failure.
    pub remediation: String,
    /// How long evaluating the check took, in seconds.
    pub duration_secs: f64,
}

impl CheckResult {
    /// Where the result sorts in reports for people, failures first: gating failures, gating
    /// errors, advisory failures, advisory errors, waived, skipped, passed.
    pub fn rank(&self) -> u8 {
        match (self.outcome, self.gating) {
            (Outcome::Fail, true) => 0,
            (Outcome::Error, true) => 1,
            (Outcome::Fail, false) => 2,
            (Outcome::Error, false) => 3,
            (Outcome::Waived, _) => 4,
            (Outcome::Skip, _) => 5,
            (Outcome::Pass, _) => 6,
        }
    }

    /// The trial name, `<target>::<suite>::<check-id>`.
    pub fn trial_name(&self) -> String {
        format!("{}::{}::{}", self.target, self.suite, self.check)
    }
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
        let mut summary = Summary::default();
        for result in results {
            summary.add(result);
        }
        summary
    }

    /// Counts one more result.
    pub fn add(&mut self, result: &CheckResult) {
        self.total += 1;
        match result.outcome {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Skip => self.skip += 1,
            Outcome::Waived => self.waived += 1,
            Outcome::Error => self.error += 1,
        }
        if result.gating && result.outcome == Outcome::Fail {
            self.gating_fail += 1;
        }
        if result.gating && result.outcome == Outcome::Error {
            self.gating_error += 1;
        }
    }
}
