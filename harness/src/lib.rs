//! hostcert: host-compatibility certification.
//!
//! A run loads suites and a profile (the [`model`], no host I/O), resolves them into a
//! [`catalog::Plan`], asks each target ([`targets`]) once for the union of facts its checks need, and then
//! evaluates every check in memory ([`engine`]). The outcome is a
//! [`hostcert_reports::RunReport`], rendered as JSON and JUnit by the `hostcert-reports` crate.
//! The [`cli`] module is the outside: argument parsing, the libtest-style runner and exit codes.

#![warn(missing_docs)]

pub mod builtin;
pub mod catalog;
pub mod cli;
pub mod dsse;
pub mod engine;
pub mod facts;
pub mod fsio;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod interrupt;
pub mod inventory;
pub mod model;
pub mod targets;
pub mod temp;
pub mod yaml;
