//! The engine: gather facts once per target, then evaluate every check in memory.
//!
//! [`gather`] asks each target for the union of probes its checks need, targets in parallel
//! (rayon). [`evaluate`] is pure: a check and a target's facts in, a
//! [`hostcert_reports::CheckResult`] out. A fact that could not be read makes an `error`
//! outcome, never a pass and never a panic.

mod evaluate;
mod gather;

pub use evaluate::{describe_expectation, evaluate, TargetInfo};
pub use gather::{gather, probes_for, GatheredTarget};
