//! Evaluating one check against one target's facts. Pure: no I/O.

use std::cmp::Ordering;
use std::time::Instant;

use hostcert_reports::{CheckResult, Evidence, Outcome};

use crate::catalog::PlannedCheck;
use crate::facts::{FactSet, FactValue};
use crate::model::{
    compare_dotted, Check, Expectation, FactRef, KernelVersion, Operand, Predicate, Probe, Profile,
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
    /// The kind of the image a pair certifies on the target (`--image`), if it is a pair.
    pub image_kind: Option<TargetKind>,
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
            waiver_info = Some(waiver.info(today));
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
        known_failure: false,
        remediation: check.remediation.trim().to_owned(),
        duration_secs: started.elapsed().as_secs_f64(),
    }
}

/// Why a check does not apply to a target, or `None` when it does.
fn not_applicable(planned: &PlannedCheck, target: &TargetInfo, facts: &FactSet) -> Option<String> {
    let applies = &planned.check.applies_to;
    if let Some(reason) = &planned.not_applicable {
        return Some(reason.clone());
    }
    if !applies.covers_kind(target.kind, target.image_kind) {
        if !target.kind.is_live() && applies.target_kinds.iter().all(|k| k.is_live()) {
            return Some(format!(
                "needs a live host, this is {} target",
                match target.kind {
                    TargetKind::OsTree => "an os-tree",
                    TargetKind::Image => "an image",
                    _ => "a kernel-config",
                }
            ));
        }
        let kinds: Vec<&str> = applies.target_kinds.iter().map(|k| k.as_str()).collect();
        return Some(format!(
            "applies to {} targets, this is {}",
            kinds.join(", "),
            target.kind.as_str()
        ));
    }
    // A fact the run had no input for (`--image`, a seccomp profile) makes the check not apply.
    for probe in planned.check.probes.values() {
        if let Some(fact) = facts.get(probe).filter(|f| f.is_not_given()) {
            let reason = fact.error.as_deref().unwrap_or_default();
            return Some(format!(
                "{probe}: {}",
                reason
                    .strip_prefix(crate::facts::NOT_GIVEN)
                    .unwrap_or(reason)
            ));
        }
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

/// The value of one fact (or a field of it), with the name it is shown by.
fn lookup<'a>(
    fact: &FactRef,
    check: &'a Check,
    facts: &'a FactSet,
) -> (String, Result<&'a FactValue, String>) {
    let probe = &check.probes[&fact.probe];
    let name = match &fact.field {
        Some(field) => format!("{probe} {field}"),
        None => probe.to_string(),
    };
    let Some(read) = facts.get(probe) else {
        return (name, Err("not gathered".to_owned()));
    };
    let value = match (&read.value, &read.error) {
        (Some(value), _) => value,
        (None, reason) => {
            return (
                name,
                Err(format!(
                    "could not be read from {}: {}",
                    read.source,
                    reason.as_deref().unwrap_or("unknown error")
                )),
            )
        }
    };
    let value = match &fact.field {
        None => Ok(value),
        Some(_) if *value == FactValue::Absent => Ok(value),
        Some(field) => value
            .field(field)
            .ok_or_else(|| format!("has no field `{field}`")),
    };
    (name, value)
}

fn judge_fact(fact: &FactRef, predicate: &Predicate, check: &Check, facts: &FactSet) -> Judgement {
    let probe = &check.probes[&fact.probe];
    let (name, value) = lookup(fact, check, facts);
    // Operands naming other facts (`@name`) become the text of those facts.
    let mut resolved = predicate.clone();
    let mut operand_facts: Vec<String> = Vec::new();
    let mut operand_error = None;
    for operand in resolved.operands_mut() {
        if let Operand::Fact(other) = operand {
            let other_probe = &check.probes[&other.probe];
            let (other_name, other_value) = lookup(other, check, facts);
            match other_value {
                Ok(FactValue::Text(text)) => {
                    operand_facts.push(format!("{other_name} = {text}"));
                    *operand = Operand::Literal(text.clone());
                }
                Ok(other_value) => {
                    operand_error.get_or_insert(format!(
                        "{other_name} is {}, not a value to compare with",
                        other_value.display(other_probe.absent_word())
                    ));
                }
                Err(reason) => {
                    operand_error.get_or_insert(format!("{other_name}: {reason}"));
                }
            }
        }
    }
    let expected = format!("{name} {}", describe(predicate));
    let error = |reason: String| Judgement {
        holds: Err(reason.clone()),
        expected: expected.clone(),
        observed: format!("{name}: {reason}"),
    };
    let value = match value {
        Ok(value) => value,
        Err(reason) => return error(reason),
    };
    if let Some(reason) = operand_error {
        return Judgement {
            holds: Err(reason.clone()),
            expected: expected.clone(),
            observed: reason,
        };
    }
    let mut observed = match (&resolved, value) {
        (Predicate::HasNoneOf(v), FactValue::Text(_) | FactValue::List(_)) => {
            let found = words_found(v.literal(), value);
            if found.is_empty() {
                format!("{name} has none of them")
            } else {
                format!("{name} has {}", found.join(", "))
            }
        }
        _ => format!("{name} = {}", value.display(probe.absent_word())),
    };
    for other in operand_facts {
        observed = format!("{observed}, {other}");
    }
    let holds = test(&resolved, value);
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
        Predicate::Equals(v) => format!("= {}", v),
        Predicate::OneOf(values) if values.len() == 1 => format!("= {}", values[0]),
        Predicate::OneOf(values) => {
            format!(
                "is one of {}",
                values
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Predicate::Matches(regex) => format!("matches /{}/", regex.as_str()),
        Predicate::Contains(v) => format!("contains `{}`", v),
        Predicate::HasWord(v) => format!("has the word `{}`", v),
        Predicate::HasNoneOf(v) => format!("has none of {}", words(&v.to_string()).join(", ")),
        Predicate::AtLeast(v) => format!(">= {}", v),
        Predicate::AtMost(v) => format!("<= {}", v),
        Predicate::VersionAtLeast(v) => format!("is version {} or newer", v),
        Predicate::VersionBelow(v) => format!("is a version below {}", v),
        Predicate::FixedIn(v) => format!(
            "is a release with the fix (fixed in {})",
            words(&v.to_string()).join(", ")
        ),
        Predicate::PackageAtLeast(v) => format!("is installed at version {v} or newer"),
        Predicate::PackageBelow(v) => format!("is installed at a version below {v}"),
    }
}

/// How an installed package (a `package` record) compares with a version, as its package
/// manager compares versions.
fn compare_package(value: &FactValue, other: &str) -> Result<Ordering, String> {
    let field = |name: &str| match value.field(name) {
        Some(FactValue::Text(text)) => Ok(text.as_str()),
        _ => Err(format!(
            "is not an installed package's record (a `package` probe) with a `{name}`"
        )),
    };
    let version = field("version")?;
    crate::targets::packages::version::compare_package_version(field("manager")?, version, other)
        .map_err(|reason| format!("{version}: {reason}"))
}

/// Whether a word of a `has-none-of` list matches a name: equal, or for a word ending in `*`,
/// the name starts with what comes before it (`kpatch*` matches `kpatch-dnf`).
fn word_matches(word: &str, name: &str) -> bool {
    match word.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => word == name,
    }
}

/// The words of a `has-none-of` operand: separated by commas or whitespace.
fn words(list: &str) -> Vec<&str> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The items of a text (its whitespace-separated words) or a list value that a word of `list`
/// matches ([`word_matches`]: a word ending in `*` is a prefix), in the value's order.
fn words_found(list: &str, value: &FactValue) -> Vec<String> {
    let wanted = words(list);
    let have: Vec<&str> = match value {
        FactValue::Text(text) => text.split_whitespace().collect(),
        FactValue::List(items) => items.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let mut found: Vec<String> = Vec::new();
    for name in have {
        if wanted.iter().any(|w| word_matches(w, name)) && !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
    }
    found
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
        Predicate::HasNoneOf(v) => Ok(words_found(v.literal(), value).is_empty()),
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
        Predicate::FixedIn(v) => {
            let text = text.ok_or("is not a version")?;
            let fixed = crate::model::fixed_versions(v.literal())?;
            crate::model::fixed_in(text, &fixed)
        }
        Predicate::PackageAtLeast(v) => Ok(compare_package(value, v.literal())? != Ordering::Less),
        Predicate::PackageBelow(v) => Ok(compare_package(value, v.literal())? == Ordering::Less),
    }
}

/// What a check expects, in words (`CONFIG_NET_NS is one of y, m`), as `explain` shows it.
pub fn describe_expectation(check: &Check) -> String {
    judge(&check.expect, check, &FactSet::default()).expected
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::LoadedSuite;
    use crate::facts::Fact;
    use crate::model::Suite;

    const PROFILE: &str = "name: p\nversion: 1.0.0\nsuites: {s: ^1}\nwaivers:\n  - check: waived.*\n    reason: vendor kernel\n    approver: qa@example.com\n    expires: 2099-12-31\n  - check: expired.*\n    reason: old\n    approver: qa@example.com\n    expires: 2020-01-31\n";

    /// Evaluates one check (YAML of a single list item) on a target with these facts and
    /// returns (outcome, message).
    fn check(check_yaml: &str, kind: TargetKind, facts: Vec<Fact>) -> (Outcome, String) {
        let indented: String = check_yaml
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("  - {l}\n")
                } else {
                    format!("    {l}\n")
                }
            })
            .collect();
        let text =
            format!("name: s\nversion: 1.0.0\nparameters: {{min: \"4.18\"}}\nchecks:\n{indented}");
        let suite = Suite::parse("t.yaml", &text).unwrap_or_else(|e| panic!("{e:?}"));
        let loaded = Arc::new(LoadedSuite {
            suite,
            source: "t.yaml".to_owned(),
            digest: "sha256:0".to_owned(),
        });
        let mut check = loaded.suite.checks[0].clone();
        for operand in check.expect.operands_mut() {
            if let crate::model::Operand::Param(_) = operand {
                *operand = crate::model::Operand::Literal("4.18".to_owned());
            }
        }
        let planned = PlannedCheck {
            suite: loaded,
            check,
            gating: true,
            not_applicable: None,
        };
        let profile = Profile::parse("p.yaml", PROFILE).unwrap();
        let target = TargetInfo {
            name: "t".to_owned(),
            kind,
            unreadable: None,
            image_kind: None,
        };
        let today = time::macros::date!(2026 - 11 - 29);
        let result = evaluate(
            &planned,
            &target,
            &facts.into_iter().collect(),
            &profile,
            today,
        );
        (result.outcome, result.message)
    }

    fn config(symbol: &str, value: Option<&str>) -> Fact {
        let value = value.map_or(FactValue::Absent, |v| FactValue::Text(v.to_owned()));
        Fact::read(
            Probe::KernelConfig(symbol.to_owned()),
            "/proc/config.gz",
            value,
        )
    }

    fn text(probe: Probe, value: &str) -> Fact {
        Fact::read(probe, "src", FactValue::Text(value.to_owned()))
    }

    #[test]
    fn package_versions_compare_as_their_package_managers_do() {
        let package = |manager: &str, version: &str| {
            let fields = [("manager", manager), ("version", version)]
                .map(|(k, v)| (k.to_owned(), FactValue::Text(v.to_owned())));
            Fact::read(
                Probe::Package("p".to_owned()),
                "db",
                FactValue::Record(fields.into_iter().collect()),
            )
        };
        let yaml = |operator: &str, version: &str| {
            format!("id: a.p\nversion: 1.0.0\ntitle: t\nseverity: high\nprobes: {{p: {{package: p}}}}\nexpect: {{{operator}: '{version}'}}")
        };
        let absent = Fact::read(Probe::Package("p".to_owned()), "db", FactValue::Absent);
        let text = Fact::read(
            Probe::Package("p".to_owned()),
            "db",
            FactValue::Text("1.0".to_owned()),
        );
        for (fact, operator, version, wanted) in [
            (
                package("rpm", "1.1.12-1.el9"),
                "package-at-least",
                "1.1.12",
                Outcome::Pass,
            ),
            (
                package("rpm", "1.1.12-1.el9"),
                "package-below",
                "1.1.12",
                Outcome::Fail,
            ),
            (
                package("rpm", "1.1.11-9.el9"),
                "package-at-least",
                "1.1.12",
                Outcome::Fail,
            ),
            (
                package("rpm", "1.0~rc1-1"),
                "package-below",
                "1.0",
                Outcome::Pass,
            ),
            (
                package("rpm", "1:0.1-1"),
                "package-at-least",
                "9.0",
                Outcome::Pass,
            ),
            (
                package("dpkg", "1.1.12~rc1-1"),
                "package-at-least",
                "1.1.12",
                Outcome::Fail,
            ),
            (
                package("dpkg", "1:1.0-1"),
                "package-at-least",
                "2.0",
                Outcome::Pass,
            ),
            (
                package("dpkg", "1.1.12+ds1-1"),
                "package-below",
                "1.1.12",
                Outcome::Fail,
            ),
            (absent.clone(), "package-at-least", "1.0", Outcome::Fail),
            (absent, "package-below", "1.0", Outcome::Fail),
            (
                package("apk", "1.0-r0"),
                "package-at-least",
                "1.0",
                Outcome::Pass,
            ),
            (
                package("apk", "1.36.1-r29"),
                "package-below",
                "1.36.1-r3",
                Outcome::Fail,
            ),
            (
                package("apk", "1.0bc-r0"),
                "package-at-least",
                "1.0",
                Outcome::Error,
            ),
            (text, "package-at-least", "1.0", Outcome::Error),
        ] {
            let shown = format!("{fact:?} {operator} {version}");
            let (outcome, message) = check(&yaml(operator, version), TargetKind::Image, vec![fact]);
            assert_eq!(outcome, wanted, "{shown}: {message}");
        }
        let names = |names: &[&str]| {
            Fact::read(
                Probe::Packages,
                "db",
                FactValue::List(names.iter().map(|n| (*n).to_owned()).collect()),
            )
        };
        let list = "id: a.l\nversion: 1.0.0\ntitle: t\nseverity: high\nprobes: {l: packages}\nexpect: {has-none-of: 'kernel kpatch*'}";
        let (outcome, message) = check(
            list,
            TargetKind::Image,
            vec![names(&["bash", "kpatch-dnf"])],
        );
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("packages has kpatch-dnf"), "{message}");
        let (outcome, _) = check(
            list,
            TargetKind::Image,
            vec![names(&["bash", "kernelshark"])],
        );
        assert_eq!(outcome, Outcome::Pass);
    }

    #[test]
    fn operands_naming_facts_compare_two_facts() {
        let yaml = "id: a.abi\nversion: 1.0.0\ntitle: t\nseverity: critical\nprobes:\n  bin: {image: {elf: /bin/x}}\n  release: kernel-release\nexpect: {fact: release, version-at-least: '@bin.abi-min-kernel'}";
        let elf = |min: &str| {
            Fact::read(
                Probe::Image(Box::new(Probe::Elf("/bin/x".to_owned()))),
                "rootfs:t:/bin/x",
                FactValue::Record(
                    [("abi-min-kernel".to_owned(), FactValue::Text(min.to_owned()))]
                        .into_iter()
                        .collect(),
                ),
            )
        };
        let release = text(Probe::KernelRelease, "6.1.0-27-amd64");
        let (outcome, message) =
            check(yaml, TargetKind::Local, vec![elf("3.2.0"), release.clone()]);
        assert_eq!(outcome, Outcome::Pass, "{message}");
        assert!(
            message.contains("image elf /bin/x abi-min-kernel = 3.2.0"),
            "{message}"
        );
        let (outcome, message) = check(
            yaml,
            TargetKind::Local,
            vec![elf("99.0.0"), release.clone()],
        );
        assert_eq!(outcome, Outcome::Fail, "{message}");
        assert!(
            message.contains("is version @bin.abi-min-kernel or newer"),
            "{message}"
        );
        let (outcome, _) = check(yaml, TargetKind::Local, vec![release]);
        assert_eq!(outcome, Outcome::Error);
    }

    #[test]
    fn facts_not_given_skip_the_check() {
        let yaml = "id: a.abi\nversion: 1.0.0\ntitle: t\nseverity: critical\nprobes:\n  bin: {image: {elf: /bin/x}}\nexpect: {fact: bin.machine, equals: x86_64}";
        let missing = Fact::not_given(
            Probe::Image(Box::new(Probe::Elf("/bin/x".to_owned()))),
            "--image",
            crate::facts::NO_IMAGE,
        );
        assert_eq!(
            check(yaml, TargetKind::Local, vec![missing]),
            (
                Outcome::Skip,
                "not applicable: image elf /bin/x: no --image given".to_owned()
            )
        );
    }

    const NET_NS: &str = "id: a.net\nversion: 1.0.0\ntitle: t\nseverity: critical\nprobes: {n: {kernel-config: NET_NS}}\nexpect: {one-of: [y, m]}";

    #[test]
    fn kernel_config_symbol_set_unset_and_unreadable() {
        let cases = [
            (Some("y"), Outcome::Pass, "observed CONFIG_NET_NS = y"),
            (Some("m"), Outcome::Pass, "observed CONFIG_NET_NS = m"),
            (
                None,
                Outcome::Fail,
                "expected CONFIG_NET_NS is one of y, m; observed CONFIG_NET_NS = not set",
            ),
        ];
        for (value, outcome, message) in cases {
            assert_eq!(
                check(NET_NS, TargetKind::Local, vec![config("NET_NS", value)]),
                (outcome, message.to_owned()),
                "{value:?}"
            );
        }
        let unreadable = Fact::failed(
            Probe::KernelConfig("NET_NS".to_owned()),
            "kernel config",
            "no kernel config found",
        );
        assert_eq!(
            check(NET_NS, TargetKind::Local, vec![unreadable]),
            (
                Outcome::Error,
                "could not evaluate: could not be read from kernel config: no kernel config found"
                    .to_owned()
            )
        );
        assert_eq!(
            check(NET_NS, TargetKind::Local, vec![]),
            (
                Outcome::Error,
                "could not evaluate: not gathered".to_owned()
            )
        );
    }

    #[test]
    fn operators_on_text_lists_and_records() {
        let sysctl = |v: &str| vec![text(Probe::Sysctl("k".to_owned()), v)];
        let head = "id: a.b\nversion: 1.0.0\ntitle: t\nseverity: high\nprobes: {k: {sysctl: k}}\n";
        let cases: Vec<(&str, Vec<Fact>, Outcome)> = vec![
            ("expect: {equals: 1}", sysctl("1"), Outcome::Pass),
            ("expect: {equals: 1}", sysctl("0"), Outcome::Fail),
            (
                "expect: {at-least: 10001}",
                sysctl("1000000"),
                Outcome::Pass,
            ),
            ("expect: {at-least: 10001}", sysctl("200"), Outcome::Fail),
            ("expect: {at-most: 2}", sysctl("2"), Outcome::Pass),
            ("expect: {at-least: 1}", sysctl("many"), Outcome::Error),
            (
                "expect: {has-word: errno}",
                sysctl("kill_process errno allow"),
                Outcome::Pass,
            ),
            (
                "expect: {has-word: err}",
                sysctl("kill_process errno allow"),
                Outcome::Fail,
            ),
            (
                "expect: {has-none-of: 'err, kill'}",
                sysctl("kill_process errno allow"),
                Outcome::Pass,
            ),
            (
                "expect: {has-none-of: 'allow trace'}",
                sysctl("kill_process errno allow"),
                Outcome::Fail,
            ),
            (
                "expect: {contains: err}",
                sysctl("kill_process errno allow"),
                Outcome::Pass,
            ),
            (
                "expect: {matches: '^kill'}",
                sysctl("kill_process"),
                Outcome::Pass,
            ),
            (
                "expect: {version-at-least: 4.15}",
                sysctl("6.1.0-27-amd64"),
                Outcome::Pass,
            ),
            (
                "expect: {version-at-least: 4.15}",
                sysctl("4.9.0"),
                Outcome::Fail,
            ),
            (
                "expect: {version-below: 5.8}",
                sysctl("5.4.0"),
                Outcome::Pass,
            ),
            (
                "expect: {version-below: 5.8}",
                sysctl("5.10.0"),
                Outcome::Fail,
            ),
            (
                "expect: {version-at-least: $min}",
                sysctl("4.19"),
                Outcome::Pass,
            ),
            (
                "expect: {exists: false}",
                vec![Fact::read(
                    Probe::Sysctl("k".to_owned()),
                    "src",
                    FactValue::Absent,
                )],
                Outcome::Pass,
            ),
            (
                "expect: {equals: 1}",
                vec![Fact::read(
                    Probe::Sysctl("k".to_owned()),
                    "src",
                    FactValue::Absent,
                )],
                Outcome::Fail,
            ),
            ("expect: {not: {equals: 0}}", sysctl("1"), Outcome::Pass),
            (
                "expect: {all-of: [{at-least: 1}, {at-most: 3}]}",
                sysctl("4"),
                Outcome::Fail,
            ),
            (
                "expect: {any-of: [{equals: 1}, {equals: 4}]}",
                sysctl("4"),
                Outcome::Pass,
            ),
        ];
        for (expect, facts, outcome) in cases {
            let (got, message) = check(&format!("{head}{expect}"), TargetKind::Local, facts);
            assert_eq!(got, outcome, "{expect}: {message}");
        }
        let list = vec![Fact::read(
            Probe::DirList("/proc/self/ns".to_owned()),
            "/proc/self/ns",
            FactValue::List(vec!["net".to_owned(), "pid".to_owned()]),
        )];
        let head = "id: a.b\nversion: 1.0.0\ntitle: t\nseverity: high\nprobes: {ns: {dir-list: /proc/self/ns}}\n";
        assert_eq!(
            check(
                &format!("{head}expect: {{contains: net}}"),
                TargetKind::Local,
                list.clone()
            )
            .0,
            Outcome::Pass
        );
        assert_eq!(
            check(
                &format!("{head}expect: {{contains: uts}}"),
                TargetKind::Local,
                list
            )
            .0,
            Outcome::Fail
        );
        let record = FactValue::Record(
            [
                ("kind".to_owned(), FactValue::Text("other".to_owned())),
                ("mode".to_owned(), FactValue::Text("0666".to_owned())),
            ]
            .into(),
        );
        let file = vec![Fact::read(
            Probe::File("/dev/ptmx".to_owned()),
            "/dev/ptmx",
            record,
        )];
        let head =
            "id: a.b\nversion: 1.0.0\ntitle: t\nseverity: high\nprobes: {p: {file: /dev/ptmx}}\n";
        assert_eq!(
            check(
                &format!("{head}expect: {{fact: p.mode, equals: '0666'}}"),
                TargetKind::Local,
                file.clone()
            )
            .0,
            Outcome::Pass
        );
        assert_eq!(
            check(
                &format!("{head}expect: {{fact: p.owner, equals: '0'}}"),
                TargetKind::Local,
                file
            ),
            (
                Outcome::Error,
                "could not evaluate: has no field `owner`".to_owned()
            )
        );
    }

    #[test]
    fn applicability_skips_with_the_reason() {
        let runtime = "id: a.b\nversion: 1.0.0\ntitle: t\nseverity: high\napplies-to: {target-kinds: [local, ssh], kernel: '>=4.14', architectures: [x86_64], os-ids: [debian]}\nprobes: {k: {sysctl: k}}\nexpect: {equals: 1}";
        let facts = |release: &str, arch: &str, os: &str| {
            vec![
                text(Probe::KernelRelease, release),
                text(Probe::Architecture, arch),
                text(Probe::OsRelease("ID".to_owned()), os),
                text(Probe::Sysctl("k".to_owned()), "1"),
            ]
        };
        assert_eq!(
            check(
                runtime,
                TargetKind::Local,
                facts("6.1.0", "x86_64", "debian")
            )
            .0,
            Outcome::Pass
        );
        let cases = [
            (
                TargetKind::KernelConfig,
                facts("6.1.0", "x86_64", "debian"),
                "not applicable: needs a live host, this is a kernel-config target",
            ),
            (
                TargetKind::Local,
                facts("4.9.0-13-amd64", "x86_64", "debian"),
                "not applicable: applies to kernels >=4.14, this target runs 4.9.0-13-amd64",
            ),
            (
                TargetKind::Local,
                facts("6.1.0", "aarch64", "debian"),
                "not applicable: applies to x86_64, this target is aarch64",
            ),
            (
                TargetKind::Local,
                facts("6.1.0", "x86_64", "rhel"),
                "not applicable: applies to debian, this target's os-release ID is rhel",
            ),
        ];
        for (kind, facts, message) in cases {
            assert_eq!(
                check(runtime, kind, facts),
                (Outcome::Skip, message.to_owned())
            );
        }
    }

    #[test]
    fn waivers_turn_failures_into_waived_until_they_expire() {
        let failing = |id: &str| {
            format!("id: {id}\nversion: 1.0.0\ntitle: t\nseverity: critical\nprobes: {{n: {{kernel-config: NET_NS}}}}\nexpect: {{equals: y}}")
        };
        let (outcome, message) = check(
            &failing("waived.net"),
            TargetKind::Local,
            vec![config("NET_NS", None)],
        );
        assert_eq!(outcome, Outcome::Waived);
        assert_eq!(message, "waived until 2099-12-31 by qa@example.com: vendor kernel (failure: expected CONFIG_NET_NS = y; observed CONFIG_NET_NS = not set)");
        let (outcome, message) = check(
            &failing("expired.net"),
            TargetKind::Local,
            vec![config("NET_NS", None)],
        );
        assert_eq!(outcome, Outcome::Fail);
        assert_eq!(message, "expected CONFIG_NET_NS = y; observed CONFIG_NET_NS = not set; the waiver approved by qa@example.com expired on 2020-01-31");
        // A waiver never hides a pass.
        assert_eq!(
            check(
                &failing("waived.net"),
                TargetKind::Local,
                vec![config("NET_NS", Some("y"))]
            )
            .0,
            Outcome::Pass
        );
    }
}
