//! The subcommands other than `run`.

use std::path::Path;
use std::sync::Arc;

use hostcert_reports::attestation::{self, PAYLOAD_TYPE};
use hostcert_reports::{RenderOptions, RunReport};

use super::args::{
    AttestArgs, CatalogArgs, CleanArgs, Command, DiffArgs, ExplainArgs, GatherArgs, LintArgs,
    ListArgs, ReportAction, ReportArgs, VerifyArgs,
};
use super::{choose_profile, exit, CliError};
use crate::catalog::{self, Catalog, DataFile};
use crate::dsse::{Envelope, SigningKey, VerifyingKey};
use crate::engine;
use crate::facts::{Snapshot, SnapshotTarget, SNAPSHOT_FORMAT_VERSION};
use crate::model::Waiver;
use crate::yaml::{self, YamlError};

/// Runs one subcommand.
pub(super) fn dispatch(cli: super::Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Run(args) => super::run::run(*args),
        Command::List(args) => list(args),
        Command::Lint(args) => lint(args),
        Command::Explain(args) => explain(args),
        Command::Gather(args) => gather(*args),
        Command::Report(args) => report(args),
        Command::Diff(args) => diff(args),
        Command::Attest(args) => attest(args),
        Command::Verify(args) => verify(args),
        Command::Clean(args) => clean(args),
    }
}

/// `hostcert clean`: what killed runs left, removed (or listed with `--dry-run`).
fn clean(args: CleanArgs) -> Result<u8, CliError> {
    use crate::targets::leftovers;
    let root = rustix::process::geteuid().is_root();
    let found = leftovers::find(root);
    if found.is_empty() {
        println!("clean: nothing left by earlier runs");
        return Ok(exit::CERTIFIED);
    }
    let mut failed = 0;
    for leftover in &found {
        if args.dry_run {
            println!("would remove {leftover}");
            continue;
        }
        match leftovers::remove(leftover) {
            Ok(()) => println!("removed {leftover}"),
            Err(reason) => {
                failed += 1;
                eprintln!("could not remove {leftover}: {reason}");
            }
        }
    }
    if !root {
        println!(
            "clean: network namespaces and interfaces of real runs are looked for only as root"
        );
    }
    Ok(if failed == 0 {
        exit::CERTIFIED
    } else {
        exit::COULD_NOT_RUN
    })
}

/// Removes what killed runs left (at the start of `run` and `gather`), saying so on stderr: the
/// folders, and the network namespaces and interfaces of real runs when this one may make one
/// (`with_image`).
pub(super) fn remove_leftovers(with_image: bool) {
    let (removed, failed) = crate::targets::leftovers::remove_stale(with_image);
    for leftover in removed {
        eprintln!("note: removed {leftover}");
    }
    for (leftover, reason) in failed {
        eprintln!("warning: could not remove {leftover}: {reason}");
    }
}

/// The built-in catalog plus the user's folders.
pub(super) fn load_catalog(args: &CatalogArgs) -> Result<Catalog, CliError> {
    let mut catalog = Catalog::builtin()?;
    for dir in args.suite_dirs.iter().chain(&args.profile_dirs) {
        catalog.add_path(dir)?;
    }
    for warning in &catalog.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(catalog)
}

/// The current time, RFC 3339.
pub(super) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What `-` means where an option does not take it.
const DASH_NOT_TAKEN: &str = "`-` (standard output) is taken only by the JSON report (`run --json`, `report --json`, `report merge --json`) and snapshots (`gather --output`); name a file, or ./- for a file named -";

