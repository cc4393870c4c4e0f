//! Evaluating one check against one target's facts. Pure: no I/O.

use std::cmp::Ordering;
use std::time::Instant;

use hostcert_reports::{CheckResult, Evidence, Outcome, WaiverInfo};

use crate::catalog::PlannedCheck;
use crate::facts::{FactSet, FactValue};
use crate::model::{
    compare_dotted, Check, Expectation, FactRef, KernelVersion, Predicate, Probe, Profile,
    TargetKind,
};

/// What evaluation needs to know about a target besides its facts.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    /// The target's name.
    pub name: String,
    /// The target's kind.
    pub kind: TargetKind,
    /// Why the target could not be read at all, when it could not.
    pub unreadable: Option<String>,
}

/// A three-valued judgement with the words to explain it.
struct Judgement {
    holds: Result<bool, String>,
    expected: String,
    observed: String,
}

/// Evaluates one planned check on one target: applicability, the expectation, then waivers.
pub fn evaluate(
    planned: &PlannedCheck,
    target: &TargetInfo,
    facts: &FactSet,
    profile: &Profile,
    today: time::Date,
) -> CheckResult {
    let started = Instant::now();
    let check = &planned.check;
    let mut evidence = Vec::new();
    let (mut outcome, mut message, expected) = if let Some(reason) = &target.unreadable {
        (
            Outcome::Error,
            format!("target could not be read: {reason}"),
            String::new(),
        )
    } else if let Some(reason) = not_applicable(planned, target, facts) {
        (
            Outcome::Skip,
            format!("not applicable: {reason}"),
            String::new(),
        )
    } else {
        for probe in check.probes.values() {
            evidence.push(match facts.get(probe) {
                Some(fact) => Evidence {
                    fact: probe.to_string(),
                    source: fact.source.clone(),
                    observed: match (&fact.value, &fact.error) {
                        (Some(value), _) => value.display(probe.absent_word()),
                        (None, error) => {
                            format!("error: {}", error.as_deref().unwrap_or("not read"))
                        }
                    },
                },
                None => Evidence {
                    fact: probe.to_string(),
                    source: String::new(),
                    observed: "error: not gathered".to_owned(),
                },
            });
        }
        let judgement = judge(&check.expect, check, facts);
        match judgement.holds {
            Ok(true) => (
                Outcome::Pass,
                format!("observed {}", judgement.observed),
                judgement.expected,
            ),
            Ok(false) => (
                Outcome::Fail,
                format!(
                    "expected {}; observed {}",
                    judgement.expected, judgement.observed
                ),
                judgement.expected,
            ),
            Err(reason) => (
                Outcome::Error,
                format!("could not evaluate: {reason}"),
                judgement.expected,
            ),
        }
    };
    let mut waiver_info = None;
    if outcome == Outcome::Fail {
        if let Some(waiver) = profile.waiver_for(check.id.as_str(), &target.name) {
            let expired = waiver.expired_on(today);
            waiver_info = Some(WaiverInfo {
                check: waiver.check.as_str().to_owned(),
                reason: waiver.reason.clone(),
                approver: waiver.approver.clone(),
                expires: waiver.expires_text(),
                expired,
            });
            if expired {
                message = format!(
                    "{message}; the waiver approved by {} expired on {}",
                    waiver.approver,
                    waiver.expires_text()
                );
            } else {
                outcome = Outcome::Waived;
                message = format!(
                    "waived until {} by {}: {} (failure: {message})",
                    waiver.expires_text(),
                    waiver.approver,
                    waiver.reason
                );
            }
        }
    }
    CheckResult {
        target: target.name.clone(),
        suite: planned.suite.suite.name.to_string(),
        suite_version: planned.suite.suite.version.to_string(),
        suite_digest: planned.suite.digest.clone(),
        check: check.id.to_string(),
        check_version: check.version.to_string(),
        title: check.title.clone(),
        severity: check.severity,
        gating: planned.gating,
        outcome,
        message,
        expected,
        evidence,
        waiver: waiver_info,
        remediation: check.remediation.trim().to_owned(),
        duration_secs: started.elapsed().as_secs_f64(),
    }
}

