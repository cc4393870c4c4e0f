//! A Markdown summary for a CI job summary or a merge-request comment.
//!
//! It holds the verdict, the baseline's gate when there was one, a table of targets with their
//! counts, the failing checks with one-line reasons (a check failing on several targets is one
//! line), waivers about to expire as warnings, and every waiver. It renders on GitHub and GitLab
//! (GitHub Flavored Markdown tables) and holds no link: every text that comes from a report is
//! escaped so that it stays text, whatever a target or a suite put in it (`|` and newlines in
//! table cells, emphasis, HTML, autolinks, e-mail addresses, `www.` names, emoji codes, math).

use std::io::Write;

use crate::format::{Format, Renderer};
use crate::{CheckResult, Outcome, PairMatrix, RenderOptions, ReportView, RunReport, Summary};

/// At most this many target names are listed for a check that fails on several targets.
const NAMES_LISTED: usize = 10;

/// A failure's message is shown up to this many characters, then says how many more the JSON
/// report holds.
const MESSAGE_SHOWN: usize = 500;

/// The Markdown summary, `report.md`.
pub static FORMAT: Format = Format {
    name: "markdown",
    file: "report.md",
    what: "the Markdown summary",
    takes_dash: false,
    renderer: &Markdown,
};

/// The Markdown renderer.
struct Markdown;

impl Renderer for Markdown {
    fn render(
        &self,
        view: &ReportView<'_>,
        options: &RenderOptions,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        write_view(view, options, out)
    }
}

/// Renders `report` as Markdown.
pub fn render(report: &RunReport, options: &RenderOptions) -> String {
    FORMAT.render_to_string(&ReportView::of(report), options)
}

/// One line of the failing checks: the first result of a (check, outcome, gating, known) and
/// the targets it happened on (the first [`NAMES_LISTED`] named, the others counted).
struct Line {
    first: CheckResult,
    targets: Vec<String>,
    count: usize,
}

