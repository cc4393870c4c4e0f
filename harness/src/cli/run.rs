//! `hostcert run`: resolve the plan, gather facts once per target, run one libtest-mimic trial
//! per (target, check), and write the reports.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use hostcert_reports::{
    CheckResult, Outcome, ProfileInfo, RunReport, SuiteInfo, Summary, ToolInfo, Verdict,
};
use libtest_mimic::{Completion, Failed, FormatSetting, Trial};

use super::args::RunArgs;
use super::commands::{load_catalog, now, write_file};
use super::{choose_profile, exit, CliError};
use crate::catalog::Plan;
use crate::engine::{self, GatheredTarget};
use crate::facts::ProbeSet;
use crate::target::ssh::SshTarget;
use crate::target::{self, snapshot::SnapshotTarget, Target, UnreadableTarget};

pub(super) fn run(args: RunArgs) -> Result<u8, CliError> {
    // Suites and profile first: a bad one fails before any target is opened.
    let started_at = now();
    let plan = Arc::new(resolve_plan(&args)?);
    let mut targets: Vec<Box<dyn Target>> = Vec::new();
    // A target that cannot be opened stays in the run: its checks report the reason as errors
    // and every other target is still certified.
    for path in &args.facts {
        targets.push(match SnapshotTarget::load(path) {
            Ok(snapshot) => Box::new(snapshot),
            Err(error) => Box::new(UnreadableTarget::new(error)),
        });
    }
    let addresses = if args.targets.is_empty() && args.facts.is_empty() && args.inventory.is_none()
    {
        vec!["local".to_owned()]
    } else {
        args.targets.clone()
    };
    let options = args.catalog.target_options(&args.ssh);
    for address in &addresses {
        match target::open(address, &options) {
            Ok(mut opened) => targets.append(&mut opened),
            Err(error) => targets.push(Box::new(UnreadableTarget::new(error))),
        }
    }
    if let Some(path) = &args.inventory {
        let mut hosts = crate::inventory::read(path).map_err(|e| CliError::Invalid(vec![e]))?;
        if let Some(pattern) = &args.limit {
            hosts = crate::inventory::limit(hosts, pattern).map_err(CliError::Usage)?;
        }
        for host in hosts {
            let mut ssh = options.ssh.clone();
            if host.identity.is_some() {
                ssh.identity = host.identity.clone();
            }
            targets.push(match SshTarget::parse(&host.ssh_address(), ssh) {
                Ok(target) => Box::new(target.named(&host.name)),
                Err(error) => Box::new(UnreadableTarget::new(error)),
            });
        }
    }
    if let Some(share) = args.shard {
        targets = crate::inventory::shard(targets, |t| t.name(), share);
    }
    run_on(&args, plan, targets, started_at)
}

fn resolve_plan(args: &RunArgs) -> Result<Plan, CliError> {
    let mut catalog = load_catalog(&args.catalog)?;
    let profile = choose_profile(&mut catalog, args.catalog.profile.as_deref())?;
    Ok(catalog.resolve_with(&profile, &args.catalog.suite_params())?)
}

