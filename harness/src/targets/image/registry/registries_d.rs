//! registries.d (containers-registries.d(5)): where a registry's signatures are kept. Every
//! `*.yaml` file of the folder is merged (a namespace, or `default-docker`, defined twice is an
//! error, as containers/image has it); a reference uses the most specific `docker` namespace
//! that sets a value (its identity, its repository, each parent namespace, the registry,
//! `*.domain` wildcards), then `default-docker`. `lookaside` (or the older `sigstore`) is the
//! signature store read; without one, containers/image's built-in default
//! (`/var/lib/containers/sigstore` for root, `~/.local/share/containers/sigstore` otherwise).
//! `use-sigstore-attachments` says whether cosign-style `sha256-HEX.sig` attachments are read.
//!
//! The folder is `--registries.d` when given, otherwise `~/.config/containers/registries.d`
//! when it exists, otherwise `/etc/containers/registries.d`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::super::layout::{read_bounded, shorten};
use super::reference::DockerReference;

/// One namespace's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Namespace {
    #[serde(default)]
    lookaside: Option<String>,
    #[serde(default)]
    sigstore: Option<String>,
    #[serde(default)]
    use_sigstore_attachments: Option<bool>,
}

impl Namespace {
    fn read_location(&self) -> Option<&str> {
        self.lookaside
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.sigstore.as_deref().filter(|s| !s.is_empty()))
    }
}

/// One registries.d file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    default_docker: Option<Namespace>,
    #[serde(default)]
    docker: Option<BTreeMap<String, Namespace>>,
}

/// The merged configuration.
#[derive(Debug, Default)]
pub(crate) struct RegistriesD {
    default_docker: Option<Namespace>,
    docker: BTreeMap<String, Namespace>,
}

/// Where a reference's signatures are kept, and whether sigstore attachments are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignatureStore {
    /// The lookaside base URL for the repository (`…/REPO`), `http(s)://` or `file://`.
    pub lookaside: String,
    /// Whether `sha256-HEX.sig` attachments in the registry are read.
    pub sigstore_attachments: bool,
}

/// The registries.d folder used.
pub(crate) fn folder(given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_owned();
    }
    if let Some(home) = std::env::var_os("HOME") {
        let user = PathBuf::from(home).join(".config/containers/registries.d");
        if user.exists() {
            return user;
        }
    }
    PathBuf::from("/etc/containers/registries.d")
}

impl RegistriesD {
    /// Reads and merges the folder's `*.yaml` files; a missing folder is an empty configuration.
    pub(crate) fn read(dir: &Path) -> Result<RegistriesD, String> {
        let mut merged = RegistriesD::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(merged),
            Err(e) => return Err(format!("registries.d {}: {e}", dir.display())),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        names.sort();
        let mut default_from: Option<PathBuf> = None;
        let mut namespace_from: BTreeMap<String, PathBuf> = BTreeMap::new();
        for name in names {
            let path = dir.join(&name);
            let bytes = read_bounded(&path, &format!("registries.d file {}", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            let file: File = crate::yaml::parse(&path.display().to_string(), &text)
                .map_err(|e| e.to_string())?;
            if let Some(default) = file.default_docker {
                if let Some(first) = &default_from {
                    return Err(format!(
                        "registries.d: \"default-docker\" defined both in {} and {}",
                        first.display(),
                        path.display()
                    ));
                }
                merged.default_docker = Some(default);
                default_from = Some(path.clone());
            }
            for (scope, namespace) in file.docker.unwrap_or_default() {
                if let Some(first) = namespace_from.get(&scope) {
                    return Err(format!(
                        "registries.d: \"docker\" namespace `{}` defined both in {} and {}",
                        shorten(&scope),
                        first.display(),
                        path.display()
                    ));
                }
                namespace_from.insert(scope.clone(), path.clone());
                merged.docker.insert(scope, namespace);
            }
        }
        Ok(merged)
    }

    /// The namespaces that apply to a reference, most specific first.
    fn namespaces(&self, reference: &DockerReference) -> Vec<&Namespace> {
        reference
            .policy_scopes()
            .iter()
            .filter_map(|scope| self.docker.get(scope))
            .chain(self.default_docker.as_ref())
            .collect()
    }

    /// Where the reference's signatures are, as containers/image reads them.
    pub(crate) fn store(&self, reference: &DockerReference) -> SignatureStore {
        let namespaces = self.namespaces(reference);
        let base = namespaces
            .iter()
            .find_map(|ns| ns.read_location())
            .map(|s| s.trim_end_matches('/').to_owned())
            .unwrap_or_else(builtin_lookaside);
        let sigstore_attachments = namespaces
            .iter()
            .find_map(|ns| ns.use_sigstore_attachments)
            .unwrap_or(false);
        SignatureStore {
            lookaside: format!("{base}/{}", reference.repository),
            sigstore_attachments,
        }
    }
}

/// containers/image's built-in lookaside when nothing is configured.
fn builtin_lookaside() -> String {
    if rustix::process::geteuid().is_root() {
        "file:///var/lib/containers/sigstore".to_owned()
    } else {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        format!(
            "file://{}",
            home.join(".local/share/containers/sigstore").display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_namespace_that_sets_a_value_applies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "default-docker:\n  lookaside: file:///default\ndocker:\n  registry.example/ns:\n    lookaside: http://127.0.0.1:1/sigs/\n    use-sigstore-attachments: true\n  registry.example/ns/app:\n    use-sigstore-attachments: false\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            "docker:\n  other.example:\n    sigstore: https://sigs.example\n",
        )
        .unwrap();
        let config = RegistriesD::read(dir.path()).unwrap();
        let store = |r: &str| config.store(&DockerReference::parse(r).unwrap());
        assert_eq!(
            store("registry.example/ns/app:1"),
            SignatureStore {
                lookaside: "http://127.0.0.1:1/sigs/ns/app".into(),
                sigstore_attachments: false
            }
        );
        assert_eq!(
            store("registry.example/ns/other:1"),
            SignatureStore {
                lookaside: "http://127.0.0.1:1/sigs/ns/other".into(),
                sigstore_attachments: true
            }
        );
        assert_eq!(
            store("other.example/app").lookaside,
            "https://sigs.example/app"
        );
        assert_eq!(store("third.example/x/y").lookaside, "file:///default/x/y");
        std::fs::write(
            dir.path().join("c.yaml"),
            "default-docker:\n  lookaside: file:///again\n",
        )
        .unwrap();
        let err = RegistriesD::read(dir.path()).unwrap_err();
        assert!(err.contains("defined both in"), "{err}");
        std::fs::write(dir.path().join("c.yaml"), "docker: [not, a, map]\n").unwrap();
        assert!(RegistriesD::read(dir.path())
            .unwrap_err()
            .contains("c.yaml"));
    }
}