/// Writes a view as Markdown, reading the results target by target.
pub fn write_view(
    view: &ReportView<'_>,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let report = view.report();
    let total = view.result_count();
    let mut text = String::new();
    text += &format!("## hostcert: {}\n\n", report.verdict.label().to_uppercase());
    let suites: Vec<String> = report
        .profile
        .suites
        .iter()
        .map(|s| format!("{} {}", self::text(&s.name), self::text(&s.version)))
        .collect();
    text += &format!(
        "Profile {} {}, suites {}; {} target{}, {} results; run started {}.\n",
        self::text(&report.profile.name),
        self::text(&report.profile.version),
        suites.join(", "),
        report.targets.len(),
        if report.targets.len() == 1 { "" } else { "s" },
        total,
        self::text(&report.started_at),
    );
    if report.filtered_out > 0 {
        text += &format!(
            "\n{} of {} trials were filtered out; the verdict covers only the checks that ran.\n",
            report.filtered_out,
            report.filtered_out + total
        );
    }
    if let Some(baseline) = &report.baseline {
        text += &format!(
            "\nBaseline {} (started {}, {}): the gate is **{}**, with {} new failure{} ({} gating) and {} known. Only failures new against the baseline decide the gate.\n",
            self::text(&baseline.source),
            self::text(&baseline.started_at),
            baseline.baseline_verdict.label(),
            baseline.verdict.label().to_uppercase(),
            baseline.new_failures,
            if baseline.new_failures == 1 { "" } else { "s" },
            baseline.new_gating_failures,
            baseline.known_failures,
        );
    }
    if let Some(matrix) = &report.matrix {
        pair_matrix(&mut text, matrix);
    }

    text += "\n| target | verdict | pass | fail | gating fail | waived | skip | error |\n";
    text += "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    let row = |name: String, verdict: &str, s: &Summary| {
        format!(
            "| {name} | {verdict} | {} | {} | {} | {} | {} | {} |\n",
            s.pass, s.fail, s.gating_fail, s.waived, s.skip, s.error
        )
    };
    for (index, target) in report.targets.iter().enumerate() {
        let summary = view.summary_of(index);
        let judged = view.verdict_of(index);
        let mut verdict = judged.verdict.label().to_owned();
        if let Some(error) = &target.error {
            verdict += &format!(" (could not be read: {})", self::text(error));
        } else if let Some(error) = &target.gather_error {
            verdict += &format!(" (gathering stopped: {})", self::text(error));
        } else if let Some(why) = judged.incomplete {
            verdict += &format!(" ({})", self::text(why.describe()));
        }
        text += &row(self::text(&target.name), &verdict, &summary);
        if text.len() >= 32 << 10 {
            out.write_all(text.as_bytes())?;
            text.clear();
        }
    }
    if report.targets.len() > 1 {
        text += &row(
            "all targets".to_owned(),
            report.verdict.label(),
            &report.summary,
        );
    }

    // One line per (check, outcome, gating, known), with every target it happened on, in the
    // order a stable sort of the failures by rank gives: the outcome and gating of a line fix
    // its rank, so the lines of one rank are gathered in one pass over the results.
    let mut lines: Vec<Line> = Vec::new();
    for rank in 0..4u8 {
        let first_of_rank = lines.len();
        view.for_each_result(
            |_, tally| {
                let s = &tally.summary;
                match rank {
                    0 => s.gating_fail > 0,
                    1 => s.gating_error > 0,
                    2 => s.fail > s.gating_fail,
                    _ => s.error > s.gating_error,
                }
            },
            |_, result| {
                if result.rank() != rank {
                    return Ok(());
                }
                let same = |line: &&mut Line| {
                    line.first.check == result.check
                        && line.first.outcome == result.outcome
                        && line.first.gating == result.gating
                        && line.first.known_failure == result.known_failure
                };
                match lines[first_of_rank..].iter_mut().find(same) {
                    Some(line) => {
                        line.count += 1;
                        if line.targets.len() < NAMES_LISTED {
                            line.targets.push(result.target.clone());
                        }
                    }
                    None => lines.push(Line {
                        first: result.clone(),
                        targets: vec![result.target.clone()],
                        count: 1,
                    }),
                }
                Ok(())
            },
        )?;
    }
    if lines.is_empty() {
        text += "\nNo check failed.\n";
    } else {
        text += "\n### Failing checks\n\n";
        for line in lines {
            let result = &line.first;
            let mut tags = vec![result.severity.as_str()];
            tags.push(if result.gating { "gating" } else { "advisory" });
            if result.outcome == Outcome::Error {
                tags.push("could not be evaluated");
            }
            if report.baseline.is_some() && result.outcome == Outcome::Fail {
                tags.push(if result.known_failure {
                    "known, also in the baseline"
                } else {
                    "new"
                });
            }
            let on = if line.count == 1 {
                code(&line.targets[0])
            } else {
                let mut names: Vec<String> = line.targets.iter().map(|t| code(t)).collect();
                if line.count > NAMES_LISTED {
                    names.push(format!("and {} more", line.count - NAMES_LISTED));
                }
                format!("{} targets ({})", line.count, names.join(", "))
            };
            text += &format!(
                "- {} ({}) on {on}: {}{}\n",
                code(&result.check),
                tags.join(", "),
                self::text(&crate::escape::fold(&result.message, MESSAGE_SHOWN)),
                if line.count > 1 {
                    format!(" (on {})", code(&line.targets[0]))
                } else {
                    String::new()
                }
            );
            if text.len() >= 32 << 10 {
                out.write_all(text.as_bytes())?;
                text.clear();
            }
        }
    }

    let waivers = view.waivers();
    if !waivers.is_empty() {
        text += "\n### Waivers\n\n";
        let expiring = view.expiring_waivers(options.waiver_warning_days);
        let expired: Vec<_> = waivers.iter().filter(|w| w.expired).collect();
        for waiver in &expired {
            text += &format!(
                "- **Expired:** the waiver for {} approved by {} expired on {}; its failures count again.\n",
                code(&waiver.check),
                self::text(&waiver.approver),
                self::text(&waiver.expires)
            );
        }
        for (waiver, left) in &expiring {
            text += &format!(
                "- **Warning:** the waiver for {} approved by {} expires on {} ({}).\n",
                code(&waiver.check),
                self::text(&waiver.approver),
                self::text(&waiver.expires),
                in_days(*left)
            );
        }
        if !expired.is_empty() || !expiring.is_empty() {
            text += "\n";
        }
        text += "| check | targets | expires | approver | reason | from |\n";
        text += "| --- | --- | --- | --- | --- | --- |\n";
        for waiver in waivers {
            let status = if waiver.expired { " (expired)" } else { "" };
            let targets = waiver.scope(self::text);
            text += &format!(
                "| {} | {targets} | {}{status} | {} | {} | {} |\n",
                self::text(&waiver.check),
                self::text(&waiver.expires),
                self::text(&waiver.approver),
                self::text(&waiver.reason),
                self::text(waiver.origin())
            );
        }
    }
    out.write_all(text.as_bytes())
}