/// Runs the plan on targets that are open but not yet read.
fn run_on(
    args: &RunArgs,
    plan: Arc<Plan>,
    targets: Vec<Box<dyn Target>>,
    started_at: String,
) -> Result<u8, CliError> {
    let mut names = std::collections::BTreeSet::new();
    for target in &targets {
        if !names.insert(target.name().to_owned()) {
            return Err(CliError::Usage(format!(
                "two targets are named `{}`; trial names must be unique",
                target.name()
            )));
        }
    }

    let libtest = &args.libtest;
    if libtest.list {
        // Names only: no target is contacted.
        let trials = targets
            .iter()
            .flat_map(|t| {
                plan.checks
                    .iter()
                    .map(|c| Trial::test(c.trial_name(t.name()), || Ok(())))
            })
            .collect();
        let _listed = libtest_mimic::run(libtest, trials);
        return Ok(exit::CERTIFIED);
    }

    // Facts once: each target is asked for the probes of the checks the filters keep and that
    // apply to its kind (an OS tree is not asked for /proc).
    let probes: Vec<ProbeSet> = targets
        .iter()
        .map(|t| {
            let kept = plan.checks.iter().filter(|c| {
                let kinds = &c.check.applies_to.target_kinds;
                (kinds.is_empty() || kinds.contains(&t.kind()))
                    && !libtest.is_filtered_out(&Trial::test(c.trial_name(t.name()), || Ok(())))
            });
            engine::probes_for(kept)
        })
        .collect();
    let progress = super::progress::Progress::new(targets.len(), libtest.format);
    let gathered = Arc::new(engine::gather(
        &targets,
        &probes,
        usize::from(args.jobs),
        &|done| progress.done(done),
    ));
    progress.finish();

    // Checks many: every trial evaluates in memory.
    let today = time::OffsetDateTime::now_utc().date();
    let n_checks = plan.checks.len();
    let slots: Arc<Mutex<Vec<Option<CheckResult>>>> =
        Arc::new(Mutex::new(vec![None; gathered.len() * n_checks]));
    let mut trials = Vec::new();
    for (target_index, target) in gathered.iter().enumerate() {
        for (check_index, planned) in plan.checks.iter().enumerate() {
            let name = planned.trial_name(&target.info.name);
            let (plan, gathered, slots) =
                (Arc::clone(&plan), Arc::clone(&gathered), Arc::clone(&slots));
            trials.push(Trial::ignorable_test(name, move || {
                let target = &gathered[target_index];
                let planned = &plan.checks[check_index];
                let result = engine::evaluate(
                    planned,
                    &target.info,
                    &target.facts,
                    &plan.profile.profile,
                    today,
                );
                let verdict = trial_verdict(&result);
                slots.lock().unwrap_or_else(|e| e.into_inner())
                    [target_index * n_checks + check_index] = Some(result);
                verdict
            }));
        }
    }
    let json_format = matches!(libtest.format, Some(FormatSetting::Json));
    // The verdict, not libtest's conclusion, decides the exit code: advisory failures do not gate.
    let _conclusion = libtest_mimic::run(libtest, trials);

    let results: Vec<CheckResult> =
        std::mem::take(&mut *slots.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .flatten()
            .collect();
    let mut report = assemble(&plan, &gathered, results, started_at);
    report.filtered_out = gathered.len() * n_checks - report.results.len();
    for target in &mut report.targets {
        target.groups = hostcert_reports::matrix::groups(&report.results, &target.name);
    }
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| args.report_dir.join("report.json"));
    let junit_path = args
        .junit
        .clone()
        .unwrap_or_else(|| args.report_dir.join("junit.xml"));
    let written = write_file(
        &json_path,
        hostcert_reports::json::to_string(&report).as_bytes(),
    )
    .and_then(|()| {
        write_file(
            &junit_path,
            hostcert_reports::junit::render(&report).as_bytes(),
        )
    });

    let summary = summary_text(&report, &gathered, &json_path, &junit_path);
    if json_format {
        eprint!("{summary}");
    } else {
        print!("{summary}");
        let _ = std::io::stdout().flush();
    }
    written?;
    Ok(match report.verdict {
        Verdict::Certified => exit::CERTIFIED,
        Verdict::NotCertified => exit::NOT_CERTIFIED,
        _ => exit::COULD_NOT_RUN,
    })
}

/// How a result shows in libtest's output: waived passes, skip is ignored, fail and error fail.
fn trial_verdict(result: &CheckResult) -> Result<Completion, Failed> {
    let details = || {
        let mut text = format!(
            "{} [{}{}]: {}",
            result.title,
            result.severity.as_str(),
            if result.gating { ", gating" } else { "" },
            result.message
        );
        for evidence in &result.evidence {
            text += &format!(
                "\n  {} = {} (from {})",
                evidence.fact, evidence.observed, evidence.source
            );
        }
        if !result.remediation.is_empty() {
            text += &format!("\n  fix: {}", result.remediation.replace('\n', " "));
        }
        text
    };
    match result.outcome {
        Outcome::Pass | Outcome::Waived => Ok(Completion::Completed),
        Outcome::Skip => Ok(Completion::ignored_with(&result.message)),
        // A failure the profile does not gate on is advice: shown with its reason, like libtest's
        // ignored tests, so that the libtest summary agrees with the verdict.
        Outcome::Fail | Outcome::Error if !result.gating => Ok(Completion::ignored_with(format!(
            "advisory {} ({}): {}",
            result.outcome.as_str(),
            result.severity.as_str(),
            result.message
        ))),
        Outcome::Error => Err(Failed::from(format!("error: {}", details()))),
        _ => Err(Failed::from(details())),
    }
}

