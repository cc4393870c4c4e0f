//! `kernel-config:FILE`: a bare kernel `.config`, judged offline, as moby's check-config.sh
//! judges one, but with the config's own kernel version.

use std::path::PathBuf;

use super::kconfig::{symbol_fact, KernelConfig};
use super::{Gathered, Target, TargetError};
use crate::facts::{Fact, FactValue, ProbeSet};
use crate::model::{ProbeClass, TargetKind};

/// A kernel config file on its own. Its kernel version comes from the config's
/// `# Linux/<arch> <version> Kernel Configuration` header, or from `--param kernel-version=`.
#[derive(Debug)]
pub struct KernelConfigTarget {
    path: PathBuf,
    name: String,
    address: String,
    kernel_version: Option<String>,
}

impl KernelConfigTarget {
    /// A config file; `kernel_version` overrides (or stands in for) the header's version.
    pub fn new(path: PathBuf, kernel_version: Option<String>) -> KernelConfigTarget {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let name = file_name
            .strip_suffix(".config")
            .filter(|stem| !stem.is_empty())
            .unwrap_or(&file_name)
            .to_owned();
        KernelConfigTarget {
            address: format!("kernel-config:{}", path.display()),
            path,
            name,
            kernel_version,
        }
    }
}

impl Target for KernelConfigTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TargetKind {
        TargetKind::KernelConfig
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        let source = self.path.display().to_string();
        let unreadable = |reason: String| TargetError {
            target: self.name.clone(),
            reason,
        };
        let read = KernelConfig::read(&self.path, &source).and_then(|config| {
            config.ensure_full()?;
            Ok(config)
        });
        let config = read.as_ref().map_err(|reason| unreadable(reason.clone()))?;
        let facts = probes
            .iter()
            .map(|probe| match probe.class() {
                ProbeClass::KernelConfig(symbol) => symbol_fact(&read, probe, symbol),
                ProbeClass::KernelRelease => match (&self.kernel_version, config.header_version()) {
                    (Some(version), _) => Fact::read(
                        probe.clone(),
                        "--param kernel-version",
                        FactValue::Text(version.clone()),
                    ),
                    (None, Some(version)) => Fact::read(
                        probe.clone(),
                        format!("{source} header"),
                        FactValue::Text(version.to_owned()),
                    ),
                    (None, None) => Fact::failed(
                        probe.clone(),
                        source.clone(),
                        "the config has no `# Linux/<arch> <version> Kernel Configuration` header; give its version with --param kernel-version=X.Y.Z",
                    ),
                },
                ProbeClass::Architecture => match config.architecture() {
                    Some(arch) => Fact::read(probe.clone(), source.clone(), FactValue::Text(arch)),
                    None => Fact::failed(
                        probe.clone(),
                        source.clone(),
                        "the config names no known architecture",
                    ),
                },
                ProbeClass::OsRelease(_) => Fact::failed(
                    probe.clone(),
                    source.clone(),
                    "a kernel config alone has no os-release",
                ),
                ProbeClass::PairImage(_) | ProbeClass::LiveRun => {
                    Fact::not_given(probe.clone(), "--image", crate::facts::NO_IMAGE)
                }
                ProbeClass::SeccompProfile(_) => Fact::not_given(
                    probe.clone(),
                    "--param seccomp-profile",
                    crate::facts::NO_SECCOMP_PROFILE,
                ),
                ProbeClass::Boot => Fact::not_given(probe.clone(), "vm:", super::NOT_BOOTED),
                ProbeClass::ImageMetadata(_) => Fact::failed(
                    probe.clone(),
                    probe.to_string(),
                    super::NOT_AN_IMAGE,
                ),
                ProbeClass::Files => Fact::failed(
                    probe.clone(),
                    source.clone(),
                    "needs a live host or an OS tree; this target is a kernel config alone",
                ),
            })
            .collect();
        Ok(Gathered::complete(None, facts))
    }
}
