//! The subcommands other than `run`.

use std::path::Path;

use hostcert_reports::attestation::{self, PAYLOAD_TYPE};
use hostcert_reports::{RenderOptions, ReportView, RunReport};

use super::args::{
    AttestArgs, CleanArgs, Command, DiffArgs, ExplainArgs, GatherArgs, LintArgs, ListArgs,
    ReportAction, ReportArgs, VerifyArgs,
};
use super::{exit, say, CliError};
use crate::catalog::{self, Catalog};
use crate::dsse::{Envelope, SigningKey, VerifyingKey};
use crate::engine;
use crate::facts::{Snapshot, SnapshotTarget, SNAPSHOT_FORMAT_VERSION};
use crate::run::outputs::{destination as output_destination, write_file, Outputs};

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

fn list(args: ListArgs) -> Result<u8, CliError> {
    let (plan, warnings) = args.catalog.selection().plan()?;
    super::warn(&warnings);
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
    let linted = crate::lint::lint(&args.paths)?;
    for warning in &linted.warnings {
        eprintln!("warning: {warning}");
    }
    if !linted.errors.is_empty() {
        for error in &linted.errors {
            eprintln!("{error}");
        }
        eprintln!(
            "lint: {} problem{}",
            linted.errors.len(),
            if linted.errors.len() == 1 { "" } else { "s" }
        );
        return Ok(exit::COULD_NOT_RUN);
    }
    let warned = match linted.warnings.len() {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        n => format!(", {n} warnings"),
    };
    let (suites, profiles) = (linted.suites, linted.profiles);
    if linted.waiver_files == 0 {
        println!("lint: ok ({suites} suites, {profiles} profiles{warned})");
    } else {
        println!(
            "lint: ok ({suites} suites, {profiles} profiles, {} waivers files{warned})",
            linted.waiver_files
        );
    }
    Ok(exit::CERTIFIED)
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
    if newest
        .probes
        .values()
        .any(crate::targets::package_list::reads_package_databases)
    {
        println!(
            "package databases: {}",
            crate::targets::package_list::DATABASES_READ
        );
    }
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
    super::remove_leftovers(args.image.is_some());
    let (plan, warnings) = args.catalog.selection().plan()?;
    super::warn(&warnings);
    let mut options = args.catalog.target_options(&args.ssh);
    args.image_options
        .apply(&mut options, &args.catalog, &plan.profile.profile);
    // A VM's console log is kept beside the snapshot.
    options.vm = args.vm.options(args.output.parent().map(Path::to_owned));
    let mut units = crate::run::open::open_one(&args.target, args.image.as_deref(), &options)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| units.cells[0].name.clone());
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
    crate::run::open::refuse_uncertified_kinds(&plan.profile.profile, &units, false)?;
    units.cells[0].probes = engine::probes_for(&plan.checks);
    let gathered_at = crate::run::now();
    let mut read = None;
    engine::gather(
        std::sync::Arc::new(units),
        1,
        std::sync::Arc::new(|_, gathered| gathered),
        &mut |event| {
            if let engine::Gathering::Cell(_, gathered) = event {
                read = Some(gathered);
            }
        },
    );
    let gathered = read.ok_or_else(|| CliError::Usage("nothing was gathered".to_owned()))?;
    let (kind, address) = (gathered.info.kind, gathered.address.clone());
    if let Some(signal) = crate::interrupt::requested() {
        for left in crate::interrupt::remove_what_was_abandoned() {
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
    let files = match &args.action {
        Some(ReportAction::Merge(merge)) => &merge.files.files,
        None => &args.files.files,
    };
    let outputs = Outputs::chosen(files)?;
    let report = match &args.action {
        Some(ReportAction::Merge(merge)) => {
            let reports = merge
                .reports
                .iter()
                .map(|path| read_report(path).map(|(report, _)| report))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = hostcert_reports::merge::merge(reports)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            say(
                outputs.to_stdout,
                &format!(
                    "merged {} reports: {} targets, {} results, verdict {}",
                    merge.reports.len(),
                    merged.targets.len(),
                    merged.results.len(),
                    merged.verdict.label()
                ),
            );
            merged
        }
        None => {
            let from = args.from.as_ref().ok_or_else(|| {
                CliError::Usage("give --from REPORT.json, or `report merge REPORT...`".to_owned())
            })?;
            read_report(from)?.0
        }
    };
    let options = RenderOptions {
        waiver_warning_days: args.waiver_warning_days,
    };
    outputs.write(&ReportView::of(&report), &options, None)?;
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

fn attest(args: AttestArgs) -> Result<u8, CliError> {
    let to_stdout = output_destination(&args.output, false)?.is_stdout();
    let key = SigningKey::read(&args.key)?;
    let (report, bytes) = read_report(&args.from)?;
    let name = crate::run::outputs::file_name(&args.from);
    let line = crate::run::outputs::sign(
        &ReportView::of(&report),
        &name,
        &catalog::digest(&bytes),
        &key,
    )?;
    write_file(&args.output, line.as_bytes(), false)?;
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
    let key = VerifyingKey::read(&args.key)?;
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
