//! What changed between two runs, and the baseline gate that fails only on regressions.
//!
//! [`compare`] matches results by target name and check id. Per target it lists new failures
//! (a `fail` that was not a `fail` before, including checks or targets the old run did not
//! have), fixed checks (a `fail` or `error` that now passes), other outcome changes, and
//! changed evidence (a fact observed differently or read from another source). Version
//! changes are the same for every target of a run, so they are listed once: the profile, each
//! suite (version and digest) and each check whose version changed.
//!
//! [`apply_baseline`] is `hostcert run --baseline`: it marks each failure that also failed in
//! the baseline as known and records the gate's verdict, in which only new failures count.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::{BaselineInfo, CheckResult, Evidence, Outcome, RunReport, Severity, Verdict};

/// The differences between two reports, as `hostcert diff --json` writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReportDiff {
    /// The older run.
    pub old: RunRef,
    /// The newer run.
    pub new: RunRef,
    /// The profile, when its name or version changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Change>,
    /// Suites whose version or digest changed, or that were added or removed.
    pub suites: Vec<SuiteChange>,
    /// Checks whose version changed.
    pub checks: Vec<CheckVersionChange>,
    /// One entry per target of either run, in the new run's order, then removed targets.
    pub targets: Vec<TargetDiff>,
    /// Counts over every target.
    pub counts: DiffCounts,
}

/// One side of a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunRef {
    /// The report file as the user named it.
    pub source: String,
    /// When the run started.
    pub started_at: String,
    /// The profile, `name version`.
    pub profile: String,
    /// The run's verdict.
    pub verdict: Verdict,
}

/// A value before and after; `None` when it did not exist on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Change {
    /// Before.
    pub old: Option<String>,
    /// After.
    pub new: Option<String>,
}

/// A suite that changed between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SuiteChange {
    /// The suite's name.
    pub name: String,
    /// `version (digest)` before and after.
    pub change: Change,
}

/// A check whose version changed between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckVersionChange {
    /// The check id.
    pub check: String,
    /// The suite it is in (in the new run).
    pub suite: String,
    /// The versions before and after.
    pub change: Change,
}

/// Whether a target is in both runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetStatus {
    /// In both runs.
    Both,
    /// Only in the new run.
    Added,
    /// Only in the old run.
    Removed,
}

/// What changed on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TargetDiff {
    /// The target's name.
    pub target: String,
    /// Whether it is in both runs.
    pub status: TargetStatus,
    /// Checks that fail now and did not fail before.
    pub new_failures: Vec<OutcomeChange>,
    /// Checks that failed or could not be evaluated before and pass now.
    pub fixed: Vec<OutcomeChange>,
    /// Every other change of outcome (to `error`, `waived` or `skip`, or a check that is gone).
    pub other_changes: Vec<OutcomeChange>,
    /// Facts observed differently, or read from another source, by checks of both runs.
    pub evidence: Vec<EvidenceChange>,
}

impl TargetDiff {
    /// Whether nothing changed on this target.
    pub fn is_unchanged(&self) -> bool {
        self.status == TargetStatus::Both
            && self.new_failures.is_empty()
            && self.fixed.is_empty()
            && self.other_changes.is_empty()
            && self.evidence.is_empty()
    }
}

/// A check whose outcome changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutcomeChange {
    /// The check id.
    pub check: String,
    /// The check's title.
    pub title: String,
    /// The check's severity (in the newer run when it has the check).
    pub severity: Severity,
    /// Whether the check gates (in the newer run when it has the check).
    pub gating: bool,
    /// The outcome before; `None` when the old run did not have the check.
    pub old: Option<Outcome>,
    /// The outcome after; `None` when the new run does not have the check.
    pub new: Option<Outcome>,
    /// The newer run's message (the older one's when the check is gone).
    pub message: String,
}

/// A fact observed differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EvidenceChange {
    /// The check that read it.
    pub check: String,
    /// The fact's name.
    pub fact: String,
    /// `observed (from source)` before; `None` when the check did not read it.
    pub old: Option<String>,
    /// `observed (from source)` after; `None` when the check no longer reads it.
    pub new: Option<String>,
}

/// Counts over a whole diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DiffCounts {
    /// New failures, of any severity.
    pub new_failures: usize,
    /// New failures of gating checks: what `hostcert diff` exits 1 for.
    pub new_gating_failures: usize,
    /// Fixed checks.
    pub fixed: usize,
    /// Other outcome changes.
    pub other_changes: usize,
    /// Evidence changes.
    pub evidence_changes: usize,
    /// Targets only in the new run.
    pub targets_added: usize,
    /// Targets only in the old run.
    pub targets_removed: usize,
    /// Targets on which nothing changed.
    pub targets_unchanged: usize,
}

