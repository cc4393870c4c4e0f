//! The renderers against the documented example report: JSON round-trips byte for byte, and
//! JUnit XML, Markdown and HTML are pinned by snapshots (review changes with
//! `cargo insta review`). Markdown goes through two real renderers (pulldown-cmark and GitHub's
//! cmark-gfm), HTML and Markdown through hostile text, and HTML through a fleet of 200 targets.

use hostcert_reports::{
    html, json, junit, markdown, matrix, Outcome, RenderOptions, RunReport, Summary, Verdict,
};

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
    assert_eq!(report.derived_verdict(), report.verdict);
    assert_eq!(report.check_derived(), Ok(()));
}

/// The verdict rules, one row each: what is changed in the example (a not-certified report
/// of a broken and a healthy target), and the verdict that gives.
#[test]
fn verdicts_follow_the_rules_table() {
    type Edit = fn(&mut RunReport);
    fn on(report: &mut RunReport, target: &str, edit: impl Fn(&mut hostcert_reports::CheckResult)) {
        report
            .results
            .iter_mut()
            .filter(|r| r.target == target)
            .for_each(edit);
    }
    fn without_gating_failures(report: &mut RunReport) {
        on(report, "broken-host", |r| {
            if r.gating && r.outcome == Outcome::Fail {
                r.outcome = Outcome::Pass;
            }
        });
    }
    fn without_gating_errors(report: &mut RunReport) {
        without_gating_failures(report);
        on(report, "broken-host", |r| {
            if r.gating && r.outcome == Outcome::Error {
                r.outcome = Outcome::Pass;
            }
        });
    }
    let rows: [(&str, Edit, Verdict); 11] = [
        ("a gating failure", |_| {}, Verdict::NotCertified),
        (
            "a gating failure beside an unreadable target",
            |r| r.targets[1].error = Some("gone".to_owned()),
            Verdict::NotCertified,
        ),
        (
            "a gating failure on a target whose gathering stopped",
            |r| r.targets[0].gather_error = Some("lost".to_owned()),
            Verdict::NotCertified,
        ),
        (
            "a gating error, no failure",
            without_gating_failures,
            Verdict::Incomplete,
        ),
        (
            "every gating check evaluated and held",
            without_gating_errors,
            Verdict::Certified,
        ),
        (
            "a target whose gathering stopped",
            |r| {
                without_gating_errors(r);
                r.targets[1].gather_error = Some("lost".to_owned());
            },
            Verdict::Incomplete,
        ),
        (
            "an unreadable target",
            |r| {
                without_gating_errors(r);
                r.targets[0].error = Some("gone".to_owned());
            },
            Verdict::Incomplete,
        ),
        (
            "a target on which every gating check was skipped",
            |r| {
                without_gating_errors(r);
                on(r, "healthy-host", |c| {
                    if c.gating {
                        c.outcome = Outcome::Skip;
                    }
                });
            },
            Verdict::Incomplete,
        ),
        (
            "a target with no result at all",
            |r| {
                without_gating_errors(r);
                r.results.retain(|c| c.target != "healthy-host");
            },
            Verdict::Incomplete,
        ),
        (
            "a target with only advisory results (gate: [])",
            |r| {
                without_gating_errors(r);
                r.results.iter_mut().for_each(|c| c.gating = false);
            },
            Verdict::Incomplete,
        ),
        (
            "no target",
            |r| {
                r.targets.clear();
                r.results.clear();
            },
            Verdict::Incomplete,
        ),
    ];
    for (what, edit, expected) in rows {
        let mut report = example();
        edit(&mut report);
        assert_eq!(report.derived_verdict(), expected, "{what}");
        report.derive();
        assert_eq!(report.verdict, expected, "{what}");
        // What `derive` writes reads back as it is.
        let reread = json::from_str(&json::to_string(&report)).expect(what);
        assert_eq!(reread.verdict, expected, "{what}");
    }
}

