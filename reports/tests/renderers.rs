//! The renderers against the documented example report: JSON round-trips byte for byte, and the
//! JUnit XML is pinned by a snapshot (review changes with `cargo insta review`).

use hostcert_reports::{json, junit, matrix, Outcome, RunReport, Summary, Verdict};

const EXAMPLE: &str = include_str!("../example-report.json");

fn example() -> RunReport {
    json::from_str(EXAMPLE).expect("the documented example is a valid report")
}

#[test]
fn the_documented_example_round_trips_byte_for_byte() {
    assert_eq!(json::to_string(&example()), EXAMPLE);
}

#[test]
fn the_example_summary_and_verdict_agree_with_its_results() {
    let report = example();
    assert_eq!(Summary::of(&report.results), report.summary);
    assert_eq!(report.summary.verdict(true), report.verdict);
}

#[test]
fn verdicts_follow_gating_failures_then_errors() {
    let report = example();
    let mut summary = Summary::of(&report.results);
    assert_eq!(summary.verdict(true), Verdict::NotCertified);
    summary.gating_fail = 0;
    assert_eq!(
        summary.verdict(true),
        Verdict::Incomplete,
        "a gating error leaves it incomplete"
    );
    summary.gating_error = 0;
    assert_eq!(summary.verdict(true), Verdict::Certified);
    assert_eq!(
        summary.verdict(false),
        Verdict::Incomplete,
        "an unreadable target leaves it incomplete"
    );
    assert_eq!(
        Summary::default().verdict(true),
        Verdict::Incomplete,
        "no check ran"
    );
}

#[test]
fn unknown_format_versions_and_unknown_keys_are_refused() {
    let future = EXAMPLE.replacen("\"format-version\": 1", "\"format-version\": 2", 1);
    assert_eq!(
        json::from_str(&future).unwrap_err().to_string(),
        "report format version 2 is not supported (this build reads version 1)"
    );
    let extra = EXAMPLE.replacen("\"verdict\":", "\"colour\": \"red\",\n  \"verdict\":", 1);
    let error = json::from_str(&extra).unwrap_err().to_string();
    assert!(
        error.starts_with("not a hostcert report: unknown field `colour`"),
        "{error}"
    );
}

#[test]
fn junit_snapshot() {
    insta::assert_snapshot!(junit::render(&example()));
}

/// Guards that text from a target can never break the XML: control characters are dropped and
/// the CDATA terminator is split.
#[test]
fn junit_survives_hostile_text() {
    let mut report = example();
    report.results[0].message = "bell\u{7} and ]]> end <tag> & \"quote\"".to_owned();
    report.results[0].evidence[0].observed = "]]><!--".to_owned();
    report.results[0].outcome = Outcome::Fail;
    let xml = junit::render(&report);
    assert!(!xml.contains('\u{7}'));
    assert!(
        xml.contains("message=\"bell and ]] &gt; end &lt;tag&gt; &amp; &quot;quote&quot;\""),
        "{xml}"
    );
    assert_eq!(xml.matches("]]>").count(), xml.matches("<![CDATA[").count());
}

#[test]
fn matrix_snapshot() {
    let report = example();
    for target in &report.targets {
        let groups = matrix::groups(&report.results, &target.name);
        let counted: usize = groups.values().map(|g| g.total).sum();
        assert_eq!(
            counted,
            report
                .results
                .iter()
                .filter(|r| r.target == target.name)
                .count()
        );
    }
    insta::assert_snapshot!(matrix::render_text(&report));
}