/// Compares two reports; `old_source` and `new_source` name them in the output.
pub fn compare(old: &RunReport, old_source: &str, new: &RunReport, new_source: &str) -> ReportDiff {
    let run_ref = |report: &RunReport, source: &str| RunRef {
        source: source.to_owned(),
        started_at: report.started_at.clone(),
        profile: format!("{} {}", report.profile.name, report.profile.version),
        verdict: report.verdict,
    };
    let old_ref = run_ref(old, old_source);
    let new_ref = run_ref(new, new_source);
    let profile = (old_ref.profile != new_ref.profile).then(|| Change {
        old: Some(old_ref.profile.clone()),
        new: Some(new_ref.profile.clone()),
    });

    let suite_text = |s: &crate::SuiteInfo| format!("{} ({})", s.version, s.digest);
    let mut suites = Vec::new();
    for suite in &new.profile.suites {
        let before = old.profile.suites.iter().find(|s| s.name == suite.name);
        let change = Change {
            old: before.map(suite_text),
            new: Some(suite_text(suite)),
        };
        if change.old != change.new {
            suites.push(SuiteChange {
                name: suite.name.clone(),
                change,
            });
        }
    }
    for suite in &old.profile.suites {
        if !new.profile.suites.iter().any(|s| s.name == suite.name) {
            suites.push(SuiteChange {
                name: suite.name.clone(),
                change: Change {
                    old: Some(suite_text(suite)),
                    new: None,
                },
            });
        }
    }

    let old_versions: HashMap<&str, &str> = old
        .results
        .iter()
        .map(|r| (r.check.as_str(), r.check_version.as_str()))
        .collect();
    let mut checks: Vec<CheckVersionChange> = Vec::new();
    let mut seen_checks = HashSet::new();
    for result in &new.results {
        if !seen_checks.insert(result.check.as_str()) {
            continue;
        }
        if let Some(before) = old_versions.get(result.check.as_str()) {
            if *before != result.check_version {
                checks.push(CheckVersionChange {
                    check: result.check.clone(),
                    suite: result.suite.clone(),
                    change: Change {
                        old: Some((*before).to_owned()),
                        new: Some(result.check_version.clone()),
                    },
                });
            }
        }
    }

    let old_by_target = index(old);
    let new_by_target = index(new);
    let mut targets = Vec::new();
    for target in &new.targets {
        let now = new_by_target.get(target.name.as_str());
        let before = old_by_target.get(target.name.as_str());
        let status = if old.targets.iter().any(|t| t.name == target.name) {
            TargetStatus::Both
        } else {
            TargetStatus::Added
        };
        targets.push(target_diff(&target.name, status, before, now));
    }
    for target in &old.targets {
        if !new.targets.iter().any(|t| t.name == target.name) {
            let before = old_by_target.get(target.name.as_str());
            targets.push(target_diff(
                &target.name,
                TargetStatus::Removed,
                before,
                None,
            ));
        }
    }

    let mut counts = DiffCounts::default();
    for target in &targets {
        counts.new_failures += target.new_failures.len();
        counts.new_gating_failures += target.new_failures.iter().filter(|c| c.gating).count();
        counts.fixed += target.fixed.len();
        counts.other_changes += target.other_changes.len();
        counts.evidence_changes += target.evidence.len();
        match target.status {
            TargetStatus::Added => counts.targets_added += 1,
            TargetStatus::Removed => counts.targets_removed += 1,
            TargetStatus::Both if target.is_unchanged() => counts.targets_unchanged += 1,
            TargetStatus::Both => {}
        }
    }
    ReportDiff {
        old: old_ref,
        new: new_ref,
        profile,
        suites,
        checks,
        targets,
        counts,
    }
}

/// Results by target, then by check id, keeping the report's order of checks.
type ByTarget<'a> = HashMap<&'a str, Vec<&'a CheckResult>>;

fn index(report: &RunReport) -> ByTarget<'_> {
    let mut by_target: ByTarget<'_> = HashMap::new();
    for result in &report.results {
        by_target
            .entry(result.target.as_str())
            .or_default()
            .push(result);
    }
    by_target
}

