//! The matrix of targets by check groups: what an OS vendor reads to see at a glance which of
//! their builds can host containers.
//!
//! A check's group is the feature area its id names, the id's second segment
//! (`kernel.netfilter.nat` and `host.netfilter.tables` are both in `netfilter`; `kernel.keys` is
//! in `keys`). Each cell counts one target's results in one group.

use std::collections::{BTreeMap, BTreeSet};

use crate::{CheckResult, Outcome, RunReport, Summary, TargetReport};

/// The group of a check id: its second dotted segment (the id itself when it has one segment).
pub fn group_of(check: &str) -> &str {
    check.split('.').nth(1).unwrap_or(check)
}

/// Outcome counts of one target's results, by group.
pub fn groups(results: &[CheckResult], target: &str) -> BTreeMap<String, Summary> {
    let mut by_group: BTreeMap<String, Vec<CheckResult>> = BTreeMap::new();
    for result in results.iter().filter(|r| r.target == target) {
        by_group
            .entry(group_of(&result.check).to_owned())
            .or_default()
            .push(result.clone());
    }
    by_group
        .into_iter()
        .map(|(group, results)| (group, Summary::of(&results)))
        .collect()
}

/// One cell: `pass/fail/skip`, with `e` errors and `w` waived when there are any, and a leading
/// `!` when a gating check failed or could not be evaluated.
fn cell(summary: &Summary) -> String {
    let mut text = format!("{}/{}/{}", summary.pass, summary.fail, summary.skip);
    if summary.error > 0 {
        text += &format!(" e{}", summary.error);
    }
    if summary.waived > 0 {
        text += &format!(" w{}", summary.waived);
    }
    if summary.gating_fail > 0 || summary.gating_error > 0 {
        text.insert(0, '!');
    }
    text
}

/// The matrix's columns: every group in which something applied to some target, sorted.
/// A group in which nothing applied to any target (runtime checks on offline targets) is left
/// out: a column of skips says nothing.
pub fn columns(report: &RunReport) -> Vec<&str> {
    report
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Skip)
        .map(|r| group_of(&r.check))
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .collect()
}

/// One target's own verdict over its results alone (see [`crate::verdict`]).
pub fn target_verdict(report: &RunReport, target: &TargetReport) -> crate::Verdict {
    report.target_verdict(target).verdict
}

/// The matrix as plain text: one row per target, one column per group (groups where nothing
/// applied to any target are left out), and the target's verdict.
pub fn render_text(report: &RunReport) -> String {
    let group_names = columns(report);
    let mut header = vec!["target".to_owned()];
    header.extend(group_names.iter().map(|g| (*g).to_owned()));
    header.push("verdict".to_owned());
    let mut rows = vec![header];
    for (target, verdict) in report.targets.iter().zip(report.target_verdicts()) {
        let groups = groups(&report.results, &target.name);
        let mut row = vec![crate::escape::visible(&target.name).into_owned()];
        for group in &group_names {
            row.push(groups.get(*group).map_or_else(|| "-".to_owned(), cell));
        }
        row.push(verdict.verdict.label().to_owned());
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text += cells.join("  ").trim_end();
        text += "\n";
    }
    text += "cells: pass/fail/skip (e errors, w waived; ! a gating check failed or could not be evaluated)\n";
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_ids_without_their_last_segment() {
        assert_eq!(group_of("kernel.namespaces.net"), "namespaces");
        assert_eq!(group_of("host.cgroups.mounted"), "cgroups");
        assert_eq!(group_of("kernel.keys"), "keys");
        assert_eq!(group_of("single"), "single");
    }
}
