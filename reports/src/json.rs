//! The JSON wire format of a [`RunReport`].
//!
//! # Wire format
//!
//! One JSON object, pretty-printed, keys in kebab-case. `format-version` is read first: a
//! report whose version this build does not know is refused with a clear error rather than
//! misread. Fields (see the rustdoc of each type for its meaning):
//!
//! ```json
//! {
//!   "format-version": 1,
//!   "tool": { "name": "hostcert", "version": "0.1.0" },
//!   "started-at": "2026-11-29T16:00:00.000000000Z",
//!   "finished-at": "2026-11-29T16:00:00.120000000Z",
//!   "profile": {
//!     "name": "container-host", "version": "1.0.0",
//!     "source": "built-in:profiles/container-host.yaml",
//!     "digest": "sha256:…",
//!     "suites": [ { "name": "kernel-features", "version": "1.0.0",
//!                   "digest": "sha256:…", "source": "built-in:suites/kernel-features/v1.yaml" } ]
//!   },
//!   "verdict": "not-certified",
//!   "gating-severities": ["critical", "high"],
//!   "targets": [ { "name": "local", "kind": "local", "address": "local",
//!                  "hostname": "build-7", "facts-from": "live",
//!                  "fact-sources": { "CONFIG_NET_NS": "/proc/config.gz" },
//!                  "facts-digest": "sha256:…",
//!                  "groups": { "namespaces": { "total": 5, "pass": 4, "fail": 1, "skip": 0,
//!                                              "waived": 0, "error": 0, "gating-fail": 1,
//!                                              "gating-error": 0 } } } ],
//!   "results": [ {
//!     "target": "local", "suite": "kernel-features", "suite-version": "1.0.0",
//!     "suite-digest": "sha256:…", "check": "kernel.namespaces.net", "check-version": "1.0.0",
//!     "title": "Network namespaces", "severity": "critical", "gating": true,
//!     "outcome": "fail",
//!     "message": "expected CONFIG_NET_NS = y; observed CONFIG_NET_NS = not set",
//!     "expected": "CONFIG_NET_NS = y",
//!     "evidence": [ { "fact": "CONFIG_NET_NS", "source": "/proc/config.gz",
//!                     "observed": "not set" } ],
//!     "known-failure": true,
//!     "remediation": "Rebuild the kernel with CONFIG_NET_NS=y.",
//!     "duration-secs": 0.000004
//!   } ],
//!   "summary": { "total": 1, "pass": 0, "fail": 1, "skip": 0, "waived": 0, "error": 0,
//!                "gating-fail": 1, "gating-error": 0 },
//!   "waivers": [ { "check": "kernel.storage.*", "reason": "devicemapper on this fleet",
//!                  "approver": "storage@example.com", "expires": "2027-03-31",
//!                  "expired": false, "targets": ["db-*"], "source": "waivers.yaml" } ],
//!   "baseline": { "source": "baseline/report.json", "digest": "sha256:…",
//!                 "started-at": "2026-11-22T12:00:00Z", "baseline-verdict": "not-certified",
//!                 "verdict": "certified", "known-failures": 1, "new-failures": 0,
//!                 "new-gating-failures": 0 }
//! }
//! ```
//!
//! A complete example with every outcome is `reports/example-report.json`; a test keeps it
//! valid and byte-identical to what this crate writes.
//!
//! Outcomes are `pass`, `fail`, `skip`, `waived` and `error`; verdicts are `certified`,
//! `not-certified` and `incomplete`. A result's `waiver` is present only when a waiver matched.
//!
//! Fields added after version 1 was first written, all optional, so that every earlier report
//! still reads (none changed the meaning of a field, so `format-version` is still 1):
//!
//! - `filtered-out`: trials left out by libtest's filters (absent when none).
//! - a target's `groups`: outcome counts by check group, and `facts-digest`: the sha256 of the
//!   facts the target gave (see `FactSet::digest` in the harness), the subject of a signed
//!   attestation.
//! - `waivers`: every waiver in force for the run, from the profile and from `--waivers` files;
//!   a waiver's `targets` (globs; absent for every target) and `source` (the waivers file;
//!   absent for the profile's own).
//! - a target's `image-digests`: the digests of the image it read (`manifest`, and `index` when
//!   the manifest was chosen from one), the subjects of a signed attestation.
//! - `baseline` (`run --baseline OLD.json`): the baseline file, its digest and start, its own
//!   verdict, and the gate's `verdict`, in which only failures new against the baseline count;
//!   the exit code follows it. `verdict` at the top keeps its meaning: the verdict over every
//!   result. A result's `known-failure` is `true` on a failure that also failed on the same
//!   target in the baseline.
//! - a target's `gather-error`: why gathering stopped before every fact was read (the facts read
//!   before were judged; every other fact is an `error`); such a target is at best `incomplete`.
//! - a target's `pair` (`run --image`): `{"image": NAME, "host": NAME}`, the image and the host
//!   the target pairs; and `matrix`, the compatibility matrix of those pairs: `images` (rows)
//!   and `hosts` (columns) by name, in the order their first pair appears, and one of `cells`
//!   per pair, `{"image", "host", "target", "verdict", "failing", "errors"}` (`failing` and
//!   `errors`: the gating checks that failed or could not be evaluated on it; absent when
//!   none). Absent when the run had no image.
//!
//! `verdict`, `summary`, a target's `groups`, `matrix` and the baseline's counts and `verdict` are derived
//! from `results` and `targets` (the rules are in [`crate::verdict`]); [`from_str`] refuses a
//! report whose stored values disagree with its results, naming the field, so that no command
//! renders, signs, merges or gates against a verdict that was edited. The verdict rules grew
//! stricter after version 1 was first written (a target on which no gating check was evaluated
//! is `incomplete`, never `certified`): a report written before that, which certified such a
//! target, is refused the same way.

