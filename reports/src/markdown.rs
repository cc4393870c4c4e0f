//! A Markdown summary for a CI job summary or a merge-request comment.
//!
//! It holds the verdict, the baseline's gate when there was one, a table of targets with their
//! counts, the failing checks with one-line reasons (a check failing on several targets is one
//! line), waivers about to expire as warnings, and every waiver. It renders on GitHub and GitLab
//! (GitHub Flavored Markdown tables) and holds no link: every text that comes from a report is
//! escaped so that it stays text, whatever a target or a suite put in it (`|` and newlines in
//! table cells, emphasis, HTML, autolinks, e-mail addresses, `www.` names, emoji codes, math).

use std::collections::BTreeMap;

use crate::{CheckResult, Outcome, RenderOptions, RunReport, Summary};

/// At most this many target names are listed for a check that fails on several targets.
const NAMES_LISTED: usize = 10;

/// A failure's message is shown up to this many characters, then says how many more the JSON
/// report holds.
const MESSAGE_SHOWN: usize = 500;

/// Renders `report` as Markdown.
pub fn render(report: &RunReport, options: &RenderOptions) -> String {
    let mut out = String::new();
    out += &format!("## hostcert: {}\n\n", report.verdict.label().to_uppercase());
    let suites: Vec<String> = report
        .profile
        .suites
        .iter()
        .map(|s| format!("{} {}", text(&s.name), text(&s.version)))
        .collect();
    out += &format!(
        "Profile {} {}, suites {}; {} target{}, {} results; run started {}.\n",
        text(&report.profile.name),
        text(&report.profile.version),
        suites.join(", "),
        report.targets.len(),
        if report.targets.len() == 1 { "" } else { "s" },
        report.results.len(),
        text(&report.started_at),
    );
    if report.filtered_out > 0 {
        out += &format!(
            "\n{} of {} trials were filtered out; the verdict covers only the checks that ran.\n",
            report.filtered_out,
            report.filtered_out + report.results.len()
        );
    }
    if let Some(baseline) = &report.baseline {
        out += &format!(
            "\nBaseline {} (started {}, {}): the gate is **{}**, with {} new failure{} ({} gating) and {} known. Only failures new against the baseline decide the gate.\n",
            text(&baseline.source),
            text(&baseline.started_at),
            baseline.baseline_verdict.label(),
            baseline.verdict.label().to_uppercase(),
            baseline.new_failures,
            if baseline.new_failures == 1 { "" } else { "s" },
            baseline.new_gating_failures,
            baseline.known_failures,
        );
    }

    out += "\n| target | verdict | pass | fail | gating fail | waived | skip | error |\n";
    out += "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    let mut by_target: BTreeMap<&str, Vec<CheckResult>> = BTreeMap::new();
    for result in &report.results {
        by_target
            .entry(result.target.as_str())
            .or_default()
            .push(result.clone());
    }
    let row = |name: String, verdict: &str, s: &Summary| {
        format!(
            "| {name} | {verdict} | {} | {} | {} | {} | {} | {} |\n",
            s.pass, s.fail, s.gating_fail, s.waived, s.skip, s.error
        )
    };
    for target in &report.targets {
        let results = by_target
            .get(target.name.as_str())
            .map_or(&[][..], Vec::as_slice);
        let summary = Summary::of(results);
        let judged = crate::TargetVerdict::of(target, results);
        let mut verdict = judged.verdict.label().to_owned();
        if let Some(error) = &target.error {
            verdict += &format!(" (could not be read: {})", text(error));
        } else if let Some(error) = &target.gather_error {
            verdict += &format!(" (gathering stopped: {})", text(error));
        } else if let Some(why) = judged.incomplete {
            verdict += &format!(" ({})", text(why.describe()));
        }
        out += &row(text(&target.name), &verdict, &summary);
    }
    if report.targets.len() > 1 {
        out += &row(
            "all targets".to_owned(),
            report.verdict.label(),
            &report.summary,
        );
    }

    let failing: Vec<&CheckResult> = {
        let mut failing: Vec<&CheckResult> = report
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Error))
            .collect();
        failing.sort_by_key(|r| r.rank());
        failing
    };
    if failing.is_empty() {
        out += "\nNo check failed.\n";
    } else {
        out += "\n### Failing checks\n\n";
        // One line per (check, outcome, gating, known), with every target it happened on.
        let mut lines: Vec<(&CheckResult, Vec<&str>)> = Vec::new();
        for result in failing {
            let same = |(first, _): &&mut (&CheckResult, Vec<&str>)| {
                first.check == result.check
                    && first.outcome == result.outcome
                    && first.gating == result.gating
                    && first.known_failure == result.known_failure
            };
            match lines.iter_mut().find(|line| same(line)) {
                Some((_, targets)) => targets.push(&result.target),
                None => lines.push((result, vec![&result.target])),
            }
        }
        for (result, targets) in lines {
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
            let on = if targets.len() == 1 {
                code(targets[0])
            } else {
                let mut names: Vec<String> =
                    targets.iter().take(NAMES_LISTED).map(|t| code(t)).collect();
                if targets.len() > NAMES_LISTED {
                    names.push(format!("and {} more", targets.len() - NAMES_LISTED));
                }
                format!("{} targets ({})", targets.len(), names.join(", "))
            };
            out += &format!(
                "- {} ({}) on {on}: {}{}\n",
                code(&result.check),
                tags.join(", "),
                text(&crate::escape::fold(&result.message, MESSAGE_SHOWN)),
                if targets.len() > 1 {
                    format!(" (on {})", code(targets[0]))
                } else {
                    String::new()
                }
            );
        }
    }

    let waivers = report.all_waivers();
    if !waivers.is_empty() {
        out += "\n### Waivers\n\n";
        let expiring = report.expiring_waivers(options.waiver_warning_days);
        let expired: Vec<_> = waivers.iter().filter(|w| w.expired).collect();
        for waiver in &expired {
            out += &format!(
                "- **Expired:** the waiver for {} approved by {} expired on {}; its failures count again.\n",
                code(&waiver.check),
                text(&waiver.approver),
                text(&waiver.expires)
            );
        }
        for (waiver, left) in &expiring {
            out += &format!(
                "- **Warning:** the waiver for {} approved by {} expires on {} ({}).\n",
                code(&waiver.check),
                text(&waiver.approver),
                text(&waiver.expires),
                in_days(*left)
            );
        }
        if !expired.is_empty() || !expiring.is_empty() {
            out += "\n";
        }
        out += "| check | targets | expires | approver | reason | from |\n";
        out += "| --- | --- | --- | --- | --- | --- |\n";
        for waiver in &waivers {
            let status = if waiver.expired { " (expired)" } else { "" };
            let targets = waiver.scope(text);
            out += &format!(
                "| {} | {targets} | {}{status} | {} | {} | {} |\n",
                text(&waiver.check),
                text(&waiver.expires),
                text(&waiver.approver),
                text(&waiver.reason),
                text(waiver.origin())
            );
        }
    }
    out
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
