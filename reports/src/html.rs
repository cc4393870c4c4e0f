//! One self-contained HTML page for people: it opens from a CI artifact or an e-mail, with no
//! network and no file beside it.
//!
//! The page shows the verdict, the profile and its suites (versions and digests), the baseline's
//! gate, warnings (expired waivers, waivers expiring within
//! [`RenderOptions::waiver_warning_days`], targets that could not be read), the matrix of
//! targets by check groups ([`crate::matrix`]) with pass/fail/waived/skip/error counts, every
//! waiver, every failure and error first, and then every result of every target in a
//! collapsible section, failures first: title, severity, outcome, expected versus observed,
//! each fact with where it was read, remediation, waiver, check and suite versions.
//!
//! Filters by outcome, severity, target name and gating run in the page's own script (a link
//! can preset them: `report.html#o=fail,error&s=critical,high&q=db-&g=1`), which
//! only toggles the `hidden` attribute of rows the page already holds: the DOM grows linearly
//! with the results (one row per result, plus one per failure), targets start collapsed when
//! there are more than [`OPEN_TARGETS_UP_TO`], and a filter change is one pass over the rows.
//! Without JavaScript everything is shown.
//!
//! Every text from the report is escaped. A Content-Security-Policy allows only the page's own
//! style and script, by their sha256, and no network at all, so even text that slipped through
//! escaping could neither run script nor load anything.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::format::{Format, Renderer};
use crate::{
    matrix, CheckResult, Outcome, RenderOptions, ReportView, RunReport, Severity, Summary,
};

/// Targets start expanded when a report has at most this many (and then only those that are
/// not certified, or every one when there is a single target).
pub const OPEN_TARGETS_UP_TO: usize = 20;

