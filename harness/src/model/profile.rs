//! Profiles: a certification level.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Name, Scalar, Severity, TargetKind};
use crate::yaml::{self, YamlError};

/// A selector of checks: a glob over check ids (`kernel.cgroups.*`) or `tag:NAME`.
#[derive(Debug, Clone)]
pub enum Selector {
    /// Checks whose id matches the glob.
    Id(glob::Pattern),
    /// Checks that carry the tag.
    Tag(String),
}

impl Selector {
    fn parse(text: &str) -> Result<Selector, String> {
        match text.strip_prefix("tag:") {
            Some(tag) if !tag.is_empty() => Ok(Selector::Tag(tag.to_owned())),
            Some(_) => Err("`tag:` needs a tag name".to_owned()),
            None => glob::Pattern::new(text)
                .map(Selector::Id)
                .map_err(|e| format!("invalid check id glob `{text}`: {e}")),
        }
    }

    /// Whether a check with this id and these tags is selected.
    pub fn selects(&self, id: &str, tags: &[String]) -> bool {
        match self {
            Selector::Id(pattern) => pattern.matches(id),
            Selector::Tag(tag) => tags.iter().any(|t| t == tag),
        }
    }
}

/// As written in the profile: `kernel.cgroups.*` or `tag:cgroups`.
impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Id(pattern) => f.write_str(pattern.as_str()),
            Selector::Tag(tag) => write!(f, "tag:{tag}"),
        }
    }
}

/// A kind of target a profile certifies (its `target-kinds`): a target of one kind (`image`,
/// `local`), or a pair of an image or OS tree on a host (`--image`), written `IMAGE@HOST`
/// (`image@local`, `os-tree@ssh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertifiedKind {
    /// The target's kind; for a pair, its host's.
    pub kind: TargetKind,
    /// For a pair, the kind of its image; `None` for a target alone.
    pub image: Option<TargetKind>,
}

impl CertifiedKind {
    fn parse(text: &str) -> Result<CertifiedKind, String> {
        let kind = |word: &str| {
            TargetKind::parse(word).ok_or_else(|| {
                format!(
                    "`{word}` is not a target kind (local, ssh, os-tree, kernel-config, image, vm)"
                )
            })
        };
        match text.split_once('@') {
            None => Ok(CertifiedKind {
                kind: kind(text)?,
                image: None,
            }),
            Some((image, host)) => {
                let (image, host) = (kind(image)?, kind(host)?);
                if !matches!(image, TargetKind::Image | TargetKind::OsTree) {
                    return Err(format!(
                        "`{text}`: the image of a pair is an image or an os-tree, not {}",
                        image.as_str()
                    ));
                }
                if host == TargetKind::Image {
                    return Err(format!(
                        "`{text}`: the host of a pair is local, ssh, os-tree or kernel-config"
                    ));
                }
                Ok(CertifiedKind {
                    kind: host,
                    image: Some(image),
                })
            }
        }
    }

    /// Whether a target of `kind` (a pair when `image_kind` is given) is of this kind.
    pub fn covers(&self, kind: TargetKind, image_kind: Option<TargetKind>) -> bool {
        self.kind == kind && self.image == image_kind
    }

    /// How a user gives a target of this kind, for error messages.
    pub fn how_to_give(&self) -> String {
        let target = |kind: TargetKind| match kind {
            TargetKind::Local => "--target local",
            TargetKind::Ssh => "--target ssh://HOST",
            TargetKind::OsTree => "--target rootfs:DIR",
            TargetKind::KernelConfig => "--target kernel-config:FILE",
            TargetKind::Image => "--target oci:DIR[:TAG]",
            TargetKind::Vm => "--target vm:DISK",
        };
        match self.image {
            None => target(self.kind).to_owned(),
            Some(image) => format!(
                "{} {}",
                target(image).replacen("--target", "--image", 1),
                target(self.kind)
            ),
        }
    }
}