use std::io::{Read, Write};

use serde::ser::{Error as _, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::format::{Format, Renderer};
use crate::{RenderOptions, ReportView, RunReport, FORMAT_VERSION};

/// The JSON report, `report.json`: the one format every other can be rendered again from.
pub static FORMAT: Format = Format {
    name: "json",
    file: "report.json",
    what: "the JSON report",
    takes_dash: true,
    renderer: &Json,
};

/// The JSON renderer.
struct Json;

impl Renderer for Json {
    fn render(
        &self,
        view: &ReportView<'_>,
        _options: &RenderOptions,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        write_view(view, out)
    }
}

/// Writes a view as the JSON report, pretty-printed and followed by a newline, reading the
/// results target by target: the bytes are those [`write`] gives for the same report.
pub fn write_view(view: &ReportView<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let mut serializer = serde_json::Serializer::pretty(&mut *out);
    Streamed(view).serialize(&mut serializer)?;
    out.write_all(b"\n")
}

/// A [`RunReport`] serialized as its derived `Serialize` does, with `targets` and `results` read
/// from the view's store as they are written.
struct Streamed<'v, 'a>(&'v ReportView<'a>);

impl Serialize for Streamed<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Every field named: a field added to `RunReport` does not compile here until it is
        // written too.
        let RunReport {
            format_version,
            tool,
            started_at,
            finished_at,
            profile,
            verdict,
            gating_severities,
            targets: _,
            results: _,
            summary,
            filtered_out,
            waivers,
            baseline,
            matrix,
        } = self.0.report();
        let mut map = serializer.serialize_struct("RunReport", 14)?;
        map.serialize_field("format-version", format_version)?;
        map.serialize_field("tool", tool)?;
        map.serialize_field("started-at", started_at)?;
        map.serialize_field("finished-at", finished_at)?;
        map.serialize_field("profile", profile)?;
        map.serialize_field("verdict", verdict)?;
        map.serialize_field("gating-severities", gating_severities)?;
        map.serialize_field("targets", &Targets(self.0))?;
        map.serialize_field("results", &Results(self.0))?;
        map.serialize_field("summary", summary)?;
        if *filtered_out != 0 {
            map.serialize_field("filtered-out", filtered_out)?;
        }
        if !waivers.is_empty() {
            map.serialize_field("waivers", waivers)?;
        }
        if let Some(baseline) = baseline {
            map.serialize_field("baseline", baseline)?;
        }
        if let Some(matrix) = matrix {
            map.serialize_field("matrix", matrix)?;
        }
        map.end()
    }
}

/// The targets, each read whole from the store.
struct Targets<'v, 'a>(&'v ReportView<'a>);

impl Serialize for Targets<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let count = self.0.targets().len();
        let mut seq = serializer.serialize_seq(Some(count))?;
        for index in 0..count {
            let target = self.0.target(index).map_err(S::Error::custom)?;
            seq.serialize_element(target.as_ref())?;
        }
        seq.end()
    }
}

/// The results, target by target.
struct Results<'v, 'a>(&'v ReportView<'a>);

impl Serialize for Results<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.result_count()))?;
        for index in 0..self.0.targets().len() {
            for result in self.0.results(index).map_err(S::Error::custom)?.iter() {
                seq.serialize_element(result)?;
            }
        }
        seq.end()
    }
}

/// Why a JSON report could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The text is not a report of the known format.
    #[error("not a hostcert report: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The report's format version is not one this build reads.
    #[error("report format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found in the file.
        found: u64,
    },
    /// Writing failed.
    #[error("failed to write the report: {0}")]
    Write(#[source] std::io::Error),
    /// Reading failed.
    #[error("failed to read the report: {0}")]
    Read(#[source] std::io::Error),
    /// A stored verdict or count disagrees with the report's results.
    #[error("the report contradicts its own results: {0} (verdicts and counts are derived from the results, never read from a file: was the report edited?)")]
    Underived(#[from] crate::Underived),
}

/// Writes `report` as pretty-printed JSON followed by a newline.
pub fn write(report: &RunReport, mut out: impl Write) -> Result<(), JsonError> {
    write_view(&ReportView::of(report), &mut out).map_err(JsonError::Write)
}

/// Renders `report` as a JSON string.
pub fn to_string(report: &RunReport) -> String {
    let mut bytes = Vec::new();
    write(report, &mut bytes).expect("writing to a Vec cannot fail");
    String::from_utf8(bytes).expect("serde_json writes UTF-8")
}

/// Reads a report, checking it as [`from_str`] does.
pub fn read(mut input: impl Read) -> Result<RunReport, JsonError> {
    let mut text = String::new();
    input.read_to_string(&mut text).map_err(JsonError::Read)?;
    from_str(&text)
}

/// Parses a report from a string, checking its format version first and, last, that its
/// verdict, summary, group counts and baseline gate are those its results give
/// ([`RunReport::check_derived`]).
pub fn from_str(text: &str) -> Result<RunReport, JsonError> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        #[serde(rename = "format-version")]
        format_version: u64,
    }
    let version: VersionOnly = serde_json::from_str(text).map_err(JsonError::Malformed)?;
    if version.format_version != u64::from(FORMAT_VERSION) {
        return Err(JsonError::UnsupportedVersion {
            found: version.format_version,
        });
    }
    let report: RunReport = serde_json::from_str(text).map_err(JsonError::Malformed)?;
    report.check_derived()?;
    Ok(report)
}
