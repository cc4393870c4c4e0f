//! Exit codes, the contract with CI.
//!
//! | code | `run` (and `lint`) | `run --baseline OLD.json` | `diff OLD.json NEW.json` | `verify BUNDLE` |
//! | ---: | --- | --- | --- | --- |
//! | 0 | certified: on every target a gating check was evaluated, and each passed, was waived or did not apply (for `lint`: no problems, warnings allowed) | no gating check fails that did not also fail in the baseline, and nothing gating was left unevaluated | no gating check newly fails | the signature verifies and the report matches its digest (with `--require V`: and attests V) |
//! | 1 | not certified: at least one gating check failed, or a waiver for it expired | a gating check fails that did not fail on the same target in the baseline | a gating check fails in NEW that did not fail in OLD | the signature or a digest does not hold, or (with `--require V`) the genuine bundle attests another verdict |
//! | 2 | could not run or incomplete: bad input (suite, profile, waivers, arguments or options out of range, snapshot, baseline, a report that contradicts its results), a target kind the profile does not certify, a target not read in full, a gating check that could not be evaluated, a target on which no gating check was evaluated, or a report that could not be written | the same | a report cannot be read | a file or the key cannot be read |
//! | 130, 143 | interrupted by SIGINT (130) or SIGTERM (143): the report of what was read is written, targets not read are `error: interrupted` | the same | - | - |
//!
//! The verdict rules themselves are in `hostcert_reports::verdict`.
//!
//! `list`, `explain`, `gather`, `report` and `attest` exit with 0 when they did their job and 2
//! when they could not; `clean` with 0 when nothing killed runs left remains, 2 when something
//! could not be removed. A panic exits with 101, Rust's default; it is always a bug.
//!
//! `run` and `gather` interrupted by a signal exit with 128 + its number, as shells report a
//! process a signal ended: [`INTERRUPTED`] (130) for SIGINT, [`TERMINATED`] (143) for SIGTERM.
//! `run` has then written the report of what was read (targets not read are `error:
//! interrupted`); `gather` has written no snapshot. A second signal exits at once with its code,
//! without reports (see [`crate::interrupt`]).

use hostcert_reports::Verdict;

/// Certified (or, for `lint`, no problems found; for `diff`, no new gating failure; for
/// `verify`, the bundle verifies).
pub const CERTIFIED: u8 = 0;
/// At least one gating check failed (with a baseline or for `diff`: newly failed).
pub const NOT_CERTIFIED: u8 = 1;
/// `verify`: the signature or a digest does not hold, or (`--require`) the bundle attests another
/// verdict.
pub const NOT_VERIFIED: u8 = 1;
/// Bad input, an unreadable target, an unevaluated gating check, or an unwritable report.
pub const COULD_NOT_RUN: u8 = 2;
/// `run` or `gather` stopped by SIGINT (Ctrl-C).
pub const INTERRUPTED: u8 = 130;
/// `run` or `gather` stopped by SIGTERM.
pub const TERMINATED: u8 = 143;

/// The exit code of a verdict: certified 0, not certified 1, incomplete 2.
pub fn of_verdict(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Certified => CERTIFIED,
        Verdict::NotCertified => NOT_CERTIFIED,
        _ => COULD_NOT_RUN,
    }
}
