//! `hostcert run`: the flags mapped to the run pipeline ([`crate::run`]), libtest-mimic's trials
//! as the front end that prints each (target, check), the report files, the summary, and the
//! exit code.

use std::io::Write;

use hostcert_reports::escape::{fold, visible};
use hostcert_reports::{CheckResult, Outcome, RenderOptions};
use libtest_mimic::{Completion, Failed, FormatSetting, Trial};

use super::args::RunArgs;
use super::{exit, CliError};
use crate::catalog::Plan;
use crate::engine::Units;
use crate::run::outputs::Outputs;
use crate::run::pipeline::{self, Reporter, RunEvent, Setup};
use crate::run::summary::{Console, CONSOLE_FOLD};
use crate::run::{open, Inputs, Prepared};

pub(super) fn run(args: RunArgs) -> Result<u8, CliError> {
    // SIGINT and SIGTERM stop gathering; the report of what was read is still written.
    if let Err(error) = crate::interrupt::install() {
        eprintln!("warning: cannot handle SIGINT and SIGTERM: {error}");
    }
    // Suites, profile, waivers, baseline and key first: a bad one fails before any target is
    // opened.
    let started_at = crate::run::now();
    let prepared = prepare(&args)?;
    let selection = selection(&args);
    if !args.libtest.list {
        super::remove_leftovers(selection.has_images());
    }
    let mut options = args.catalog.target_options(&args.ssh);
    args.image_options
        .apply(&mut options, &args.catalog, &prepared.plan.profile.profile);
    options.vm = args.vm.options(Some(args.report_dir.clone()));
    let units = open::open(&selection, &options)?;
    run_on(
        &args,
        &prepared,
        units,
        selection.implicit_local(),
        started_at,
    )
}

fn selection(args: &RunArgs) -> open::Selection {
    open::Selection {
        targets: args.targets.clone(),
        images: args.image.clone(),
        images_file: args.images.clone(),
        facts: args.facts.clone(),
        inventory: args.inventory.clone(),
        limit: args.limit.clone(),
        shard: args.shard,
    }
}

/// Everything a run reads before its targets, and where it writes.
fn prepare(args: &RunArgs) -> Result<Prepared, CliError> {
    let outputs = Outputs::for_run(&args.report_dir, &args.files.files, args.sign.is_some())?;
    let catalog = args.catalog.selection();
    let prepared = crate::run::prepare(Inputs {
        catalog: &catalog,
        waivers: &args.waivers,
        baseline: args.baseline.as_deref(),
        sign: args.sign.as_deref(),
        outputs,
    })?;
    super::warn(&prepared.warnings);
    Ok(prepared)
}

/// Runs the plan on targets that are open but not yet read.
fn run_on(
    args: &RunArgs,
    prepared: &Prepared,
    units: Units,
    implicit_local: bool,
    started_at: String,
) -> Result<u8, CliError> {
    open::check_names(&units)?;
    // A profile certifies the kinds of target it declares: any other is refused before anything
    // is gathered (an image profile never "certifies" this machine by skipping every check).
    open::refuse_uncertified_kinds(&prepared.plan.profile.profile, &units, implicit_local)?;
    let plan = &prepared.plan;
    let libtest = &args.libtest;
    let names: Vec<String> = units.cells.iter().map(|c| c.name.clone()).collect();
    if libtest.list {
        // Names only: no target is contacted.
        let trials = names
            .iter()
            .flat_map(|t| {
                plan.checks
                    .iter()
                    .map(|c| Trial::test(c.trial_name(t), || Ok(())))
            })
            .collect();
        let _listed = libtest_mimic::run(libtest, trials);
        return Ok(exit::CERTIFIED);
    }
    let keep = |name: &str| !libtest.is_filtered_out(&Trial::test(name, || Ok(())));
    let mut progress =
        super::progress::Progress::new(units.images.len() + units.hosts.len(), libtest.format);
    let mut book = TrialBook::new(plan, names);
    let setup = Setup {
        prepared,
        keep: &keep,
        jobs: usize::from(args.jobs),
        started_at,
    };
    let finished = pipeline::execute(&setup, units, &mut [&mut progress, &mut book])?;

    // Checks many, shown as libtest's trials. The verdict, not libtest's conclusion, decides
    // the exit code: advisory failures do not gate.
    let json_format = matches!(libtest.format, Some(FormatSetting::Json));
    let stdout_to_stderr = StdoutToStderr::new(prepared.outputs.to_stdout);
    let _conclusion = libtest_mimic::run(libtest, book.trials());
    drop(stdout_to_stderr);

    let view = finished.view();
    let options = RenderOptions {
        waiver_warning_days: args.waiver_warning_days,
    };
    // The files and the console's summary read the same view at once.
    let (written, summary) = std::thread::scope(|scope| {
        let summary = scope.spawn(|| {
            Console {
                files: prepared.outputs.names(),
                baseline: prepared.baseline.as_ref(),
                interrupted: crate::interrupt::reason(),
            }
            .render_to_string(&view, &options)
        });
        let written = prepared
            .outputs
            .write(&view, &options, prepared.key.as_ref());
        let summary = summary
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (written, summary)
    });
    if json_format || prepared.outputs.to_stdout {
        eprint!("{summary}");
    } else {
        print!("{summary}");
        let _ = std::io::stdout().flush();
    }
    written?;
    if let Some(signal) = crate::interrupt::requested() {
        // Folders of targets abandoned in flight (an image being unpacked).
        for left in crate::interrupt::remove_what_was_abandoned() {
            eprintln!("warning: could not remove {left}");
        }
        return Ok(signal.exit_code());
    }
    Ok(exit::of_verdict(finished.report().gate_verdict()))
}

