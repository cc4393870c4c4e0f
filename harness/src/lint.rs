//! `hostcert lint`: suites, profiles and waivers files checked beyond what loading them checks
//! (two files claiming one suite version, a check id used by two suites, selectors and waivers
//! that name no check, expired waivers, profiles in which no check gates), each problem placed
//! at its file, line and column.

use std::path::PathBuf;
use std::sync::Arc;

use crate::catalog::{self, Catalog, DataFile};
use crate::model::Waiver;
use crate::yaml::{self, YamlError};

/// What lint found.
#[derive(Debug)]
pub struct Linted {
    /// Problems: the files do not pass.
    pub errors: Vec<YamlError>,
    /// What the user should know but that does not fail lint.
    pub warnings: Vec<YamlError>,
    /// How many suites were checked.
    pub suites: usize,
    /// How many profiles were checked.
    pub profiles: usize,
    /// How many waivers files were checked.
    pub waiver_files: usize,
}

/// Lints the files and folders `paths` (the built-in suites and profiles when empty).
pub fn lint(paths: &[PathBuf]) -> Result<Linted, crate::Error> {
    let mut catalog = Catalog::builtin()?;
    let mut errors: Vec<YamlError> = Vec::new();
    let mut user_suites = Vec::new();
    let mut user_profiles = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        match catalog::yaml_files(path) {
            Ok(mut found) => files.append(&mut found),
            Err(e) => errors.push(e),
        }
    }
    let mut waiver_files = Vec::new();
    for file in &files {
        let source = file.display().to_string();
        let text = match yaml::read_file(file, crate::fsio::cap::YAML, "file") {
            Ok(text) => text,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        // A list at the top level is a waivers file (`run --waivers`).
        if let Ok(true) = yaml::is_list(&source, &text) {
            match Waiver::parse_file(&source, &text) {
                Ok(waivers) => waiver_files.push((source, text, waivers)),
                Err(mut e) => errors.append(&mut e),
            }
            continue;
        }
        match catalog::parse_data_file(&source, &text) {
            Ok(DataFile::Suite(suite)) => user_suites.push((Arc::new(suite), text)),
            Ok(DataFile::Profile(profile)) => user_profiles.push(Arc::new(profile)),
            Err(mut e) => errors.append(&mut e),
        }
    }
    // Two files claiming one suite version, and one id used by two different suites.
    for (index, (suite, text)) in user_suites.iter().enumerate() {
        for (other, _) in &user_suites[..index] {
            if other.suite.name == suite.suite.name && other.suite.version == suite.suite.version {
                errors.push(YamlError {
                    file: suite.source.clone(),
                    position: yaml::locate(text, "version", None, 0),
                    message: format!(
                        "version: suite {} {} is also defined in {}",
                        suite.suite.name, suite.suite.version, other.source
                    ),
                });
            }
        }
        for check in &suite.suite.checks {
            let elsewhere = user_suites[..index]
                .iter()
                .map(|(s, _)| s)
                .chain(catalog.suites.iter())
                .find(|s| {
                    s.suite.name != suite.suite.name
                        && s.suite.checks.iter().any(|c| c.id == check.id)
                });
            if let Some(other) = elsewhere {
                errors.push(YamlError {
                    file: suite.source.clone(),
                    position: yaml::locate(text, "id", Some(check.id.as_str()), 0),
                    message: format!(
                        "id: check id `{}` is already used by suite `{}` ({})",
                        check.id, other.suite.name, other.source
                    ),
                });
            }
        }
    }
    for (suite, _) in &user_suites {
        catalog.suites.retain(|s| {
            !(s.suite.name == suite.suite.name && s.suite.version == suite.suite.version)
        });
        catalog.suites.push(Arc::clone(suite));
    }
    let today = time::OffsetDateTime::now_utc().date();
    let profiles: Vec<_> = if paths.is_empty() {
        catalog.profiles.clone()
    } else {
        user_profiles
    };
    let mut warnings: Vec<YamlError> = Vec::new();
    for profile in &profiles {
        match catalog.resolve(profile) {
            Ok(plan) => {
                errors.extend(unused_selectors(profile, &plan));
                warnings.extend(nothing_gates(profile, &plan));
            }
            Err(mut e) => errors.append(&mut e),
        }
        errors.extend(expired_waivers(
            &profile.source,
            &profile.text,
            "waivers",
            &profile.profile.waivers,
            today,
        ));
    }
    for (source, text, waivers) in &waiver_files {
        for (index, waiver) in waivers.iter().enumerate() {
            let names_a_check = catalog.suites.iter().any(|s| {
                s.suite
                    .checks
                    .iter()
                    .any(|c| waiver.check.matches(c.id.as_str()))
            });
            if !names_a_check {
                errors.push(YamlError {
                    file: source.clone(),
                    position: yaml::locate(text, "check", Some(waiver.check.as_str()), 0),
                    message: format!(
                        "[{index}].check: `{}` names no check of the known suites",
                        waiver.check.as_str()
                    ),
                });
            }
        }
        errors.extend(expired_waivers(source, text, "", waivers, today));
    }
    let (suites, profiles) = if paths.is_empty() {
        (catalog.suites.len(), catalog.profiles.len())
    } else {
        (user_suites.len(), profiles.len())
    };
    Ok(Linted {
        errors,
        warnings,
        suites,
        profiles,
        waiver_files: waiver_files.len(),
    })
}

