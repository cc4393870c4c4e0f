//! The two matrices of a report.
//!
//! Targets by check groups: what an OS vendor reads to see at a glance which of their builds
//! can host containers. A check's group is the feature area its id names, the id's second
//! segment (`kernel.netfilter.nat` and `host.netfilter.tables` are both in `netfilter`;
//! `kernel.keys` is in `keys`). Each cell counts one target's results in one group.
//!
//! Images by hosts ([`crate::PairMatrix`], `run --image A --image B --target h1 --target h2`):
//! the compatibility matrix, one pair `<image>@<host>` per cell with its verdict and the gating
//! checks that failed on it.

use std::collections::{BTreeMap, BTreeSet};

use crate::{CheckResult, PairMatrix, ReportView, RunReport, Summary, TargetReport};

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
pub fn columns(report: &RunReport) -> Vec<String> {
    columns_of(&ReportView::of(report))
}

/// [`columns`] of a view.
pub fn columns_of(view: &ReportView<'_>) -> Vec<String> {
    (0..view.targets().len())
        .flat_map(|index| {
            view.tally(index)
                .groups
                .iter()
                .filter(|(_, s)| s.total > s.skip)
                .map(|(group, _)| group.clone())
        })
        .collect::<BTreeSet<String>>()
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
    render_view_text(&ReportView::of(report))
}

/// [`render_text`] of a view.
pub fn render_view_text(view: &ReportView<'_>) -> String {
    let group_names = columns_of(view);
    let mut header = vec!["target".to_owned()];
    header.extend(group_names.iter().cloned());
    header.push("verdict".to_owned());
    let mut rows = vec![header];
    for (index, (target, verdict)) in view.targets().iter().zip(view.verdicts()).enumerate() {
        let groups = &view.tally(index).groups;
        let mut row = vec![crate::escape::visible(&target.name).into_owned()];
        for group in &group_names {
            row.push(groups.get(group).map_or_else(|| "-".to_owned(), cell));
        }
        row.push(verdict.verdict.label().to_owned());
        rows.push(row);
    }
    let mut text = aligned(&rows);
    text += "cells: pass/fail/skip (e errors, w waived; ! a gating check failed or could not be evaluated)\n";
    text
}

/// The compatibility matrix as plain text: one row per image, one column per host, each cell
/// the pair's verdict, then one line per pair that is not certified, naming the gating checks
/// that failed on it or could not be evaluated. Names are escaped ([`crate::escape::visible`]).
pub fn render_pairs_text(matrix: &PairMatrix) -> String {
    let visible = |text: &str| crate::escape::visible(text).into_owned();
    let mut header = vec!["image \\ host".to_owned()];
    header.extend(matrix.hosts.iter().map(|h| visible(h)));
    let mut rows = vec![header];
    for image in &matrix.images {
        let mut row = vec![visible(image)];
        for host in &matrix.hosts {
            row.push(
                matrix
                    .cells
                    .iter()
                    .find(|c| c.image == *image && c.host == *host)
                    .map_or_else(|| "-".to_owned(), |c| c.verdict.label().to_owned()),
            );
        }
        rows.push(row);
    }
    let mut text = aligned(&rows);
    for cell in &matrix.cells {
        let mut why = Vec::new();
        if !cell.failing.is_empty() {
            why.push(format!("failing {}", cell.failing.join(", ")));
        }
        if !cell.errors.is_empty() {
            why.push(format!("could not evaluate {}", cell.errors.join(", ")));
        }
        if why.is_empty() && cell.verdict == crate::Verdict::Certified {
            continue;
        }
        if why.is_empty() {
            why.push("no gating check failed; see the pair's results".to_owned());
        }
        text += &format!(
            "  {}: {}: {}\n",
            visible(&cell.target),
            cell.verdict.label(),
            visible(&why.join("; "))
        );
    }
    text
}

/// Rows of cells as left-aligned columns, two spaces apart.
fn aligned(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text += cells.join("  ").trim_end();
        text += "\n";
    }
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
