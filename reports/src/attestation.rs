//! The in-toto Statement (v1) that `hostcert run --sign` and `hostcert attest` sign: what a run
//! certified, about which subjects, against which profile and suites.
//!
//! # Statement
//!
//! ```json
//! {
//!   "_type": "https://in-toto.io/Statement/v1",
//!   "subject": [ { "name": "facts:broken-host", "digest": { "sha256": "…" } } ],
//!   "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
//!   "predicate": {
//!     "result": "FAILED",
//!     "configuration": [
//!       { "name": "profile:container-host", "digest": { "sha256": "…" },
//!         "annotations": { "version": "1.0.0", "source": "built-in:profiles/container-host.yaml" } },
//!       { "name": "suite:kernel-features", "digest": { "sha256": "…" },
//!         "annotations": { "version": "1.0.0", "source": "built-in:suites/kernel-features/v1.yaml" } }
//!     ],
//!     "passedTests": ["broken-host::kernel-features::kernel.namespaces.pid"],
//!     "warnedTests": [],
//!     "failedTests": ["broken-host::kernel-features::kernel.namespaces.net"],
//!     "hostcert": {
//!       "verdict": "not-certified",
//!       "counts": { "total": 2, "pass": 1, "fail": 1, "skip": 0, "waived": 0, "error": 0,
//!                   "gatingFail": 1, "gatingError": 0 },
//!       "report": { "name": "report.json", "digest": { "sha256": "…" },
//!                   "mediaType": "application/json" },
//!       "startedAt": "…", "finishedAt": "…", "toolVersion": "0.1.0"
//!     }
//!   }
//! }
//! ```
//!
//! **Subjects** are what was certified: the digests of each certified image ([`image_subjects`]:
//! a target's `image-digests`, its manifest named after the target and the index it was chosen
//! from named `index:<target>`, or the digest an image target's address pins with
//! `@sha256:<hex>`) and, for every target that was read, the digest of the facts it gave
//! ([`crate::TargetReport::facts_digest`]), named `facts:<target>`. A report without either
//! (one written before facts digests existed) has the report file itself as its one subject.
//!
//! **The predicate** is in-toto's test-result predicate. `configuration` names the profile and
//! every suite with its version and digest. Test names are trial names
//! (`<target>::<suite>::<check-id>`): `passedTests` are passes, `warnedTests` waived results and
//! failures or errors of checks that do not gate, `failedTests` gating failures and errors;
//! skipped checks are in none. `result` is `PASSED` when the run is certified with nothing to
//! warn about, `WARNED` when it is certified with waived or advisory results, and `FAILED` when
//! it is not certified or incomplete. It follows the run's own verdict even when the run had a
//! baseline: a baseline lets CI pass on known failures, it does not certify. The `hostcert`
//! field, which consumers of the test-result predicate ignore, adds the verdict, the counts,
//! the baseline's gate, and the digest of the JSON report, which `hostcert verify` checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Outcome, ReportView, RunReport, Verdict};

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The test-result predicate type.
pub const PREDICATE_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";
/// The DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// An in-toto Statement v1 with a test-result predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What was certified.
    pub subject: Vec<ResourceDescriptor>,
    /// Always [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The result.
    pub predicate: TestResult,
}

/// An in-toto ResourceDescriptor (the fields hostcert uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// A name for the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Digests by algorithm, hex-encoded: `{"sha256": "…"}`.
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
    /// The media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// More about the resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ResourceDescriptor {
    /// The sha256 digest as `sha256:<hex>`, when there is one.
    pub fn sha256(&self) -> Option<String> {
        self.digest.get("sha256").map(|hex| format!("sha256:{hex}"))
    }
}

/// The test-result predicate (v0.1), with hostcert's own field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// `PASSED`, `WARNED` or `FAILED`.
    pub result: String,
    /// The profile and every suite, with versions and digests.
    pub configuration: Vec<ResourceDescriptor>,
    /// Trial names of passed checks.
    pub passed_tests: Vec<String>,
    /// Trial names of waived results and of failures or errors of checks that do not gate.
    pub warned_tests: Vec<String>,
    /// Trial names of gating failures and errors.
    pub failed_tests: Vec<String>,
    /// What hostcert adds: verdict, counts, the report's digest.
    pub hostcert: HostcertResult,
}

/// The verdict, counts and report a statement attests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostcertResult {
    /// The run's verdict.
    pub verdict: Verdict,
    /// Counts of outcomes over every result.
    pub counts: Counts,
    /// The JSON report: its file name and sha256.
    pub report: ResourceDescriptor,
    /// The baseline's gate, when the run had a baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineGate>,
    /// When the run started.
    pub started_at: String,
    /// When the run finished.
    pub finished_at: String,
    /// The hostcert version that ran.
    pub tool_version: String,
}

