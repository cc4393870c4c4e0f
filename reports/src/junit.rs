//! JUnit XML for dashboards (Jenkins, GitLab), written with the `junit-report` crate.
//!
//! Layout: one `<testsuite>` per (target, suite), named `<target>::<suite>`, with `hostname`
//! set to the target's host name (or its name when it has none); one `<testcase>` per check with
//! `classname` `<suite>.<target>` and `name` the check id. A failure's message says expected
//! versus observed; a waived result is a passing testcase whose `system-out` carries the waiver;
//! a skip is `<skipped>` with the reason; an error is `<error>`. A failure or error of a check
//! the profile does not gate on is `<skipped type="advisory">` with the reason, as libtest's
//! output shows it, so that a certified run does not turn a dashboard red; the JSON keeps `fail`. Every testcase's `system-out`
//! carries the evidence, the versions and the remediation, since JUnit has no field for them.
//! The output validates against Jenkins' `junit-10.xsd`. Text is never cut (evidence is whole);
//! hidden characters from targets are escaped visibly (`\u{1b}`), never dropped.

use std::io::Write;

use junit_report::{Duration, OffsetDateTime, ReportBuilder, TestCase, TestSuiteBuilder};
use time::format_description::well_known::Rfc3339;

use crate::format::{Format, Renderer};
use crate::{CheckResult, Outcome, RenderOptions, ReportView, RunReport};

/// JUnit XML, `junit.xml`.
pub static FORMAT: Format = Format {
    name: "junit",
    file: "junit.xml",
    what: "the JUnit XML report",
    takes_dash: false,
    renderer: &Junit,
};

/// The JUnit renderer.
struct Junit;

impl Renderer for Junit {
    fn render(
        &self,
        view: &ReportView<'_>,
        _options: &RenderOptions,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        write_view(view, out)
    }
}