/// As written in a profile: `image`, `image@local`.
impl std::fmt::Display for CertifiedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.image {
            None => f.write_str(self.kind.as_str()),
            Some(image) => write!(f, "{}@{}", image.as_str(), self.kind.as_str()),
        }
    }
}

/// An accepted failure: which check, why, who said so, until when.
#[derive(Debug, Clone)]
pub struct Waiver {
    /// A check id or a glob over ids.
    pub check: glob::Pattern,
    /// Target names it covers (globs); empty means every target.
    pub targets: Vec<glob::Pattern>,
    /// Why the failure is accepted.
    pub reason: String,
    /// Who accepted it.
    pub approver: String,
    /// The last day it is valid.
    pub expires: time::Date,
    /// The `--waivers` file it was read from; `None` for a profile's own waivers.
    pub source: Option<String>,
}

impl Waiver {
    /// Whether the waiver covers this check on this target.
    pub fn covers(&self, check_id: &str, target: &str) -> bool {
        self.check.matches(check_id)
            && (self.targets.is_empty() || self.targets.iter().any(|t| t.matches(target)))
    }

    /// Whether the waiver has expired on `today`.
    pub fn expired_on(&self, today: time::Date) -> bool {
        today > self.expires
    }

    /// The expiry date as `YYYY-MM-DD`.
    pub fn expires_text(&self) -> String {
        let (year, month, day) = self.expires.to_calendar_date();
        format!("{year:04}-{:02}-{day:02}", month as u8)
    }

    /// The waiver as reports record it, given the run's day.
    pub fn info(&self, today: time::Date) -> hostcert_reports::WaiverInfo {
        hostcert_reports::WaiverInfo {
            check: self.check.as_str().to_owned(),
            reason: self.reason.clone(),
            approver: self.approver.clone(),
            expires: self.expires_text(),
            expired: self.expired_on(today),
            targets: self.targets.iter().map(|t| t.as_str().to_owned()).collect(),
            source: self.source.clone(),
        }
    }

    /// Parses a waivers file (`hostcert run --waivers FILE`): a YAML list of waivers with the
    /// keys a profile's `waivers` have. Every error names the file, line and key.
    pub fn parse_file(file: &str, text: &str) -> Result<Vec<Waiver>, Vec<YamlError>> {
        let raw: Vec<RawWaiver> = yaml::parse(file, text).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let waivers = validate_waivers(file, text, "", raw, &mut errors);
        if errors.is_empty() {
            Ok(waivers
                .into_iter()
                .map(|w| Waiver {
                    source: Some(file.to_owned()),
                    ..w
                })
                .collect())
        } else {
            Err(errors)
        }
    }
}

/// A certification level: which suites at which versions, which checks, what gates the verdict,
/// parameters and waivers.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: Name,
    /// The profile's version.
    pub version: semver::Version,
    /// What the level means.
    pub description: String,
    /// The kinds of target the profile certifies (`target-kinds`); a run refuses any other
    /// kind before it gathers. Empty when the profile does not say: every kind.
    pub target_kinds: Vec<CertifiedKind>,
    /// Suites by name, with the versions accepted.
    pub suites: BTreeMap<Name, semver::VersionReq>,
    /// Checks to run; empty means every check of the suites.
    pub include: Vec<Selector>,
    /// Checks not to run, applied after `include`.
    pub exclude: Vec<Selector>,
    /// The severities whose failures decide the verdict.
    pub gate: Vec<Severity>,
    /// Values for the suites' parameters.
    pub parameters: BTreeMap<Name, String>,
    /// Accepted failures.
    pub waivers: Vec<Waiver>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawProfile {
    name: Name,
    #[serde(deserialize_with = "yaml::semver_version")]
    version: semver::Version,
    #[serde(default)]
    description: String,
    #[serde(default)]
    target_kinds: Option<Vec<String>>,
    suites: BTreeMap<Name, semver::VersionReq>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default = "default_gate")]
    gate: Vec<Severity>,
    #[serde(default)]
    parameters: BTreeMap<Name, Scalar>,
    #[serde(default)]
    waivers: Vec<RawWaiver>,
}

