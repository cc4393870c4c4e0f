//! hostcert: host-compatibility certification.
//!
//! A run loads suites and a profile (the [`model`], no host I/O), resolves them into a
//! [`catalog::Plan`], asks each image and each host ([`targets`]) once for the union of facts
//! the checks of the targets made of it need, and evaluates every check in memory ([`engine`]).
//! [`run`] is the pipeline as library calls: results stream to reporters and to a spool on
//! disk, from which the `hostcert-reports` crate renders every format of the
//! [`hostcert_reports::RunReport`] target by target. The [`cli`] module is the outside: argument
//! parsing, the libtest-style front end, the terminal and exit codes.

#![warn(missing_docs)]

pub mod builtin;
pub mod catalog;
pub mod cli;
pub mod dsse;
pub mod engine;
pub mod error;
pub mod facts;
pub mod fsio;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod interrupt;
pub mod inventory;
pub mod lint;
pub mod model;
pub mod run;
pub mod targets;
pub mod temp;
pub mod yaml;

pub use error::Error;