fn target_diff(
    name: &str,
    status: TargetStatus,
    before: Option<&Vec<&CheckResult>>,
    now: Option<&Vec<&CheckResult>>,
) -> TargetDiff {
    let empty = Vec::new();
    let before = before.unwrap_or(&empty);
    let now = now.unwrap_or(&empty);
    let old_by_check: HashMap<&str, &CheckResult> =
        before.iter().map(|r| (r.check.as_str(), *r)).collect();
    let mut diff = TargetDiff {
        target: name.to_owned(),
        status,
        new_failures: Vec::new(),
        fixed: Vec::new(),
        other_changes: Vec::new(),
        evidence: Vec::new(),
    };
    for result in now {
        let old = old_by_check.get(result.check.as_str()).copied();
        let old_outcome = old.map(|r| r.outcome);
        let change = OutcomeChange {
            check: result.check.clone(),
            title: result.title.clone(),
            severity: result.severity,
            gating: result.gating,
            old: old_outcome,
            new: Some(result.outcome),
            message: result.message.clone(),
        };
        if result.outcome == Outcome::Fail && old_outcome != Some(Outcome::Fail) {
            diff.new_failures.push(change);
        } else if result.outcome == Outcome::Pass
            && matches!(old_outcome, Some(Outcome::Fail | Outcome::Error))
        {
            diff.fixed.push(change);
        } else if old_outcome.is_some() && old_outcome != Some(result.outcome) {
            diff.other_changes.push(change);
        }
        if let Some(old) = old {
            diff.evidence.extend(evidence_changes(
                &result.check,
                &old.evidence,
                &result.evidence,
            ));
        }
    }
    if status != TargetStatus::Removed {
        let now_checks: HashSet<&str> = now.iter().map(|r| r.check.as_str()).collect();
        for result in before {
            if !now_checks.contains(result.check.as_str()) {
                diff.other_changes.push(OutcomeChange {
                    check: result.check.clone(),
                    title: result.title.clone(),
                    severity: result.severity,
                    gating: result.gating,
                    old: Some(result.outcome),
                    new: None,
                    message: result.message.clone(),
                });
            }
        }
    }
    diff
}

fn evidence_changes(check: &str, old: &[Evidence], new: &[Evidence]) -> Vec<EvidenceChange> {
    let text = |e: &Evidence| format!("{} (from {})", e.observed, e.source);
    let old_by_fact: BTreeMap<&str, String> =
        old.iter().map(|e| (e.fact.as_str(), text(e))).collect();
    let new_by_fact: BTreeMap<&str, String> =
        new.iter().map(|e| (e.fact.as_str(), text(e))).collect();
    let mut facts: Vec<&str> = new.iter().map(|e| e.fact.as_str()).collect();
    facts.extend(
        old.iter()
            .map(|e| e.fact.as_str())
            .filter(|f| !new_by_fact.contains_key(f)),
    );
    facts
        .into_iter()
        .filter_map(|fact| {
            let before = old_by_fact.get(fact).cloned();
            let after = new_by_fact.get(fact).cloned();
            (before != after).then(|| EvidenceChange {
                check: check.to_owned(),
                fact: fact.to_owned(),
                old: before,
                new: after,
            })
        })
        .collect()
}

