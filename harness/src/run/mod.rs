//! The run pipeline: what `hostcert run` does, as library calls the command line drives (as
//! `cargo-nextest` drives `nextest-runner`).
//!
//! 1. [`prepare`]: everything a run reads besides its targets (suites and profile resolved
//!    into a plan, `--waivers` files, the `--baseline` report, the `--sign` key) and where it
//!    writes ([`outputs::Outputs`]), each checked before any target is opened.
//! 2. [`open::open`]: the targets opened into [`crate::engine::Units`]: images, hosts, and the
//!    targets made of them (a pair per image and host), their names checked and their kinds
//!    checked against the profile's `target-kinds`.
//! 3. [`pipeline::execute`]: every unit gathered once, every target evaluated as soon as its
//!    facts are made, results streamed to reporters as [`pipeline::RunEvent`]s and to a spool
//!    on disk, the report's head derived as they come ([`hostcert_reports::Tally`]).
//! 4. [`outputs::Outputs::write`]: every format of [`hostcert_reports::format::FORMATS`]
//!    written from the spooled report, target by target, and the signed bundle; the console
//!    summary ([`summary::Console`]) is one more renderer of the same report.

pub mod open;
pub mod outputs;
pub mod pipeline;
mod spool;
pub mod summary;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::{LoadedProfile, Plan, Selection};
use crate::dsse::SigningKey;
use crate::model::Waiver;
use crate::Error;

/// The current time, RFC 3339.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What a run reads before its targets.
pub struct Inputs<'a> {
    /// Suites and profile.
    pub catalog: &'a Selection,
    /// `--waivers` files, consulted before the profile's waivers, in this order.
    pub waivers: &'a [PathBuf],
    /// `--baseline OLD.json`.
    pub baseline: Option<&'a Path>,
    /// `--sign KEY`.
    pub sign: Option<&'a Path>,
    /// Where the reports go.
    pub outputs: outputs::Outputs,
}

/// The baseline a run is gated against: what of the earlier report the run needs (the report
/// itself is dropped once read).
#[derive(Debug)]
pub struct Baseline {
    /// The file as the user named it.
    pub source: String,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// When the baseline run started.
    pub started_at: String,
    /// Its verdict.
    pub verdict: hostcert_reports::Verdict,
    /// Its profile's name.
    pub profile: String,
    /// Its targets' names.
    pub targets: HashSet<String>,
    /// (target, check) of each of its failures.
    pub failures: HashSet<(String, String)>,
}

/// Everything a run reads (and where it writes) before it opens a target.
pub struct Prepared {
    /// The plan, with the `--waivers` files' waivers first.
    pub plan: Arc<Plan>,
    /// The baseline.
    pub baseline: Option<Baseline>,
    /// The signing key.
    pub key: Option<SigningKey>,
    /// Where the reports go.
    pub outputs: outputs::Outputs,
    /// What the user should know about the catalog (a folder's file that replaces a built-in
    /// one).
    pub warnings: Vec<String>,
}

/// Reads everything a run needs besides its targets, so that a bad suite, profile, waivers
/// file, baseline or key fails before any target is opened.
pub fn prepare(inputs: Inputs<'_>) -> Result<Prepared, Error> {
    let (mut plan, warnings) = inputs.catalog.plan()?;
    // Waivers files come first, in the order given, then the profile's: the first that covers
    // a check applies.
    let mut waivers = Vec::new();
    let mut errors = Vec::new();
    for path in inputs.waivers {
        let parsed = crate::yaml::read_file(path, crate::fsio::cap::YAML, "waivers file")
            .map_err(|e| vec![e])
            .and_then(|text| Waiver::parse_file(&path.display().to_string(), &text));
        match parsed {
            Ok(mut parsed) => waivers.append(&mut parsed),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
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
    let baseline = inputs.baseline.map(read_baseline).transpose()?;
    let key = inputs.sign.map(SigningKey::read).transpose()?;
    Ok(Prepared {
        plan: Arc::new(plan),
        baseline,
        key,
        outputs: inputs.outputs,
        warnings,
    })
}

fn read_baseline(path: &Path) -> Result<Baseline, Error> {
    let source = path.display().to_string();
    let fail = |reason: String| Error::File {
        path: source.clone(),
        reason,
    };
    let bytes = crate::fsio::read_regular(path, crate::fsio::cap::REPORT, "baseline")?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| fail("the baseline is not a hostcert report: not UTF-8".to_owned()))?;
    let report = hostcert_reports::json::from_str(text)
        .map_err(|e| fail(format!("the baseline is not usable: {e}")))?;
    let failures = hostcert_reports::diff::failures(&report)
        .into_iter()
        .map(|(t, c)| (t.to_owned(), c.to_owned()))
        .collect();
    Ok(Baseline {
        digest: crate::catalog::digest(&bytes),
        started_at: report.started_at.clone(),
        verdict: report.verdict,
        profile: report.profile.name.clone(),
        targets: report.targets.iter().map(|t| t.name.clone()).collect(),
        failures,
        source,
    })
}
