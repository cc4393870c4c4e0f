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

use std::collections::{BTreeMap, HashMap};

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

/// Everything derived from results, counted one result at a time: what [`RunReport::derive`]
/// computes over a report in memory, and what a run computes while its results stream to disk
/// (it never holds them all). The verdict rules above are applied in [`Tally::apply`].
#[derive(Debug, Clone, Default)]
pub struct Tally {
    targets: Vec<TargetTally>,
    /// Results naming a target the report does not list, by name: such a target counts as not
    /// read in full.
    unlisted: BTreeMap<String, (Gate, Gate)>,
    summary: Summary,
    known: usize,
    new: usize,
    new_gating: usize,
}

/// One target's share of what is derived from the results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetTally {
    /// Outcome counts of its results.
    pub summary: Summary,
    /// Outcome counts by check group ([`crate::matrix::group_of`]).
    pub groups: BTreeMap<String, Summary>,
    /// The gating checks that failed on it, in report order.
    pub failing: Vec<String>,
    /// The gating checks that could not be evaluated on it, in report order.
    pub errors: Vec<String>,
    gate: GateCounts,
    gate_new: GateCounts,
}

/// [`Gate`] with `PartialEq`, for [`TargetTally`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct GateCounts {
    failed: usize,
    errors: usize,
    evaluated: usize,
}

impl From<Gate> for GateCounts {
    fn from(gate: Gate) -> GateCounts {
        GateCounts {
            failed: gate.failed,
            errors: gate.errors,
            evaluated: gate.evaluated,
        }
    }
}

impl From<GateCounts> for Gate {
    fn from(counts: GateCounts) -> Gate {
        Gate {
            failed: counts.failed,
            errors: counts.errors,
            evaluated: counts.evaluated,
        }
    }
}

impl Tally {
    /// A tally of a report with `targets` targets and no result yet.
    pub fn new(targets: usize) -> Tally {
        Tally {
            targets: vec![TargetTally::default(); targets],
            ..Tally::default()
        }
    }

    /// Counts one result of the target at `target` (its position in the report's targets).
    pub fn add(&mut self, target: usize, result: &CheckResult) {
        self.count(result);
        let tally = &mut self.targets[target];
        tally.summary.add(result);
        tally
            .groups
            .entry(crate::matrix::group_of(&result.check).to_owned())
            .or_default()
            .add(result);
        let mut gate = Gate::from(tally.gate);
        gate.add(result, false);
        tally.gate = gate.into();
        let mut gate = Gate::from(tally.gate_new);
        gate.add(result, true);
        tally.gate_new = gate.into();
        if result.gating {
            match result.outcome {
                Outcome::Fail => tally.failing.push(result.check.clone()),
                Outcome::Error => tally.errors.push(result.check.clone()),
                _ => {}
            }
        }
    }

    /// Counts one result whose target the report does not list.
    pub fn add_unlisted(&mut self, target: &str, result: &CheckResult) {
        self.count(result);
        let (gate, gate_new) = self.unlisted.entry(target.to_owned()).or_default();
        gate.add(result, false);
        gate_new.add(result, true);
    }

    fn count(&mut self, result: &CheckResult) {
        self.summary.add(result);
        if result.outcome == Outcome::Fail {
            if result.known_failure {
                self.known += 1;
            } else {
                self.new += 1;
                self.new_gating += usize::from(result.gating);
            }
        }
    }

    /// Each target's share, in the order of the report's targets.
    pub fn targets(&self) -> &[TargetTally] {
        &self.targets
    }

    /// The counts over every result.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// Every target's verdict; `targets` are the report's, in the order they were counted.
    pub fn verdicts(&self, targets: &[TargetReport]) -> Vec<TargetVerdict> {
        targets
            .iter()
            .zip(&self.targets)
            .map(|(t, tally)| Gate::from(tally.gate).verdict(Some(t)))
            .collect()
    }

    /// The run's verdict (`new_only`: the baseline gate's, where known failures do not fail).
    fn verdict(&self, targets: &[TargetReport], new_only: bool) -> Verdict {
        let listed = targets.iter().zip(&self.targets).map(|(t, tally)| {
            let gate = if new_only { tally.gate_new } else { tally.gate };
            Gate::from(gate).verdict(Some(t)).verdict
        });
        // Results of a target the report does not list count as a target not read in full.
        let unlisted = self.unlisted.values().map(|(gate, gate_new)| {
            let gate = if new_only { gate_new } else { gate };
            gate.verdict(None).verdict
        });
        combine(listed.chain(unlisted))
    }

