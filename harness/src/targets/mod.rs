//! Targets: the only code that touches a host. A target answers a whole set of probes in one
//! pass ([`Target::gather`]); checks never reach a target themselves.
//!
//! Kinds: [`local`] (this machine), [`ssh`] hosts, [`rootfs`] (an OS build tree),
//! [`kernel_config`] (a bare kernel config), [`image`] (container images) and [`snapshot`] (facts
//! saved by `hostcert gather`).

mod elf;
mod host;
pub mod image;
mod kconfig;
pub mod kernel_config;
mod live_run;
pub mod local;
mod mounts;
pub mod pair;
pub mod probe_program;
pub mod rootfs;
pub mod snapshot;
pub mod ssh;

use crate::facts::{FactSet, ProbeSet};
use crate::model::TargetKind;

/// Why a host, an OS tree or a kernel config cannot answer an image probe.
pub const NOT_AN_IMAGE: &str =
    "only image targets (oci:, oci-archive:, docker-archive:, docker://, containers-storage:) have image facts";

/// What a target gave back for one gather: its host name and the facts.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The host name the target reported, when it has one.
    pub hostname: Option<String>,
    /// One fact per probe asked (each read, absent, or failed with a reason).
    pub facts: FactSet,
}

/// A target could not be read at all (as opposed to one fact that could not be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target `{target}`: {reason}")]
pub struct TargetError {
    /// The target as the user named it.
    pub target: String,
    /// Why.
    pub reason: String,
}

/// Something hostcert certifies: it gathers facts, and nothing else touches the host.
pub trait Target: Send + Sync {
    /// The name used in trial names and reports (`local`, `db-1`).
    fn name(&self) -> &str;
    /// The kind, which checks' applicability refers to.
    fn kind(&self) -> TargetKind;
    /// The address as the user gave it.
    fn address(&self) -> &str;
    /// `live`, or the snapshot file the facts come from.
    fn facts_from(&self) -> String {
        "live".to_owned()
    }
    /// Reads every probe in one pass. A probe that cannot be read is a failed [`crate::facts::Fact`]
    /// inside the set; `Err` means the target could not be read at all.
    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError>;
    /// The folder holding the target's files, when it is a tree on this machine (an OS tree, an
    /// unpacked image): what a real run mounts.
    fn tree(&self) -> Option<&std::path::Path> {
        None
    }
    /// The kind of the image a pair certifies on this target (`--image`), if it is a pair: a
    /// pair answers the checks of both its host's kind and its image's kind.
    fn image_kind(&self) -> Option<TargetKind> {
        None
    }
}

/// Options that shape how targets are opened (`--param` values meant for targets).
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// `--param kernel-version=`: the kernel release of a kernel config without a header, or the
    /// one kernel of an OS tree to judge.
    pub kernel_version: Option<String>,
    /// `--param seccomp-profile=`: the runtime seccomp profile that `seccomp-profile` probes read.
    pub seccomp_profile: Option<std::path::PathBuf>,
    /// How SSH targets connect and authenticate.
    pub ssh: ssh::SshOptions,
    /// How image targets are judged: the policy, signatures, the reference.
    pub image: image::ImageOptions,
}

/// Opens the targets an address names, as given to `--target`: `local`, `rootfs:DIR` (one target
/// per kernel the tree holds), `kernel-config:FILE`. Opening reads no host facts.
pub fn open(address: &str, options: &TargetOptions) -> Result<Vec<Box<dyn Target>>, TargetError> {
    if let Some(dir) = address.strip_prefix("rootfs:") {
        let targets = rootfs::open(std::path::Path::new(dir), options.kernel_version.as_deref())?;
        return Ok(targets
            .into_iter()
            .map(|t| Box::new(t) as Box<dyn Target>)
            .collect());
    }
    if image::is_image_address(address) {
        return Ok(image::open(address, &options.image)?
            .into_iter()
            .map(|t| Box::new(t) as Box<dyn Target>)
            .collect());
    }
    if let Some(file) = address.strip_prefix("kernel-config:") {
        return Ok(vec![Box::new(kernel_config::KernelConfigTarget::new(
            file.into(),
            options.kernel_version.clone(),
        ))]);
    }
    match address {
        "local" | "localhost" => Ok(vec![Box::new(local::LocalTarget::new())]),
        _ if address.starts_with("ssh://") => Ok(vec![Box::new(ssh::SshTarget::parse(
            address,
            options.ssh.clone(),
        )?)]),
        _ => Err(TargetError {
            target: address.to_owned(),
            reason: "unknown target (expected `local`, `ssh://HOST`, `rootfs:DIR`, `kernel-config:FILE`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE`, `docker://HOST/REPO[:TAG]` or `containers-storage:NAME[:TAG]`; saved facts are read with `--facts FILE`)"
                .to_owned(),
        }),
    }
}

/// A target that could not be opened (a missing snapshot file, an unsupported address). It
/// stays in the run so that its checks report `error` with the reason while the other targets
/// are certified as usual.
#[derive(Debug)]
pub struct UnreadableTarget {
    error: TargetError,
    kind: TargetKind,
}

impl UnreadableTarget {
    /// Wraps the error that prevented opening the target.
    pub fn new(error: TargetError) -> UnreadableTarget {
        let kind = if error.target.starts_with("ssh://") {
            TargetKind::Ssh
        } else if image::is_image_address(&error.target) {
            TargetKind::Image
        } else {
            TargetKind::Local
        };
        UnreadableTarget { error, kind }
    }
}

impl Target for UnreadableTarget {
    fn name(&self) -> &str {
        &self.error.target
    }

    fn kind(&self) -> TargetKind {
        self.kind
    }

    fn address(&self) -> &str {
        &self.error.target
    }

    fn gather(&self, _probes: &ProbeSet) -> Result<Gathered, TargetError> {
        Err(self.error.clone())
    }
}