const STYLE: &str = r##"
:root{--fail:#b3261e;--error:#8a4b00;--waived:#6b4fa0;--skip:#5f6368;--pass:#1e7d32;--line:#d9dce1;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;color:#1f2328;background:#fff}
main{padding:0 20px 40px}
h1{margin:0;font-size:26px;letter-spacing:.02em}
h2{font-size:18px;margin:26px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
header.verdict{padding:18px 20px;color:#fff}
header.v-certified{background:var(--pass)}
header.v-not-certified{background:var(--fail)}
header.v-incomplete{background:var(--error)}
header p{margin:4px 0 0;opacity:.95}
.counts span{display:inline-block;margin:6px 6px 0 0;padding:3px 9px;border-radius:12px;background:var(--bg);border:1px solid var(--line)}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
thead th{background:var(--bg)}
.scroll{overflow:auto;max-height:55vh;border:1px solid var(--line)}
.scroll table{margin:0}
.scroll thead th{position:sticky;top:0;z-index:1}
.matrix th,td.tg{white-space:nowrap}
.matrix tbody th{max-width:28em;overflow:hidden;text-overflow:ellipsis}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono","Liberation Mono",monospace;font-size:12.5px}
.b{display:inline-block;white-space:nowrap;min-width:54px;text-align:center;padding:1px 7px;border-radius:10px;color:#fff;font-weight:600;font-size:12px}
.o-fail{background:var(--fail)}.o-error{background:var(--error)}.o-waived{background:var(--waived)}
.o-skip{background:var(--skip)}.o-pass{background:var(--pass)}
.b.v-certified{background:var(--pass)}.b.v-not-certified{background:var(--fail)}.b.v-incomplete{background:var(--error)}
.k{display:inline-block;margin-top:3px;font-size:11px;color:var(--skip)}
tr.r td{background:#fff}
tr.g1.o-fail td:first-child{box-shadow:inset 4px 0 var(--fail)}
tr.r.o-fail,tr.r.o-error,tr.r.o-waived,tr.r.o-skip,tr.r.o-pass{background:none}
.ck{font-weight:600}.ck small,.meta,.src,.ex{color:#57606a;font-weight:400}
.msg{margin-bottom:2px}
ul.ev{margin:2px 0;padding-left:18px}
.fix{margin-top:3px}.fix summary{cursor:pointer;color:#57606a}
.wv{margin-top:3px;color:var(--waived)}
.warn{border-left:4px solid var(--error);background:#fff8e6;padding:6px 10px;margin:6px 0}
.warn.bad{border-color:var(--fail);background:#fdecea}
form#filters{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:8px 0;margin:16px 0 0;display:flex;flex-wrap:wrap;gap:6px 16px;align-items:center}
form#filters fieldset{border:0;margin:0;padding:0}
form#filters legend{float:left;margin-right:6px;font-weight:600}
form#filters input[type=search]{width:220px}
body.nojs form#filters{display:none}
#shown{color:#57606a}
details.target{border:1px solid var(--line);border-radius:6px;margin:8px 0}
details.target>summary{padding:8px 10px;cursor:pointer;background:var(--bg)}
details.target>summary .tn{font-size:15px}
details.target>.body{padding:0 10px 8px}
.matrix td.c{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px;white-space:nowrap}
.matrix td.bad{background:#fdecea;color:var(--fail);font-weight:600}
.matrix td.warn2{background:#fff8e6}
.matrix td.good{background:#edf7ee}
.matrix td.na{color:#8c959f}
.matrix th a{color:inherit}
.pairs td.c{vertical-align:top}
.pairs details.why{font-size:12px}.pairs details.why summary{cursor:pointer;color:#57606a}
footer{margin-top:30px;color:#57606a;font-size:12px}
"##;

const SCRIPT: &str = r##"
(function () {
  "use strict";
  document.body.classList.remove("nojs");
  var form = document.getElementById("filters");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.r"));
  var sections = Array.prototype.slice.call(document.querySelectorAll("details.target"));
  var matrixRows = Array.prototype.slice.call(document.querySelectorAll("#matrix tbody tr"));
  var names = sections.map(function (s) { return s.getAttribute("data-name").toLowerCase(); });
  var failureCount = document.getElementById("failure-count");
  var total = rows.filter(function (r) { return r.hasAttribute("data-u"); }).length;
  function checked(name) {
    var set = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[name=" + name + "]"), function (i) {
      if (i.checked) { set[i.value] = true; }
    });
    return set;
  }
  function apply() {
    var outcomes = checked("o"), severities = checked("s");
    var query = form.elements.q.value.trim().toLowerCase();
    var gatingOnly = form.elements.g.checked;
    var targetShown = names.map(function (n) { return !query || n.indexOf(query) >= 0; });
    var perTarget = names.map(function () { return 0; });
    var shown = 0, failuresShown = 0;
    rows.forEach(function (row) {
      var t = +row.getAttribute("data-t");
      var visible = outcomes[row.getAttribute("data-o")] && severities[row.getAttribute("data-s")] &&
        targetShown[t] && (!gatingOnly || row.getAttribute("data-g") === "1");
      row.hidden = !visible;
      if (!visible) { return; }
      if (row.hasAttribute("data-u")) { perTarget[t] += 1; shown += 1; } else { failuresShown += 1; }
    });
    sections.forEach(function (section, i) { section.hidden = perTarget[i] === 0; });
    matrixRows.forEach(function (row, i) { row.hidden = !targetShown[i]; });
    document.getElementById("shown").textContent = shown + " of " + total + " results shown";
    if (failureCount) { failureCount.textContent = String(failuresShown); }
  }
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  document.getElementById("expand").addEventListener("click", function () {
    sections.forEach(function (s) { if (!s.hidden) { s.open = true; } });
  });
  document.getElementById("collapse").addEventListener("click", function () {
    sections.forEach(function (s) { s.open = false; });
  });
  // A hash of the form #o=fail,error&s=critical&q=name&g=1 sets the filters (a link to a
  // filtered view); any other hash names a target's section (#t12) and opens it.
  function fromHash() {
    var hash = decodeURIComponent(location.hash.slice(1));
    if (hash.indexOf("=") < 0) {
      var target = hash && document.getElementById(hash);
      if (target && target.tagName === "DETAILS") { target.open = true; }
      return;
    }
    hash.split("&").forEach(function (pair) {
      var key = pair.slice(0, pair.indexOf("=")), value = pair.slice(pair.indexOf("=") + 1);
      if (key === "o" || key === "s") {
        var wanted = value.split(",");
        Array.prototype.forEach.call(form.querySelectorAll("input[name=" + key + "]"), function (i) {
          i.checked = wanted.indexOf(i.value) >= 0;
        });
      } else if (key === "q") {
        form.elements.q.value = value;
      } else if (key === "g") {
        form.elements.g.checked = value === "1";
      }
    });
    apply();
  }
  window.addEventListener("hashchange", fromHash);
  apply();
  fromHash();
})();
"##;

/// The HTML page, `report.html`.
pub static FORMAT: Format = Format {
    name: "html",
    file: "report.html",
    what: "the HTML report",
    takes_dash: false,
    renderer: &Html,
};

/// The HTML renderer.
struct Html;

impl Renderer for Html {
    fn render(
        &self,
        view: &ReportView<'_>,
        options: &RenderOptions,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        write_view(view, options, out)
    }
}

/// Renders `report` as one self-contained HTML page.
pub fn render(report: &RunReport, options: &RenderOptions) -> String {
    FORMAT.render_to_string(&ReportView::of(report), options)
}

/// How many results of each outcome `summary` counts.
fn outcome_count(summary: &Summary, outcome: Outcome) -> usize {
    match outcome {
        Outcome::Pass => summary.pass,
        Outcome::Fail => summary.fail,
        Outcome::Skip => summary.skip,
        Outcome::Waived => summary.waived,
        Outcome::Error => summary.error,
    }
}

/// How many results of a target sort at `rank` ([`CheckResult::rank`], failures and errors
/// only).
fn rank_count(summary: &Summary, rank: u8) -> usize {
    match rank {
        0 => summary.gating_fail,
        1 => summary.gating_error,
        2 => summary.fail - summary.gating_fail,
        _ => summary.error - summary.gating_error,
    }
}

/// Writes a view as one self-contained HTML page, section by section and target by target.
pub fn write_view(
    view: &ReportView<'_>,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let report = view.report();
    let total = view.result_count();
    let mut page = String::with_capacity(64 << 10);
    let verdict = report.verdict.label();
    let verdict_class = verdict.replace(' ', "-");
    let profile = format!("{} {}", report.profile.name, report.profile.version);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src '{}'; script-src '{}'; img-src data:; base-uri 'none'; form-action 'none'\">\n\
         <title>hostcert: {} ({})</title>\n<style>{STYLE}</style>\n</head>\n<body class=\"nojs\">\n",
        csp_hash(STYLE),
        csp_hash(SCRIPT),
        esc(verdict),
        esc(&profile),
    );

    // The verdict and what it was decided against.
    let suites: Vec<String> = report
        .profile
        .suites
        .iter()
        .map(|s| format!("{} {}", esc(&s.name), esc(&s.version)))
        .collect();
    let _ = write!(
        page,
        "<header class=\"verdict v-{verdict_class}\">\n<h1 id=\"verdict\">{}</h1>\n\
         <p>profile <b id=\"profile\">{}</b>; suites {}; {} target{}, {} results</p>\n",
        esc(&verdict.to_uppercase()),
        esc(&profile),
        suites.join(", "),
        report.targets.len(),
        if report.targets.len() == 1 { "" } else { "s" },
        total
    );
    if let Some(baseline) = &report.baseline {
        let _ = writeln!(
            page,
            "<p id=\"baseline\">gate against the baseline {}: <b>{}</b>, {} new failure{} ({} gating), {} known; only failures new against the baseline decide the gate</p>",
            esc(&baseline.source),
            esc(&baseline.verdict.label().to_uppercase()),
            baseline.new_failures,
            if baseline.new_failures == 1 { "" } else { "s" },
            baseline.new_gating_failures,
            baseline.known_failures
        );
    }
    page += "</header>\n<main>\n";

    let s = &report.summary;
    let _ = writeln!(
        page,
        "<div class=\"counts\" id=\"counts\"><span>{} results</span><span data-count=\"pass\">{} pass</span><span data-count=\"fail\">{} fail ({} gating)</span><span data-count=\"waived\">{} waived</span><span data-count=\"skip\">{} skip</span><span data-count=\"error\">{} error ({} gating)</span></div>",
        s.total, s.pass, s.fail, s.gating_fail, s.waived, s.skip, s.error, s.gating_error
    );

    warnings(&mut page, view, options);
    pair_matrix(&mut page, report);
    matrix_table(&mut page, view);
    waivers_table(&mut page, view, options);

    // Filters: every outcome and severity that occurs, a target name, gating only.
    let counted = view_summary(view);
    page += "<form id=\"filters\" autocomplete=\"off\">\n<fieldset><legend>outcome</legend>";
    for outcome in Outcome::ALL {
        let _ = write!(
            page,
            "<label><input type=\"checkbox\" name=\"o\" value=\"{0}\" checked> {0} ({1})</label> ",
            outcome.as_str(),
            outcome_count(&counted, outcome)
        );
    }
    page += "</fieldset>\n<fieldset><legend>severity</legend>";
    for severity in Severity::ALL {
        let _ = write!(
            page,
            "<label><input type=\"checkbox\" name=\"s\" value=\"{0}\" checked> {0}</label> ",
            severity.as_str()
        );
    }
    let _ = write!(
        page,
        "</fieldset>\n<label>target <input type=\"search\" name=\"q\" placeholder=\"name contains…\"></label>\n\
         <label><input type=\"checkbox\" name=\"g\"> gating only</label>\n\
         <button type=\"button\" id=\"expand\">expand all</button> <button type=\"button\" id=\"collapse\">collapse all</button>\n\
         <span id=\"shown\">{0} of {0} results shown</span>\n</form>\n\
         <noscript><p>Filters need JavaScript; every result is shown.</p></noscript>\n",
        total
    );

    // Failures and errors first, over every target: one pass per rank, so that they come in
    // the order a stable sort by rank gives.
    let failing = counted.fail + counted.error;
    let _ = write!(
        page,
        "<section id=\"failures\">\n<h2>Failures and errors (<span id=\"failure-count\">{failing}</span>)</h2>\n"
    );
    if failing == 0 {
        page += "<p>No check failed and none was left unevaluated.</p>\n";
    } else {
        page += "<table class=\"results\"><thead><tr><th>target</th><th>outcome</th><th>severity</th><th>check</th><th>what was found</th></tr></thead><tbody>\n";
        for rank in 0..4u8 {
            view.for_each_result(
                |_, tally| rank_count(&tally.summary, rank) > 0,
                |index, result| {
                    if result.rank() == rank {
                        row(&mut page, result, Some(index), true, false);
                        flush(&mut page, out)?;
                    }
                    Ok(())
                },
            )?;
        }
        page += "</tbody></table>\n";
    }
    page += "</section>\n";
    flush(&mut page, out)?;

    // Every result of every target, failures first.
    page += "<section id=\"targets\">\n<h2>Targets</h2>\n";
    for (index, target) in report.targets.iter().enumerate() {
        let loaded = view.results(index)?;
        let mut results: Vec<&CheckResult> = loaded.iter().collect();
        results.sort_by_key(|r| r.rank());
        let summary = view.summary_of(index);
        let target_verdict = view.verdict_of(index).verdict;
        let open = report.targets.len() == 1
            || (report.targets.len() <= OPEN_TARGETS_UP_TO
                && target_verdict != crate::Verdict::Certified);
        let _ = write!(
            page,
            "<details class=\"target\" id=\"t{index}\" data-name=\"{}\"{}>\n<summary><span class=\"b v-{}\">{}</span> <b class=\"tn\">{}</b> <span class=\"meta\">{} · {}{}</span> — {}</summary>\n<div class=\"body\">\n",
            esc(&target.name),
            if open { " open" } else { "" },
            target_verdict.label().replace(' ', "-"),
            esc(target_verdict.label()),
            esc(&target.name),
            esc(&target.kind),
            esc(&target.address),
            target
                .hostname
                .as_deref()
                .filter(|h| *h != target.name)
                .map(|h| format!(" · host {}", esc(h)))
                .unwrap_or_default(),
            counts_text(&summary),
        );
        let _ = writeln!(
            page,
            "<p class=\"meta\">facts from <span class=\"mono\">{}</span>{}</p>",
            esc(&target.facts_from),
            target
                .facts_digest
                .as_deref()
                .map(|d| format!("; facts digest <span class=\"mono\">{}</span>", esc(d)))
                .unwrap_or_default()
        );
        if let Some(error) = &target.error {
            let _ = writeln!(
                page,
                "<p class=\"warn bad\">could not be read: {}</p>",
                esc(error)
            );
        }
        if let Some(error) = &target.gather_error {
            let _ = writeln!(
                page,
                "<p class=\"warn bad\">gathering stopped before every fact was read: {}</p>",
                esc(error)
            );
        }
        page += "<table class=\"results\"><thead><tr><th>outcome</th><th>severity</th><th>check</th><th>what was found</th></tr></thead><tbody>\n";
        for result in results {
            row(&mut page, result, Some(index), false, true);
        }
        page += "</tbody></table>\n</div>\n</details>\n";
        flush(&mut page, out)?;
    }
    page += "</section>\n";

    // Where everything came from.
    let _ = write!(
        page,
        "<footer id=\"provenance\">\n<p>profile {} from <span class=\"mono\">{}</span> ({})</p>\n",
        esc(&profile),
        esc(&report.profile.source),
        esc(&report.profile.digest)
    );
    for suite in &report.profile.suites {
        let _ = writeln!(
            page,
            "<p>suite {} {} from <span class=\"mono\">{}</span> ({})</p>",
            esc(&suite.name),
            esc(&suite.version),
            esc(&suite.source),
            esc(&suite.digest)
        );
    }
    let gate: Vec<&str> = report
        .gating_severities
        .iter()
        .map(|s| s.as_str())
        .collect();
    let _ = write!(
        page,
        "<p>gating severities: {}; written by {} {}; run from {} to {}</p>\n</footer>\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        gate.join(", "),
        esc(&report.tool.name),
        esc(&report.tool.version),
        esc(&report.started_at),
        esc(&report.finished_at)
    );
    flush(&mut page, out)
}

/// The outcome counts over every result of a view.
fn view_summary(view: &ReportView<'_>) -> Summary {
    let mut total = Summary::default();
    for index in 0..view.targets().len() {
        let s = view.summary_of(index);
        total.total += s.total;
        total.pass += s.pass;
        total.fail += s.fail;
        total.skip += s.skip;
        total.waived += s.waived;
        total.error += s.error;
        total.gating_fail += s.gating_fail;
        total.gating_error += s.gating_error;
    }
    total
}

/// Writes what the page holds so far and empties it, once it is large enough to be worth a
/// write.
fn flush(page: &mut String, out: &mut dyn Write) -> std::io::Result<()> {
    if page.len() >= 32 << 10 || page.ends_with("</html>\n") {
        out.write_all(page.as_bytes())?;
        page.clear();
    }
    Ok(())
}

fn warnings(page: &mut String, view: &ReportView<'_>, options: &RenderOptions) {
    let report = view.report();
    let mut lines: Vec<(bool, String)> = Vec::new();
    for waiver in view.waivers().iter().filter(|w| w.expired) {
        lines.push((
            true,
            format!(
                "the waiver for <code>{}</code> approved by {} expired on {}; its failures count again",
                esc(&waiver.check),
                esc(&waiver.approver),
                esc(&waiver.expires)
            ),
        ));
    }
    for (waiver, left) in view.expiring_waivers(options.waiver_warning_days) {
        lines.push((
            false,
            format!(
                "the waiver for <code>{}</code> approved by {} expires on {} ({})",
                esc(&waiver.check),
                esc(&waiver.approver),
                esc(&waiver.expires),
                esc(&crate::markdown::in_days(left))
            ),
        ));
    }
    for (target, judged) in report.targets.iter().zip(view.verdicts()) {
        let why = match (&target.error, &target.gather_error, judged.incomplete) {
            (Some(error), _, _) => format!("could not be read: {}", esc(error)),
            (None, Some(error), _) => format!(
                "gathering stopped before every fact was read: {}",
                esc(error)
            ),
            (None, None, Some(crate::Incomplete::NothingEvaluated)) => {
                "is incomplete: no gating check was evaluated on it (each one was skipped, or none ran)"
                    .to_owned()
            }
            _ => continue,
        };
        lines.push((true, format!("target <b>{}</b> {why}", esc(&target.name))));
    }
    if report.filtered_out > 0 {
        lines.push((
            false,
            format!(
                "{} of {} trials were filtered out; the verdict covers only the checks that ran",
                report.filtered_out,
                report.filtered_out + view.result_count()
            ),
        ));
    }
    if lines.is_empty() {
        return;
    }
    page.push_str("<section id=\"warnings\">\n");
    for (bad, line) in lines {
        let _ = writeln!(
            page,
            "<p class=\"warn{}\">{line}</p>",
            if bad { " bad" } else { "" }
        );
    }
    page.push_str("</section>\n");
}

/// The compatibility matrix: images as rows, hosts as columns, each cell the pair's verdict,
/// a link to its section, and its failing gating checks one click away.
fn pair_matrix(page: &mut String, report: &RunReport) {
    let Some(matrix) = &report.matrix else {
        return;
    };
    let index: HashMap<&str, usize> = report
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    page.push_str("<section id=\"pairs\">\n<h2>Images by host</h2>\n<div class=\"scroll\"><table class=\"matrix pairs\"><thead><tr><th>image \\ host</th>");
    for host in &matrix.hosts {
        let _ = write!(page, "<th>{}</th>", esc(host));
    }
    page.push_str("</tr></thead><tbody>\n");
    for image in &matrix.images {
        let _ = write!(page, "<tr><th>{}</th>", esc(image));
        for host in &matrix.hosts {
            let Some(cell) = matrix
                .cells
                .iter()
                .find(|c| c.image == *image && c.host == *host)
            else {
                page.push_str("<td class=\"c na\">-</td>");
                continue;
            };
            let label = cell.verdict.label();
            let _ = write!(
                page,
                "<td class=\"c\"><a href=\"#t{}\" title=\"{}\"><span class=\"b v-{}\">{}</span></a>",
                index.get(cell.target.as_str()).copied().unwrap_or(usize::MAX),
                esc(&cell.target),
                label.replace(' ', "-"),
                esc(label)
            );
            for (what, checks) in [("failing", &cell.failing), ("in error", &cell.errors)] {
                if checks.is_empty() {
                    continue;
                }
                let _ = write!(
                    page,
                    "<details class=\"why\"><summary>{} {what}</summary>",
                    checks.len()
                );
                for check in checks {
                    let _ = write!(page, "<code>{}</code><br>", esc(check));
                }
                page.push_str("</details>");
            }
            page.push_str("</td>");
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody></table></div>\n<p class=\"meta\">each cell is the pair &lt;image&gt;@&lt;host&gt;: its verdict links to its results; the gating checks that failed or could not be evaluated are listed under it</p>\n</section>\n");
}

fn matrix_table(page: &mut String, view: &ReportView<'_>) {
    let report = view.report();
    let columns = matrix::columns_of(view);
    page.push_str("<section id=\"matrix\">\n<h2>Targets by check group</h2>\n<div class=\"scroll\"><table class=\"matrix\"><thead><tr><th>target</th>");
    for column in &columns {
        let _ = write!(page, "<th>{}</th>", esc(column));
    }
    page.push_str("<th>verdict</th></tr></thead><tbody>\n");
    for (index, target) in report.targets.iter().enumerate() {
        let groups = &view.tally(index).groups;
        let _ = write!(
            page,
            "<tr data-t=\"{index}\"><th><a href=\"#t{index}\">{}</a></th>",
            esc(&target.name)
        );
        for column in &columns {
            match groups.get(column.as_str()) {
                Some(g) => {
                    let class = if g.gating_fail + g.gating_error > 0 {
                        "bad"
                    } else if g.fail + g.error > 0 {
                        "warn2"
                    } else if g.pass + g.waived > 0 {
                        "good"
                    } else {
                        "na"
                    };
                    let _ = write!(
                        page,
                        "<td class=\"c {class}\" title=\"pass {}, fail {} ({} gating), waived {}, skip {}, error {}\">{}/{}/{}/{}/{}</td>",
                        g.pass, g.fail, g.gating_fail, g.waived, g.skip, g.error,
                        g.pass, g.fail, g.waived, g.skip, g.error
                    );
                }
                None => page.push_str("<td class=\"c na\">-</td>"),
            }
        }
        let verdict = view.verdict_of(index).verdict;
        let _ = writeln!(
            page,
            "<td><span class=\"b v-{}\">{}</span></td></tr>",
            verdict.label().replace(' ', "-"),
            verdict.label()
        );
    }
    page.push_str("</tbody></table></div>\n<p class=\"meta\">cells: pass/fail/waived/skip/error; red: a gating check failed or could not be evaluated</p>\n</section>\n");
}

fn waivers_table(page: &mut String, view: &ReportView<'_>, options: &RenderOptions) {
    let waivers = view.waivers();
    if waivers.is_empty() {
        return;
    }
    let today = view.report().run_date();
    page.push_str("<section id=\"waivers\">\n<h2>Waivers</h2>\n<table><thead><tr><th>check</th><th>targets</th><th>expires</th><th>approver</th><th>reason</th><th>from</th></tr></thead><tbody>\n");
    for waiver in waivers {
        let left = today.and_then(|t| waiver.days_left(t));
        let status = if waiver.expired {
            " <b class=\"b o-fail\">expired</b>".to_owned()
        } else {
            match left {
                Some(left) if left <= i64::from(options.waiver_warning_days) => format!(
                    " <b class=\"b o-error\">{}</b>",
                    esc(&crate::markdown::in_days(left))
                ),
                _ => String::new(),
            }
        };
        let targets = waiver.scope(esc);
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code></td><td>{targets}</td><td>{}{status}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&waiver.check),
            esc(&waiver.expires),
            esc(&waiver.approver),
            esc(&waiver.reason),
            esc(waiver.origin())
        );
    }
    page.push_str("</tbody></table>\n</section>\n");
}

/// One result as a table row. `data-*` attributes carry what the filters read; `data-u` marks
/// the one row per result in the targets' sections (the failures table repeats some).
fn row(
    page: &mut String,
    result: &CheckResult,
    target: Option<usize>,
    with_target: bool,
    unique: bool,
) {
    let outcome = result.outcome.as_str();
    let _ = write!(
        page,
        "<tr class=\"r o-{outcome} g{}\" data-o=\"{outcome}\" data-s=\"{}\" data-t=\"{}\" data-g=\"{}\"{}>",
        u8::from(result.gating),
        result.severity.as_str(),
        target.map_or(usize::MAX, |t| t),
        u8::from(result.gating),
        if unique { " data-u" } else { "" }
    );
    if with_target {
        let _ = write!(page, "<td class=\"tg\">{}</td>", esc(&result.target));
    }
    let _ = write!(
        page,
        "<td><span class=\"b o-{outcome}\">{outcome}</span>{}</td><td>{}<br><span class=\"k\">{}</span></td>",
        if result.known_failure {
            "<br><span class=\"k\">known, also in the baseline</span>"
        } else {
            ""
        },
        result.severity.as_str(),
        if result.gating { "gating" } else { "advisory" }
    );
    let _ = write!(
        page,
        "<td><div class=\"ck\"><code>{}</code> <small>{} · {} {}</small></div><div class=\"ti\">{}</div></td>",
        esc(&result.check),
        esc(&result.check_version),
        esc(&result.suite),
        esc(&result.suite_version),
        esc(&result.title)
    );
    let _ = write!(
        page,
        "<td><div class=\"msg\">{}</div>",
        long_text(&result.message)
    );
    if !result.expected.is_empty() {
        let _ = write!(
            page,
            "<div class=\"ex\">expected: {}</div>",
            esc(&result.expected)
        );
    }
    if !result.evidence.is_empty() {
        page.push_str("<ul class=\"ev\">");
        for evidence in &result.evidence {
            let _ = write!(
                page,
                "<li><code>{}</code> = {} <span class=\"src\">from {}</span></li>",
                esc(&evidence.fact),
                long_text(&evidence.observed),
                if evidence.source.is_empty() {
                    "nowhere".to_owned()
                } else {
                    esc(&evidence.source)
                }
            );
        }
        page.push_str("</ul>");
    }
    if let Some(waiver) = &result.waiver {
        let _ = write!(
            page,
            "<div class=\"wv\">waiver <code>{}</code> approved by {} until {}{} ({}): {}</div>",
            esc(&waiver.check),
            esc(&waiver.approver),
            esc(&waiver.expires),
            if waiver.expired { ", expired" } else { "" },
            esc(waiver.origin()),
            esc(&waiver.reason)
        );
    }
    if !result.remediation.is_empty() {
        if result.outcome == Outcome::Pass {
            let _ = write!(
                page,
                "<details class=\"fix\"><summary>fix</summary>{}</details>",
                esc(&result.remediation)
            );
        } else {
            let _ = write!(
                page,
                "<div class=\"fix\"><b>fix:</b> {}</div>",
                esc(&result.remediation)
            );
        }
    }
    page.push_str("</td></tr>\n");
}

fn counts_text(s: &Summary) -> String {
    format!(
        "{} pass · {} fail ({} gating) · {} waived · {} skip · {} error",
        s.pass, s.fail, s.gating_fail, s.waived, s.skip, s.error
    )
}

/// `'sha256-<base64>'` for a Content-Security-Policy source list.
fn csp_hash(text: &str) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// Messages and observed values longer than this many characters are folded: the start is
/// shown, the whole text is one click away.
const FOLD_AT: usize = 400;

/// Text from a target in an element, whole: folded into a `<details>` whose summary is its start
/// and says how much more there is, when it is longer than [`FOLD_AT`] characters.
fn long_text(text: &str) -> String {
    match text.char_indices().nth(FOLD_AT) {
        None => esc(text),
        Some((cut, _)) => {
            let more = text[cut..].chars().count();
            format!(
                "<details class=\"long\"><summary>{}… ({more} more characters)</summary>{}</details>",
                esc(&text[..cut]),
                esc(text)
            )
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values; hidden characters other
/// than tab and newline (control characters, which HTML cannot carry, and bidirectional
/// overrides) become visible escapes such as `\u{1b}` ([`crate::escape::is_hidden`]).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if crate::escape::is_hidden(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\"\u{0}\u{202e}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\\u{0}\\u{202e}"
        );
    }

    #[test]
    fn long_text_is_folded_never_cut() {
        let long = format!("{}<b>", "x".repeat(FOLD_AT));
        let html = long_text(&long);
        assert!(
            html.starts_with("<details class=\"long\"><summary>"),
            "{html}"
        );
        assert!(html.contains("… (3 more characters)</summary>"), "{html}");
        assert!(html.contains(&format!("{}&lt;b&gt;</details>", "x".repeat(FOLD_AT))));
        assert_eq!(long_text("short"), "short");
    }

    #[test]
    fn the_policy_names_the_page_s_own_style_and_script() {
        let report: RunReport =
            crate::json::from_str(include_str!("../example-report.json")).unwrap();
        let page = render(&report, &RenderOptions::default());
        assert!(page.contains(&format!("script-src '{}'", csp_hash(SCRIPT))));
        assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        assert_eq!(page.matches("<script").count(), 1);
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
