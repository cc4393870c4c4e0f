//! The container runtime inventory: which of runc, crun, containerd, CRI-O, conmon, Podman,
//! Docker and Kata a target has, and at which version, read from its package databases
//! ([`super::package_list`]) and, for binaries installed by hand, from the binary itself (Go
//! build info, or a C program's version string, [`super::buildinfo`]). Nothing is ever run.
//!
//! The binary that counts is the one found first along the usual `PATH` (`/usr/local/sbin`,
//! `/usr/local/bin`, `/usr/sbin`, `/usr/bin`, `/sbin`, `/bin`), then the runtime's own places
//! (`/usr/libexec/podman/conmon`, `/opt/kata/bin`). When a package owns it (dpkg's `info/*.list`,
//! apk's file list), the package's version is the runtime's and the package's Debian changelog
//! names the CVEs it fixes (a distribution patches old versions); otherwise the binary's own
//! version is. Other copies are listed.

use std::collections::BTreeMap;
use std::io::Read;

use super::buildinfo;
use super::package_list::{upstream_version, InstalledPackage, Manager, PackageList, TargetFiles};
use crate::facts::{Fact, FactValue};
use crate::model::Probe;

/// The largest binary read for its version.
const MAX_BINARY_BYTES: u64 = 256 << 20;
/// The largest changelog read (compressed, and once decompressed).
const MAX_CHANGELOG_BYTES: u64 = 16 << 20;

/// Where binaries are looked for, in `PATH` order.
pub const PATH_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// What identifies one runtime.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeSpec {
    /// The name the `runtime` probe takes.
    pub name: &'static str,
    /// Package names that install it, in every distribution's spelling.
    pub packages: &'static [&'static str],
    /// Its binaries' file names, looked for in [`PATH_DIRS`].
    pub binaries: &'static [&'static str],
    /// Other places it lives.
    pub extra_paths: &'static [&'static str],
    /// Whether it is a Go program (build info) or a C one (a version string).
    pub go: bool,
}

/// Every runtime the inventory knows, as [`crate::model::probe::RUNTIMES`] names them.
pub const SPECS: &[RuntimeSpec] = &[
    RuntimeSpec {
        name: "runc",
        packages: &["runc"],
        binaries: &["runc"],
        extra_paths: &["/usr/lib/cri-o-runc/sbin/runc", "/usr/libexec/crio/runc"],
        go: true,
    },
    RuntimeSpec {
        name: "crun",
        packages: &["crun"],
        binaries: &["crun"],
        extra_paths: &["/usr/libexec/crio/crun"],
        go: false,
    },
    RuntimeSpec {
        name: "containerd",
        packages: &["containerd", "containerd.io"],
        binaries: &["containerd"],
        extra_paths: &[],
        go: true,
    },
    RuntimeSpec {
        name: "cri-o",
        packages: &["cri-o", "crio"],
        binaries: &["crio"],
        extra_paths: &[],
        go: true,
    },
    RuntimeSpec {
        name: "conmon",
        packages: &["conmon"],
        binaries: &["conmon"],
        extra_paths: &["/usr/libexec/podman/conmon", "/usr/libexec/crio/conmon"],
        go: false,
    },
    RuntimeSpec {
        name: "podman",
        packages: &["podman"],
        binaries: &["podman"],
        extra_paths: &[],
        go: true,
    },
    RuntimeSpec {
        name: "docker",
        packages: &[
            "docker-ce",
            "docker.io",
            "moby-engine",
            "docker-engine",
            "docker",
        ],
        binaries: &["dockerd"],
        extra_paths: &[],
        go: true,
    },
    RuntimeSpec {
        name: "kata",
        packages: &["kata-containers", "kata-runtime", "kata-containers-runtime"],
        binaries: &["kata-runtime", "containerd-shim-kata-v2"],
        extra_paths: &[
            "/opt/kata/bin/kata-runtime",
            "/opt/kata/bin/containerd-shim-kata-v2",
        ],
        go: true,
    },
];

/// Every package name some runtime is installed by (for batches that filter databases).
pub fn package_names() -> Vec<&'static str> {
    SPECS
        .iter()
        .flat_map(|spec| spec.packages.iter().copied())
        .collect()
}

/// Every path a runtime binary is looked for at.
pub fn binary_paths(spec: &RuntimeSpec) -> Vec<String> {
    spec.binaries
        .iter()
        .flat_map(|binary| PATH_DIRS.iter().map(move |dir| format!("{dir}/{binary}")))
        .chain(spec.extra_paths.iter().map(|p| (*p).to_owned()))
        .collect()
}

