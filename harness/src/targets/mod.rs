//! Targets: the only code that touches a host. A target answers a whole set of probes in one
//! pass ([`Target::gather`]); checks never reach a target themselves.
//!
//! Kinds: [`local`] (this machine), [`ssh`] hosts, [`rootfs`] (an OS build tree),
//! [`kernel_config`] (a bare kernel config), [`image`] (container images) and [`snapshot`] (facts
//! saved by `hostcert gather`).

mod buildinfo;
mod command;
mod elf;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing;
mod host;
pub mod image;
mod kconfig;
pub mod kernel_config;
pub mod leftovers;
mod live_run;
pub mod local;
mod mounts;
mod node;
pub mod package_list;
pub mod packages;
pub mod pair;
pub mod probe_program;
pub mod rootfs;
mod runtimes;
pub mod snapshot;
pub mod ssh;
pub mod vm;

use crate::facts::{Fact, FactSet, ProbeSet};
use crate::model::TargetKind;

/// Why a host, an OS tree or a kernel config cannot answer an image probe.
pub const NOT_AN_IMAGE: &str =
    "only image targets (oci:, oci-archive:, docker-archive:, docker://, containers-storage:) have image facts";

/// Why a target other than a VM has no `boot` facts.
pub const NOT_BOOTED: &str = "only vm: targets are booted by hostcert";

/// What a target gave back for one gather: its host name and the facts, and why gathering
/// stopped early when it did.
///
/// A gather has three endings:
///
/// - every probe answered: `Ok(Gathered { gather_error: None, .. })`, each fact read, absent,
///   or failed with its own reason;
/// - stopped part way (a host lost mid-batch, an image whose layers cannot be unpacked after its
///   integrity was checked): `Ok(Gathered::stopped(...))`, with the facts read before and, for
///   every other probe asked, a failed fact with the reason; the run judges the facts it has
///   (a failing integrity check still fails), and the target's verdict is at best `incomplete`;
/// - nothing read at all: `Err(TargetError)`, every check on the target is `error`.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The host name the target reported, when it has one.
    pub hostname: Option<String>,
    /// One fact per probe asked (each read, absent, or failed with a reason).
    pub facts: FactSet,
    /// Why gathering stopped before every probe was read, when it did: the facts read before
    /// are in `facts`, and every other probe asked is a failed fact with this reason.
    pub gather_error: Option<String>,
}

impl Gathered {
    /// A gather that answered every probe.
    pub fn complete(hostname: Option<String>, facts: FactSet) -> Gathered {
        Gathered {
            hostname,
            facts,
            gather_error: None,
        }
    }

    /// A gather that stopped part way for `reason`: the facts read so far, and a failed fact
    /// (source `source`, error `reason`) for every probe of `asked` that has none.
    pub fn stopped(
        hostname: Option<String>,
        mut facts: FactSet,
        asked: &ProbeSet,
        source: &str,
        reason: impl Into<String>,
    ) -> Gathered {
        let reason = reason.into();
        for probe in asked {
            if facts.get(probe).is_none() {
                facts.insert(Fact::failed(probe.clone(), source, reason.clone()));
            }
        }
        Gathered {
            hostname,
            facts,
            gather_error: Some(reason),
        }
    }
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
    /// Reads every probe in one pass. A probe that cannot be read is a failed [`Fact`] inside
    /// the set; a gather that stops part way returns what it read with [`Gathered::stopped`];
    /// `Err` means the target could not be read at all (see [`Gathered`]).
    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError>;
    /// The sha256 of the facts this target gave, `sha256:<hex>`, recorded in reports as
    /// `facts-digest` and named by signed attestations: [`FactSet::digest`] of what `gather`
    /// returned, unless the target's facts come from a file whose own digest it is (a
    /// snapshot).
    fn facts_digest(&self, gathered: &FactSet) -> String {
        gathered.digest()
    }
    /// Whether [`Target::kind`] is known. A target that could not be opened from a file whose
    /// kind it would have read (a snapshot) does not know it, and is not refused by a profile's
    /// `target-kinds`: its checks report the reason it could not be opened.
    fn kind_is_known(&self) -> bool {
        true
    }
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
    /// Gathers as [`Target::gather`] does and, with `keep_tree`, keeps the target's files on
    /// this machine for the real runs of the pairs it is the image of ([`Tree`]): an OS tree's
    /// folder ([`Target::tree`]), an image unpacked into the run's folder (also when no probe
    /// reads its files). Without `keep_tree`, or when there are no files to keep, the tree is
    /// the reason there is none.
    fn gather_keeping_tree(
        &self,
        probes: &ProbeSet,
        keep_tree: bool,
    ) -> Result<(Gathered, Result<Tree, String>), TargetError> {
        let gathered = self.gather(probes)?;
        let tree = match self.tree() {
            Some(folder) if keep_tree => Ok(Tree::Folder(folder.to_owned())),
            _ => Err("the image is not a tree on this machine".to_owned()),
        };
        Ok((gathered, tree))
    }
}

