//! The verdict rules: the one place a verdict is derived from results.
//!
//! A verdict is never read from a file. [`RunReport::derive`] computes the verdict, the summary,
//! the targets' group counts and the baseline's gate from the results, and every report that is
//! read back ([`crate::json::from_str`]) is checked against its results by
//! [`RunReport::check_derived`]: a report whose stored verdict or counts disagree with its
//! results is refused with the field named, so that an edited `"verdict": "certified"` is never
//! rendered, signed, merged or used as a baseline.
//!
//! | rule | target verdict |
//! | --- | --- |
//! | a gating check failed on it (an expired waiver counts), whatever else errored | `not certified` |
//! | else it could not be read, or gathering stopped early | `incomplete` |
//! | else a gating check on it ended in `error` | `incomplete` |
//! | else no gating check was evaluated on it (each one skipped, filtered out, or none selected) | `incomplete` |
//! | else | `certified` |
//!
//! A gating check is *evaluated* when its outcome is `pass`, `fail` or `waived`. The run's
//! verdict is `not certified` when any target's is, else `incomplete` when any target's is (or the
//! run has no target), else `certified`. The baseline's gate ([`crate::BaselineInfo::verdict`])
//! follows the same rules, with failures also in the baseline counted as evaluated but not
//! failing.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::{BaselineInfo, CheckResult, Outcome, RunReport, Summary, TargetReport, Verdict};

/// Why a target's verdict is `incomplete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incomplete {
    /// The target could not be read at all.
    Unreadable,
    /// Gathering stopped before every fact was read.
    GatherStopped,
    /// A gating check could not be evaluated.
    GatingError,
    /// No gating check was evaluated: each one was skipped, or none ran.
    NothingEvaluated,
}

impl Incomplete {
    /// The reason as a user reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Incomplete::Unreadable => "the target could not be read",
            Incomplete::GatherStopped => "gathering stopped before every fact was read",
            Incomplete::GatingError => "a gating check could not be evaluated",
            Incomplete::NothingEvaluated => {
                "no gating check was evaluated (each one was skipped, or none ran)"
            }
        }
    }
}

/// One target's verdict, and why it is incomplete when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetVerdict {
    /// The verdict.
    pub verdict: Verdict,
    /// Why it is `incomplete`; `None` for the other verdicts.
    pub incomplete: Option<Incomplete>,
}

/// What decides a verdict, counted over gating results.
#[derive(Debug, Clone, Copy, Default)]
struct Gate {
    failed: usize,
    errors: usize,
    evaluated: usize,
}

impl Gate {
    /// Counts one result; with `new_only`, a failure also in the baseline is evaluated but not
    /// failing.
    fn add(&mut self, result: &CheckResult, new_only: bool) {
        if !result.gating {
            return;
        }
        match result.outcome {
            Outcome::Fail if new_only && result.known_failure => self.evaluated += 1,
            Outcome::Fail => {
                self.failed += 1;
                self.evaluated += 1;
            }
            Outcome::Pass | Outcome::Waived => self.evaluated += 1,
            Outcome::Error => self.errors += 1,
            Outcome::Skip => {}
        }
    }

    fn verdict(self, target: Option<&TargetReport>) -> TargetVerdict {
        let incomplete = |why| TargetVerdict {
            verdict: Verdict::Incomplete,
            incomplete: Some(why),
        };
        if self.failed > 0 {
            return TargetVerdict {
                verdict: Verdict::NotCertified,
                incomplete: None,
            };
        }
        match target {
            None => incomplete(Incomplete::Unreadable),
            Some(t) if t.error.is_some() => incomplete(Incomplete::Unreadable),
            Some(t) if t.gather_error.is_some() => incomplete(Incomplete::GatherStopped),
            _ if self.errors > 0 => incomplete(Incomplete::GatingError),
            _ if self.evaluated == 0 => incomplete(Incomplete::NothingEvaluated),
            _ => TargetVerdict {
                verdict: Verdict::Certified,
                incomplete: None,
            },
        }
    }
}