/// A verdict is never read from a file: a report whose verdict, counts or baseline gate were
/// edited is refused with the field named, before any renderer sees it.
#[test]
fn a_report_that_contradicts_its_results_is_refused() {
    let edit = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut value: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        change(&mut value);
        json::from_str(&serde_json::to_string_pretty(&value).unwrap())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let error = edit(&|v| v["verdict"] = "certified".into());
    assert!(
        error.contains("`verdict` is certified, but the results give not certified (a gating check failed on target `broken-host`)"),
        "{error}"
    );
    let error = edit(&|v| v["summary"]["gating-fail"] = 0.into());
    assert!(
        error.contains("`summary.gating-fail` is 0, but the results count 1"),
        "{error}"
    );
    let error = edit(&|v| {
        v["targets"][0]["groups"] = serde_json::json!({"namespaces": {
            "total": 1, "pass": 1, "fail": 0, "skip": 0, "waived": 0, "error": 0,
            "gating-fail": 0, "gating-error": 0}});
    });
    assert!(error.contains("`targets[0].groups`"), "{error}");
    let error = edit(&|v| v["results"][0]["target"] = "elsewhere".into());
    assert!(
        error.contains("`results[0].target` is `elsewhere`")
            || error.contains("`results[0].target` `elsewhere` names no target"),
        "{error}"
    );
    // Every result edited to pass, the verdict left alone: refused too.
    let error = edit(&|v| {
        for result in v["results"].as_array_mut().unwrap() {
            result["outcome"] = "pass".into();
        }
    });
    assert!(error.contains("`summary."), "{error}");
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

/// Guards that text from a target can never break the XML nor reach a CI log's terminal as
/// control codes: control characters become visible escapes and the CDATA terminator is split.
#[test]
fn junit_survives_hostile_text() {
    let mut report = example();
    report.results[0].message = "bell\u{7} and ]]> end <tag> & \"quote\"".to_owned();
    report.results[0].evidence[0].observed = "]]><!--\u{1b}[2J\r\0\u{202e}".to_owned();
    report.results[0].outcome = Outcome::Fail;
    let xml = junit::render(&report);
    for hidden in ['\u{7}', '\u{1b}', '\r', '\0', '\u{202e}'] {
        assert!(!xml.contains(hidden), "{hidden:?} in {xml}");
    }
    assert!(
        xml.contains("message=\"bell\\u{7} and ]] &gt; end &lt;tag&gt; &amp; &quot;quote&quot;\""),
        "{xml}"
    );
    assert!(
        xml.contains("]] ><!--\\u{1b}[2J\\r\\u{0}\\u{202e} (from"),
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

fn options() -> RenderOptions {
    RenderOptions::default()
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(markdown::render(&example(), &options()));
}

#[test]
fn html_snapshot() {
    insta::assert_snapshot!(html::render(&example(), &options()));
}

/// Text a target controls, built to break every renderer: Markdown and HTML syntax, table
/// pipes, newlines, autolinks, e-mail, emoji codes, math, and the CDATA terminator.
const HOSTILE: &str = "a|b\nc <script>alert(1)</script> \"><img src=x onerror=alert(2)> [x](https://evil.example) <https://evil.example> www.evil.example user@evil.example :warning: $x$ **bold** _em_ `code` ]]> & &amp; \\| #";

fn hostile() -> RunReport {
    let mut report = example();
    report.targets[0].name = format!("host{HOSTILE}");
    for result in report.results.iter_mut() {
        if result.target == "broken-host" {
            result.target = report.targets[0].name.clone();
        }
    }
    report.results[0].message = HOSTILE.to_owned();
    report.results[0].title = HOSTILE.to_owned();
    report.results[0].evidence[0].observed = HOSTILE.to_owned();
    report.results[0].evidence[0].source = HOSTILE.to_owned();
    report.results[0].remediation = HOSTILE.to_owned();
    report.waivers[0].reason = HOSTILE.to_owned();
    report.waivers[0].approver = HOSTILE.to_owned();
    report
}

/// The table of a Markdown document as CommonMark with GFM tables parses it: rows of cells of
/// plain text, and whether anything else than text, code and emphasis appeared.
fn parse_tables(markdown: &str) -> (Vec<Vec<Vec<String>>>, Vec<String>) {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut tables = Vec::new();
    let mut unexpected = Vec::new();
    let (mut table, mut row, mut cell): (Vec<Vec<String>>, Vec<String>, Option<String>) =
        (Vec::new(), Vec::new(), None);
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Table(_)) => table = Vec::new(),
            Event::End(TagEnd::Table) => tables.push(std::mem::take(&mut table)),
            Event::Start(Tag::TableHead | Tag::TableRow) => row = Vec::new(),
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                table.push(std::mem::take(&mut row))
            }
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => row.push(cell.take().unwrap_or_default()),
            Event::Text(text) | Event::Code(text) => {
                if let Some(cell) = cell.as_mut() {
                    cell.push_str(&text);
                }
            }
            Event::Html(html) | Event::InlineHtml(html) => unexpected.push(format!("html {html}")),
            Event::Start(Tag::Link { dest_url, .. }) => unexpected.push(format!("link {dest_url}")),
            Event::Start(Tag::Image { dest_url, .. }) => {
                unexpected.push(format!("image {dest_url}"))
            }
            _ => {}
        }
    }
    (tables, unexpected)
}