/// Why a check does not apply to a target, or `None` when it does.
fn not_applicable(planned: &PlannedCheck, target: &TargetInfo, facts: &FactSet) -> Option<String> {
    let applies = &planned.check.applies_to;
    if !applies.target_kinds.is_empty() && !applies.target_kinds.contains(&target.kind) {
        let kinds: Vec<&str> = applies.target_kinds.iter().map(|k| k.as_str()).collect();
        return Some(format!(
            "applies to {} targets, this is {}",
            kinds.join(", "),
            target.kind.as_str()
        ));
    }
    if let Some(range) = &applies.kernel {
        let Some(release) = facts.text(&Probe::KernelRelease) else {
            return Some(format!(
                "applies to kernels {range}, and this target's kernel version is unknown"
            ));
        };
        match KernelVersion::parse(release) {
            Some(version) if !range.matches(&version.to_semver()) => {
                return Some(format!(
                    "applies to kernels {range}, this target runs {release}"
                ));
            }
            Some(_) => {}
            None => {
                return Some(format!(
                    "applies to kernels {range}, and `{release}` is not a kernel version"
                ))
            }
        }
    }
    if !applies.architectures.is_empty() {
        let arch = facts.text(&Probe::Architecture).unwrap_or("unknown");
        if !applies.architectures.iter().any(|a| a == arch) {
            return Some(format!(
                "applies to {}, this target is {arch}",
                applies.architectures.join(", ")
            ));
        }
    }
    if !applies.os_ids.is_empty() {
        let os = facts
            .text(&Probe::OsRelease("ID".to_owned()))
            .unwrap_or("unknown");
        if !applies.os_ids.iter().any(|id| id == os) {
            return Some(format!(
                "applies to {}, this target's os-release ID is {os}",
                applies.os_ids.join(", ")
            ));
        }
    }
    None
}

fn judge(expect: &Expectation, check: &Check, facts: &FactSet) -> Judgement {
    match expect {
        Expectation::Fact { fact, predicate } => judge_fact(fact, predicate, check, facts),
        Expectation::AllOf(all) => {
            let parts: Vec<Judgement> = all.iter().map(|e| judge(e, check, facts)).collect();
            combine(parts, " and ", |holds| {
                if holds.contains(&Ok(false)) {
                    Ok(false)
                } else if let Some(Err(e)) = holds.iter().find(|h| h.is_err()) {
                    Err(e.clone())
                } else {
                    Ok(true)
                }
            })
        }
        Expectation::AnyOf(any) => {
            let parts: Vec<Judgement> = any.iter().map(|e| judge(e, check, facts)).collect();
            combine(parts, " or ", |holds| {
                if holds.contains(&Ok(true)) {
                    Ok(true)
                } else if let Some(Err(e)) = holds.iter().find(|h| h.is_err()) {
                    Err(e.clone())
                } else {
                    Ok(false)
                }
            })
        }
        Expectation::Not(inner) => {
            let inner = judge(inner, check, facts);
            Judgement {
                holds: inner.holds.map(|h| !h),
                expected: format!("not ({})", inner.expected),
                observed: inner.observed,
            }
        }
    }
}

fn combine(
    parts: Vec<Judgement>,
    joiner: &str,
    rule: impl Fn(&[Result<bool, String>]) -> Result<bool, String>,
) -> Judgement {
    let holds: Vec<Result<bool, String>> = parts.iter().map(|p| p.holds.clone()).collect();
    let expected = parts
        .iter()
        .map(|p| format!("({})", p.expected))
        .collect::<Vec<_>>()
        .join(joiner);
    let mut observed: Vec<String> = Vec::new();
    for part in &parts {
        if !observed.contains(&part.observed) {
            observed.push(part.observed.clone());
        }
    }
    Judgement {
        holds: rule(&holds),
        expected,
        observed: observed.join("; "),
    }
}

