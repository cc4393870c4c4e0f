//! Loading suites and profiles (built in and from folders) and resolving a profile into a
//! [`Plan`]: the exact checks, at the exact suite versions, with parameters filled in.
//!
//! Nothing here touches a host: a bad suite or profile fails before any target is contacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::builtin;
use crate::model::{Check, CheckId, Name, Operand, Profile, Suite};
use crate::yaml::{self, YamlError};

/// A suite with where it came from and the digest of its bytes.
#[derive(Debug)]
pub struct LoadedSuite {
    /// The suite.
    pub suite: Suite,
    /// A path, or `built-in:<path>`.
    pub source: String,
    /// `sha256:<hex>` of the file's bytes.
    pub digest: String,
}

/// A profile with where it came from, the digest of its bytes, and its text (to place errors).
#[derive(Debug)]
pub struct LoadedProfile {
    /// The profile.
    pub profile: Profile,
    /// A path, or `built-in:<path>`.
    pub source: String,
    /// `sha256:<hex>` of the file's bytes.
    pub digest: String,
    /// The file's text.
    pub text: String,
}

/// Every suite and profile known to a run.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Suites; a folder's suite replaces a built-in one of the same name and version.
    pub suites: Vec<Arc<LoadedSuite>>,
    /// Profiles; a folder's profile replaces a built-in one of the same name.
    pub profiles: Vec<Arc<LoadedProfile>>,
    /// What the user should know but that does not stop a run: a folder's file that replaces a
    /// built-in one with other content.
    pub warnings: Vec<String>,
}

/// One YAML file, classified.
pub enum DataFile {
    /// A suite (it has `checks`).
    Suite(LoadedSuite),
    /// A profile (it has `suites`).
    Profile(LoadedProfile),
}

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Parses one data file, telling a suite from a profile by its keys.
pub fn parse_data_file(source: &str, text: &str) -> Result<DataFile, Vec<YamlError>> {
    let keys = yaml::top_level_keys(source, text).map_err(|e| vec![e])?;
    let has = |key: &str| keys.iter().any(|k| k == key);
    if has("checks") {
        let suite = Suite::parse(source, text)?;
        Ok(DataFile::Suite(LoadedSuite {
            suite,
            source: source.to_owned(),
            digest: digest(text.as_bytes()),
        }))
    } else if has("suites") {
        let profile = Profile::parse(source, text)?;
        Ok(DataFile::Profile(LoadedProfile {
            profile,
            source: source.to_owned(),
            digest: digest(text.as_bytes()),
            text: text.to_owned(),
        }))
    } else {
        Err(vec![YamlError {
            file: source.to_owned(),
            position: Some((1, 1)),
            message: "neither a suite (which has `checks:`) nor a profile (which has `suites:`)"
                .to_owned(),
        }])
    }
}

/// Every `.yaml`/`.yml` file under a path (the path itself when it is a file), sorted. Links out
/// of the folder, loops, and folders too deep or too large are refused ([`crate::fsio::files_under`]).
pub fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, YamlError> {
    crate::fsio::files_under(path, |file| {
        file.extension().is_some_and(|e| e == "yaml" || e == "yml")
    })
    .map_err(YamlError::from)
}

impl Catalog {
    /// The suites and profiles compiled into the binary.
    pub fn builtin() -> Result<Catalog, Vec<YamlError>> {
        let mut catalog = Catalog::default();
        let mut errors = Vec::new();
        for file in builtin::SUITES.iter().chain(builtin::PROFILES) {
            match parse_data_file(&format!("built-in:{}", file.path), file.text) {
                Ok(data) => catalog.add(data, false, &mut errors),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors)
        }
    }