/// The Debian changelog of a package and the dpkg file list, where they are.
pub fn changelog_path(package: &str) -> String {
    format!("/usr/share/doc/{package}/changelog.Debian.gz")
}

/// dpkg's file lists of a package (plain, and qualified by architecture for Multi-Arch: same).
pub fn dpkg_list_paths(package: &InstalledPackage) -> Vec<String> {
    let mut paths = vec![format!("/var/lib/dpkg/info/{}.list", package.name)];
    if let Some(arch) = &package.architecture {
        paths.push(format!("/var/lib/dpkg/info/{}:{arch}.list", package.name));
    }
    paths
}

/// The inventory of one target, read once and shared by its runtime facts.
pub struct Inventory {
    runtimes: BTreeMap<&'static str, Result<Option<Installation>, String>>,
    source: String,
}

/// One runtime as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    fields: BTreeMap<&'static str, String>,
}

impl Installation {
    fn new() -> Installation {
        let fields = [
            "version",
            "version-source",
            "package",
            "package-version",
            "package-manager",
            "path",
            "fixes",
            "go-version",
            "module",
            "module-version",
            "other-copies",
        ]
        .into_iter()
        .map(|key| (key, "none".to_owned()))
        .collect();
        Installation { fields }
    }

    fn set(&mut self, key: &'static str, value: impl Into<String>) {
        self.fields.insert(key, value.into());
    }

    /// A field's value.
    pub fn get(&self, key: &str) -> &str {
        self.fields.get(key).map_or("none", String::as_str)
    }

    fn record(&self) -> FactValue {
        FactValue::Record(
            self.fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), FactValue::Text(v.clone())))
                .collect(),
        )
    }
}

impl Inventory {
    /// Reads the package databases and every runtime's binaries.
    pub fn read(files: &dyn TargetFiles) -> Inventory {
        let packages = PackageList::read(files);
        let source = match &packages {
            Ok(list) if list.sources.is_empty() => {
                "binaries (no dpkg, apk or rpm database)".to_owned()
            }
            Ok(list) => format!("{} and binaries", list.sources.join(", ")),
            Err(_) => "package databases".to_owned(),
        };
        let runtimes = SPECS
            .iter()
            .map(|spec| {
                let found = match &packages {
                    Ok(list) => find(spec, list, files),
                    Err(reason) => Err(reason.clone()),
                };
                (spec.name, found)
            })
            .collect();
        Inventory { runtimes, source }
    }

    /// The fact for `{runtime: NAME}`.
    pub fn fact(&self, probe: &Probe, name: &str) -> Fact {
        match self.runtimes.get(name) {
            Some(Ok(Some(installation))) => {
                Fact::read(probe.clone(), self.source.clone(), installation.record())
            }
            Some(Ok(None)) => Fact::read(probe.clone(), self.source.clone(), FactValue::Absent),
            Some(Err(reason)) => Fact::failed(probe.clone(), self.source.clone(), reason.clone()),
            None => Fact::failed(
                probe.clone(),
                self.source.clone(),
                format!("unknown runtime `{name}`"),
            ),
        }
    }

    /// The fact for `runtimes`: every runtime found, as `VERSION (WHERE FROM)`.
    pub fn summary_fact(&self, probe: &Probe) -> Fact {
        let mut record = BTreeMap::new();
        for (name, found) in &self.runtimes {
            match found {
                Ok(Some(installation)) => {
                    record.insert(
                        (*name).to_owned(),
                        FactValue::Text(format!(
                            "{} ({})",
                            installation.get("version"),
                            installation.get("version-source")
                        )),
                    );
                }
                Ok(None) => {}
                Err(reason) => {
                    return Fact::failed(probe.clone(), self.source.clone(), reason.clone())
                }
            }
        }
        Fact::read(
            probe.clone(),
            self.source.clone(),
            FactValue::Record(record),
        )
    }
}

