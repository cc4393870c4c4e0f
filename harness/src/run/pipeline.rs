//! Running the plan on opened targets: every unit gathered once ([`crate::engine::gather`]),
//! every target evaluated on the worker that made its facts, which are then dropped, and the
//! results streamed as [`RunEvent`]s to the caller's [`Reporter`]s and to the run's spool, from
//! which the report is rendered.

use std::collections::HashSet;
use std::sync::Arc;

use hostcert_reports::{
    CheckResult, Outcome, ProfileInfo, ReportView, RunReport, SuiteInfo, Summary, Tally,
    TargetReport, ToolInfo,
};

use super::spool::{Spool, SpoolStore};
use super::Prepared;
use crate::catalog::Plan;
use crate::engine::{self, GatheredTarget, Gathering, UnitRead, Units};
use crate::Error;

/// What the pipeline tells its reporters, in order, on the calling thread.
pub enum RunEvent<'a> {
    /// An image or a host was read, or could not be.
    TargetGathered(&'a UnitRead),
    /// One check was evaluated on a target (`target`: its position in the report, `check`:
    /// the check's position in the plan).
    CheckEvaluated {
        /// The target's position in the report.
        target: usize,
        /// The check's position in the plan.
        check: usize,
        /// The result.
        result: &'a CheckResult,
    },
    /// Every check kept of a target was evaluated; its facts are gone.
    TargetEvaluated {
        /// The target's position in the report.
        target: usize,
        /// Its entry in the report.
        report: &'a TargetReport,
    },
    /// The run is over: its report, read back from where its results were spooled.
    RunFinished(&'a ReportView<'a>),
}

/// Takes a run's events: progress on a terminal, libtest's trials, anything that follows a run.
pub trait Reporter {
    /// One event.
    fn report(&mut self, event: &RunEvent<'_>);
}

/// What a run needs besides its targets.
pub struct Setup<'a> {
    /// The plan, waivers, baseline.
    pub prepared: &'a Prepared,
    /// Whether the trial of this name is kept (libtest's filters); a check a filter drops is
    /// neither gathered for nor evaluated.
    pub keep: &'a (dyn Fn(&str) -> bool + Sync),
    /// How many units are read at once.
    pub jobs: usize,
    /// When the run started.
    pub started_at: String,
}

/// The checks of the plan each target is evaluated on: those the filters keep.
pub fn kept_checks(
    plan: &Plan,
    units: &Units,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<Vec<usize>> {
    units
        .cells
        .iter()
        .map(|cell| {
            (0..plan.checks.len())
                .filter(|&i| keep(&plan.checks[i].trial_name(&cell.name)))
                .collect()
        })
        .collect()
}

/// One target's results, made on a worker.
struct Judged {
    report: TargetReport,
    checks: Vec<usize>,
    results: Vec<CheckResult>,
}

/// A finished run: the report's head (without its results, which stay in the spool), and
/// what was derived from them.
pub struct Finished {
    head: RunReport,
    tally: Tally,
    store: SpoolStore,
}

impl Finished {
    /// The report as renderers read it.
    pub fn view(&self) -> ReportView<'_> {
        ReportView::new(&self.head, &self.store, &self.tally)
    }

    /// The report's head: verdict, summary, targets (without fact sources), baseline, matrix.
    pub fn report(&self) -> &RunReport {
        &self.head
    }
}