fn judge_fact(fact: &FactRef, predicate: &Predicate, check: &Check, facts: &FactSet) -> Judgement {
    let probe = &check.probes[&fact.probe];
    let name = match &fact.field {
        Some(field) => format!("{probe} {field}"),
        None => probe.to_string(),
    };
    let expected = format!("{name} {}", describe(predicate));
    let error = |reason: String| Judgement {
        holds: Err(reason.clone()),
        expected: expected.clone(),
        observed: format!("{name}: {reason}"),
    };
    let Some(read) = facts.get(probe) else {
        return error("not gathered".to_owned());
    };
    let value = match (&read.value, &read.error) {
        (Some(value), _) => value,
        (None, reason) => {
            return error(format!(
                "could not be read from {}: {}",
                read.source,
                reason.as_deref().unwrap_or("unknown error")
            ))
        }
    };
    let value = match &fact.field {
        None => value,
        Some(_) if *value == FactValue::Absent => value,
        Some(field) => match value.field(field) {
            Some(inner) => inner,
            None => return error(format!("has no field `{field}`")),
        },
    };
    let observed = format!("{name} = {}", value.display(probe.absent_word()));
    let holds = test(predicate, value);
    Judgement {
        holds: holds.map_err(|reason| format!("{name}: {reason}")),
        expected,
        observed,
    }
}

fn describe(predicate: &Predicate) -> String {
    match predicate {
        Predicate::Exists(true) => "exists".to_owned(),
        Predicate::Exists(false) => "is absent".to_owned(),
        Predicate::Equals(v) => format!("= {}", v.literal()),
        Predicate::OneOf(values) => {
            format!(
                "is one of {}",
                values
                    .iter()
                    .map(|v| v.literal())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Predicate::Matches(regex) => format!("matches /{}/", regex.as_str()),
        Predicate::Contains(v) => format!("contains `{}`", v.literal()),
        Predicate::HasWord(v) => format!("has the word `{}`", v.literal()),
        Predicate::AtLeast(v) => format!(">= {}", v.literal()),
        Predicate::AtMost(v) => format!("<= {}", v.literal()),
        Predicate::VersionAtLeast(v) => format!("is version {} or newer", v.literal()),
        Predicate::VersionBelow(v) => format!("is a version below {}", v.literal()),
    }
}

/// Tests a value; `Err` when the value cannot be tested (not a number, not a version).
fn test(predicate: &Predicate, value: &FactValue) -> Result<bool, String> {
    if let Predicate::Exists(wanted) = predicate {
        return Ok((*value != FactValue::Absent) == *wanted);
    }
    let text = match value {
        FactValue::Absent => return Ok(false),
        FactValue::Text(text) => Some(text.as_str()),
        _ => None,
    };
    match predicate {
        Predicate::Exists(_) => unreachable!("handled above"),
        Predicate::Equals(v) => Ok(text == Some(v.literal())),
        Predicate::OneOf(values) => {
            Ok(text.is_some_and(|t| values.iter().any(|v| v.literal() == t)))
        }
        Predicate::Matches(regex) => Ok(text.is_some_and(|t| regex.is_match(t))),
        Predicate::Contains(v) => Ok(match value {
            FactValue::List(items) => items.iter().any(|item| item == v.literal()),
            _ => text.is_some_and(|t| t.contains(v.literal())),
        }),
        Predicate::HasWord(v) => Ok(match value {
            FactValue::List(items) => items.iter().any(|item| item == v.literal()),
            _ => text.is_some_and(|t| t.split_whitespace().any(|w| w == v.literal())),
        }),
        Predicate::AtLeast(v) | Predicate::AtMost(v) => {
            let text = text.ok_or("is not a number")?;
            let number: f64 = text
                .trim()
                .parse()
                .map_err(|_| format!("`{text}` is not a number"))?;
            let bound: f64 = v
                .literal()
                .trim()
                .parse()
                .map_err(|_| format!("bound `{}` is not a number", v.literal()))?;
            Ok(if matches!(predicate, Predicate::AtLeast(_)) {
                number >= bound
            } else {
                number <= bound
            })
        }
        Predicate::VersionAtLeast(v) | Predicate::VersionBelow(v) => {
            let text = text.ok_or("is not a version")?;
            let ordering = compare_dotted(text, v.literal())
                .ok_or_else(|| format!("`{text}` is not a version"))?;
            Ok(if matches!(predicate, Predicate::VersionAtLeast(_)) {
                ordering != Ordering::Less
            } else {
                ordering == Ordering::Less
            })
        }
    }
}

/// What a check expects, in words (`CONFIG_NET_NS is one of y, m`), as `explain` shows it.
pub fn describe_expectation(check: &Check) -> String {
    judge(&check.expect, check, &FactSet::default()).expected
}