fn assemble(
    plan: &crate::catalog::Plan,
    gathered: &[GatheredTarget],
    results: Vec<CheckResult>,
    started_at: String,
) -> RunReport {
    let profile = &plan.profile.profile;
    let summary = Summary::of(&results);
    let every_target_read = gathered.iter().all(|t| t.info.unreadable.is_none());
    RunReport {
        format_version: hostcert_reports::FORMAT_VERSION,
        tool: ToolInfo {
            name: "hostcert".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        started_at,
        finished_at: now(),
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
        verdict: summary.verdict(every_target_read),
        gating_severities: profile.gate.clone(),
        targets: gathered.iter().map(GatheredTarget::report).collect(),
        results,
        summary,
        filtered_out: 0,
    }
}

fn summary_text(
    report: &RunReport,
    gathered: &[GatheredTarget],
    json: &std::path::Path,
    junit: &std::path::Path,
) -> String {
    let mut text = String::new();
    let suites: Vec<String> = report
        .profile
        .suites
        .iter()
        .map(|s| format!("{} {}", s.name, s.version))
        .collect();
    text += &format!(
        "\nverdict: {} (profile {} {}; {})\n",
        report.verdict.label().to_uppercase(),
        report.profile.name,
        report.profile.version,
        suites.join(", ")
    );
    let mut per_target: BTreeMap<&str, Summary> = BTreeMap::new();
    for target in gathered {
        let results: Vec<CheckResult> = report
            .results
            .iter()
            .filter(|r| r.target == target.info.name)
            .cloned()
            .collect();
        per_target.insert(&target.info.name, Summary::of(&results));
    }
    for target in gathered {
        let s = per_target[target.info.name.as_str()];
        text += &format!(
            "  {}: {} pass, {} fail ({} gating), {} waived, {} skip, {} error",
            target.info.name, s.pass, s.fail, s.gating_fail, s.waived, s.skip, s.error
        );
        if let Some(reason) = &target.info.unreadable {
            text += &format!(" — could not be read: {reason}");
        }
        text += "\n";
    }
    for result in report
        .results
        .iter()
        .filter(|r| r.gating && r.outcome == Outcome::Fail)
    {
        text += &format!(
            "  FAIL {}::{}::{}: {}\n",
            result.target, result.suite, result.check, result.message
        );
    }
    if report.targets.len() > 1 {
        let mut by_verdict: BTreeMap<&str, usize> = BTreeMap::new();
        for target in gathered {
            let s = per_target[target.info.name.as_str()];
            *by_verdict
                .entry(s.verdict(target.info.unreadable.is_none()).label())
                .or_default() += 1;
        }
        let counts: Vec<String> = by_verdict.iter().map(|(v, n)| format!("{n} {v}")).collect();
        text += &format!("targets by verdict: {}\n", counts.join(", "));
        text += "\n";
        text += &hostcert_reports::matrix::render_text(report);
        text += "\n";
    }
    if report.filtered_out > 0 {
        text += &format!(
            "  note: {} of {} trials were filtered out; the verdict covers only the checks that ran\n",
            report.filtered_out,
            report.filtered_out + report.results.len()
        );
    }
    text += &format!("reports: {}, {}\n", json.display(), junit.display());
    text
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use clap::Parser;

    use super::*;
    use crate::catalog::Catalog;
    use crate::cli::args::Command;
    use crate::facts::{Fact, FactValue};
    use crate::model::TargetKind;
    use crate::target::{Gathered, TargetError};

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
            Ok(Gathered {
                hostname: None,
                facts,
            })
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
        let plan = Arc::new(resolve_plan(&args).unwrap());
        let code = run_on(&args, plan, vec![Box::new(target)], now()).unwrap();
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
