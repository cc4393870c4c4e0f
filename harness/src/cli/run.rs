//! `hostcert run`: resolve the plan, gather facts once per target, run one libtest-mimic trial
//! per (target, check), and write the reports.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hostcert_reports::escape::{fold, visible};
use hostcert_reports::{
    CheckResult, Outcome, ProfileInfo, RenderOptions, RunReport, SuiteInfo, Summary, ToolInfo,
};
use libtest_mimic::{Completion, Failed, FormatSetting, Trial};

use super::args::RunArgs;
use super::commands::{load_catalog, now, output_destination, write_file};
use super::{choose_profile, exit, CliError};
use crate::catalog::{LoadedProfile, Plan};
use crate::dsse::SigningKey;
use crate::engine::{self, GatheredTarget};
use crate::facts::ProbeSet;
use crate::model::Waiver;
use crate::targets::ssh::SshTarget;
use crate::targets::{self, snapshot::SnapshotTarget, Target, UnreadableTarget};

pub(super) fn run(args: RunArgs) -> Result<u8, CliError> {
    // SIGINT and SIGTERM stop gathering; the report of what was read is still written.
    if let Err(error) = crate::interrupt::install() {
        eprintln!("warning: cannot handle SIGINT and SIGTERM: {error}");
    }
    // Suites, profile, waivers, baseline and key first: a bad one fails before any target is
    // opened.
    let started_at = now();
    let prepared = prepare(&args)?;
    if !args.libtest.list {
        super::commands::remove_leftovers(args.image.is_some());
    }
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
    let mut options = args.catalog.target_options(&args.ssh);
    args.image_options
        .apply(&mut options, &args.catalog, &prepared.plan.profile.profile);
    // The image of pairs is opened first: a bad `--image` stops the run before any target.
    let image = match &args.image {
        Some(address) => Some(
            targets::pair::open_image(address, &options)
                .map_err(|e| CliError::Usage(format!("--image {e}")))?,
        ),
        None => None,
    };
    let snapshots = targets.len();
    for address in &addresses {
        match targets::open(address, &options) {
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
    if image.is_some() || options.seccomp_profile.is_some() {
        // Live and offline targets become pairs; snapshots keep the facts they saved.
        let live = targets.split_off(snapshots);
        targets.extend(live.into_iter().map(|host| {
            Box::new(targets::pair::PairTarget::new(
                image.clone(),
                host,
                options.seccomp_profile.clone(),
            )) as Box<dyn Target>
        }));
    }
    if let Some(share) = args.shard {
        targets = crate::inventory::shard(targets, |t| t.name(), share);
    }
    run_on(&args, prepared, targets, started_at)
}

fn resolve_plan(args: &RunArgs) -> Result<Plan, CliError> {
    let mut catalog = load_catalog(&args.catalog)?;
    let profile = choose_profile(&mut catalog, args.catalog.profile.as_deref())?;
    Ok(catalog.resolve_with(&profile, &args.catalog.suite_params())?)
}

/// A baseline report, read before any target is.
struct Baseline {
    report: RunReport,
    source: String,
    digest: String,
}

/// Everything a run reads (and where it writes) before it opens a target.
struct Prepared {
    plan: Arc<Plan>,
    baseline: Option<Baseline>,
    key: Option<SigningKey>,
    outputs: Outputs,
}

fn prepare(args: &RunArgs) -> Result<Prepared, CliError> {
    let outputs = Outputs::of(args)?;
    let mut plan = resolve_plan(args)?;
    // Waivers files come first, in the order given, then the profile's: the first that covers
    // a check applies.
    let mut waivers = Vec::new();
    let mut errors = Vec::new();
    for path in &args.waivers {
        let parsed = crate::yaml::read_file(path, crate::fsio::cap::YAML, "waivers file")
            .map_err(|e| vec![e])
            .and_then(|text| Waiver::parse_file(&path.display().to_string(), &text));
        match parsed {
            Ok(mut parsed) => waivers.append(&mut parsed),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::Invalid(errors));
    }
    if !waivers.is_empty() {
        let loaded = &plan.profile;
        let mut profile = loaded.profile.clone();
        waivers.append(&mut profile.waivers);
        profile.waivers = waivers;
        plan.profile = Arc::new(LoadedProfile {
            profile,
            source: loaded.source.clone(),
            digest: loaded.digest.clone(),
            text: loaded.text.clone(),
        });
    }
    let baseline = match &args.baseline {
        Some(path) => Some(read_baseline(path)?),
        None => None,
    };
    let key = match &args.sign {
        Some(path) => Some(SigningKey::read(path).map_err(|e| CliError::File {
            path: e.path.clone(),
            reason: e.reason.clone(),
        })?),
        None => None,
    };
    Ok(Prepared {
        plan: Arc::new(plan),
        baseline,
        key,
        outputs,
    })
}

fn read_baseline(path: &Path) -> Result<Baseline, CliError> {
    let source = path.display().to_string();
    let fail = |reason: String| CliError::File {
        path: source.clone(),
        reason,
    };
    let bytes = crate::fsio::read_regular(path, crate::fsio::cap::REPORT, "baseline")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| fail("the baseline is not a hostcert report: not UTF-8".to_owned()))?;
    let report = hostcert_reports::json::from_str(&text)
        .map_err(|e| fail(format!("the baseline is not usable: {e}")))?;
    Ok(Baseline {
        report,
        digest: crate::catalog::digest(text.as_bytes()),
        source,
    })
}

/// Where `run` writes its files.
struct Outputs {
    json: PathBuf,
    junit: PathBuf,
    html: PathBuf,
    markdown: PathBuf,
    bundle: Option<PathBuf>,
    /// Whether a report goes to stdout (`--json -`, `/dev/stdout`): then libtest's lines and the
    /// summary go to stderr.
    to_stdout: bool,
}

impl Outputs {
    /// The files, each checked before anything is gathered: `-` only for `--json`, no directory,
    /// no link to a file (see [`crate::fsio::write_output`]).
    fn of(args: &RunArgs) -> Result<Outputs, CliError> {
        let pick = |chosen: &Option<PathBuf>, name: &str| {
            chosen.clone().unwrap_or_else(|| args.report_dir.join(name))
        };
        let json = pick(&args.json, "report.json");
        let json_to_stdout = output_destination(&json, true)?.is_stdout();
        if json_to_stdout && args.sign.is_some() {
            return Err(CliError::Usage(
                "--sign needs the JSON report in a file (the signed bundle names it): give --json FILE"
                    .to_owned(),
            ));
        }
        let bundle = args.sign.as_ref().map(|_| bundle_beside(&json));
        let outputs = Outputs {
            junit: pick(&args.junit, "junit.xml"),
            html: pick(&args.html, "report.html"),
            markdown: pick(&args.markdown, "report.md"),
            json,
            bundle,
            to_stdout: json_to_stdout,
        };
        let mut to_stdout = json_to_stdout;
        for path in [&outputs.junit, &outputs.html, &outputs.markdown]
            .into_iter()
            .chain(&outputs.bundle)
        {
            to_stdout |= output_destination(path, false)?.is_stdout();
        }
        Ok(Outputs {
            to_stdout,
            ..outputs
        })
    }

    /// A file's name for the summary.
    fn show(path: &Path) -> String {
        if path.as_os_str() == "-" {
            "stdout".to_owned()
        } else {
            path.display().to_string()
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

/// The signed bundle's path beside a JSON report: `report.json` gives `report.intoto.jsonl`.
fn bundle_beside(json: &Path) -> PathBuf {
    let name = json
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.json".to_owned());
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    json.with_file_name(format!("{stem}.intoto.jsonl"))
}

/// Runs the plan on targets that are open but not yet read.
fn run_on(
    args: &RunArgs,
    prepared: Prepared,
    targets: Vec<Box<dyn Target>>,
    started_at: String,
) -> Result<u8, CliError> {
    let Prepared {
        plan,
        baseline,
        key,
        outputs,
    } = prepared;
    let mut names = std::collections::BTreeSet::new();
    for target in &targets {
        if !names.insert(target.name().to_owned()) {
            return Err(CliError::Usage(format!(
                "two targets are named `{}`; trial names must be unique",
                visible(target.name())
            )));
        }
    }
    // A profile certifies the kinds of target it declares: any other is refused before anything
    // is gathered (an image profile never "certifies" this machine by skipping every check).
    let implicit_local =
        args.targets.is_empty() && args.facts.is_empty() && args.inventory.is_none();
    let views: Vec<&dyn Target> = targets.iter().map(|t| t.as_ref()).collect();
    refuse_uncertified_kinds(&plan.profile.profile, &views, implicit_local)?;

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
                c.check.applies_to.covers_kind(t.kind(), t.image_kind())
                    && !libtest.is_filtered_out(&Trial::test(c.trial_name(t.name()), || Ok(())))
            });
            engine::probes_for(kept)
        })
        .collect();
    let progress = super::progress::Progress::new(targets.len(), libtest.format);
    let gathered = Arc::new(engine::gather(
        Arc::new(targets),
        Arc::new(probes),
        usize::from(args.jobs),
        &|done| progress.done(done),
    ));
    progress.finish();

    // Checks many: every trial evaluates in memory.
    let today = time::OffsetDateTime::now_utc().date();
    let known: Arc<HashSet<(String, String)>> = Arc::new(
        baseline
            .as_ref()
            .map(|b| {
                hostcert_reports::diff::failures(&b.report)
                    .into_iter()
                    .map(|(t, c)| (t.to_owned(), c.to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    );
    let n_checks = plan.checks.len();
    let slots: Arc<Mutex<Vec<Option<CheckResult>>>> =
        Arc::new(Mutex::new(vec![None; gathered.len() * n_checks]));
    let mut trials = Vec::new();
    for (target_index, target) in gathered.iter().enumerate() {
        for (check_index, planned) in plan.checks.iter().enumerate() {
            let name = planned.trial_name(&target.info.name);
            let (plan, gathered, slots, known) = (
                Arc::clone(&plan),
                Arc::clone(&gathered),
                Arc::clone(&slots),
                Arc::clone(&known),
            );
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
                let is_known = result.outcome == Outcome::Fail
                    && known.contains(&(result.target.clone(), result.check.clone()));
                let verdict = trial_verdict(&result, is_known);
                slots.lock().unwrap_or_else(|e| e.into_inner())
                    [target_index * n_checks + check_index] = Some(result);
                verdict
            }));
        }
    }
    let json_format = matches!(libtest.format, Some(FormatSetting::Json));
    // The verdict, not libtest's conclusion, decides the exit code: advisory failures do not gate.
    let stdout_to_stderr = StdoutToStderr::new(outputs.to_stdout);
    let _conclusion = libtest_mimic::run(libtest, trials);
    drop(stdout_to_stderr);

    let results: Vec<CheckResult> =
        std::mem::take(&mut *slots.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .flatten()
            .collect();
    let mut report = assemble(&plan, &gathered, results, started_at, today);
    report.filtered_out = gathered.len() * n_checks - report.results.len();
    if let Some(baseline) = &baseline {
        hostcert_reports::diff::apply_baseline(
            &mut report,
            &baseline.report,
            &baseline.source,
            &baseline.digest,
        );
    }
    let options = RenderOptions {
        waiver_warning_days: args.waiver_warning_days,
    };
    let written = write_reports(&report, &outputs, &options, key.as_ref());

    let summary = summary_text(&report, &outputs, &options, baseline.as_ref());
    if json_format || outputs.to_stdout {
        eprint!("{summary}");
    } else {
        print!("{summary}");
        let _ = std::io::stdout().flush();
    }
    written?;
    if let Some(signal) = crate::interrupt::requested() {
        // Folders of targets abandoned in flight (an image being unpacked).
        for left in crate::temp::remove_own_folders() {
            eprintln!("warning: could not remove {left}");
        }
        return Ok(signal.exit_code());
    }
    Ok(exit::of_verdict(report.gate_verdict()))
}

/// Writes every report file, and the signed bundle when there is a key. Each file is written
/// whole; the first failure is returned after the others were tried.
fn write_reports(
    report: &RunReport,
    outputs: &Outputs,
    options: &RenderOptions,
    key: Option<&SigningKey>,
) -> Result<(), CliError> {
    // One rendering alive at a time (besides the JSON, which a signature needs): for a large
    // fleet each is tens of megabytes.
    let json = hostcert_reports::json::to_string(report);
    let mut results = vec![write_file(&outputs.json, json.as_bytes(), true)];
    results.push(write_file(
        &outputs.junit,
        hostcert_reports::junit::render(report).as_bytes(),
        false,
    ));
    results.push(write_file(
        &outputs.html,
        hostcert_reports::html::render(report, options).as_bytes(),
        false,
    ));
    results.push(write_file(
        &outputs.markdown,
        hostcert_reports::markdown::render(report, options).as_bytes(),
        false,
    ));
    if let (Some(key), Some(bundle)) = (key, &outputs.bundle) {
        let name = file_name(&outputs.json);
        let line = super::commands::sign_report(report, &name, json.as_bytes(), key);
        results.push(write_file(bundle, line.as_bytes(), false));
    }
    results.into_iter().collect()
}

/// The file name of a path, for naming a report inside a statement.
pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
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

fn assemble(
    plan: &crate::catalog::Plan,
    gathered: &[GatheredTarget],
    results: Vec<CheckResult>,
    started_at: String,
    today: time::Date,
) -> RunReport {
    let profile = &plan.profile.profile;
    let mut report = RunReport {
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
        // Derived below, from the results.
        verdict: hostcert_reports::Verdict::Incomplete,
        gating_severities: profile.gate.clone(),
        targets: gathered.iter().map(GatheredTarget::report).collect(),
        results,
        summary: Summary::default(),
        filtered_out: 0,
        waivers: profile.waivers.iter().map(|w| w.info(today)).collect(),
        baseline: None,
    };
    report.derive();
    report
}

/// Refuses, before anything is gathered, the targets of a kind `profile` does not certify
/// (its `target-kinds`), in one error that names each and says how to give a target it does
/// certify. `implicit_local` says that `local` was chosen because no target was given.
pub(super) fn refuse_uncertified_kinds(
    profile: &crate::model::Profile,
    targets: &[&dyn Target],
    implicit_local: bool,
) -> Result<(), CliError> {
    let refused: Vec<String> = targets
        .iter()
        .filter(|t| t.kind_is_known() && !profile.certifies(t.kind(), t.image_kind()))
        .map(|t| {
            let kind = crate::model::CertifiedKind {
                kind: t.kind(),
                image: t.image_kind(),
            };
            format!(
                "`{}` is {} `{kind}` {}{}",
                visible(t.name()),
                if kind.image.is_some() { "an" } else { "a" },
                if kind.image.is_some() {
                    "pair"
                } else {
                    "target"
                },
                if implicit_local {
                    " (this machine: the target when no --target is given)"
                } else {
                    ""
                }
            )
        })
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let kinds: Vec<String> = profile.target_kinds.iter().map(|k| k.to_string()).collect();
    let how: Vec<String> = profile
        .target_kinds
        .iter()
        .map(|k| k.how_to_give())
        .collect();
    Err(CliError::Usage(format!(
        "profile `{}` certifies {} targets only (target-kinds), and {}; give one with {}",
        profile.name,
        kinds.join(", "),
        refused.join(", "),
        how.join(" or ")
    )))
}

/// Target text on the console (a failure's message, an observed value) is folded after this many
/// characters, saying how many more the JSON report holds.
const CONSOLE_FOLD: usize = 300;

fn summary_text(
    report: &RunReport,
    outputs: &Outputs,
    options: &RenderOptions,
    baseline: Option<&Baseline>,
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
    let verdicts = report.target_verdicts();
    for (target, judged) in report.targets.iter().zip(&verdicts) {
        let results: Vec<CheckResult> = report.results_of(&target.name).cloned().collect();
        let s = Summary::of(&results);
        text += &format!(
            "  {}: {} pass, {} fail ({} gating), {} waived, {} skip, {} error",
            visible(&target.name),
            s.pass,
            s.fail,
            s.gating_fail,
            s.waived,
            s.skip,
            s.error
        );
        if let Some(reason) = &target.error {
            text += &format!(" — could not be read: {}", visible(reason));
        } else if let Some(reason) = &target.gather_error {
            text += &format!(
                " — gathering stopped before every fact was read: {}",
                visible(reason)
            );
        } else if judged.incomplete == Some(hostcert_reports::Incomplete::NothingEvaluated) {
            text +=
                " — incomplete: no gating check was evaluated (each one was skipped, or none ran)";
        }
        text += "\n";
    }
    for result in report
        .results
        .iter()
        .filter(|r| r.gating && r.outcome == Outcome::Fail)
    {
        text += &format!(
            "  FAIL {}::{}::{}: {}{}\n",
            visible(&result.target),
            result.suite,
            result.check,
            visible(&fold(&result.message, CONSOLE_FOLD)),
            if result.known_failure {
                " (known: also failed in the baseline)"
            } else {
                ""
            }
        );
    }
    if report.targets.len() > 1 {
        let mut by_verdict: BTreeMap<&str, usize> = BTreeMap::new();
        for judged in &verdicts {
            *by_verdict.entry(judged.verdict.label()).or_default() += 1;
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
    for waiver in report.waivers.iter().filter(|w| w.expired) {
        text += &format!(
            "  warning: the waiver for `{}` approved by {} (from {}) expired on {}; its failures count again\n",
            visible(&waiver.check),
            visible(&waiver.approver),
            visible(waiver.origin()),
            waiver.expires
        );
    }
    for (waiver, left) in report.expiring_waivers(options.waiver_warning_days) {
        text += &format!(
            "  warning: the waiver for `{}` approved by {} (from {}) expires on {} ({})\n",
            visible(&waiver.check),
            visible(&waiver.approver),
            visible(waiver.origin()),
            waiver.expires,
            match left {
                0 => "today is its last day".to_owned(),
                1 => "in 1 day".to_owned(),
                n => format!("in {n} days"),
            }
        );
    }
    if let (Some(gate), Some(baseline)) = (&report.baseline, baseline) {
        if !baseline
            .report
            .targets
            .iter()
            .any(|old| report.targets.iter().any(|t| t.name == old.name))
        {
            text += "  warning: the baseline has no target of this run; every failure is new\n";
        }
        if baseline.report.profile.name != report.profile.name {
            text += &format!(
                "  warning: the baseline was certified against profile {}, this run against {}\n",
                baseline.report.profile.name, report.profile.name
            );
        }
        text += &format!(
            "baseline: {} ({}): {} known failure{}, {} new ({} gating)\ngate: {} against the baseline (only failures new against it count)\n",
            gate.source,
            baseline.report.verdict.label(),
            gate.known_failures,
            if gate.known_failures == 1 { "" } else { "s" },
            gate.new_failures,
            gate.new_gating_failures,
            gate.verdict.label().to_uppercase()
        );
    }
    if let Some(reason) = crate::interrupt::reason() {
        let unread = report
            .targets
            .iter()
            .filter(|t| t.error.as_ref().is_some_and(|r| r.starts_with(&reason)))
            .count();
        text += &format!(
            "{reason}: {unread} of {} targets were not read (their checks are errors); the report holds what was read\n",
            report.targets.len()
        );
    }
    let mut files = vec![
        Outputs::show(&outputs.json),
        Outputs::show(&outputs.junit),
        Outputs::show(&outputs.html),
        Outputs::show(&outputs.markdown),
    ];
    if let Some(bundle) = &outputs.bundle {
        files.push(Outputs::show(bundle));
    }
    text += &format!("reports: {}\n", files.join(", "));
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
    use crate::targets::{Gathered, TargetError};

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
        let code = run_on(&args, prepared, vec![Box::new(target)], now()).unwrap();
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
        let code = run_on(&args, prepared, vec![Box::new(target)], now()).unwrap();
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
