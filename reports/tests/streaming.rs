//! Renderers read a report target by target from a store: what they write from a store (as a
//! run's spool gives it) is byte for byte what they write from the same report in memory, and
//! the compatibility matrix is derived and checked like every verdict.

use std::borrow::Cow;
use std::collections::BTreeMap;

use hostcert_reports::format::FORMATS;
use hostcert_reports::{
    json, CheckResult, PairInfo, RenderOptions, ReportView, ResultStore, RunReport, Tally,
    TargetReport,
};

fn example() -> RunReport {
    json::from_str(include_str!("../example-report.json")).unwrap()
}

/// The example with its targets made pairs of two images on two hosts (each result copied to
/// every pair), every optional field set, derived again.
fn pairs() -> RunReport {
    let mut report = example();
    let base = report.clone();
    report.targets.clear();
    report.results.clear();
    for image in ["busybox:1.0", "ubi9:9.4"] {
        for (host, template) in ["h1", "h2"].iter().zip(&base.targets) {
            let name = format!("{image}@{host}");
            let mut target = template.clone();
            target.name = name.clone();
            target.pair = Some(PairInfo {
                image: image.to_owned(),
                host: (*host).to_owned(),
            });
            report.targets.push(target);
            for result in base.results.iter().filter(|r| r.target == template.name) {
                let mut result = result.clone();
                result.target = name.clone();
                report.results.push(result);
            }
        }
    }
    report.filtered_out = 3;
    report.derive();
    report
}

/// Each target's results written as JSON lines and read back, one target at a time, as a run's
/// spool holds them; the targets are read back whole, the head keeps them without fact
/// sources.
struct Spooled {
    targets: Vec<String>,
    blocks: Vec<String>,
}

impl Spooled {
    fn of(report: &RunReport) -> (RunReport, Spooled, Tally) {
        let mut head = report.clone();
        head.results.clear();
        let mut tally = Tally::new(report.targets.len());
        let mut blocks = Vec::new();
        for (index, target) in report.targets.iter().enumerate() {
            let mut block = String::new();
            for result in report.results.iter().filter(|r| r.target == target.name) {
                tally.add(index, result);
                block += &serde_json::to_string(result).unwrap();
                block += "\n";
            }
            blocks.push(block);
        }
        // As a run spools them: before anything is derived.
        let targets = report
            .targets
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.groups.clear();
                serde_json::to_string(&t).unwrap()
            })
            .collect();
        for target in &mut head.targets {
            target.fact_sources.clear();
        }
        tally.apply(&mut head);
        (head, Spooled { targets, blocks }, tally)
    }
}

impl ResultStore for Spooled {
    fn fact_sources(&self, index: usize) -> std::io::Result<Cow<'_, BTreeMap<String, String>>> {
        let target: TargetReport = serde_json::from_str(&self.targets[index])?;
        Ok(Cow::Owned(target.fact_sources))
    }

    fn results(&self, index: usize) -> std::io::Result<Cow<'_, [CheckResult]>> {
        let results: Result<Vec<CheckResult>, _> =
            serde_json::Deserializer::from_str(&self.blocks[index])
                .into_iter()
                .collect();
        Ok(Cow::Owned(results?))
    }
}

#[test]
fn every_format_from_a_store_equals_the_report_in_memory() {
    let options = RenderOptions {
        waiver_warning_days: 3650,
    };
    // As a run writes it: everything derived (the example was written before targets had
    // their `groups`).
    let mut derived = example();
    derived.derive();
    for report in [derived, pairs()] {
        let (head, store, tally) = Spooled::of(&report);
        let spooled = ReportView::new(&head, &store, &tally);
        let whole = ReportView::of(&report);
        for format in FORMATS {
            assert_eq!(
                format.render_to_string(&spooled, &options),
                format.render_to_string(&whole, &options),
                "{}",
                format.name
            );
        }
        // And the JSON is what serde writes for the report whole.
        let mut expected = serde_json::to_string_pretty(&report).unwrap();
        expected.push('\n');
        assert_eq!(json::to_string(&report), expected);
        assert_eq!(
            hostcert_reports::attestation::statement_of(&spooled, "report.json", "sha256:00")
                .unwrap(),
            hostcert_reports::attestation::statement(&report, "report.json", "sha256:00")
        );
    }
}

#[test]
fn the_matrix_holds_every_pair_with_its_verdict_and_failing_checks() {
    let report = pairs();
    let matrix = report
        .matrix
        .as_ref()
        .expect("a run with pairs has a matrix");
    assert_eq!(matrix.images, ["busybox:1.0", "ubi9:9.4"]);
    assert_eq!(matrix.hosts, ["h1", "h2"]);
    assert_eq!(matrix.cells.len(), 4);
    for (cell, verdict) in matrix.cells.iter().zip(report.target_verdicts()) {
        assert_eq!(cell.verdict, verdict.verdict, "{}", cell.target);
        let failing: Vec<&str> = report
            .results_of(&cell.target)
            .filter(|r| r.gating && r.outcome == hostcert_reports::Outcome::Fail)
            .map(|r| r.check.as_str())
            .collect();
        assert_eq!(cell.failing, failing);
    }
    assert!(matrix.cells.iter().any(|c| !c.failing.is_empty()));
    // Read back, it is checked against the results: an edited cell is refused.
    let text = json::to_string(&report);
    assert_eq!(json::from_str(&text).unwrap(), report);
    let mut edited: serde_json::Value = serde_json::from_str(&text).unwrap();
    for cell in edited["matrix"]["cells"].as_array_mut().unwrap() {
        cell["verdict"] = "certified".into();
        cell.as_object_mut().unwrap().remove("failing");
    }
    let error = json::from_str(&edited.to_string()).unwrap_err();
    assert!(error.to_string().contains("`matrix`"), "{error}");
    // A report without pairs has none, and one that claims a matrix is refused.
    let mut claimed: serde_json::Value =
        serde_json::from_str(&json::to_string(&example())).unwrap();
    claimed["matrix"] = edited["matrix"].clone();
    assert!(json::from_str(&claimed.to_string()).is_err());
    assert_eq!(example().matrix, None);
}

#[test]
fn the_matrix_shows_in_markdown_html_and_text() {
    let report = pairs();
    let markdown = hostcert_reports::markdown::render(&report, &RenderOptions::default());
    assert!(markdown.contains("### Images by host"), "{markdown}");
    assert!(
        markdown.contains("| busybox\\:1.0 | not certified | certified |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- `busybox:1.0@h1` is not certified: failing `kernel.namespaces.net`; could not evaluate `host.cgroups.memory-enabled`\n"),
        "{markdown}"
    );
    let html = hostcert_reports::html::render(&report, &RenderOptions::default());
    assert!(html.contains("<section id=\"pairs\">"));
    assert!(
        html.contains("<a href=\"#t0\" title=\"busybox:1.0@h1\">"),
        "{html}"
    );
    assert!(html.contains("<summary>1 failing</summary><code>kernel.namespaces.net</code>"));
    let text = hostcert_reports::matrix::render_pairs_text(report.matrix.as_ref().unwrap());
    assert!(
        text.starts_with(
            "image \\ host  h1             h2\nbusybox:1.0   not certified  certified\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  busybox:1.0@h1: not certified: failing kernel.namespaces.net; could not evaluate host.cgroups.memory-enabled\n"),
        "{text}"
    );
}

#[test]
fn junit_of_a_report_without_results_is_one_empty_element() {
    let mut report = example();
    report.targets.clear();
    report.results.clear();
    report.derive();
    assert_eq!(
        hostcert_reports::junit::render(&report),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites/>"
    );
}