/// Every expired waiver of a profile (`prefix` `waivers`) or a waivers file (`prefix` empty),
/// placed at its `expires:` line.
fn expired_waivers(
    source: &str,
    text: &str,
    prefix: &str,
    waivers: &[Waiver],
    today: time::Date,
) -> Vec<YamlError> {
    let mut errors = Vec::new();
    for (index, waiver) in waivers.iter().enumerate() {
        if !waiver.expired_on(today) {
            continue;
        }
        let anchor = yaml::locate(text, "check", Some(waiver.check.as_str()), 0);
        let position = anchor
            .and_then(|(line, _)| {
                text.lines()
                    .enumerate()
                    .skip(line - 1)
                    .take(8)
                    .find_map(|(i, l)| {
                        let body = l.trim_start().trim_start_matches("- ");
                        body.starts_with("expires:")
                            .then(|| (i + 1, l.len() - body.len() + 1))
                    })
            })
            .or(anchor);
        errors.push(YamlError {
            file: source.to_owned(),
            position,
            message: format!(
                "{prefix}[{index}].expires: the waiver for `{}` approved by {} expired on {}",
                waiver.check.as_str(),
                waiver.approver,
                waiver.expires_text()
            ),
        });
    }
    errors
}

/// A profile none of whose checks gates (`gate: []`, or a gate of severities it selects no check
/// of): no run of it can be certified, since a target on which no gating check was evaluated is
/// `incomplete`.
fn nothing_gates(loaded: &catalog::LoadedProfile, plan: &catalog::Plan) -> Option<YamlError> {
    if plan.checks.iter().any(|c| c.gating) {
        return None;
    }
    let gate = &loaded.profile.gate;
    let why = if gate.is_empty() {
        "the gate is empty".to_owned()
    } else {
        let names: Vec<&str> = gate.iter().map(|s| s.as_str()).collect();
        format!(
            "no selected check has a gating severity ({})",
            names.join(", ")
        )
    };
    Some(YamlError {
        file: loaded.source.clone(),
        position: yaml::locate(&loaded.text, "gate", None, 0)
            .or_else(|| yaml::locate(&loaded.text, "name", None, 0)),
        message: format!(
            "gate: {why}: no check decides the verdict, so every run of this profile is incomplete, never certified"
        ),
    })
}

/// Selectors and waivers that name no check of the profile's suites: almost always a typo, and
/// one that silently selects or waives nothing.
fn unused_selectors(loaded: &catalog::LoadedProfile, plan: &catalog::Plan) -> Vec<YamlError> {
    let checks: Vec<&crate::model::Check> =
        plan.suites.iter().flat_map(|s| &s.suite.checks).collect();
    let matches_any = |selector: &crate::model::Selector| {
        checks
            .iter()
            .any(|c| selector.selects(c.id.as_str(), &c.tags))
    };
    let profile = &loaded.profile;
    let mut errors = Vec::new();
    for (key, selectors) in [("include", &profile.include), ("exclude", &profile.exclude)] {
        for (index, selector) in selectors.iter().enumerate() {
            if !matches_any(selector) {
                errors.push(YamlError {
                    file: loaded.source.clone(),
                    position: yaml::locate(&loaded.text, key, None, 0),
                    message: format!(
                        "{key}[{index}]: `{selector}` selects no check of the profile's suites"
                    ),
                });
            }
        }
    }
    for (index, waiver) in profile.waivers.iter().enumerate() {
        if !checks.iter().any(|c| waiver.check.matches(c.id.as_str())) {
            errors.push(YamlError {
                file: loaded.source.clone(),
                position: yaml::locate(&loaded.text, "check", Some(waiver.check.as_str()), 0),
                message: format!(
                    "waivers[{index}].check: `{}` names no check of the profile's suites",
                    waiver.check.as_str()
                ),
            });
        }
    }
    errors
}