/// Finds one runtime: its binaries along the path, the package that owns the first, or else the
/// binary's own version.
fn find(
    spec: &RuntimeSpec,
    packages: &PackageList,
    files: &dyn TargetFiles,
) -> Result<Option<Installation>, String> {
    let package = spec
        .packages
        .iter()
        .find_map(|name| packages.packages.get(*name));
    let mut binaries = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for path in binary_paths(spec) {
        // One file under two names (/sbin is /usr/sbin on a merged-/usr system) counts once.
        if files.exists(&path)? && seen.insert(files.canonical(&path)) {
            let owner = match package {
                Some(package) => owns(package, &path, files)?,
                None => false,
            };
            binaries.push((path, owner));
        }
    }
    let mut installation = Installation::new();
    let primary = binaries.first().cloned();
    match (&primary, package) {
        (None, None) => return Ok(None),
        (Some((_, true)), Some(package)) | (None, Some(package)) => {
            installation.set("version", upstream_version(&package.version));
            installation.set(
                "version-source",
                format!("{} package {}", package.manager.as_str(), package.name),
            );
            if let Some((path, _)) = &primary {
                installation.set("path", path.clone());
            }
        }
        (Some((path, _)), _) => {
            installation.set("path", path.clone());
            binary_version(spec, path, files, &mut installation)?;
        }
    }
    if let Some(package) = package {
        installation.set("package", package.name.clone());
        installation.set("package-version", package.version.clone());
        installation.set("package-manager", package.manager.as_str());
        let fixes = match package.manager {
            Manager::Dpkg => changelog_cves(files, &package.name)?,
            Manager::Rpm | Manager::Apk => package.changelog_cves.clone(),
        };
        if !fixes.is_empty() {
            installation.set("fixes", fixes.join(" "));
        }
    }
    let others: Vec<String> = binaries
        .iter()
        .skip(1)
        .map(|(path, owned)| {
            if *owned {
                format!("{path} (package)")
            } else {
                path.clone()
            }
        })
        .collect();
    if !others.is_empty() {
        installation.set("other-copies", others.join(" "));
    }
    Ok(Some(installation))
}

/// Whether a package's file list names a path.
fn owns(package: &InstalledPackage, path: &str, files: &dyn TargetFiles) -> Result<bool, String> {
    match package.manager {
        Manager::Apk | Manager::Rpm => Ok(package.files.iter().any(|f| f == path)),
        Manager::Dpkg => {
            for list in dpkg_list_paths(package) {
                if let Some(bytes) = files.read_file(&list, MAX_CHANGELOG_BYTES)? {
                    return Ok(String::from_utf8_lossy(&bytes).lines().any(|l| l == path));
                }
            }
            Ok(false)
        }
    }
}

/// A binary's own version: Go build info, or a C program's version string.
fn binary_version(
    spec: &RuntimeSpec,
    path: &str,
    files: &dyn TargetFiles,
    installation: &mut Installation,
) -> Result<(), String> {
    let bytes = match files.read_file(path, MAX_BINARY_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(()),
        Err(reason) => {
            installation.set("version", "unknown");
            installation.set("version-source", format!("{path}: {reason}"));
            return Ok(());
        }
    };
    let (version, source) = if spec.go {
        match buildinfo::read_go(&bytes) {
            Ok(Some(info)) => {
                installation.set("go-version", info.go_version.clone());
                if let Some((module, module_version)) = &info.main_module {
                    installation.set("module", module.clone());
                    installation.set("module-version", module_version.clone());
                } else if let Some(path) = &info.path {
                    installation.set("module", path.clone());
                }
                match info.program_version() {
                    Some((version, from)) => {
                        (Some(version), format!("Go build info of {path} ({from})"))
                    }
                    None => (
                        None,
                        format!("Go build info of {path} (no module version, no -X version)"),
                    ),
                }
            }
            Ok(None) => (None, format!("{path} has no Go build info")),
            Err(reason) => (None, format!("{path}: {reason}")),
        }
    } else {
        match buildinfo::c_version(spec.name, &bytes) {
            Some(version) => (Some(version), format!("version string of {path}")),
            None => (None, format!("no version string found in {path}")),
        }
    };
    let version = version.map(|v| v.strip_prefix('v').unwrap_or(&v).to_owned());
    installation.set("version", version.as_deref().unwrap_or("unknown"));
    installation.set("version-source", source);
    Ok(())
}

/// The CVE ids a package's Debian changelog names, sorted: Debian's security updates name each
/// CVE they fix, so a patched old version is judged by what it fixes, not by its number.
fn changelog_cves(files: &dyn TargetFiles, package: &str) -> Result<Vec<String>, String> {
    let path = changelog_path(package);
    let Some(compressed) = files.read_file(&path, MAX_CHANGELOG_BYTES)? else {
        return Ok(Vec::new());
    };
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .take(MAX_CHANGELOG_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(super::package_list::cve_ids(&String::from_utf8_lossy(
        &text,
    )))
}
