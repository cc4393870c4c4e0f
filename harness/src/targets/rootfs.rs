//! `rootfs:DIR`: an unpacked OS build tree, read offline. Every path is resolved inside the tree
//! (a symbolic link never leads outside it) and nothing from the tree is ever run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::host::{resolve_in_tree, HostFs, TreeKernel};
use super::{Gathered, Target, TargetError};
use crate::facts::ProbeSet;
use crate::model::TargetKind;

/// An OS tree judged with one of its kernels.
#[derive(Debug)]
pub struct RootfsTarget {
    name: String,
    address: String,
    tree: PathBuf,
    host: HostFs,
}

impl Target for RootfsTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TargetKind {
        TargetKind::OsTree
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        Ok(self.host.gather(probes))
    }

    fn tree(&self) -> Option<&Path> {
        Some(&self.tree)
    }
}

/// Opens an OS tree: one target per kernel it holds (named `<tree>@<release>` when there are
/// several), or only the kernel `kernel_version` names. A tree without a kernel is one target
/// whose kernel facts fail with the reason.
pub fn open(dir: &Path, kernel_version: Option<&str>) -> Result<Vec<RootfsTarget>, TargetError> {
    let address = format!("rootfs:{}", dir.display());
    let fail = |reason: String| TargetError {
        target: address.clone(),
        reason,
    };
    let metadata =
        std::fs::metadata(dir).map_err(|e| fail(format!("cannot read the tree: {e}")))?;
    if !metadata.is_dir() {
        return Err(fail(
            "not a folder (an OS tree is an unpacked root filesystem)".to_owned(),
        ));
    }
    let canonical = dir.canonicalize().ok();
    let base_name = match canonical.as_deref() {
        // `rootfs:/`: this machine's own userspace, read as a tree.
        Some(path) if path == Path::new("/") => "host-root".to_owned(),
        Some(path) => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string()),
        None => dir.display().to_string(),
    };
    let mut kernels = find_kernels(dir).map_err(&fail)?;
    if let Some(wanted) = kernel_version {
        let available: Vec<String> = kernels.iter().map(|k| k.release.clone()).collect();
        kernels.retain(|k| k.release == wanted);
        if kernels.is_empty() {
            return Err(fail(format!(
                "no kernel {wanted} in the tree (it has: {})",
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                }
            )));
        }
    }
    let several = kernels.len() > 1;
    if kernels.is_empty() {
        return Ok(vec![RootfsTarget {
            name: base_name,
            address,
            tree: dir.to_owned(),
            host: HostFs::tree(dir.to_owned(), None),
        }]);
    }
    Ok(kernels
        .into_iter()
        .map(|kernel| RootfsTarget {
            name: if several {
                format!("{base_name}@{}", kernel.release)
            } else {
                base_name.clone()
            },
            address: address.clone(),
            tree: dir.to_owned(),
            host: HostFs::tree(dir.to_owned(), Some(kernel)),
        })
        .collect())
}

/// Every kernel the tree holds, by release, with its config where its distribution keeps it:
/// `/boot/config-R`; `/lib/modules/R/` and `/usr/lib/modules/R/` (with `config` inside on Fedora,
/// in ostree deployments and in bootc images, whose `/lib` links to `usr/lib`);
/// `/usr/lib/ostree-boot/config-R` and `/boot/ostree/*/config-R` (ostree: RHEL Atomic Host); the
/// kernel snap's `config-R` at `/snap/*/current/` (Ubuntu Core, its modules in the snap's
/// `modules/R`); or the tree being a kernel build (`.config` and
/// `include/config/kernel.release`). When several places hold a config, the first in that order
/// is the kernel's.
pub(super) fn find_kernels(root: &Path) -> Result<Vec<TreeKernel>, String> {
    let mut kernels: BTreeMap<String, TreeKernel> = BTreeMap::new();
    let mut add =
        |release: &str, source: String, config: Option<String>, modules: Option<String>| {
            let entry = kernels
                .entry(release.to_owned())
                .or_insert_with(|| TreeKernel {
                    release: release.to_owned(),
                    release_source: source,
                    config: None,
                    modules: None,
                });
            if entry.config.is_none() {
                entry.config = config;
            }
            if entry.modules.is_none() {
                entry.modules = modules;
            }
        };
    // `config-R` files in a folder, each naming its kernel.
    let configs_in = |dir: &str| -> Result<Vec<(String, String)>, String> {
        Ok(list(root, dir)?
            .into_iter()
            .filter_map(|name| {
                let release = name.strip_prefix("config-").filter(|r| !r.is_empty())?;
                Some((release.to_owned(), format!("{dir}/{name}")))
            })
            .collect())
    };
    for (release, config) in configs_in("/boot")? {
        add(&release, config.clone(), Some(config), None);
    }
    for dir in ["/usr/lib/modules", "/lib/modules"] {
        for release in list(root, dir)? {
            let config = format!("{dir}/{release}/config");
            let has_config = resolve_in_tree(root, &config)?.is_some_and(|p| p.is_file());
            add(
                &release,
                format!("{dir}/{release}"),
                has_config.then_some(config),
                None,
            );
        }
    }
    for (release, config) in configs_in("/usr/lib/ostree-boot")? {
        add(&release, config.clone(), Some(config), None);
    }
    for deployment in list(root, "/boot/ostree")? {
        for (release, config) in configs_in(&format!("/boot/ostree/{deployment}"))? {
            add(&release, config.clone(), Some(config), None);
        }
    }
    for snap in list(root, "/snap")? {
        let base = format!("/snap/{snap}/current");
        for (release, config) in configs_in(&base)? {
            let modules = format!("{base}/modules/{release}");
            add(&release, config.clone(), Some(config), Some(modules));
        }
    }
    if let Some(release_file) = resolve_in_tree(root, "/include/config/kernel.release")? {
        let release = crate::fsio::read_regular_text(
            &release_file,
            crate::fsio::cap::FACT_TEXT,
            "kernel release",
        )
        .map_err(|e| format!("cannot read include/config/kernel.release: {}", e.cause))?;
        let release = release.trim().to_owned();
        if !release.is_empty() && resolve_in_tree(root, "/.config")?.is_some() {
            add(
                &release,
                "/include/config/kernel.release".to_owned(),
                Some("/.config".to_owned()),
                None,
            );
        }
    }
    Ok(kernels.into_values().collect())
}

/// The names in a folder of the tree (resolved inside it), sorted; empty when it is missing.
fn list(root: &Path, dir: &str) -> Result<Vec<String>, String> {
    let Some(path): Option<PathBuf> = resolve_in_tree(root, dir)? else {
        return Ok(Vec::new());
    };
    let Ok(entries) = std::fs::read_dir(&path) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}
