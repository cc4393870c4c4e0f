//! The hostcert report: a versioned, documented model of what one certification run found,
//! and the renderers that turn it into files for people and dashboards.
//!
//! The main type is [`RunReport`]. It is written as JSON by [`json::write`] and read back by
//! [`json::read`]; [`junit::render`] turns it into JUnit XML, [`html::render`] into one
//! self-contained HTML page, [`markdown::render`] into a summary for a CI job or a merge
//! request, and [`attestation::statement`] into an in-toto Statement. [`format::FORMATS`] lists
//! the file formats, each a [`format::Renderer`] that writes as it reads a [`ReportView`]: a
//! report in memory, or a run's results read back target by target from where it spooled them,
//! so that no renderer holds a whole report. Every renderer is a pure function of the report
//! (and its options), so `hostcert report --from report.json` reproduces what the live run
//! wrote. [`diff`] compares two reports and gates a run against a
//! baseline.
//!
//! A verdict is always derived from the results ([`verdict`] holds the rules), never read from
//! a file: a report that is read back is checked against its results first.
//!
//! This crate knows nothing about targets, probes, suites on disk, YAML or keys: its only input
//! is a `RunReport` value.

#![deny(missing_docs)]

pub mod attestation;
pub mod diff;
pub mod escape;
pub mod format;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod matrix;
pub mod merge;
mod model;
pub mod verdict;
mod view;

pub use model::*;
pub use verdict::{Incomplete, Tally, TargetTally, TargetVerdict, Underived};
pub use view::{ReportView, ResultStore};