/// libtest's trials, one per (target, check), each holding how its result shows: the results
/// themselves stay in the run's spool.
struct TrialBook<'a> {
    plan: &'a Plan,
    names: Vec<String>,
    outcomes: Vec<Vec<Option<Result<Completion, Failed>>>>,
}

impl<'a> TrialBook<'a> {
    fn new(plan: &'a Plan, names: Vec<String>) -> TrialBook<'a> {
        let outcomes = names
            .iter()
            .map(|_| (0..plan.checks.len()).map(|_| None).collect())
            .collect();
        TrialBook {
            plan,
            names,
            outcomes,
        }
    }

    /// The trials, in report order. A trial the filters left out has no outcome, and libtest
    /// never runs it.
    fn trials(self) -> Vec<Trial> {
        let plan = self.plan;
        self.names
            .iter()
            .zip(self.outcomes)
            .flat_map(|(name, outcomes)| {
                plan.checks
                    .iter()
                    .zip(outcomes)
                    .map(move |(check, outcome)| {
                        let outcome = outcome.unwrap_or(Ok(Completion::Completed));
                        Trial::ignorable_test(check.trial_name(name), move || outcome)
                    })
            })
            .collect()
    }
}

impl Reporter for TrialBook<'_> {
    fn report(&mut self, event: &RunEvent<'_>) {
        if let RunEvent::CheckEvaluated {
            target,
            check,
            result,
        } = event
        {
            self.outcomes[*target][*check] = Some(trial_verdict(result, result.known_failure));
        }
    }
}

impl Reporter for super::progress::Progress {
    fn report(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::TargetGathered(read) => self.done(read),
            RunEvent::RunFinished(_) => self.finish(),
            RunEvent::CheckEvaluated { .. } | RunEvent::TargetEvaluated { .. } => {}
        }
    }
}

/// While it lives, what libtest-mimic prints to stdout goes to stderr, so that a report written
/// to stdout (`--json -`) stays alone there.
struct StdoutToStderr {
    saved: Option<std::os::fd::OwnedFd>,
}

impl StdoutToStderr {
    fn new(active: bool) -> StdoutToStderr {
        use std::os::fd::AsFd;
        if !active {
            return StdoutToStderr { saved: None };
        }
        let _ = std::io::stdout().flush();
        let saved = rustix::io::dup(std::io::stdout().as_fd()).ok();
        if saved.is_some() {
            let _ = rustix::stdio::dup2_stdout(std::io::stderr().as_fd());
        }
        StdoutToStderr { saved }
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            let _ = std::io::stdout().flush();
            let _ = rustix::stdio::dup2_stdout(saved);
        }
    }
}

