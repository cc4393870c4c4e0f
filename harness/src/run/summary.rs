//! The console summary: one more renderer of the report ([`Renderer`]), written after libtest's
//! lines: the verdict, each target's counts, every gating failure, the matrices, warnings, the
//! baseline's gate and the files written. Text from targets is escaped and folded.

use std::collections::BTreeMap;
use std::io::Write;

use hostcert_reports::escape::{fold, visible};
use hostcert_reports::format::Renderer;
use hostcert_reports::{Outcome, RenderOptions, ReportView};

use super::Baseline;

/// Target text on the console (a failure's message, an observed value) is folded after this many
/// characters, saying how many more the JSON report holds.
pub const CONSOLE_FOLD: usize = 300;

/// The summary of a run, with what the report does not hold.
pub struct Console<'a> {
    /// The files written, as the user reads them.
    pub files: Vec<String>,
    /// The baseline the run was gated against.
    pub baseline: Option<&'a Baseline>,
    /// Why the run was stopped, when a signal stopped it (`interrupted by SIGINT`).
    pub interrupted: Option<String>,
}

impl Console<'_> {
    /// The summary as a string.
    pub fn render_to_string(&self, view: &ReportView<'_>, options: &RenderOptions) -> String {
        let mut bytes = Vec::new();
        // Reading the spool back can fail; what was written before is still shown.
        if let Err(error) = self.render(view, options, &mut bytes) {
            let _ = writeln!(
                bytes,
                "  error: cannot read the run's results back: {error}"
            );
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Renderer for Console<'_> {
    fn render(
        &self,
        view: &ReportView<'_>,
        options: &RenderOptions,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let report = view.report();
        let suites: Vec<String> = report
            .profile
            .suites
            .iter()
            .map(|s| format!("{} {}", s.name, s.version))
            .collect();
        write!(
            out,
            "\nverdict: {} (profile {} {}; {})\n",
            report.verdict.label().to_uppercase(),
            report.profile.name,
            report.profile.version,
            suites.join(", ")
        )?;
        for (index, target) in report.targets.iter().enumerate() {
            let s = view.summary_of(index);
            let judged = view.verdict_of(index);
            write!(
                out,
                "  {}: {} pass, {} fail ({} gating), {} waived, {} skip, {} error",
                visible(&target.name),
                s.pass,
                s.fail,
                s.gating_fail,
                s.waived,
                s.skip,
                s.error
            )?;
            if let Some(reason) = &target.error {
                write!(out, " — could not be read: {}", visible(reason))?;
            } else if let Some(reason) = &target.gather_error {
                write!(
                    out,
                    " — gathering stopped before every fact was read: {}",
                    visible(reason)
                )?;
            } else if judged.incomplete == Some(hostcert_reports::Incomplete::NothingEvaluated) {
                write!(
                    out,
                    " — incomplete: no gating check was evaluated (each one was skipped, or none ran)"
                )?;
            }
            writeln!(out)?;
        }
        view.for_each_result(
            |_, tally| tally.summary.gating_fail > 0,
            |_, result| {
                if result.gating && result.outcome == Outcome::Fail {
                    writeln!(
                        out,
                        "  FAIL {}::{}::{}: {}{}",
                        visible(&result.target),
                        result.suite,
                        result.check,
                        visible(&fold(&result.message, CONSOLE_FOLD)),
                        if result.known_failure {
                            " (known: also failed in the baseline)"
                        } else {
                            ""
                        }
                    )?;
                }
                Ok(())
            },
        )?;
        if report.targets.len() > 1 {
            let mut by_verdict: BTreeMap<&str, usize> = BTreeMap::new();
            for judged in view.verdicts() {
                *by_verdict.entry(judged.verdict.label()).or_default() += 1;
            }
            let counts: Vec<String> = by_verdict.iter().map(|(v, n)| format!("{n} {v}")).collect();
            writeln!(out, "targets by verdict: {}", counts.join(", "))?;
            if let Some(matrix) = &report.matrix {
                writeln!(out, "\nimages by host:")?;
                out.write_all(hostcert_reports::matrix::render_pairs_text(matrix).as_bytes())?;
            }
            writeln!(out)?;
            out.write_all(hostcert_reports::matrix::render_view_text(view).as_bytes())?;
            writeln!(out)?;
        }
        if report.filtered_out > 0 {
            writeln!(
                out,
                "  note: {} of {} trials were filtered out; the verdict covers only the checks that ran",
                report.filtered_out,
                report.filtered_out + view.result_count()
            )?;
        }
        for waiver in report.waivers.iter().filter(|w| w.expired) {
            writeln!(
                out,
                "  warning: the waiver for `{}` approved by {} (from {}) expired on {}; its failures count again",
                visible(&waiver.check),
                visible(&waiver.approver),
                visible(waiver.origin()),
                waiver.expires
            )?;
        }
        for (waiver, left) in view.expiring_waivers(options.waiver_warning_days) {
            writeln!(
                out,
                "  warning: the waiver for `{}` approved by {} (from {}) expires on {} ({})",
                visible(&waiver.check),
                visible(&waiver.approver),
                visible(waiver.origin()),
                waiver.expires,
                match left {
                    0 => "today is its last day".to_owned(),
                    1 => "in 1 day".to_owned(),
                    n => format!("in {n} days"),
                }
            )?;
        }
        if let (Some(gate), Some(baseline)) = (&report.baseline, self.baseline) {
            if !report
                .targets
                .iter()
                .any(|t| baseline.targets.contains(&t.name))
            {
                writeln!(
                    out,
                    "  warning: the baseline has no target of this run; every failure is new"
                )?;
            }
            if baseline.profile != report.profile.name {
                writeln!(
                    out,
                    "  warning: the baseline was certified against profile {}, this run against {}",
                    baseline.profile, report.profile.name
                )?;
            }
            write!(
                out,
                "baseline: {} ({}): {} known failure{}, {} new ({} gating)\ngate: {} against the baseline (only failures new against it count)\n",
                gate.source,
                baseline.verdict.label(),
                gate.known_failures,
                if gate.known_failures == 1 { "" } else { "s" },
                gate.new_failures,
                gate.new_gating_failures,
                gate.verdict.label().to_uppercase()
            )?;
        }
        if let Some(reason) = &self.interrupted {
            let unread = report
                .targets
                .iter()
                .filter(|t| {
                    t.error
                        .as_ref()
                        .is_some_and(|r| r.starts_with(reason.as_str()))
                })
                .count();
            writeln!(
                out,
                "{reason}: {unread} of {} targets were not read (their checks are errors); the report holds what was read",
                report.targets.len()
            )?;
        }
        writeln!(out, "reports: {}", self.files.join(", "))
    }
}