impl TargetVerdict {
    /// The verdict of one target from its results (see the module's rules).
    pub fn of<'a>(
        target: &TargetReport,
        results: impl IntoIterator<Item = &'a CheckResult>,
    ) -> TargetVerdict {
        let mut gate = Gate::default();
        for result in results {
            gate.add(result, false);
        }
        gate.verdict(Some(target))
    }
}

/// The run's verdict from its targets' verdicts: not certified when any is, else incomplete when
/// any is or there is none, else certified.
fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut any = false;
    let mut incomplete = false;
    for verdict in verdicts {
        any = true;
        match verdict {
            Verdict::NotCertified => return Verdict::NotCertified,
            Verdict::Incomplete => incomplete = true,
            _ => {}
        }
    }
    if !any || incomplete {
        Verdict::Incomplete
    } else {
        Verdict::Certified
    }
}

/// A stored field that disagrees with what the report's results give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct Underived {
    /// The field, as a path in the JSON (`verdict`, `summary.gating-fail`).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl RunReport {
    /// Every target's verdict, in the order of `targets`, from one pass over the results.
    pub fn target_verdicts(&self) -> Vec<TargetVerdict> {
        let gates = self.gates(false);
        self.targets
            .iter()
            .map(|t| {
                gates
                    .get(t.name.as_str())
                    .copied()
                    .unwrap_or_default()
                    .verdict(Some(t))
            })
            .collect()
    }

    /// One target's verdict (see [`RunReport::target_verdicts`] for many).
    pub fn target_verdict(&self, target: &TargetReport) -> TargetVerdict {
        TargetVerdict::of(target, self.results_of(&target.name))
    }

    /// The verdict the results give, whatever `verdict` says.
    pub fn derived_verdict(&self) -> Verdict {
        self.derive_with(false)
    }

    /// The baseline gate's verdict the results give: as [`RunReport::derived_verdict`], with
    /// failures marked `known-failure` counted as evaluated but not failing.
    pub fn derived_gate_verdict(&self) -> Verdict {
        self.derive_with(true)
    }

    fn gates(&self, new_only: bool) -> HashMap<&str, Gate> {
        let mut gates: HashMap<&str, Gate> = HashMap::new();
        for result in &self.results {
            gates
                .entry(result.target.as_str())
                .or_default()
                .add(result, new_only);
        }
        gates
    }

    fn derive_with(&self, new_only: bool) -> Verdict {
        let mut gates = self.gates(new_only);
        let mut verdicts: Vec<Verdict> = self
            .targets
            .iter()
            .map(|t| {
                gates
                    .get(t.name.as_str())
                    .copied()
                    .unwrap_or_default()
                    .verdict(Some(t))
                    .verdict
            })
            .collect();
        // Results of a target the report does not list count as a target not read in full.
        let listed: HashSet<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        gates.retain(|name, _| !listed.contains(name));
        verdicts.extend(gates.values().map(|g| g.verdict(None).verdict));
        combine(verdicts)
    }

    /// Each target's outcome counts by check group ([`crate::matrix::groups`]), in one pass.
    fn groups_by_target(&self) -> HashMap<&str, BTreeMap<String, Summary>> {
        let mut all: HashMap<&str, BTreeMap<String, Summary>> = HashMap::new();
        for result in &self.results {
            all.entry(result.target.as_str())
                .or_default()
                .entry(crate::matrix::group_of(&result.check).to_owned())
                .or_default()
                .add(result);
        }
        all
    }

    /// Known, new and new gating failures, from the results' `known-failure` marks.
    fn baseline_counts(&self) -> (usize, usize, usize) {
        let (mut known, mut new, mut new_gating) = (0, 0, 0);
        for result in self.results.iter().filter(|r| r.outcome == Outcome::Fail) {
            if result.known_failure {
                known += 1;
            } else {
                new += 1;
                new_gating += usize::from(result.gating);
            }
        }
        (known, new, new_gating)
    }

    /// Sets everything derived from the results: `summary`, `verdict`, each target's `groups`,
    /// and the baseline's counts and gate.
    pub fn derive(&mut self) {
        self.summary = Summary::of(&self.results);
        self.verdict = self.derived_verdict();
        let mut groups = self.groups_by_target();
        let groups: Vec<_> = self
            .targets
            .iter()
            .map(|t| groups.remove(t.name.as_str()).unwrap_or_default())
            .collect();
        for (target, groups) in self.targets.iter_mut().zip(groups) {
            target.groups = groups;
        }
        let (known, new, new_gating) = self.baseline_counts();
        let gate = self.derived_gate_verdict();
        if let Some(baseline) = &mut self.baseline {
            baseline.known_failures = known;
            baseline.new_failures = new;
            baseline.new_gating_failures = new_gating;
            baseline.verdict = gate;
        }
    }

    /// Checks every stored field that is derived from the results against them: `verdict`,
    /// `summary`, each target's `groups` (when present; reports written before they existed
    /// have none), the baseline's counts and gate, and that every result names a target of the
    /// report, listed once.
    pub fn check_derived(&self) -> Result<(), Underived> {
        let wrong = |field: &str, problem: String| {
            Err(Underived {
                field: field.to_owned(),
                problem,
            })
        };
        let mut listed: HashMap<&str, usize> = HashMap::new();
        for (index, target) in self.targets.iter().enumerate() {
            if let Some(first) = listed.insert(target.name.as_str(), index) {
                return wrong(
                    &format!("targets[{index}].name"),
                    format!("`{}` is also the name of targets[{first}]", target.name),
                );
            }
        }
        if let Some(index) = self
            .results
            .iter()
            .position(|r| !listed.contains_key(r.target.as_str()))
        {
            return wrong(
                &format!("results[{index}].target"),
                format!(
                    "`{}` names no target of the report",
                    self.results[index].target
                ),
            );
        }
        let summary = Summary::of(&self.results);
        let counts = |s: &Summary| {
            [
                ("total", s.total),
                ("pass", s.pass),
                ("fail", s.fail),
                ("skip", s.skip),
                ("waived", s.waived),
                ("error", s.error),
                ("gating-fail", s.gating_fail),
                ("gating-error", s.gating_error),
            ]
        };
        for ((name, stored), (_, derived)) in
            counts(&self.summary).into_iter().zip(counts(&summary))
        {
            if stored != derived {
                return wrong(
                    &format!("summary.{name}"),
                    format!("is {stored}, but the results count {derived}"),
                );
            }
        }
        let groups = self.groups_by_target();
        let none = BTreeMap::new();
        for (index, target) in self.targets.iter().enumerate() {
            if !target.groups.is_empty()
                && target.groups != *groups.get(target.name.as_str()).unwrap_or(&none)
            {
                return wrong(
                    &format!("targets[{index}].groups"),
                    format!(
                        "does not hold the counts of the results of `{}`",
                        target.name
                    ),
                );
            }
        }
        let derived = self.derived_verdict();
        if self.verdict != derived {
            let why = self
                .targets
                .iter()
                .zip(self.target_verdicts())
                .find(|(_, v)| v.verdict == derived)
                .map(|(t, v)| match v.incomplete {
                    Some(why) => format!(" (target `{}`: {})", t.name, why.describe()),
                    None if derived == Verdict::NotCertified => {
                        format!(" (a gating check failed on target `{}`)", t.name)
                    }
                    None => String::new(),
                })
                .unwrap_or_default();
            return wrong(
                "verdict",
                format!(
                    "is {}, but the results give {}{why}",
                    self.verdict.label(),
                    derived.label()
                ),
            );
        }
        if let Some(baseline) = &self.baseline {
            let (known, new, new_gating) = self.baseline_counts();
            let stored = |b: &BaselineInfo| {
                [
                    ("known-failures", b.known_failures),
                    ("new-failures", b.new_failures),
                    ("new-gating-failures", b.new_gating_failures),
                ]
            };
            for ((name, stored), derived) in
                stored(baseline).into_iter().zip([known, new, new_gating])
            {
                if stored != derived {
                    return wrong(
                        &format!("baseline.{name}"),
                        format!("is {stored}, but the results count {derived}"),
                    );
                }
            }
            let gate = self.derived_gate_verdict();
            if baseline.verdict != gate {
                return wrong(
                    "baseline.verdict",
                    format!(
                        "is {}, but the results give {}",
                        baseline.verdict.label(),
                        gate.label()
                    ),
                );
            }
        }
        Ok(())
    }
}