/// Why JUnit XML could not be written.
#[derive(Debug, thiserror::Error)]
#[error("failed to write JUnit XML: {0}")]
pub struct JunitError(#[source] std::io::Error);

/// Writes `report` as JUnit XML.
pub fn write(report: &RunReport, mut out: impl Write) -> Result<(), JunitError> {
    write_view(&ReportView::of(report), &mut out).map_err(JunitError)
}

/// Renders `report` as a JUnit XML string.
pub fn render(report: &RunReport) -> String {
    FORMAT.render_to_string(&ReportView::of(report), &RenderOptions::default())
}

/// What `junit-report` writes before the first test suite, and after the last.
const HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";
const OPEN: &str = "<testsuites>";
const CLOSE: &str = "</testsuites>";
const FIRST_SUITE: &str = "<testsuite id=\"0\" ";

/// Writes a view as JUnit XML, one test suite at a time: each `<testsuite>` is written by
/// `junit-report` alone and placed in one `<testsuites>` with its position as its `id`, so the
/// bytes are those `junit-report` writes for the whole report at once.
pub fn write_view(view: &ReportView<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let report = view.report();
    let timestamp =
        OffsetDateTime::parse(&report.started_at, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let run_text = run_system_out(report);
    out.write_all(HEAD.as_bytes())?;
    let mut written = 0usize;
    for (index, target) in view.targets().iter().enumerate() {
        let hostname = target
            .hostname
            .clone()
            .unwrap_or_else(|| target.name.clone());
        let results = view.results(index)?;
        let mut suite_names: Vec<&str> = Vec::new();
        for result in results.iter() {
            if !suite_names.contains(&result.suite.as_str()) {
                suite_names.push(&result.suite);
            }
        }
        for suite_name in suite_names {
            let mut suite = TestSuiteBuilder::new(&format!("{}::{}", target.name, suite_name));
            suite.set_timestamp(timestamp);
            let results = results.iter().filter(|r| r.suite == suite_name);
            suite.add_testcases(results.map(testcase));
            if let Some(error) = &target.error {
                suite.set_system_err(&clean(&format!("target could not be read: {error}")));
            } else if let Some(error) = &target.gather_error {
                suite.set_system_err(&clean(&format!(
                    "gathering stopped before every fact was read: {error}"
                )));
            }
            if let Some(run_text) = &run_text {
                suite.set_system_out(&clean(run_text));
            }
            let mut suite = suite.build();
            suite.hostname = clean(&hostname);
            let mut alone = Vec::new();
            ReportBuilder::new()
                .add_testsuite(suite)
                .build()
                .write_xml(&mut alone)
                .map_err(|error| std::io::Error::other(error.to_string()))?;
            let element = std::str::from_utf8(&alone)
                .ok()
                .and_then(|xml| xml.strip_prefix(HEAD)?.strip_prefix(OPEN))
                .and_then(|xml| xml.strip_suffix(CLOSE)?.strip_prefix(FIRST_SUITE))
                .ok_or_else(|| {
                    std::io::Error::other("junit-report wrote an unexpected document")
                })?;
            if written == 0 {
                out.write_all(OPEN.as_bytes())?;
            }
            write!(out, "<testsuite id=\"{written}\" ")?;
            out.write_all(element.as_bytes())?;
            written += 1;
        }
    }
    if written == 0 {
        out.write_all(b"<testsuites/>")
    } else {
        out.write_all(CLOSE.as_bytes())
    }
}

fn testcase(result: &CheckResult) -> TestCase {
    let duration = Duration::seconds_f64(result.duration_secs.max(0.0));
    let name = clean(&result.check);
    let message = clean(&result.message);
    let mut case = match result.outcome {
        Outcome::Pass | Outcome::Waived => TestCase::success(&name, duration),
        Outcome::Fail | Outcome::Error if !result.gating => TestCase::skipped_with_cause(
            &name,
            "advisory",
            &clean(&format!(
                "advisory {} ({}): {}",
                result.outcome.as_str(),
                result.severity.as_str(),
                result.message
            )),
        ),
        Outcome::Fail => TestCase::failure(&name, duration, result.severity.as_str(), &message),
        Outcome::Error => TestCase::error(&name, duration, "error", &message),
        Outcome::Skip => TestCase::skipped_with_cause(&name, "not-applicable", &message),
    };
    case.set_classname(&clean(&format!("{}.{}", result.suite, result.target)));
    case.set_system_out(&clean(&system_out(result)));
    case
}

/// What each testsuite's `system-out` says about the whole run: the baseline's gate and every
/// waiver; `None` when there is neither.
fn run_system_out(report: &RunReport) -> Option<String> {
    let mut text = String::new();
    if let Some(baseline) = &report.baseline {
        text += &format!(
            "baseline: {} ({}); gate: {}; new failures: {} ({} gating); known failures: {}; only failures new against the baseline decide the gate\n",
            baseline.source,
            baseline.digest,
            baseline.verdict.label(),
            baseline.new_failures,
            baseline.new_gating_failures,
            baseline.known_failures
        );
    }
    for waiver in &report.waivers {
        text += &format!(
            "waiver: {} for {} approved by {} until {}{} (from {}): {}\n",
            waiver.check,
            waiver.scope(str::to_owned),
            waiver.approver,
            waiver.expires,
            if waiver.expired { " (EXPIRED)" } else { "" },
            waiver.origin(),
            waiver.reason
        );
    }
    (!text.is_empty()).then_some(text)
}

/// The text JUnit has no field for: outcome, versions, evidence, waiver, remediation.
fn system_out(result: &CheckResult) -> String {
    let mut text = format!(
        "{} {}: {}\noutcome: {} ({}{})\n{}\nexpected: {}\n",
        result.check,
        result.check_version,
        result.title,
        result.outcome.as_str(),
        result.severity.as_str(),
        if result.gating { ", gating" } else { "" },
        result.message,
        result.expected,
    );
    text += &format!(
        "suite: {} {} ({})\n",
        result.suite, result.suite_version, result.suite_digest
    );
    for evidence in &result.evidence {
        text += &format!(
            "evidence: {} = {} (from {})\n",
            evidence.fact, evidence.observed, evidence.source
        );
    }
    if let Some(waiver) = &result.waiver {
        text += &format!(
            "waiver: {} approved by {} until {}{}: {}\n",
            waiver.check,
            waiver.approver,
            waiver.expires,
            if waiver.expired { " (EXPIRED)" } else { "" },
            waiver.reason
        );
    }
    if result.known_failure {
        text += "baseline: known failure, it also failed on this target in the baseline\n";
    }
    if !result.remediation.is_empty() && result.outcome != Outcome::Pass {
        text += &format!("remediation: {}\n", result.remediation.trim());
    }
    text
}

/// Makes text safe for XML 1.0 attributes and CDATA and for the terminal a CI log shows it in:
/// every hidden character (control characters, which XML mostly cannot carry, carriage returns,
/// which XML parsers would turn into line feeds, bidirectional overrides) becomes a visible
/// escape such as `\u{1b}` ([`crate::escape::visible_lines`]), and the CDATA terminator is broken.
fn clean(text: &str) -> String {
    crate::escape::visible_lines(text).replace("]]>", "]] >")
}