/// The compatibility matrix: a table of images by hosts with each pair's verdict, and a line
/// per pair that is not certified naming its failing gating checks.
fn pair_matrix(out: &mut String, matrix: &PairMatrix) {
    *out += "\n### Images by host\n\n| image \\\\ host |";
    for host in &matrix.hosts {
        *out += &format!(" {} |", text(host));
    }
    *out += "\n| --- |";
    for _ in &matrix.hosts {
        *out += " --- |";
    }
    *out += "\n";
    for image in &matrix.images {
        *out += &format!("| {} |", text(image));
        for host in &matrix.hosts {
            let verdict = matrix
                .cells
                .iter()
                .find(|c| c.image == *image && c.host == *host)
                .map_or("-", |c| c.verdict.label());
            *out += &format!(" {verdict} |");
        }
        *out += "\n";
    }
    let mut first = true;
    for cell in matrix
        .cells
        .iter()
        .filter(|c| c.verdict != crate::Verdict::Certified)
    {
        if first {
            *out += "\n";
            first = false;
        }
        let mut why = Vec::new();
        if !cell.failing.is_empty() {
            let checks: Vec<String> = cell.failing.iter().map(|c| code(c)).collect();
            why.push(format!("failing {}", checks.join(", ")));
        }
        if !cell.errors.is_empty() {
            let checks: Vec<String> = cell.errors.iter().map(|c| code(c)).collect();
            why.push(format!("could not evaluate {}", checks.join(", ")));
        }
        if why.is_empty() {
            why.push("no gating check failed; see its results".to_owned());
        }
        *out += &format!(
            "- {} is {}: {}\n",
            code(&cell.target),
            cell.verdict.label(),
            why.join("; ")
        );
    }
}

/// "today", "tomorrow" or "in N days".
pub(crate) fn in_days(left: i64) -> String {
    match left {
        0 => "today is its last day".to_owned(),
        1 => "in 1 day".to_owned(),
        n => format!("in {n} days"),
    }
}

/// Text from a report as Markdown that renders as that text, on one line, in a table cell or a
/// paragraph: control characters, newlines and bidirectional overrides become visible escapes
/// (`\n`, `\u{1b}`, `\u{202e}`; see [`crate::escape::visible`]), and every character that could
/// start Markdown or HTML syntax is escaped with a backslash. `:` is escaped so that GitHub's
/// autolinks (`https://…`) and emoji codes (`:x:`) do not form, and so is the dot after `www`.
/// GitHub's renderer links e-mail addresses whatever is escaped, so an `@` inside an address
/// gets an invisible word joiner (U+2060) in front of it: the one change to the text.
pub fn text(raw: &str) -> String {
    let chars: Vec<char> = crate::escape::visible(raw).chars().collect();
    let mut out = String::with_capacity(raw.len() + raw.len() / 8);
    for (index, &c) in chars.iter().enumerate() {
        let escape = match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '!' | '#' | ':' | '@'
            | '$' | '^' => true,
            // An underscore between two letters or digits can never emphasize.
            '_' => {
                !(index > 0
                    && chars[index - 1].is_alphanumeric()
                    && chars.get(index + 1).is_some_and(|n| n.is_alphanumeric()))
            }
            '.' => {
                index >= 3
                    && chars[index - 3..index]
                        .iter()
                        .collect::<String>()
                        .eq_ignore_ascii_case("www")
            }
            _ => false,
        };
        let in_address = c == '@'
            && index > 0
            && (chars[index - 1].is_alphanumeric() || ".+-_".contains(chars[index - 1]));
        if in_address {
            out.push('\u{2060}');
        }
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text from a report as a code span: nothing inside is Markdown. Not for table cells, where
/// a `|` would still end the cell.
pub fn code(raw: &str) -> String {
    let content = crate::escape::visible(raw).into_owned();
    if content.trim().is_empty() {
        return text(raw);
    }
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // A span's content loses one leading and one trailing space when it has both, so pad when
    // it starts or ends with a backtick or a space.
    let pad = content.starts_with(['`', ' ']) || content.ends_with(['`', ' ']);
    let space = if pad { " " } else { "" };
    format!("{fence}{space}{content}{space}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_syntax_but_keeps_identifiers_readable() {
        assert_eq!(text("CONFIG_NET_NS = y"), "CONFIG_NET_NS = y");
        assert_eq!(text("_x_ *y* a|b"), "\\_x\\_ \\*y\\* a\\|b");
        assert_eq!(
            text("see https://x.io, www.x.io"),
            "see https\\://x.io, www\\.x.io"
        );
        assert_eq!(text("line\nbreak"), "line\\\\nbreak");
        assert_eq!(text("\u{1b}[2J\u{202e}"), "\\\\u{1b}\\[2J\\\\u{202e}");
        assert_eq!(text("qa@example.com"), "qa\u{2060}\\@example.com");
        assert_eq!(text("@here"), "\\@here");
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("kernel.keys"), "`kernel.keys`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
    }
}
