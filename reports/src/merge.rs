//! Joining the reports of shards of one fleet (`hostcert run --shard K/N`) into one report.

use crate::RunReport;

/// Why reports cannot be joined.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MergeError {
    /// Nothing to join.
    #[error("no reports to merge")]
    Empty,
    /// The reports certify against different profiles or suite versions.
    #[error("report {index} certifies against {found}, the first against {expected}: only shards of one run can be merged")]
    DifferentProfile {
        /// The report's position (1-based).
        index: usize,
        /// What the first report says.
        expected: String,
        /// What this report says.
        found: String,
    },
    /// One target appears in two reports.
    #[error("target `{target}` is in more than one report: shards must not overlap")]
    DuplicateTarget {
        /// The target's name.
        target: String,
    },
}

/// Joins reports of the same profile (same name, version, digest and suites) into one: every
/// target and result, the earliest start and the latest end, counts and verdict derived again
/// from the results.
pub fn merge(reports: Vec<RunReport>) -> Result<RunReport, MergeError> {
    let mut reports = reports.into_iter();
    let mut merged = reports.next().ok_or(MergeError::Empty)?;
    let identity = |report: &RunReport| {
        let suites: Vec<String> = report
            .profile
            .suites
            .iter()
            .map(|s| format!("{} {} {}", s.name, s.version, s.digest))
            .collect();
        format!(
            "profile {} {} ({}; {})",
            report.profile.name,
            report.profile.version,
            report.profile.digest,
            suites.join(", ")
        )
    };
    let expected = identity(&merged);
    for (offset, report) in reports.enumerate() {
        let found = identity(&report);
        if found != expected || report.gating_severities != merged.gating_severities {
            return Err(MergeError::DifferentProfile {
                index: offset + 2,
                expected,
                found,
            });
        }
        for target in &report.targets {
            if merged.targets.iter().any(|t| t.name == target.name) {
                return Err(MergeError::DuplicateTarget {
                    target: target.name.clone(),
                });
            }
        }
        merged.targets.extend(report.targets);
        merged.results.extend(report.results);
        merged.filtered_out += report.filtered_out;
        if report.started_at < merged.started_at {
            merged.started_at = report.started_at;
        }
        if report.finished_at > merged.finished_at {
            merged.finished_at = report.finished_at;
        }
    }
    merged.derive();
    Ok(merged)
}