fn default_gate() -> Vec<Severity> {
    vec![Severity::Critical, Severity::High]
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawWaiver {
    check: String,
    #[serde(default)]
    targets: Vec<String>,
    reason: String,
    approver: String,
    expires: Scalar,
}

impl Profile {
    /// Parses and validates a profile file. Every error names the file, line and key.
    pub fn parse(file: &str, text: &str) -> Result<Profile, Vec<YamlError>> {
        let raw: RawProfile = yaml::parse(file, text).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let error = |key: &str, value: Option<&str>, nth: usize, message: String| YamlError {
            file: file.to_owned(),
            position: yaml::locate(text, key, value, nth)
                .or_else(|| yaml::locate(text, key, None, 0)),
            message,
        };
        if raw.suites.is_empty() {
            errors.push(error(
                "suites",
                None,
                0,
                "suites: a profile needs at least one suite".to_owned(),
            ));
        }
        let mut target_kinds = Vec::new();
        match raw.target_kinds {
            Some(kinds) if kinds.is_empty() => errors.push(error(
                "target-kinds",
                None,
                0,
                "target-kinds: a profile certifies at least one kind of target (leave the key out for every kind)"
                    .to_owned(),
            )),
            Some(kinds) => {
                for (index, text_value) in kinds.iter().enumerate() {
                    match CertifiedKind::parse(text_value) {
                        Ok(kind) if target_kinds.contains(&kind) => errors.push(error(
                            "target-kinds",
                            None,
                            0,
                            format!("target-kinds[{index}]: `{text_value}` is listed twice"),
                        )),
                        Ok(kind) => target_kinds.push(kind),
                        Err(message) => errors.push(error(
                            "target-kinds",
                            None,
                            0,
                            format!("target-kinds[{index}]: {message}"),
                        )),
                    }
                }
            }
            None => {}
        }
        let mut selectors = |key: &str, texts: Vec<String>| {
            let mut parsed = Vec::new();
            for (index, text_value) in texts.into_iter().enumerate() {
                match Selector::parse(&text_value) {
                    Ok(selector) => parsed.push(selector),
                    Err(message) => {
                        errors.push(error(key, None, 0, format!("{key}[{index}]: {message}")))
                    }
                }
            }
            parsed
        };
        let include = selectors("include", raw.include);
        let exclude = selectors("exclude", raw.exclude);
        let waivers = validate_waivers(file, text, "waivers", raw.waivers, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Profile {
            name: raw.name,
            version: raw.version,
            description: raw.description,
            target_kinds,
            suites: raw.suites,
            include,
            exclude,
            gate: raw.gate,
            parameters: raw.parameters.into_iter().map(|(k, v)| (k, v.0)).collect(),
            waivers,
        })
    }

    /// Whether the profile certifies a target of `kind` (a pair when `image_kind` is given).
    pub fn certifies(&self, kind: TargetKind, image_kind: Option<TargetKind>) -> bool {
        self.target_kinds.is_empty() || self.target_kinds.iter().any(|k| k.covers(kind, image_kind))
    }

    /// Whether the profile selects a check with this id and these tags.
    pub fn selects(&self, id: &str, tags: &[String]) -> bool {
        (self.include.is_empty() || self.include.iter().any(|s| s.selects(id, tags)))
            && !self.exclude.iter().any(|s| s.selects(id, tags))
    }

    /// The waiver that covers this check on this target, if any (the first one listed).
    pub fn waiver_for(&self, check_id: &str, target: &str) -> Option<&Waiver> {
        self.waivers.iter().find(|w| w.covers(check_id, target))
    }
}

/// Validates raw waivers (a profile's `waivers`, or a waivers file when `prefix` is empty),
/// pushing every problem, placed at its line, onto `errors`.
fn validate_waivers(
    file: &str,
    text: &str,
    prefix: &str,
    raw: Vec<RawWaiver>,
    errors: &mut Vec<YamlError>,
) -> Vec<Waiver> {
    let mut waivers = Vec::new();
    for (index, raw_waiver) in raw.into_iter().enumerate() {
        let place = |key: &str, message: String| {
            let anchor = yaml::locate(text, "check", Some(&raw_waiver.check), 0);
            let position = anchor
                .and_then(|(line, _)| locate_near(text, line, key))
                .or(anchor);
            YamlError {
                file: file.to_owned(),
                position,
                message: format!("{prefix}[{index}].{key}: {message}"),
            }
        };
        let check = match glob::Pattern::new(&raw_waiver.check) {
            Ok(pattern) => pattern,
            Err(e) => {
                errors.push(place("check", format!("invalid check id glob: {e}")));
                continue;
            }
        };
        let targets: Result<Vec<_>, _> = raw_waiver
            .targets
            .iter()
            .map(|t| glob::Pattern::new(t))
            .collect();
        let Ok(targets) = targets else {
            errors.push(place("targets", "invalid target glob".to_owned()));
            continue;
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let expires = match time::Date::parse(&raw_waiver.expires.0, &format) {
            Ok(date) => date,
            Err(_) => {
                errors.push(place(
                    "expires",
                    format!(
                        "`{}` is not a date of the form YYYY-MM-DD",
                        raw_waiver.expires.0
                    ),
                ));
                continue;
            }
        };
        for (key, value) in [
            ("reason", &raw_waiver.reason),
            ("approver", &raw_waiver.approver),
        ] {
            if value.trim().is_empty() {
                errors.push(place(key, format!("a waiver needs a {key}")));
            }
        }
        waivers.push(Waiver {
            check,
            targets,
            reason: raw_waiver.reason,
            approver: raw_waiver.approver,
            expires,
            source: None,
        });
    }
    waivers
}

/// The line holding `key:` within the few lines around a waiver's `check:` line.
fn locate_near(text: &str, line: usize, key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = line.saturating_sub(6);
    let end = (line + 6).min(lines.len());
    (start..end)
        .filter(|&index| {
            let body = lines[index].trim_start();
            let body = body.strip_prefix("- ").unwrap_or(body);
            body.starts_with(&format!("{key}:"))
        })
        .min_by_key(|&index| index.abs_diff(line - 1))
        .map(|index| {
            let body = lines[index].trim_start();
            let body = body.strip_prefix("- ").unwrap_or(body);
            (index + 1, lines[index].len() - body.len() + 1)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_kinds_name_single_kinds_and_pairs() {
        let text = "name: p\nversion: 1.0.0\ntarget-kinds: [image, image@local, os-tree@ssh]\nsuites:\n  kernel-features: ^1\n";
        let profile = Profile::parse("p.yaml", text).unwrap();
        assert!(profile.certifies(TargetKind::Image, None));
        assert!(profile.certifies(TargetKind::Local, Some(TargetKind::Image)));
        assert!(profile.certifies(TargetKind::Ssh, Some(TargetKind::OsTree)));
        assert!(!profile.certifies(TargetKind::Local, None));
        assert!(!profile.certifies(TargetKind::Ssh, Some(TargetKind::Image)));
        let kinds: Vec<String> = profile.target_kinds.iter().map(|k| k.to_string()).collect();
        assert_eq!(kinds, ["image", "image@local", "os-tree@ssh"]);
        assert_eq!(
            profile.target_kinds[1].how_to_give(),
            "--image oci:DIR[:TAG] --target local"
        );
        // Without the key, every kind.
        let any = Profile::parse("a.yaml", "name: a\nversion: 1.0.0\nsuites:\n  x: ^1\n").unwrap();
        assert!(any.certifies(TargetKind::KernelConfig, None));
        let errors = Profile::parse(
            "b.yaml",
            "name: b\nversion: 1.0.0\ntarget-kinds: [image, image, local@image]\nsuites:\n  x: ^1\n",
        )
        .unwrap_err();
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "b.yaml:3:1: target-kinds[1]: `image` is listed twice",
                "b.yaml:3:1: target-kinds[2]: `local@image`: the image of a pair is an image or an os-tree, not local",
            ]
        );
    }
}