/// Outcome counts (the report's summary, in the predicate's camelCase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// All results.
    pub total: usize,
    /// Passes.
    pub pass: usize,
    /// Failures.
    pub fail: usize,
    /// Skips.
    pub skip: usize,
    /// Waived failures.
    pub waived: usize,
    /// Results that could not be evaluated.
    pub error: usize,
    /// Failures of gating checks.
    pub gating_fail: usize,
    /// Errors of gating checks.
    pub gating_error: usize,
}

/// The baseline's gate, as a statement records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineGate {
    /// The gate's verdict, in which only new failures count.
    pub verdict: Verdict,
    /// The baseline report's digest.
    pub digest: BTreeMap<String, String>,
    /// Failures that also failed in the baseline.
    pub known_failures: usize,
    /// Failures that did not.
    pub new_failures: usize,
}

/// `{"sha256": hex}` from `sha256:<hex>`; empty for any other form.
fn digest_map(digest: &str) -> BTreeMap<String, String> {
    digest
        .strip_prefix("sha256:")
        .map(|hex| BTreeMap::from([("sha256".to_owned(), hex.to_owned())]))
        .unwrap_or_default()
}

/// The images a report certified: for each target that was read, the manifest and index
/// digests of its image (`image-digests`: the manifest named after the target, the index
/// `index:<target>`), or, for an image target without them, the digest its address pins
/// (`…@sha256:<hex>`).
pub fn image_subjects(report: &RunReport) -> Vec<ResourceDescriptor> {
    let mut subjects = Vec::new();
    for target in report.targets.iter().filter(|t| t.error.is_none()) {
        let named = |name: String, digest: &str| ResourceDescriptor {
            name: Some(name),
            digest: digest_map(digest),
            media_type: None,
            annotations: BTreeMap::new(),
        };
        if !target.image_digests.is_empty() {
            for (kind, digest) in &target.image_digests {
                let name = match kind.as_str() {
                    "manifest" => target.name.clone(),
                    other => format!("{other}:{}", target.name),
                };
                if !digest_map(digest).is_empty() {
                    subjects.push(named(name, digest));
                }
            }
            continue;
        }
        if target.kind != "image" {
            continue;
        }
        if let Some((name, digest)) = target.address.rsplit_once('@') {
            if !digest_map(digest).is_empty() {
                subjects.push(named(name.to_owned(), digest));
            }
        }
    }
    subjects
}

/// The subjects of a statement about `report`, whose JSON file is `report_name` with digest
/// `report_digest` (`sha256:<hex>`): image digests and fact digests, or the report itself when
/// it has neither.
pub fn subjects(
    report: &RunReport,
    report_name: &str,
    report_digest: &str,
) -> Vec<ResourceDescriptor> {
    let mut subjects = image_subjects(report);
    for target in &report.targets {
        if let Some(digest) = &target.facts_digest {
            subjects.push(ResourceDescriptor {
                name: Some(format!("facts:{}", target.name)),
                digest: digest_map(digest),
                media_type: None,
                annotations: BTreeMap::new(),
            });
        }
    }
    if subjects.is_empty() {
        subjects.push(report_descriptor(report_name, report_digest));
    }
    subjects
}

fn report_descriptor(name: &str, digest: &str) -> ResourceDescriptor {
    ResourceDescriptor {
        name: Some(name.to_owned()),
        digest: digest_map(digest),
        media_type: Some("application/json".to_owned()),
        annotations: BTreeMap::new(),
    }
}

/// The statement about `report`, whose JSON file is named `report_name` and has the digest
/// `report_digest` (`sha256:<hex>` of its bytes).
pub fn statement(report: &RunReport, report_name: &str, report_digest: &str) -> Statement {
    statement_of(&ReportView::of(report), report_name, report_digest)
        .expect("a report in memory is read without errors")
}