    /// The compatibility matrix of `targets` (those with a `pair`), or `None` without pairs.
    fn matrix(&self, targets: &[TargetReport]) -> Option<crate::PairMatrix> {
        let mut matrix = crate::PairMatrix {
            images: Vec::new(),
            hosts: Vec::new(),
            cells: Vec::new(),
        };
        for (target, tally) in targets.iter().zip(&self.targets) {
            let Some(pair) = &target.pair else { continue };
            if !matrix.images.contains(&pair.image) {
                matrix.images.push(pair.image.clone());
            }
            if !matrix.hosts.contains(&pair.host) {
                matrix.hosts.push(pair.host.clone());
            }
            matrix.cells.push(crate::MatrixCell {
                image: pair.image.clone(),
                host: pair.host.clone(),
                target: target.name.clone(),
                verdict: Gate::from(tally.gate).verdict(Some(target)).verdict,
                failing: tally.failing.clone(),
                errors: tally.errors.clone(),
            });
        }
        (!matrix.cells.is_empty()).then_some(matrix)
    }

    /// Sets everything derived on `report`, whose `targets` are the ones counted, in order (its
    /// `results` are not read): `summary`, `verdict`, each target's `groups`, the baseline's
    /// counts and gate, and the compatibility `matrix`.
    pub fn apply(&self, report: &mut RunReport) {
        report.summary = self.summary;
        report.verdict = self.verdict(&report.targets, false);
        for (target, tally) in report.targets.iter_mut().zip(&self.targets) {
            target.groups = tally.groups.clone();
        }
        let gate = self.verdict(&report.targets, true);
        if let Some(baseline) = &mut report.baseline {
            baseline.known_failures = self.known;
            baseline.new_failures = self.new;
            baseline.new_gating_failures = self.new_gating;
            baseline.verdict = gate;
        }
        report.matrix = self.matrix(&report.targets);
    }
}

impl RunReport {
    /// The tally of this report's results, in one pass.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::new(self.targets.len());
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (position, target) in self.targets.iter().enumerate() {
            index.entry(target.name.as_str()).or_insert(position);
        }
        for result in &self.results {
            match index.get(result.target.as_str()) {
                Some(&position) => tally.add(position, result),
                None => tally.add_unlisted(&result.target, result),
            }
        }
        tally
    }

    /// Every target's verdict, in the order of `targets`, from one pass over the results.
    pub fn target_verdicts(&self) -> Vec<TargetVerdict> {
        self.tally().verdicts(&self.targets)
    }

    /// One target's verdict (see [`RunReport::target_verdicts`] for many).
    pub fn target_verdict(&self, target: &TargetReport) -> TargetVerdict {
        TargetVerdict::of(target, self.results_of(&target.name))
    }

    /// The verdict the results give, whatever `verdict` says.
    pub fn derived_verdict(&self) -> Verdict {
        self.tally().verdict(&self.targets, false)
    }

    /// The baseline gate's verdict the results give: as [`RunReport::derived_verdict`], with
    /// failures marked `known-failure` counted as evaluated but not failing.
    pub fn derived_gate_verdict(&self) -> Verdict {
        self.tally().verdict(&self.targets, true)
    }

    /// Sets everything derived from the results: `summary`, `verdict`, each target's `groups`,
    /// the baseline's counts and gate, and the compatibility `matrix`.
    pub fn derive(&mut self) {
        let tally = self.tally();
        tally.apply(self);
    }

    /// Checks every stored field that is derived from the results against them: `verdict`,
    /// `summary`, each target's `groups` (when present; reports written before they existed
    /// have none), the baseline's counts and gate, the compatibility `matrix`, and that every
    /// result names a target of the report, listed once.
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
        let tally = self.tally();
        let summary = tally.summary();
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
        for (index, (target, counted)) in self.targets.iter().zip(tally.targets()).enumerate() {
            if !target.groups.is_empty() && target.groups != counted.groups {
                return wrong(
                    &format!("targets[{index}].groups"),
                    format!(
                        "does not hold the counts of the results of `{}`",
                        target.name
                    ),
                );
            }
        }
        let derived = tally.verdict(&self.targets, false);
        if self.verdict != derived {
            let why = self
                .targets
                .iter()
                .zip(tally.verdicts(&self.targets))
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
            let (known, new, new_gating) = (tally.known, tally.new, tally.new_gating);
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
            let gate = tally.verdict(&self.targets, true);
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
        if self.matrix != tally.matrix(&self.targets) {
            return wrong(
                "matrix",
                "does not hold the pairs of `targets` with the verdicts and failing checks their results give".to_owned(),
            );
        }
        Ok(())
    }
}