/// Prints a line for people: on stdout, or on stderr when an output goes to stdout.
pub(super) fn say(stdout_taken: bool, line: &str) {
    if stdout_taken {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Checks where an output goes before anything is read or gathered: `-` where the option
/// does not take it, a directory, a link to a file. `takes_dash` for the JSON report and
/// snapshots.
pub(super) fn output_destination(
    path: &Path,
    takes_dash: bool,
) -> Result<crate::fsio::Destination, CliError> {
    if !takes_dash && path.as_os_str() == "-" {
        return Err(CliError::Usage(DASH_NOT_TAKEN.to_owned()));
    }
    Ok(crate::fsio::destination(path, takes_dash)?)
}

/// Writes a report, bundle or snapshot whole ([`crate::fsio::write_output`]: through an
/// exclusive temporary file renamed over a regular file, directly into a FIFO or a device).
/// `takes_dash` for the JSON report and snapshots, which `-` sends to stdout.
pub(super) fn write_file(path: &Path, bytes: &[u8], takes_dash: bool) -> Result<(), CliError> {
    if !takes_dash && path.as_os_str() == "-" {
        return Err(CliError::Usage(DASH_NOT_TAKEN.to_owned()));
    }
    Ok(crate::fsio::write_output(path, bytes, takes_dash)?)
}

fn list(args: ListArgs) -> Result<u8, CliError> {
    let mut catalog = load_catalog(&args.catalog)?;
    let profile = choose_profile(&mut catalog, args.catalog.profile.as_deref())?;
    let plan = catalog.resolve_with(&profile, &args.catalog.suite_params())?;
    let p = &plan.profile.profile;
    println!("profile {} {} ({})", p.name, p.version, plan.profile.source);
    let gate: Vec<&str> = p.gate.iter().map(|s| s.as_str()).collect();
    println!("gating severities: {}", gate.join(", "));
    for suite in &plan.suites {
        println!(
            "suite {} {} ({}, {})",
            suite.suite.name, suite.suite.version, suite.source, suite.digest
        );
    }
    for planned in &plan.checks {
        println!(
            "  {:<44} {:<8} {:<6} {}",
            planned.check.id.as_str(),
            planned.check.severity.as_str(),
            if planned.gating { "gating" } else { "" },
            planned.check.title
        );
    }
    println!("{} checks", plan.checks.len());
    Ok(exit::CERTIFIED)
}

fn lint(args: LintArgs) -> Result<u8, CliError> {
    let mut catalog = Catalog::builtin()?;
    let mut errors: Vec<YamlError> = Vec::new();
    let mut user_suites = Vec::new();
    let mut user_profiles = Vec::new();
    let mut files = Vec::new();
    for path in &args.paths {
        match catalog::yaml_files(path) {
            Ok(mut found) => files.append(&mut found),
            Err(e) => errors.push(e),
        }
    }
    let mut waiver_files = Vec::new();
    for file in &files {
        let source = file.display().to_string();
        let text = match yaml::read_file(file, crate::fsio::cap::YAML, "file") {
            Ok(text) => text,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        // A list at the top level is a waivers file (`run --waivers`).
        if let Ok(true) = yaml::is_list(&source, &text) {
            match Waiver::parse_file(&source, &text) {
                Ok(waivers) => waiver_files.push((source, text, waivers)),
                Err(mut e) => errors.append(&mut e),
            }
            continue;
        }
        match catalog::parse_data_file(&source, &text) {
            Ok(DataFile::Suite(suite)) => user_suites.push((Arc::new(suite), text)),
            Ok(DataFile::Profile(profile)) => user_profiles.push(Arc::new(profile)),
            Err(mut e) => errors.append(&mut e),
        }
    }
    // Two files claiming one suite version, and one id used by two different suites.
    for (index, (suite, text)) in user_suites.iter().enumerate() {
        for (other, _) in &user_suites[..index] {
            if other.suite.name == suite.suite.name && other.suite.version == suite.suite.version {
                errors.push(YamlError {
                    file: suite.source.clone(),
                    position: yaml::locate(text, "version", None, 0),
                    message: format!(
                        "version: suite {} {} is also defined in {}",
                        suite.suite.name, suite.suite.version, other.source
                    ),
                });
            }
        }
        for check in &suite.suite.checks {
            let elsewhere = user_suites[..index]
                .iter()
                .map(|(s, _)| s)
                .chain(catalog.suites.iter())
                .find(|s| {
                    s.suite.name != suite.suite.name
                        && s.suite.checks.iter().any(|c| c.id == check.id)
                });
            if let Some(other) = elsewhere {
                errors.push(YamlError {
                    file: suite.source.clone(),
                    position: yaml::locate(text, "id", Some(check.id.as_str()), 0),
                    message: format!(
                        "id: check id `{}` is already used by suite `{}` ({})",
                        check.id, other.suite.name, other.source
                    ),
                });
            }
        }
    }
    for (suite, _) in &user_suites {
        catalog.suites.retain(|s| {
            !(s.suite.name == suite.suite.name && s.suite.version == suite.suite.version)
        });
        catalog.suites.push(Arc::clone(suite));
    }
    let today = time::OffsetDateTime::now_utc().date();
    let profiles: Vec<_> = if args.paths.is_empty() {
        catalog.profiles.clone()
    } else {
        user_profiles
    };
    let mut warnings: Vec<YamlError> = Vec::new();
    for profile in &profiles {
        match catalog.resolve(profile) {
            Ok(plan) => {
                errors.extend(unused_selectors(profile, &plan));
                warnings.extend(nothing_gates(profile, &plan));
            }
            Err(mut e) => errors.append(&mut e),
        }
        errors.extend(expired_waivers(
            &profile.source,
            &profile.text,
            "waivers",
            &profile.profile.waivers,
            today,
        ));
    }
    for (source, text, waivers) in &waiver_files {
        for (index, waiver) in waivers.iter().enumerate() {
            let names_a_check = catalog.suites.iter().any(|s| {
                s.suite
                    .checks
                    .iter()
                    .any(|c| waiver.check.matches(c.id.as_str()))
            });
            if !names_a_check {
                errors.push(YamlError {
                    file: source.clone(),
                    position: yaml::locate(text, "check", Some(waiver.check.as_str()), 0),
                    message: format!(
                        "[{index}].check: `{}` names no check of the known suites",
                        waiver.check.as_str()
                    ),
                });
            }
        }
        errors.extend(expired_waivers(source, text, "", waivers, today));
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !errors.is_empty() {
        for error in &errors {
            eprintln!("{error}");
        }
        eprintln!(
            "lint: {} problem{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return Ok(exit::COULD_NOT_RUN);
    }
    let (n_suites, n_profiles) = if args.paths.is_empty() {
        (catalog.suites.len(), catalog.profiles.len())
    } else {
        (user_suites.len(), profiles.len())
    };
    let warned = match warnings.len() {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        n => format!(", {n} warnings"),
    };
    if waiver_files.is_empty() {
        println!("lint: ok ({n_suites} suites, {n_profiles} profiles{warned})");
    } else {
        println!(
            "lint: ok ({n_suites} suites, {n_profiles} profiles, {} waivers files{warned})",
            waiver_files.len()
        );
    }
    Ok(exit::CERTIFIED)
}

/// Every expired waiver of a profile (`prefix` `waivers`) or a waivers file (`prefix` empty),
/// placed at its `expires:` line.
fn expired_waivers(
    source: &str,
    text: &str,
    prefix: &str,
    waivers: &[Waiver],
    today: time::Date,
) -> Vec<YamlError> {
    let mut errors = Vec::new();
    for (index, waiver) in waivers.iter().enumerate() {
        if !waiver.expired_on(today) {
            continue;
        }
        let anchor = yaml::locate(text, "check", Some(waiver.check.as_str()), 0);
        let position = anchor
            .and_then(|(line, _)| {
                text.lines()
                    .enumerate()
                    .skip(line - 1)
                    .take(8)
                    .find_map(|(i, l)| {
                        let body = l.trim_start().trim_start_matches("- ");
                        body.starts_with("expires:")
                            .then(|| (i + 1, l.len() - body.len() + 1))
                    })
            })
            .or(anchor);
        errors.push(YamlError {
            file: source.to_owned(),
            position,
            message: format!(
                "{prefix}[{index}].expires: the waiver for `{}` approved by {} expired on {}",
                waiver.check.as_str(),
                waiver.approver,
                waiver.expires_text()
            ),
        });
    }
    errors
}

/// A profile none of whose checks gates (`gate: []`, or a gate of severities it selects no check
/// of): no run of it can be certified, since a target on which no gating check was evaluated is
/// `incomplete`.
fn nothing_gates(loaded: &catalog::LoadedProfile, plan: &catalog::Plan) -> Option<YamlError> {
    if plan.checks.iter().any(|c| c.gating) {
        return None;
    }
    let gate = &loaded.profile.gate;
    let why = if gate.is_empty() {
        "the gate is empty".to_owned()
    } else {
        let names: Vec<&str> = gate.iter().map(|s| s.as_str()).collect();
        format!(
            "no selected check has a gating severity ({})",
            names.join(", ")
        )
    };
    Some(YamlError {
        file: loaded.source.clone(),
        position: yaml::locate(&loaded.text, "gate", None, 0)
            .or_else(|| yaml::locate(&loaded.text, "name", None, 0)),
        message: format!(
            "gate: {why}: no check decides the verdict, so every run of this profile is incomplete, never certified"
        ),
    })
}

/// Selectors and waivers that name no check of the profile's suites: almost always a typo, and
/// one that silently selects or waives nothing.
fn unused_selectors(loaded: &catalog::LoadedProfile, plan: &catalog::Plan) -> Vec<YamlError> {
    let checks: Vec<&crate::model::Check> =
        plan.suites.iter().flat_map(|s| &s.suite.checks).collect();
    let matches_any = |selector: &crate::model::Selector| {
        checks
            .iter()
            .any(|c| selector.selects(c.id.as_str(), &c.tags))
    };
    let profile = &loaded.profile;
    let mut errors = Vec::new();
    for (key, selectors) in [("include", &profile.include), ("exclude", &profile.exclude)] {
        for (index, selector) in selectors.iter().enumerate() {
            if !matches_any(selector) {
                errors.push(YamlError {
                    file: loaded.source.clone(),
                    position: yaml::locate(&loaded.text, key, None, 0),
                    message: format!(
                        "{key}[{index}]: `{selector}` selects no check of the profile's suites"
                    ),
                });
            }
        }
    }
    for (index, waiver) in profile.waivers.iter().enumerate() {
        if !checks.iter().any(|c| waiver.check.matches(c.id.as_str())) {
            errors.push(YamlError {
                file: loaded.source.clone(),
                position: yaml::locate(&loaded.text, "check", Some(waiver.check.as_str()), 0),
                message: format!(
                    "waivers[{index}].check: `{}` names no check of the profile's suites",
                    waiver.check.as_str()
                ),
            });
        }
    }
    errors
}

fn explain(args: ExplainArgs) -> Result<u8, CliError> {
    let mut catalog = Catalog::builtin()?;
    for dir in &args.suite_dirs {
        catalog.add_path(dir)?;
    }
    let versions = catalog.check_versions(&args.check);
    let Some((_, newest)) = versions.last() else {
        return Err(CliError::Usage(format!(
            "no check with id `{}` (see `hostcert list`)",
            args.check
        )));
    };
    println!("{} — {}", newest.id, newest.title);
    println!("severity: {}", newest.severity.as_str());
    if !newest.tags.is_empty() {
        println!("tags: {}", newest.tags.join(", "));
    }
    if !newest.rationale.trim().is_empty() {
        println!(
            "\nwhy:\n  {}",
            newest.rationale.trim().replace('\n', "\n  ")
        );
    }
    println!("\nchecks: {}", engine::describe_expectation(newest));
    let facts: Vec<String> = newest.probes.values().map(ToString::to_string).collect();
    println!("reads: {}", facts.join(", "));
    let applies = &newest.applies_to;
    let mut scope = Vec::new();
    if !applies.target_kinds.is_empty() {
        scope.push(format!(
            "targets {}",
            applies
                .target_kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(range) = &applies.kernel {
        scope.push(format!("kernels {range}"));
    }
    if !applies.architectures.is_empty() {
        scope.push(format!(
            "architectures {}",
            applies.architectures.join(", ")
        ));
    }
    if !applies.os_ids.is_empty() {
        scope.push(format!("os {}", applies.os_ids.join(", ")));
    }
    println!(
        "applies to: {}",
        if scope.is_empty() {
            "every target".to_owned()
        } else {
            scope.join("; ")
        }
    );
    if !newest.remediation.trim().is_empty() {
        println!(
            "\nhow to fix:\n  {}",
            newest.remediation.trim().replace('\n', "\n  ")
        );
    }
    if !newest.references.is_empty() {
        println!("\nreferences:");
        for reference in &newest.references {
            println!("  {reference}");
        }
    }
    println!("\nversions:");
    for (suite, check) in &versions {
        println!(
            "  check {} in suite {} {} ({})",
            check.version, suite.suite.name, suite.suite.version, suite.source
        );
    }
    Ok(exit::CERTIFIED)
}

fn gather(args: GatherArgs) -> Result<u8, CliError> {
    // SIGINT and SIGTERM stop the gather; an interrupted target's snapshot is not written.
    if let Err(error) = crate::interrupt::install() {
        eprintln!("warning: cannot handle SIGINT and SIGTERM: {error}");
    }
    let to_stdout = output_destination(&args.output, true)?.is_stdout();
    remove_leftovers(args.image.is_some());
    let mut catalog = load_catalog(&args.catalog)?;
    let profile = choose_profile(&mut catalog, args.catalog.profile.as_deref())?;
    let plan = catalog.resolve_with(&profile, &args.catalog.suite_params())?;
    let mut options = args.catalog.target_options(&args.ssh);
    args.image_options
        .apply(&mut options, &args.catalog, &profile.profile);
    let image = match &args.image {
        Some(address) => Some(
            crate::targets::pair::open_image(address, &options)
                .map_err(|e| CliError::Usage(format!("--image {e}")))?,
        ),
        None => None,
    };
    let mut opened = crate::targets::open(&args.target, &options)?;
    if opened.len() != 1 {
        let names: Vec<&str> = opened.iter().map(|t| t.name()).collect();
        return Err(CliError::Usage(format!(
            "{} holds {} targets ({}); gather one at a time with --param kernel-version=RELEASE (OS trees) or --platform OS/ARCH (image indexes)",
            args.target,
            opened.len(),
            names.join(", ")
        )));
    }
    let mut target = opened.remove(0);
    if image.is_some() || options.seccomp_profile.is_some() {
        target = Box::new(crate::targets::pair::PairTarget::new(
            image,
            target,
            options.seccomp_profile.clone(),
        ));
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| target.name().to_owned());
    if name.is_empty()
        || name.contains("::")
        || name
            .chars()
            .any(|c| c.is_whitespace() || hostcert_reports::escape::is_hidden(c))
    {
        return Err(CliError::Usage(format!(
            "--name `{}`: a target name needs at least one character, and no spaces, control characters or `::` (trial names are <target>::<suite>::<check-id>)",
            hostcert_reports::escape::visible(&name)
        )));
    }
    super::run::refuse_uncertified_kinds(&plan.profile.profile, &[target.as_ref()], false)?;
    let probes = engine::probes_for(&plan.checks);
    let gathered_at = now();
    let (kind, address) = (target.kind(), target.address().to_owned());
    let targets = Arc::new(vec![target]);
    let mut gathered = engine::gather(targets, Arc::new(vec![probes]), 1, &|_| {});
    let gathered = gathered.remove(0);
    if let Some(signal) = crate::interrupt::requested() {
        for left in crate::temp::remove_own_folders() {
            eprintln!("warning: could not remove {left}");
        }
        eprintln!(
            "{}: interrupted by {}; no snapshot written",
            gathered.info.name,
            signal.name()
        );
        return Ok(signal.exit_code());
    }
    if let Some(reason) = gathered.info.unreadable {
        return Err(CliError::Target(crate::targets::TargetError {
            target: gathered.info.name,
            reason,
        }));
    }
    let snapshot = Snapshot {
        format_version: SNAPSHOT_FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        gathered_at,
        target: SnapshotTarget {
            name,
            kind: kind.as_str().to_owned(),
            address,
            hostname: gathered.hostname,
            image_kind: gathered.info.image_kind.map(|k| k.as_str().to_owned()),
            gather_error: gathered.gather_error.clone(),
        },
        facts: gathered.facts.iter().cloned().collect(),
    };
    let mut text =
        serde_json::to_string_pretty(&snapshot).map_err(|e| CliError::Usage(e.to_string()))?;
    text.push('\n');
    write_file(&args.output, text.as_bytes(), true)?;
    let failed = snapshot.facts.iter().filter(|f| f.error.is_some()).count();
    say(
        to_stdout,
        &format!(
            "gathered {} facts from {} ({failed} could not be read) into {}",
            snapshot.facts.len(),
            snapshot.target.name,
            if to_stdout {
                "stdout".to_owned()
            } else {
                args.output.display().to_string()
            }
        ),
    );
    if let Some(reason) = gathered.gather_error {
        // What was read is saved; the snapshot says why the rest is missing.
        return Err(CliError::Target(crate::targets::TargetError {
            target: snapshot.target.name,
            reason: format!(
                "gathering stopped before every fact was read: {reason} (the snapshot keeps the facts read before)"
            ),
        }));
    }
    Ok(exit::CERTIFIED)
}

fn report(args: ReportArgs) -> Result<u8, CliError> {
    // Where each output goes is checked before any report is read.
    let (json, junit) = match &args.action {
        Some(ReportAction::Merge(merge)) => (merge.json.as_ref(), merge.junit.as_ref()),
        None => (args.json.as_ref(), args.junit.as_ref()),
    };
    let mut to_stdout = false;
    for (path, takes_dash) in [
        (json, true),
        (junit, false),
        (args.html.as_ref(), false),
        (args.markdown.as_ref(), false),
    ] {
        if let Some(path) = path {
            to_stdout |= output_destination(path, takes_dash)?.is_stdout();
        }
    }
    let (report, json, junit) = match args.action {
        Some(ReportAction::Merge(merge)) => {
            let reports = merge
                .reports
                .iter()
                .map(|path| read_report(path).map(|(report, _)| report))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = hostcert_reports::merge::merge(reports)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            say(
                to_stdout,
                &format!(
                    "merged {} reports: {} targets, {} results, verdict {}",
                    merge.reports.len(),
                    merged.targets.len(),
                    merged.results.len(),
                    merged.verdict.label()
                ),
            );
            (merged, merge.json, merge.junit)
        }
        None => {
            let from = args.from.as_ref().ok_or_else(|| {
                CliError::Usage("give --from REPORT.json, or `report merge REPORT...`".to_owned())
            })?;
            (read_report(from)?.0, args.json.clone(), args.junit.clone())
        }
    };
    if junit.is_none() && json.is_none() && args.html.is_none() && args.markdown.is_none() {
        return Err(CliError::Usage(
            "nothing to write: give --junit FILE, --json FILE, --html FILE and/or --markdown FILE"
                .to_owned(),
        ));
    }
    let options = RenderOptions {
        waiver_warning_days: args.waiver_warning_days,
    };
    if let Some(junit) = &junit {
        write_file(
            junit,
            hostcert_reports::junit::render(&report).as_bytes(),
            false,
        )?;
    }
    if let Some(json) = &json {
        write_file(
            json,
            hostcert_reports::json::to_string(&report).as_bytes(),
            true,
        )?;
    }
    if let Some(html) = &args.html {
        write_file(
            html,
            hostcert_reports::html::render(&report, &options).as_bytes(),
            false,
        )?;
    }
    if let Some(markdown) = &args.markdown {
        write_file(
            markdown,
            hostcert_reports::markdown::render(&report, &options).as_bytes(),
            false,
        )?;
    }
    Ok(exit::CERTIFIED)
}

/// Reads a JSON report (at most [`crate::fsio::cap::REPORT`]) and its bytes, naming the file in
/// every error.
fn read_report(path: &Path) -> Result<(RunReport, Vec<u8>), CliError> {
    let name = path.display().to_string();
    let fail = |reason: String| CliError::File {
        path: name.clone(),
        reason,
    };
    let bytes = crate::fsio::read_regular(path, crate::fsio::cap::REPORT, "report")?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| fail("not a hostcert report: not UTF-8".to_owned()))?;
    let report = hostcert_reports::json::from_str(text).map_err(|e| fail(e.to_string()))?;
    Ok((report, bytes))
}

fn diff(args: DiffArgs) -> Result<u8, CliError> {
    let to_stdout = match &args.json {
        Some(json) => output_destination(json, false)?.is_stdout(),
        None => false,
    };
    let (old, _) = read_report(&args.old)?;
    let (new, _) = read_report(&args.new)?;
    let diff = hostcert_reports::diff::compare(
        &old,
        &args.old.display().to_string(),
        &new,
        &args.new.display().to_string(),
    );
    let text = hostcert_reports::diff::render_text(&diff);
    if to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    if let Some(json) = &args.json {
        let mut text = serde_json::to_string_pretty(&diff)
            .map_err(|e| CliError::Usage(format!("cannot serialize the diff: {e}")))?;
        text.push('\n');
        write_file(json, text.as_bytes(), false)?;
    }
    Ok(if diff.counts.new_gating_failures > 0 {
        exit::NOT_CERTIFIED
    } else {
        exit::CERTIFIED
    })
}

/// The signed bundle line for a report whose JSON file is `name` with bytes `json`.
pub(super) fn sign_report(report: &RunReport, name: &str, json: &[u8], key: &SigningKey) -> String {
    let statement = attestation::statement(report, name, &catalog::digest(json));
    Envelope::sign(PAYLOAD_TYPE, &attestation::to_payload(&statement), key).to_json_line()
}

fn key_error(error: crate::dsse::KeyError) -> CliError {
    CliError::File {
        path: error.path,
        reason: error.reason,
    }
}

fn attest(args: AttestArgs) -> Result<u8, CliError> {
    let to_stdout = output_destination(&args.output, false)?.is_stdout();
    let key = SigningKey::read(&args.key).map_err(key_error)?;
    let (report, bytes) = read_report(&args.from)?;
    let name = super::run::file_name(&args.from);
    write_file(
        &args.output,
        sign_report(&report, &name, &bytes, &key).as_bytes(),
        false,
    )?;
    let subjects: Vec<String> = attestation::subjects(&report, &name, &catalog::digest(&bytes))
        .iter()
        .map(|s| s.name.clone().unwrap_or_default())
        .collect();
    say(
        to_stdout,
        &format!(
            "signed {} ({}) with an {} key (keyid {}) into {}; subjects: {}",
            args.from.display(),
            catalog::digest(&bytes),
            key.algorithm().as_str(),
            key.verifying_key().key_id(),
            args.output.display(),
            subjects.join(", ")
        ),
    );
    Ok(exit::CERTIFIED)
}

fn verify(args: VerifyArgs) -> Result<u8, CliError> {
    let key = VerifyingKey::read(&args.key).map_err(key_error)?;
    let bundle = args.bundle.display().to_string();
    let text = crate::fsio::read_regular_text(&args.bundle, crate::fsio::cap::BUNDLE, "bundle")?;
    let failed = |reason: String| {
        eprintln!(
            "verify: FAILED: {bundle}: {}",
            hostcert_reports::escape::visible(&reason)
        );
        Ok(exit::NOT_VERIFIED)
    };
    let envelope = match Envelope::from_json(text.trim()) {
        Ok(envelope) => envelope,
        Err(e) => return failed(e.to_string()),
    };
    let payload = match envelope.verify(PAYLOAD_TYPE, &key) {
        Ok(payload) => payload,
        Err(e) => return failed(e.to_string()),
    };
    let statement = match attestation::from_payload(&payload) {
        Ok(statement) => statement,
        Err(e) => return failed(e.to_string()),
    };
    let named = &statement.predicate.hostcert.report;
    let report_path = match (&args.report, &named.name) {
        (Some(path), _) => path.clone(),
        (None, Some(name)) if !name.contains('/') && !name.is_empty() => args
            .bundle
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(name),
        (None, _) => {
            return Err(CliError::Usage(
                "the statement names no report file beside the bundle; give --report FILE"
                    .to_owned(),
            ))
        }
    };
    let bytes = crate::fsio::read_regular(
        &report_path,
        crate::fsio::cap::REPORT,
        "report the bundle names",
    )
    .map_err(|e| CliError::File {
        path: e.path,
        reason: format!("{} (give --report FILE)", e.reason),
    })?;
    let digest = catalog::digest(&bytes);
    if named.sha256().as_deref() != Some(digest.as_str()) {
        return failed(format!(
            "{} has digest {digest}, the signed statement names {}",
            report_path.display(),
            named.sha256().unwrap_or_else(|| "no sha256".to_owned())
        ));
    }
    let report = match std::str::from_utf8(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| hostcert_reports::json::from_str(t).map_err(|e| e.to_string()))
    {
        Ok(report) => report,
        Err(e) => return failed(format!("{}: {e}", report_path.display())),
    };
    let name = named.name.clone().unwrap_or_default();
    let expected = attestation::subjects(&report, &name, &digest);
    if statement.subject != expected || statement.predicate.hostcert.verdict != report.verdict {
        return failed(format!(
            "the statement's subjects or verdict do not match {}",
            report_path.display()
        ));
    }
    // Everything the statement says (result, counts, trial lists) is what the report gives.
    if statement != attestation::statement(&report, &name, &digest) {
        return failed(format!(
            "the statement's result, counts or trials do not match {}",
            report_path.display()
        ));
    }
    println!(
        "verified: signed by an {} key (keyid {}); {} matches ({digest})",
        key.algorithm().as_str(),
        key.key_id(),
        report_path.display()
    );
    for subject in &statement.subject {
        println!(
            "subject: {} {}",
            hostcert_reports::escape::visible(subject.name.as_deref().unwrap_or("(unnamed)")),
            subject.sha256().unwrap_or_default()
        );
    }
    for configuration in &statement.predicate.configuration {
        println!(
            "configuration: {} {} {}",
            configuration.name.as_deref().unwrap_or("(unnamed)"),
            configuration
                .annotations
                .get("version")
                .map_or("", String::as_str),
            configuration.sha256().unwrap_or_default()
        );
    }
    let c = statement.predicate.hostcert.counts;
    println!(
        "verdict: {} (result {}; {} pass, {} fail ({} gating), {} waived, {} skip, {} error)",
        report.verdict.label().to_uppercase(),
        statement.predicate.result,
        c.pass,
        c.fail,
        c.gating_fail,
        c.waived,
        c.skip,
        c.error
    );
    if let Some(required) = args.require {
        let required = required.verdict();
        if report.verdict != required {
            eprintln!(
                "verify: FAILED: {bundle}: the bundle is genuine, but attests {}, and --require asks for {}",
                report.verdict.label().to_uppercase(),
                required.label().to_uppercase()
            );
            return Ok(exit::NOT_VERIFIED);
        }
    }
    Ok(exit::CERTIFIED)
}
