//! The hostcert report: a versioned, documented model of what one certification run found,
//! and the renderers that turn it into files for people and dashboards.
//!
//! The main type is [`RunReport`]. It is written as JSON by [`json::write`] and read back by
//! [`json::read`]; [`junit::render`] turns it into JUnit XML. Every renderer is a pure function of
//! a `RunReport`, so `hostcert report --from report.json` reproduces what the live run wrote.
//!
//! This crate knows nothing about targets, probes, suites on disk or YAML: its only input is a
//! `RunReport` value.

#![deny(missing_docs)]

pub mod json;
pub mod junit;
pub mod matrix;
pub mod merge;
mod model;

pub use model::*;