/// A real CommonMark renderer (pulldown-cmark, GFM tables on) reads the summary's tables with
/// every row and column, hostile cells intact, and no link, image or HTML anywhere.
#[test]
fn markdown_tables_survive_a_commonmark_renderer_with_hostile_text() {
    let report = hostile();
    let markdown = markdown::render(&report, &options());
    let (tables, unexpected) = parse_tables(&markdown);
    assert!(unexpected.is_empty(), "{unexpected:?}\n{markdown}");
    assert_eq!(tables.len(), 2, "{markdown}");
    let targets = &tables[0];
    // A header, one row per target, one for all targets; 8 columns each.
    assert_eq!(targets.len(), 1 + report.targets.len() + 1);
    assert!(targets.iter().all(|row| row.len() == 8), "{targets:?}");
    // Newlines become a visible `\n`, and an e-mail address's `@` gets an invisible word joiner.
    let one_line = HOSTILE
        .replace('\n', "\\n")
        .replace("user@", "user\u{2060}@");
    assert_eq!(targets[1][0], format!("host{one_line}"));
    let waivers = &tables[1];
    assert_eq!(waivers.len(), 1 + report.waivers.len());
    assert!(waivers.iter().all(|row| row.len() == 6), "{waivers:?}");
    assert_eq!(waivers[1][4], one_line);
    assert_eq!(waivers[1][3], one_line);
}

/// GitHub's own renderer, cmark-gfm with its table and autolink extensions (Debian package
/// `cmark-gfm`), turns no hostile text into a link or markup and keeps the table's shape.
#[test]
fn markdown_renders_link_free_on_github_s_cmark_gfm() {
    let markdown = markdown::render(&hostile(), &options());
    let mut child = std::process::Command::new("cmark-gfm")
        .args(["-e", "table", "-e", "autolink", "-e", "strikethrough"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cmark-gfm is needed to render Markdown as GitHub does ({e}); install it: apt-get install cmark-gfm (ci/test does)")
        });
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(markdown.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let html = String::from_utf8(output.stdout).unwrap();
    for forbidden in ["<a ", "<img", "<script", "<strong>bold", "<em>em", "<del>"] {
        assert!(!html.contains(forbidden), "{forbidden} in:\n{html}");
    }
    assert_eq!(html.matches("<table>").count(), 2, "{html}");
    // Header, two targets and the total: 4 rows of 8 cells in the first table.
    let first = &html[..html.find("</table>").unwrap()];
    assert_eq!(first.matches("<tr>").count(), 4, "{first}");
    assert_eq!(
        first.matches("</td>").count() + first.matches("</th>").count(),
        32
    );
}

#[test]
fn markdown_warns_about_waivers_expiring_within_the_given_days() {
    let report = example();
    // The example ran on 2026-11-29; its second waiver expires on 2026-12-15.
    let warned = markdown::render(
        &report,
        &RenderOptions {
            waiver_warning_days: 30,
        },
    );
    assert!(
        warned.contains("- **Warning:** the waiver for `host.sysctl.*` approved by ops\u{2060}\\@example.com expires on 2026-12-15 (in 16 days)."),
        "{warned}"
    );
    let quiet = markdown::render(
        &report,
        &RenderOptions {
            waiver_warning_days: 10,
        },
    );
    assert!(!quiet.contains("**Warning:**"), "{quiet}");
}

/// Nothing from a target reaches the page as markup: every `<` of the hostile text is escaped,
/// and the only script is the page's own.
#[test]
fn html_escapes_hostile_text_everywhere() {
    let page = html::render(&hostile(), &options());
    assert_eq!(page.matches("<script").count(), 1);
    assert!(!page.contains("<img"));
    assert!(!page.contains("onerror=alert(2)>"));
    assert!(page.contains(
        "&lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x onerror=alert(2)&gt;"
    ));
    assert!(!page.contains("href=\"https://evil.example"));
}

/// A fleet of 200 targets: one row per result plus one per failure, collapsed sections, and a
/// page that renders quickly and stays a few megabytes.
#[test]
fn html_for_200_targets_stays_linear() {
    let one = example();
    let mut fleet = one.clone();
    fleet.targets.clear();
    fleet.results.clear();
    for index in 0..200 {
        for target in &one.targets {
            let mut target = target.clone();
            let old = target.name.clone();
            target.name = format!("{old}-{index:03}");
            for result in one.results.iter().filter(|r| r.target == old) {
                let mut result = result.clone();
                result.target = target.name.clone();
                fleet.results.push(result);
            }
            fleet.targets.push(target);
        }
    }
    fleet.derive();
    let started = std::time::Instant::now();
    let page = html::render(&fleet, &options());
    let elapsed = started.elapsed();
    let failing = fleet
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Error))
        .count();
    assert_eq!(
        page.matches("<tr class=\"r ").count(),
        fleet.results.len() + failing
    );
    assert_eq!(page.matches("<details class=\"target\"").count(), 400);
    assert_eq!(
        page.matches("<details class=\"target\" id=\"t0\" data-name=\"broken-host-000\" open")
            .count(),
        0,
        "400 targets start collapsed"
    );
    assert!(page.len() < 4 * 1024 * 1024, "{} bytes", page.len());
    assert!(elapsed.as_secs_f64() < 2.0, "{elapsed:?}");
}
