//! The engine: gather facts once per target, then evaluate every check in memory.
//!
//! [`gather`] reads each image and each host once, for the union of the probes of the targets
//! made of it, units in parallel (rayon), and makes every target's facts from them (a pair's
//! from its image's and its host's). [`evaluate`] is pure: a check and a target's facts in, a
//! [`hostcert_reports::CheckResult`] out. A fact that could not be read makes an `error`
//! outcome, never a pass and never a panic.

mod evaluate;
mod gather;

pub use evaluate::{describe_expectation, evaluate, TargetInfo};
pub use gather::{gather, probes_for, Cell, GatheredTarget, Gathering, UnitRead, Units};