/// How a result shows in libtest's output: waived passes, skip is ignored, fail and error fail;
/// a failure also failing in the baseline (`known`) is ignored with that reason.
///
/// Text from the target reaches the terminal with its hidden characters escaped (an escape
/// sequence from a hostile host never does), and folded after [`CONSOLE_FOLD`] characters.
fn trial_verdict(result: &CheckResult, known: bool) -> Result<Completion, Failed> {
    let message = || visible(&fold(&result.message, CONSOLE_FOLD)).into_owned();
    let details = || {
        let mut text = format!(
            "{} [{}{}]: {}",
            visible(&result.title),
            result.severity.as_str(),
            if result.gating { ", gating" } else { "" },
            message()
        );
        for evidence in &result.evidence {
            text += &format!(
                "\n  {} = {} (from {})",
                visible(&evidence.fact),
                visible(&fold(&evidence.observed, CONSOLE_FOLD)),
                visible(&evidence.source)
            );
        }
        if !result.remediation.is_empty() {
            text += &format!(
                "\n  fix: {}",
                visible(&result.remediation.replace('\n', " "))
            );
        }
        text
    };
    match result.outcome {
        Outcome::Pass | Outcome::Waived => Ok(Completion::Completed),
        Outcome::Skip => Ok(Completion::ignored_with(message())),
        // A failure the profile does not gate on is advice: shown with its reason, like libtest's
        // ignored tests, so that the libtest summary agrees with the verdict.
        Outcome::Fail | Outcome::Error if !result.gating => Ok(Completion::ignored_with(format!(
            "advisory {} ({}): {}",
            result.outcome.as_str(),
            result.severity.as_str(),
            message()
        ))),
        Outcome::Fail if known => Ok(Completion::ignored_with(format!(
            "known failure, also in the baseline ({}): {}",
            result.severity.as_str(),
            message()
        ))),
        Outcome::Error => Err(Failed::from(format!("error: {}", details()))),
        _ => Err(Failed::from(details())),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::catalog::Catalog;
    use crate::cli::args::Command;
    use crate::engine;
    use crate::facts::{Fact, FactValue, ProbeSet};
    use crate::model::TargetKind;
    use crate::targets::{Gathered, Target, TargetError};
    use hostcert_reports::RunReport;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// The units of a run on one target.
    fn one(target: Box<dyn Target>) -> Units {
        Units {
            cells: vec![engine::Cell {
                name: target.name().to_owned(),
                host: 0,
                image: None,
                paired: false,
                probes: ProbeSet::new(),
            }],
            hosts: vec![target],
            ..Units::default()
        }
    }

    /// A target that counts how often it is asked for facts and answers every probe as absent.
    struct CountingTarget {
        gathers: Arc<AtomicUsize>,
        probes_asked: Arc<AtomicUsize>,
    }

    impl Target for CountingTarget {
        fn name(&self) -> &str {
            "counting"
        }
        fn kind(&self) -> TargetKind {
            TargetKind::Local
        }
        fn address(&self) -> &str {
            "counting"
        }
        fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
            self.gathers.fetch_add(1, Ordering::SeqCst);
            self.probes_asked.store(probes.len(), Ordering::SeqCst);
            let facts = probes
                .iter()
                .map(|p| Fact::read(p.clone(), "test", FactValue::Absent))
                .collect();
            Ok(Gathered::complete(None, facts))
        }
    }

    fn run_counting(extra: &[&str]) -> (u8, usize, usize) {
        let dir = tempfile::tempdir().unwrap();
        let report_dir = dir.path().to_str().unwrap().to_owned();
        let mut argv = vec!["hostcert", "run", "--report-dir", &report_dir, "-q"];
        argv.extend_from_slice(extra);
        let Command::Run(args) = crate::cli::Cli::parse_from(argv).command else {
            unreachable!("parsed a run command");
        };
        let gathers = Arc::new(AtomicUsize::new(0));
        let probes_asked = Arc::new(AtomicUsize::new(0));
        let target = CountingTarget {
            gathers: Arc::clone(&gathers),
            probes_asked: Arc::clone(&probes_asked),
        };
        let prepared = prepare(&args).unwrap();
        let code = run_on(
            &args,
            &prepared,
            one(Box::new(target)),
            false,
            crate::run::now(),
        )
        .unwrap();
        (
            code,
            gathers.load(Ordering::SeqCst),
            probes_asked.load(Ordering::SeqCst),
        )
    }

    /// Guards the invariant that `--list` contacts no target.
    #[test]
    fn list_contacts_no_target() {
        let (code, gathers, _) = run_counting(&["--list"]);
        assert_eq!((code, gathers), (exit::CERTIFIED, 0));
    }

    /// Guards "facts once, checks many": one gather per target for all its checks, and each
    /// shared probe (here /proc/filesystems, read by two checks) asked once.
    #[test]
    fn a_run_gathers_once_per_target_with_deduplicated_probes() {
        let (code, gathers, probes) = run_counting(&[]);
        assert_eq!(gathers, 1);
        let plan = Catalog::builtin().unwrap();
        let profile = plan.profile("container-host").unwrap().clone();
        let plan = plan.resolve(&profile).unwrap();
        let all: usize = plan.checks.iter().map(|c| c.check.probes.len()).sum();
        assert_eq!(probes, engine::probes_for(&plan.checks).len());
        assert!(
            probes < all + 3,
            "{probes} probes asked for {all} probe uses"
        );
        // Every fact absent: the required kernel symbols are not set.
        assert_eq!(code, exit::NOT_CERTIFIED);
    }

    /// A target whose gather stops part way, after reading CONFIG_NET_NS as `net_ns`.
    struct StoppingTarget {
        net_ns: FactValue,
    }

    impl Target for StoppingTarget {
        fn name(&self) -> &str {
            "stopping"
        }
        fn kind(&self) -> TargetKind {
            TargetKind::Local
        }
        fn address(&self) -> &str {
            "stopping"
        }
        fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
            let read = crate::model::Probe::KernelConfig("NET_NS".to_owned());
            let facts = probes
                .iter()
                .filter(|p| **p == read)
                .map(|p| Fact::read(p.clone(), "/proc/config.gz", self.net_ns.clone()))
                .collect();
            Ok(Gathered::stopped(
                Some("host".to_owned()),
                facts,
                probes,
                "ssh",
                "connection lost",
            ))
        }
    }

    fn run_stopping(net_ns: FactValue) -> (u8, RunReport) {
        let dir = tempfile::tempdir().unwrap();
        let report_dir = dir.path().to_str().unwrap().to_owned();
        let argv = ["hostcert", "run", "--report-dir", &report_dir, "-q"];
        let Command::Run(args) = crate::cli::Cli::parse_from(argv).command else {
            unreachable!("parsed a run command");
        };
        let prepared = prepare(&args).unwrap();
        let target = StoppingTarget { net_ns };
        let code = run_on(
            &args,
            &prepared,
            one(Box::new(target)),
            false,
            crate::run::now(),
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
        (code, hostcert_reports::json::from_str(&text).unwrap())
    }

    /// Facts survive partial failure: what a target read before its gather stopped is judged
    /// (a gating failure among it is not certified), every other fact is an error with the
    /// reason, and the target, never certified, records why it stopped.
    #[test]
    fn facts_read_before_a_gather_stopped_are_kept_and_judged() {
        let (code, report) = run_stopping(FactValue::Absent);
        assert_eq!(code, exit::NOT_CERTIFIED);
        let net = report
            .results
            .iter()
            .find(|r| r.check == "kernel.namespaces.net")
            .unwrap();
        assert_eq!(net.outcome, Outcome::Fail);
        let target = &report.targets[0];
        assert_eq!(target.gather_error.as_deref(), Some("connection lost"));
        assert_eq!(target.error, None);
        assert!(target.facts_digest.is_some());
        assert_eq!(target.hostname.as_deref(), Some("host"));

        let (code, report) = run_stopping(FactValue::Text("y".to_owned()));
        assert_eq!(code, exit::COULD_NOT_RUN);
        assert_eq!(report.verdict, hostcert_reports::Verdict::Incomplete);
        let outcome = |check: &str| {
            let result = report.results.iter().find(|r| r.check == check).unwrap();
            (result.outcome, result.message.clone())
        };
        assert_eq!(outcome("kernel.namespaces.net").0, Outcome::Pass);
        let (pid, message) = outcome("kernel.namespaces.pid");
        assert_eq!(pid, Outcome::Error);
        assert!(
            message.ends_with("could not be read from ssh: connection lost"),
            "{message}"
        );
    }

    /// Filters narrow what is gathered, not only what is shown.
    #[test]
    fn a_filter_gathers_only_the_facts_of_the_checks_it_keeps() {
        let (_, gathers, probes) = run_counting(&[
            "counting::kernel-features::kernel.namespaces.net",
            "--exact",
        ]);
        assert_eq!(gathers, 1);
        // NET_NS plus the three identity probes.
        assert_eq!(probes, 4);
    }
}
