//! Exit codes, the contract with CI.
//!
//! | code | meaning |
//! | ---: | --- |
//! | 0 | certified: every gating check passed, was waived or did not apply (for `lint`: no problems) |
//! | 1 | not certified: at least one gating check failed, or a waiver for it expired |
//! | 2 | could not run: bad input (suite, profile, arguments, snapshot), a target that could not be read, a gating check that could not be evaluated, or a report that could not be written |
//!
//! A panic exits with 101, Rust's default; it is always a bug.

/// Certified (or, for `lint`, no problems found).
pub const CERTIFIED: u8 = 0;
/// At least one gating check failed.
pub const NOT_CERTIFIED: u8 = 1;
/// Bad input, an unreadable target, an unevaluated gating check, or an unwritable report.
pub const COULD_NOT_RUN: u8 = 2;