/// Gathers every unit once and evaluates every target as its facts are made, telling
/// `reporters` as it goes. Facts once, checks many: each target is asked for the probes of the
/// checks the filters keep and that apply to its kind (an OS tree is not asked for /proc).
pub fn execute(
    setup: &Setup<'_>,
    mut units: Units,
    reporters: &mut [&mut dyn Reporter],
) -> Result<Finished, Error> {
    let plan = Arc::clone(&setup.prepared.plan);
    let kept = kept_checks(&plan, &units, setup.keep);
    for (cell, checks) in units.cells.iter_mut().zip(&kept) {
        let (kind, image) = (
            units.hosts[cell.host].kind(),
            cell.image
                .map(|i| units.images[i].kind())
                .or(units.hosts[cell.host].image_kind()),
        );
        cell.probes = engine::probes_for(
            checks
                .iter()
                .map(|&i| &plan.checks[i])
                .filter(|c| c.check.applies_to.covers_kind(kind, image)),
        );
    }
    let kept = Arc::new(kept);
    let today = time::OffsetDateTime::now_utc().date();
    let known: Arc<HashSet<(String, String)>> = Arc::new(
        setup
            .prepared
            .baseline
            .as_ref()
            .map(|b| b.failures.clone())
            .unwrap_or_default(),
    );
    let judge = {
        let (plan, kept) = (Arc::clone(&plan), Arc::clone(&kept));
        move |index: usize, gathered: GatheredTarget| -> Judged {
            let checks = kept[index].clone();
            let results = checks
                .iter()
                .map(|&check| {
                    let mut result = engine::evaluate(
                        &plan.checks[check],
                        &gathered.info,
                        &gathered.facts,
                        &plan.profile.profile,
                        today,
                    );
                    result.known_failure = result.outcome == Outcome::Fail
                        && known.contains(&(result.target.clone(), result.check.clone()));
                    result
                })
                .collect();
            // The facts go with `gathered`: only the target's entry and its results remain.
            Judged {
                report: gathered.report(),
                checks,
                results,
            }
        }
    };
    let cells = units.cells.len();
    let mut spool = Spool::new(cells).map_err(|e| Error::File {
        path: std::env::temp_dir().display().to_string(),
        reason: format!("cannot make the run's results file: {e}"),
    })?;
    let mut failed: Option<std::io::Error> = None;
    engine::gather(
        Arc::new(units),
        setup.jobs,
        Arc::new(judge),
        &mut |event| match event {
            Gathering::Unit(read) => {
                for reporter in reporters.iter_mut() {
                    reporter.report(&RunEvent::TargetGathered(&read));
                }
            }
            Gathering::Cell(index, judged) => {
                if failed.is_none() {
                    if let Err(error) = spool.add(index, &judged.report, &judged.results) {
                        failed = Some(error);
                    }
                }
                for reporter in reporters.iter_mut() {
                    for (check, result) in judged.checks.iter().zip(&judged.results) {
                        reporter.report(&RunEvent::CheckEvaluated {
                            target: index,
                            check: *check,
                            result,
                        });
                    }
                    reporter.report(&RunEvent::TargetEvaluated {
                        target: index,
                        report: &judged.report,
                    });
                }
            }
        },
    );
    let spool_path = spool.path();
    let fail = |error: std::io::Error| Error::File {
        path: spool_path.display().to_string(),
        reason: format!("cannot keep the run's results: {error}"),
    };
    if let Some(error) = failed {
        return Err(fail(error));
    }
    let (targets, tally, store) = spool.finish().map_err(fail)?;
    let head = head(
        &plan,
        setup,
        targets,
        &tally,
        cells * plan.checks.len(),
        today,
    );
    let finished = Finished { head, tally, store };
    let view = finished.view();
    for reporter in reporters.iter_mut() {
        reporter.report(&RunEvent::RunFinished(&view));
    }
    drop(view);
    Ok(finished)
}

/// The report without its results: everything derived set from `tally`.
fn head(
    plan: &Plan,
    setup: &Setup<'_>,
    targets: Vec<TargetReport>,
    tally: &Tally,
    trials: usize,
    today: time::Date,
) -> RunReport {
    let profile = &plan.profile.profile;
    let mut report = RunReport {
        format_version: hostcert_reports::FORMAT_VERSION,
        tool: ToolInfo {
            name: "hostcert".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        started_at: setup.started_at.clone(),
        finished_at: super::now(),
        profile: ProfileInfo {
            name: profile.name.to_string(),
            version: profile.version.to_string(),
            source: plan.profile.source.clone(),
            digest: plan.profile.digest.clone(),
            suites: plan
                .suites
                .iter()
                .map(|s| SuiteInfo {
                    name: s.suite.name.to_string(),
                    version: s.suite.version.to_string(),
                    digest: s.digest.clone(),
                    source: s.source.clone(),
                })
                .collect(),
        },
        // Derived below, from the results.
        verdict: hostcert_reports::Verdict::Incomplete,
        gating_severities: profile.gate.clone(),
        targets,
        results: Vec::new(),
        summary: Summary::default(),
        filtered_out: trials - tally.summary().total,
        waivers: profile.waivers.iter().map(|w| w.info(today)).collect(),
        baseline: setup
            .prepared
            .baseline
            .as_ref()
            .map(|b| hostcert_reports::BaselineInfo {
                source: b.source.clone(),
                digest: b.digest.clone(),
                started_at: b.started_at.clone(),
                baseline_verdict: b.verdict,
                verdict: hostcert_reports::Verdict::Incomplete,
                known_failures: 0,
                new_failures: 0,
                new_gating_failures: 0,
            }),
        matrix: None,
    };
    tally.apply(&mut report);
    report
}