    /// Adds every suite and profile under `path` (a folder or one file). Files given by the
    /// user replace built-in ones of the same name and version.
    pub fn add_path(&mut self, path: &Path) -> Result<(), Vec<YamlError>> {
        let mut errors = Vec::new();
        for file in yaml_files(path).map_err(|e| vec![e])? {
            let source = file.display().to_string();
            let text = match yaml::read_file(&file, crate::fsio::cap::YAML, "file") {
                Ok(text) => text,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match parse_data_file(&source, &text) {
                Ok(data) => self.add(data, true, &mut errors),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn add(&mut self, data: DataFile, from_user: bool, errors: &mut Vec<YamlError>) {
        match data {
            DataFile::Suite(loaded) => {
                let same = self.suites.iter().position(|s| {
                    s.suite.name == loaded.suite.name && s.suite.version == loaded.suite.version
                });
                match same {
                    Some(index) if self.suites[index].digest == loaded.digest => {}
                    Some(index) if from_user && self.suites[index].source.starts_with("built-in:") => {
                        self.warnings.push(format!(
                            "{} replaces the built-in suite {} {} with other content ({})",
                            loaded.source, loaded.suite.name, loaded.suite.version, loaded.digest
                        ));
                        self.suites[index] = Arc::new(loaded);
                    }
                    Some(index) => errors.push(YamlError {
                        file: loaded.source.clone(),
                        position: Some((1, 1)),
                        message: format!(
                            "suite {} {} is also defined, with other content, in {} (a released suite version is never edited: give this one a new version)",
                            loaded.suite.name, loaded.suite.version, self.suites[index].source
                        ),
                    }),
                    None => self.suites.push(Arc::new(loaded)),
                }
            }
            DataFile::Profile(loaded) => {
                let same = self
                    .profiles
                    .iter()
                    .position(|p| p.profile.name == loaded.profile.name);
                match same {
                    Some(index) if self.profiles[index].digest == loaded.digest => {}
                    Some(index)
                        if from_user && self.profiles[index].source.starts_with("built-in:") =>
                    {
                        self.warnings.push(format!(
                            "{} replaces the built-in profile `{}`",
                            loaded.source, loaded.profile.name
                        ));
                        self.profiles[index] = Arc::new(loaded);
                    }
                    Some(index) => errors.push(YamlError {
                        file: loaded.source.clone(),
                        position: Some((1, 1)),
                        message: format!(
                            "profile `{}` is also defined in {}",
                            loaded.profile.name, self.profiles[index].source
                        ),
                    }),
                    None => self.profiles.push(Arc::new(loaded)),
                }
            }
        }
    }

    /// A profile by name.
    pub fn profile(&self, name: &str) -> Option<&Arc<LoadedProfile>> {
        self.profiles
            .iter()
            .find(|p| p.profile.name.as_str() == name)
    }

    /// The newest version of `name` that satisfies `requirement`.
    pub fn suite(
        &self,
        name: &Name,
        requirement: &semver::VersionReq,
    ) -> Option<&Arc<LoadedSuite>> {
        self.suites
            .iter()
            .filter(|s| &s.suite.name == name && requirement.matches(&s.suite.version))
            .max_by(|a, b| a.suite.version.cmp(&b.suite.version))
    }

    /// Every version of every suite that has a check with this id, oldest first.
    pub fn check_versions(&self, id: &str) -> Vec<(&Arc<LoadedSuite>, &Check)> {
        let mut found: Vec<_> = self
            .suites
            .iter()
            .flat_map(|s| s.suite.checks.iter().map(move |c| (s, c)))
            .filter(|(_, c)| c.id.as_str() == id)
            .collect();
        found.sort_by(|a, b| {
            (&a.0.suite.name, &a.0.suite.version).cmp(&(&b.0.suite.name, &b.0.suite.version))
        });
        found
    }

    /// Resolves a profile: suites at the newest matching versions, the selected checks, and
    /// parameters filled in. Errors are placed in the profile file.
    pub fn resolve(&self, loaded: &Arc<LoadedProfile>) -> Result<Plan, Vec<YamlError>> {
        self.resolve_with(loaded, &[])
    }

    /// Resolves a profile with parameter values given on the command line (`--param`), which
    /// take precedence over the profile's and the suites' own.
    pub fn resolve_with(
        &self,
        loaded: &Arc<LoadedProfile>,
        overrides: &[(String, String)],
    ) -> Result<Plan, Vec<YamlError>> {
        let profile = &loaded.profile;
        let error = |key: &str, value: Option<&str>, message: String| YamlError {
            file: loaded.source.clone(),
            position: yaml::locate(&loaded.text, key, value, 0),
            message,
        };
        let mut errors = Vec::new();
        let mut suites = Vec::new();
        for (name, requirement) in &profile.suites {
            match self.suite(name, requirement) {
                Some(suite) => suites.push(Arc::clone(suite)),
                None => {
                    let versions: Vec<String> = self
                        .suites
                        .iter()
                        .filter(|s| &s.suite.name == name)
                        .map(|s| s.suite.version.to_string())
                        .collect();
                    let known = if versions.is_empty() {
                        "no suite of that name is known".to_owned()
                    } else {
                        format!("known versions: {}", versions.join(", "))
                    };
                    errors.push(error(
                        name.as_str(),
                        None,
                        format!("suites.{name}: no version of suite `{name}` matches `{requirement}` ({known})"),
                    ));
                }
            }
        }
        let mut parameters: BTreeMap<Name, String> = BTreeMap::new();
        for suite in &suites {
            for (name, default) in &suite.suite.parameters {
                parameters
                    .entry(name.clone())
                    .or_insert_with(|| default.clone());
            }
        }
        for (name, value) in &profile.parameters {
            if parameters.contains_key(name) {
                parameters.insert(name.clone(), value.clone());
            } else {
                errors.push(error(
                    name.as_str(),
                    None,
                    format!(
                        "parameters.{name}: no suite of this profile declares parameter `{name}`"
                    ),
                ));
            }
        }
        for (name, value) in overrides {
            match parameters
                .iter_mut()
                .find(|(known, _)| known.as_str() == name)
            {
                Some((_, slot)) => *slot = value.clone(),
                None => errors.push(YamlError {
                    file: "--param".to_owned(),
                    position: None,
                    message: format!(
                        "{name}: no suite of profile `{}` declares this parameter (known: {})",
                        profile.name,
                        parameters
                            .keys()
                            .map(Name::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            }
        }
        let mut checks = Vec::new();
        for suite in &suites {
            for check in &suite.suite.checks {
                if !profile.selects(check.id.as_str(), &check.tags) {
                    continue;
                }
                let mut check = check.clone();
                let value_of = |name: &str| {
                    parameters
                        .iter()
                        .find(|(known, _)| known.as_str() == name)
                        .map(|(_, value)| value.clone())
                        .unwrap_or_default()
                };
                for probe in check.probes.values_mut() {
                    if let Some(argument) = probe.parameter_argument_mut() {
                        *argument = value_of(&argument[1..]);
                    }
                }
                let not_applicable =
                    check
                        .applies_to
                        .parameters
                        .iter()
                        .find_map(|(name, values)| {
                            let value = value_of(name.as_str());
                            (!values.iter().any(|v| v.0 == value)).then(|| {
                                format!(
                                    "applies when {name} is {}, and it is {}",
                                    values
                                        .iter()
                                        .map(|v| v.0.as_str())
                                        .collect::<Vec<_>>()
                                        .join(" or "),
                                    if value.is_empty() {
                                        "empty".to_owned()
                                    } else {
                                        format!("`{value}`")
                                    }
                                )
                            })
                        });
                for operand in check.expect.operands_mut() {
                    if let Operand::Param(name) = operand {
                        *operand =
                            Operand::Literal(parameters.get(name).cloned().unwrap_or_default());
                    }
                }
                if let Err(problem) = check.expect.validate_operands() {
                    errors.push(error(
                        "parameters",
                        None,
                        format!(
                            "check {} (suite {}): a parameter's value does not fit: {problem}",
                            check.id, suite.suite.name
                        ),
                    ));
                    continue;
                }
                let gating = profile.gate.contains(&check.severity);
                checks.push(PlannedCheck {
                    suite: Arc::clone(suite),
                    check,
                    gating,
                    not_applicable,
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Plan {
            profile: Arc::clone(loaded),
            suites,
            checks,
        })
    }
}

/// A resolved profile: what a run evaluates on every target.
#[derive(Debug)]
pub struct Plan {
    /// The profile.
    pub profile: Arc<LoadedProfile>,
    /// The suites at the versions the profile resolved to.
    pub suites: Vec<Arc<LoadedSuite>>,
    /// The selected checks, parameters filled in, in suite then file order.
    pub checks: Vec<PlannedCheck>,
}

/// One check of a plan.
#[derive(Debug, Clone)]
pub struct PlannedCheck {
    /// The suite it belongs to.
    pub suite: Arc<LoadedSuite>,
    /// The check, parameters resolved.
    pub check: Check,
    /// Whether its failure decides the verdict.
    pub gating: bool,
    /// Why the check does not apply under the plan's parameters (`applies-to.parameters`),
    /// decided at resolution.
    pub not_applicable: Option<String>,
}

impl PlannedCheck {
    /// The trial name of this check on a target: `<target>::<suite>::<check-id>`.
    pub fn trial_name(&self, target: &str) -> String {
        format!("{target}::{}::{}", self.suite.suite.name, self.check.id)
    }

    /// The check's id.
    pub fn id(&self) -> &CheckId {
        &self.check.id
    }
}

/// Which suites and profile a command uses: `--profile`, `--suites`, `--profiles` and the
/// suite parameters of `--param`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The profile: a name, or a path to a profile file (it ends in `.yaml`/`.yml` or holds a
    /// `/`); the default profile when `None`.
    pub profile: Option<String>,
    /// Folders of suites, added to the built-in ones.
    pub suite_dirs: Vec<PathBuf>,
    /// Folders of profiles, added to the built-in ones.
    pub profile_dirs: Vec<PathBuf>,
    /// Suite parameters that override the profile's.
    pub params: Vec<(String, String)>,
}

impl Selection {
    /// The built-in catalog plus the user's folders; its `warnings` are for the user.
    pub fn load(&self) -> Result<Catalog, crate::Error> {
        let mut catalog = Catalog::builtin()?;
        for dir in self.suite_dirs.iter().chain(&self.profile_dirs) {
            catalog.add_path(dir)?;
        }
        Ok(catalog)
    }

    /// The chosen profile: by path when the argument names a file, else by name.
    pub fn choose(&self, catalog: &mut Catalog) -> Result<Arc<LoadedProfile>, crate::Error> {
        let wanted = self.profile.as_deref().unwrap_or(builtin::DEFAULT_PROFILE);
        let as_path = Path::new(wanted);
        if wanted.ends_with(".yaml") || wanted.ends_with(".yml") || wanted.contains('/') {
            let text =
                yaml::read_file(as_path, crate::fsio::cap::YAML, "profile").map_err(|e| vec![e])?;
            let source = as_path.display().to_string();
            match parse_data_file(&source, &text)? {
                DataFile::Profile(loaded) => {
                    let loaded = Arc::new(loaded);
                    catalog
                        .profiles
                        .retain(|p| p.profile.name != loaded.profile.name);
                    catalog.profiles.push(Arc::clone(&loaded));
                    Ok(loaded)
                }
                DataFile::Suite(_) => Err(crate::Error::Usage(format!(
                    "{source} is a suite, not a profile"
                ))),
            }
        } else {
            catalog.profile(wanted).cloned().ok_or_else(|| {
                let known: Vec<&str> = catalog
                    .profiles
                    .iter()
                    .map(|p| p.profile.name.as_str())
                    .collect();
                crate::Error::Usage(format!(
                    "no profile named `{wanted}` (known: {}; or give a path to a profile file)",
                    known.join(", ")
                ))
            })
        }
    }

    /// Loads the catalog, chooses the profile and resolves it with the parameters: the plan,
    /// and the catalog's warnings.
    pub fn plan(&self) -> Result<(Plan, Vec<String>), crate::Error> {
        let mut catalog = self.load()?;
        let profile = self.choose(&mut catalog)?;
        let plan = catalog.resolve_with(&profile, &self.params)?;
        Ok((plan, catalog.warnings))
    }
}