/// The diff as text for people: versions, then each target that changed, then the counts.
pub fn render_text(diff: &ReportDiff) -> String {
    let mut text = String::new();
    for (label, run) in [("old", &diff.old), ("new", &diff.new)] {
        text += &format!(
            "{label}: {} (started {}, profile {}, {})\n",
            one_line(&run.source),
            one_line(&run.started_at),
            one_line(&run.profile),
            run.verdict.label()
        );
    }
    let side = |value: &Option<String>| value.as_deref().map_or("none".to_owned(), one_line);
    if let Some(change) = &diff.profile {
        text += &format!("profile: {} -> {}\n", side(&change.old), side(&change.new));
    }
    for suite in &diff.suites {
        text += &format!(
            "suite {}: {} -> {}\n",
            one_line(&suite.name),
            side(&suite.change.old),
            side(&suite.change.new)
        );
    }
    for check in &diff.checks {
        text += &format!(
            "check {}: {} -> {}\n",
            one_line(&check.check),
            side(&check.change.old),
            side(&check.change.new)
        );
    }
    let outcome = |o: Option<Outcome>| o.map_or("none", Outcome::as_str);
    for target in &diff.targets {
        if target.is_unchanged() {
            continue;
        }
        let status = match target.status {
            TargetStatus::Both => "",
            TargetStatus::Added => " (only in the new run)",
            TargetStatus::Removed => " (only in the old run)",
        };
        text += &format!("\n{}{status}:\n", one_line(&target.target));
        for change in &target.new_failures {
            text += &format!(
                "  new failure  {} ({}{}): {} -> fail: {}\n",
                one_line(&change.check),
                change.severity.as_str(),
                if change.gating { ", gating" } else { "" },
                outcome(change.old),
                one_line(&change.message)
            );
        }
        for change in &target.fixed {
            text += &format!(
                "  fixed        {}: {} -> pass\n",
                one_line(&change.check),
                outcome(change.old)
            );
        }
        for change in &target.other_changes {
            text += &format!(
                "  changed      {}: {} -> {}: {}\n",
                one_line(&change.check),
                outcome(change.old),
                outcome(change.new),
                one_line(&change.message)
            );
        }
        for change in &target.evidence {
            text += &format!(
                "  evidence     {}: {}: {} -> {}\n",
                one_line(&change.check),
                one_line(&change.fact),
                side(&change.old),
                side(&change.new)
            );
        }
    }
    let c = &diff.counts;
    text += &format!(
        "\ndiff: {} new failure{} ({} gating), {} fixed, {} other outcome change{}, {} evidence change{}; targets: {} added, {} removed, {} unchanged\n",
        c.new_failures,
        plural(c.new_failures),
        c.new_gating_failures,
        c.fixed,
        c.other_changes,
        plural(c.other_changes),
        c.evidence_changes,
        plural(c.evidence_changes),
        c.targets_added,
        c.targets_removed,
        c.targets_unchanged
    );
    text
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// Text from a report on one line, hidden characters escaped, for terminal output.
fn one_line(text: &str) -> String {
    crate::escape::visible(text).into_owned()
}

/// The (target, check) pairs that failed in a report.
pub fn failures(report: &RunReport) -> HashSet<(&str, &str)> {
    report
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .map(|r| (r.target.as_str(), r.check.as_str()))
        .collect()
}

/// Gates `report` against `baseline`: marks each failure that also failed on the same target
/// in the baseline as known (`known-failure`), and records [`BaselineInfo`], whose verdict
/// counts only new gating failures. `source` and `digest` name the baseline file.
pub fn apply_baseline(report: &mut RunReport, baseline: &RunReport, source: &str, digest: &str) {
    let known = failures(baseline);
    for result in &mut report.results {
        result.known_failure = result.outcome == Outcome::Fail
            && known.contains(&(result.target.as_str(), result.check.as_str()));
    }
    report.baseline = Some(BaselineInfo {
        source: source.to_owned(),
        digest: digest.to_owned(),
        started_at: baseline.started_at.clone(),
        baseline_verdict: baseline.verdict,
        verdict: Verdict::Incomplete,
        known_failures: 0,
        new_failures: 0,
        new_gating_failures: 0,
    });
    // The counts and the gate's verdict are derived from the `known-failure` marks.
    report.derive();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> RunReport {
        crate::json::from_str(include_str!("../example-report.json")).unwrap()
    }

    #[test]
    fn a_report_against_itself_has_no_changes() {
        let report = example();
        let diff = compare(&report, "a.json", &report, "b.json");
        assert_eq!(diff.counts.new_failures, 0);
        assert_eq!(diff.counts.targets_unchanged, report.targets.len());
        assert!(diff.suites.is_empty() && diff.checks.is_empty() && diff.profile.is_none());
    }

    #[test]
    fn outcome_changes_are_classified() {
        let old = example();
        let mut new = old.clone();
        let pass = new
            .results
            .iter()
            .position(|r| r.outcome == Outcome::Pass && r.gating)
            .unwrap();
        new.results[pass].outcome = Outcome::Fail;
        new.results[pass].evidence[0].observed = "changed".to_owned();
        let fail = new
            .results
            .iter()
            .position(|r| r.outcome == Outcome::Fail && r.gating)
            .unwrap();
        assert_ne!(fail, pass);
        new.results[fail].outcome = Outcome::Pass;
        new.results[0].check_version = "9.0.0".to_owned();
        let diff = compare(&old, "old", &new, "new");
        assert_eq!(diff.counts.new_failures, 1);
        assert_eq!(diff.counts.new_gating_failures, 1);
        assert_eq!(diff.counts.fixed, 1);
        assert_eq!(diff.counts.evidence_changes, 1);
        assert_eq!(diff.checks.len(), 1);
        assert_eq!(diff.checks[0].change.new.as_deref(), Some("9.0.0"));
    }

    #[test]
    fn the_baseline_gate_counts_only_new_gating_failures() {
        let old = example();
        let mut report = old.clone();
        report.baseline = None;
        apply_baseline(&mut report, &old, "old.json", "sha256:00");
        let baseline = report.baseline.clone().unwrap();
        assert_eq!(baseline.new_failures, 0);
        assert!(baseline.known_failures > 0);
        assert_ne!(baseline.verdict, Verdict::NotCertified);
        // A gating failure the baseline did not have fails the gate.
        let mut worse = old.clone();
        let pass = worse
            .results
            .iter()
            .position(|r| r.outcome == Outcome::Pass && r.gating)
            .unwrap();
        worse.results[pass].outcome = Outcome::Fail;
        apply_baseline(&mut worse, &old, "old.json", "sha256:00");
        let gate = worse.baseline.unwrap();
        assert_eq!(
            (gate.new_gating_failures, gate.verdict),
            (1, Verdict::NotCertified)
        );
        assert!(!worse.results[pass].known_failure);
    }
}