/// [`statement`] of a view, reading its results target by target.
pub fn statement_of(
    view: &ReportView<'_>,
    report_name: &str,
    report_digest: &str,
) -> std::io::Result<Statement> {
    let report = view.report();
    let mut configuration = vec![ResourceDescriptor {
        name: Some(format!("profile:{}", report.profile.name)),
        digest: digest_map(&report.profile.digest),
        media_type: None,
        annotations: BTreeMap::from([
            ("version".to_owned(), report.profile.version.clone()),
            ("source".to_owned(), report.profile.source.clone()),
        ]),
    }];
    for suite in &report.profile.suites {
        configuration.push(ResourceDescriptor {
            name: Some(format!("suite:{}", suite.name)),
            digest: digest_map(&suite.digest),
            media_type: None,
            annotations: BTreeMap::from([
                ("version".to_owned(), suite.version.clone()),
                ("source".to_owned(), suite.source.clone()),
            ]),
        });
    }
    let (mut passed, mut warned, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    view.for_each_result(
        |_, _| true,
        |_, result| {
            match (result.outcome, result.gating) {
                (Outcome::Pass, _) => passed.push(result.trial_name()),
                (Outcome::Skip, _) => {}
                (Outcome::Fail | Outcome::Error, true) => failed.push(result.trial_name()),
                (Outcome::Waived | Outcome::Fail | Outcome::Error, _) => {
                    warned.push(result.trial_name())
                }
            }
            Ok(())
        },
    )?;
    let result = match report.verdict {
        Verdict::Certified if warned.is_empty() => "PASSED",
        Verdict::Certified => "WARNED",
        _ => "FAILED",
    };
    let s = report.summary;
    Ok(Statement {
        statement_type: STATEMENT_TYPE.to_owned(),
        subject: subjects(report, report_name, report_digest),
        predicate_type: PREDICATE_TYPE.to_owned(),
        predicate: TestResult {
            result: result.to_owned(),
            configuration,
            passed_tests: passed,
            warned_tests: warned,
            failed_tests: failed,
            hostcert: HostcertResult {
                verdict: report.verdict,
                counts: Counts {
                    total: s.total,
                    pass: s.pass,
                    fail: s.fail,
                    skip: s.skip,
                    waived: s.waived,
                    error: s.error,
                    gating_fail: s.gating_fail,
                    gating_error: s.gating_error,
                },
                report: report_descriptor(report_name, report_digest),
                baseline: report.baseline.as_ref().map(|b| BaselineGate {
                    verdict: b.verdict,
                    digest: digest_map(&b.digest),
                    known_failures: b.known_failures,
                    new_failures: b.new_failures,
                }),
                started_at: report.started_at.clone(),
                finished_at: report.finished_at.clone(),
                tool_version: report.tool.version.clone(),
            },
        },
    })
}

/// Serializes a statement as the compact JSON bytes a DSSE envelope carries.
pub fn to_payload(statement: &Statement) -> Vec<u8> {
    serde_json::to_vec(statement).expect("a statement always serializes")
}

/// Why a payload is not a statement hostcert can check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Not JSON of the statement's shape.
    #[error("the payload is not an in-toto statement of a hostcert run: {0}")]
    Malformed(#[source] serde_json::Error),
    /// Another statement or predicate type.
    #[error("the payload is a `{statement}` statement with predicate `{predicate}`, not {STATEMENT_TYPE} with {PREDICATE_TYPE}")]
    WrongType {
        /// The statement type found.
        statement: String,
        /// The predicate type found.
        predicate: String,
    },
}

/// Parses a statement from a DSSE payload, checking its statement and predicate types.
pub fn from_payload(payload: &[u8]) -> Result<Statement, StatementError> {
    let statement: Statement =
        serde_json::from_slice(payload).map_err(StatementError::Malformed)?;
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        return Err(StatementError::WrongType {
            statement: statement.statement_type,
            predicate: statement.predicate_type,
        });
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> RunReport {
        crate::json::from_str(include_str!("../example-report.json")).unwrap()
    }

    #[test]
    fn the_statement_names_profile_suites_verdict_and_every_trial() {
        let report = example();
        let statement = statement(&report, "report.json", "sha256:abcd");
        assert_eq!(statement.predicate.result, "FAILED");
        assert_eq!(statement.predicate.configuration.len(), 2);
        assert_eq!(
            statement.predicate.configuration[1].annotations["version"],
            "1.0.0"
        );
        let named = statement.predicate.passed_tests.len()
            + statement.predicate.warned_tests.len()
            + statement.predicate.failed_tests.len();
        assert_eq!(named, report.summary.total - report.summary.skip);
        assert_eq!(
            statement.predicate.hostcert.report.sha256().as_deref(),
            Some("sha256:abcd")
        );
        let parsed = from_payload(&to_payload(&statement)).unwrap();
        assert_eq!(parsed, statement);
    }

    #[test]
    fn without_facts_digests_the_report_is_the_subject() {
        let mut report = example();
        for target in &mut report.targets {
            target.facts_digest = None;
        }
        let subjects = subjects(&report, "r.json", "sha256:0011");
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].name.as_deref(), Some("r.json"));
        assert_eq!(subjects[0].digest["sha256"], "0011");
    }

    #[test]
    fn an_image_target_pinned_by_digest_is_a_subject() {
        let mut report = example();
        report.targets[0].kind = "image".to_owned();
        report.targets[0].address = "registry.example/app@sha256:feed".to_owned();
        let subjects = image_subjects(&report);
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].digest["sha256"], "feed");
    }

    #[test]
    fn an_image_s_manifest_and_index_digests_are_subjects() {
        let mut report = example();
        report.targets[0].kind = "image".to_owned();
        report.targets[0].address = "docker://registry.example/app:1.0".to_owned();
        report.targets[0].image_digests = BTreeMap::from([
            ("manifest".to_owned(), "sha256:beef".to_owned()),
            ("index".to_owned(), "sha256:cafe".to_owned()),
        ]);
        let name = report.targets[0].name.clone();
        let subjects = image_subjects(&report);
        let found: Vec<(Option<String>, String)> = subjects
            .iter()
            .map(|s| (s.name.clone(), s.digest["sha256"].clone()))
            .collect();
        assert_eq!(
            found,
            [
                (Some(format!("index:{name}")), "cafe".to_owned()),
                (Some(name), "beef".to_owned())
            ]
        );
    }
}