/// The files of an image on this machine, which the real run of each pair it is the image of
/// mounts: kept from the image's gather until the last of those pairs is done (dropped).
#[derive(Debug)]
pub enum Tree {
    /// A folder the user named (an OS tree): used in place, never removed.
    Folder(std::path::PathBuf),
    /// An image unpacked into the run's temporary folder, removed when the tree is dropped.
    Unpacked {
        /// The unpacked files.
        root: std::path::PathBuf,
        /// The temporary folder that holds them.
        folder: tempfile::TempDir,
    },
}

impl Tree {
    /// The folder of the files.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Tree::Folder(path) => path,
            Tree::Unpacked { root, .. } => root,
        }
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
    /// How `vm:` targets boot.
    pub vm: vm::VmOptions,
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
    if let Some(dir) = address.strip_prefix("host-root:") {
        return Ok(vec![Box::new(local::LocalTarget::host_root(
            std::path::Path::new(dir),
        )?)]);
    }
    if let Some(file) = address.strip_prefix("kernel-config:") {
        return Ok(vec![Box::new(kernel_config::KernelConfigTarget::new(
            file.into(),
            options.kernel_version.clone(),
        ))]);
    }
    if address.starts_with("vm:") {
        return Ok(vec![Box::new(vm::VmTarget::parse(
            address,
            &options.vm,
            &options.ssh,
        )?)]);
    }
    match address {
        "local" | "localhost" => Ok(vec![Box::new(local::LocalTarget::new())]),
        _ if address.starts_with("ssh://") => Ok(vec![Box::new(ssh::SshTarget::parse(
            address,
            options.ssh.clone(),
        )?)]),
        _ => Err(TargetError {
            target: address.to_owned(),
            reason: "unknown target (expected `local`, `ssh://HOST`, `rootfs:DIR`, `host-root:DIR`, `kernel-config:FILE`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE`, `docker://HOST/REPO[:TAG]`, `containers-storage:NAME[:TAG]`, `vm:DISK` or `vm:kernel=FILE,...`; saved facts are read with `--facts FILE`)"
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
    kind: Option<TargetKind>,
}

impl UnreadableTarget {
    /// Wraps the error that prevented opening the target; its kind is the one its address
    /// names, unknown for a snapshot file or an address of no known kind.
    pub fn new(error: TargetError) -> UnreadableTarget {
        let address = error.target.as_str();
        let kind = if address.starts_with("ssh://") {
            Some(TargetKind::Ssh)
        } else if address.starts_with("vm:") {
            Some(TargetKind::Vm)
        } else if image::is_image_address(address) {
            Some(TargetKind::Image)
        } else if address.starts_with("rootfs:") {
            Some(TargetKind::OsTree)
        } else if address.starts_with("kernel-config:") {
            Some(TargetKind::KernelConfig)
        } else if matches!(address, "local" | "localhost") {
            Some(TargetKind::Local)
        } else {
            None
        };
        UnreadableTarget { error, kind }
    }
}

impl Target for UnreadableTarget {
    fn name(&self) -> &str {
        &self.error.target
    }

    fn kind(&self) -> TargetKind {
        self.kind.unwrap_or(TargetKind::Local)
    }

    fn kind_is_known(&self) -> bool {
        self.kind.is_some()
    }

    fn address(&self) -> &str {
        &self.error.target
    }

    fn gather(&self, _probes: &ProbeSet) -> Result<Gathered, TargetError> {
        Err(self.error.clone())
    }
}
