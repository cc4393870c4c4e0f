//! Reading probes from a filesystem: the live machine's own (`/`, with `/proc`, `/sys` and
//! commands), or an offline OS tree's, where every path is resolved inside the tree and nothing
//! from the tree is ever run. Shared by the local and `rootfs:` targets.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::command::{command_record, run_command};
use super::elf::{ElfInfo, MAX_ELF_BYTES};
use super::kconfig::{symbol_fact, KernelConfig};
use super::mounts::{mounts_fact, MountTable, MOUNTINFO};
use super::node;
use super::package_list::{self, TargetFiles};
use super::runtimes::Inventory;
use super::Gathered;
use crate::facts::{Fact, FactSet, FactValue, ProbeSet, NO_IMAGE, NO_SECCOMP_PROFILE};
use crate::model::Probe;

/// The largest file a probe reads, so a huge or endless file cannot exhaust memory.
pub(super) const MAX_FILE_BYTES: u64 = crate::fsio::cap::FACT_TEXT;
/// Symbolic links followed while resolving one path, as the kernel's own limit.
const MAX_SYMLINK_HOPS: usize = 40;

/// A host seen through a filesystem.
#[derive(Debug, Clone)]
pub(super) struct HostFs {
    root: PathBuf,
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    /// The running machine: `/`, its kernel, its commands.
    Live,
    /// An OS tree in a folder, and the kernel of it being judged (if it has one).
    Tree { kernel: Option<TreeKernel> },
    /// The running host whose root is mounted in a folder (`host-root:/host`, a Kubernetes Job or
    /// DaemonSet with hostPID and hostNetwork): its files are read inside the folder as in a tree,
    /// its kernel's facts from this process's /proc and /sys (the host's, with hostPID and
    /// hostNetwork), its mount table from /proc/1/mountinfo (the host's init), and nothing is run.
    HostRoot,
}

/// One kernel of an OS tree: its release and its config, as a path inside the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TreeKernel {
    /// The release, e.g. `6.1.0-27-amd64`.
    pub release: String,
    /// Where it came from, e.g. `/boot/config-6.1.0-27-amd64`.
    pub release_source: String,
    /// The config's path inside the tree, when the kernel has one.
    pub config: Option<String>,
    /// The kernel's modules folder inside the tree, when it is not `/lib/modules/<release>`
    /// (Ubuntu Core's kernel snap: `/snap/pc-kernel/current/modules/<release>`).
    pub modules: Option<String>,
}

impl Default for HostFs {
    fn default() -> Self {
        HostFs::live_root()
    }
}

impl HostFs {
    /// The running machine.
    pub(super) fn live_root() -> HostFs {
        HostFs {
            root: PathBuf::from("/"),
            mode: Mode::Live,
        }
    }

    /// An OS tree rooted at `root`, judged with `kernel`.
    pub(super) fn tree(root: PathBuf, kernel: Option<TreeKernel>) -> HostFs {
        HostFs {
            root,
            mode: Mode::Tree { kernel },
        }
    }

    /// The running host whose root is mounted at `root` (`host-root:DIR`).
    pub(super) fn host_root(root: PathBuf) -> HostFs {
        HostFs {
            root,
            mode: Mode::HostRoot,
        }
    }

    /// Whether the kernel's facts are a running kernel's (`/proc`, `/sys`, sysctls, mounts).
    fn live(&self) -> bool {
        matches!(self.mode, Mode::Live | Mode::HostRoot)
    }

    /// Whether commands may run: only on this machine itself, never on a mounted host root.
    fn runs_commands(&self) -> bool {
        matches!(self.mode, Mode::Live)
    }

    /// Where this host's mount table is: its init's in host-root mode (ours is the pod's).
    fn mountinfo_path(&self) -> &'static str {
        match self.mode {
            Mode::HostRoot => "/proc/1/mountinfo",
            _ => MOUNTINFO,
        }
    }

    /// The real path of an absolute path of the host, `None` when it does not exist. In a tree,
    /// every symbolic link is resolved inside the tree, as if the tree were `/`: a link can never
    /// lead a read outside it.
    pub(super) fn resolve(&self, absolute: &str) -> Result<Option<PathBuf>, String> {
        match self.mode {
            Mode::Live => Ok(Some(PathBuf::from(absolute))),
            Mode::HostRoot if is_kernel_path(absolute) => Ok(Some(PathBuf::from(absolute))),
            Mode::Tree { .. } => {
                // An ostree commit or a bootc image keeps /etc's defaults in /usr/etc.
                if let Some(rest) = absolute
                    .strip_prefix("/etc")
                    .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                {
                    if resolve_in_tree(&self.root, "/etc")?.is_none() {
                        if let Some(usr_etc) = resolve_in_tree(&self.root, "/usr/etc")? {
                            if usr_etc.is_dir() {
                                return resolve_in_tree(&self.root, &format!("/usr/etc{rest}"));
                            }
                        }
                    }
                }
                resolve_in_tree(&self.root, absolute)
            }
            Mode::HostRoot => resolve_in_tree(&self.root, absolute),
        }
    }

    /// Reads every probe; facts that cannot be read carry the reason.
    pub(super) fn gather(&self, probes: &ProbeSet) -> Gathered {
        let release = self.kernel_release();
        let mut kernel_config: Option<Result<KernelConfig, String>> = None;
        let mut modules: Option<Result<ModuleIndex, String>> = None;
        let mut mount_table: Option<Result<MountTable, String>> = None;
        let mut inventory: Option<Inventory> = None;
        let mut packages: Option<Result<package_list::PackageList, String>> = None;
        let mut facts = FactSet::default();
        for probe in probes {
            let fact = match probe {
                Probe::Runtime(name) => inventory
                    .get_or_insert_with(|| Inventory::read(self))
                    .fact(probe, name),
                Probe::Runtimes => inventory
                    .get_or_insert_with(|| Inventory::read(self))
                    .summary_fact(probe),
                Probe::Packages | Probe::Package(_) => package_list::package_fact(
                    packages.get_or_insert_with(|| package_list::PackageList::read(self)),
                    probe,
                ),
                Probe::CgroupMode => {
                    let mode = if self.live() {
                        let table = mount_table.get_or_insert_with(|| self.mount_table());
                        table
                            .as_ref()
                            .map_err(Clone::clone)
                            .and_then(node::live_cgroup_mode)
                    } else {
                        node::tree_cgroup_mode(self)
                    };
                    match mode {
                        Ok((mode, source)) => {
                            Fact::read(probe.clone(), source, FactValue::Text(mode))
                        }
                        Err(reason) => Fact::failed(probe.clone(), "cgroup layout", reason),
                    }
                }
                Probe::SubidRanges(user) => match node::subid_ranges(self, user) {
                    Ok(value) => Fact::read(
                        probe.clone(),
                        "/etc/passwd, /etc/subuid, /etc/subgid",
                        value,
                    ),
                    Err(reason) => Fact::failed(probe.clone(), "/etc/subuid, /etc/subgid", reason),
                },
                Probe::UserCgroup(user) => match node::user_cgroup(self, user, self.live()) {
                    Ok(value) => Fact::read(probe.clone(), "user@.service and its drop-ins", value),
                    Err(reason) => Fact::failed(probe.clone(), "user@.service", reason),
                },
                Probe::FileCaps(path) => self.file_caps(probe, path),
                Probe::Filesystem(path) => self.filesystem(probe, path),
                Probe::KernelConfig(symbol) => {
                    let config = kernel_config
                        .get_or_insert_with(|| self.kernel_config(release.as_ref().ok()));
                    symbol_fact(config, probe, symbol)
                }
                Probe::KernelRelease => match &release {
                    Ok((source, value)) => Fact::read(
                        probe.clone(),
                        source.clone(),
                        FactValue::Text(value.clone()),
                    ),
                    Err((source, reason)) => {
                        Fact::failed(probe.clone(), source.clone(), reason.clone())
                    }
                },
                Probe::Architecture => {
                    if self.live() {
                        self.architecture(probe)
                    } else {
                        let config = kernel_config
                            .get_or_insert_with(|| self.kernel_config(release.as_ref().ok()));
                        match config.as_ref().map(|c| (c.architecture(), &c.source)) {
                            Ok((Some(arch), source)) => {
                                Fact::read(probe.clone(), source.clone(), FactValue::Text(arch))
                            }
                            Ok((None, source)) => Fact::failed(
                                probe.clone(),
                                source.clone(),
                                "the kernel config names no known architecture",
                            ),
                            Err(reason) => {
                                Fact::failed(probe.clone(), "kernel config", reason.clone())
                            }
                        }
                    }
                }
                Probe::OsRelease(key) => self.os_release(probe, key),
                Probe::File(path) => self.file(probe, path),
                Probe::FileContent(path) => match self.read_text(path) {
                    Ok(value) => Fact::read(probe.clone(), path.clone(), value),
                    Err(reason) => Fact::failed(probe.clone(), path.clone(), reason),
                },
                Probe::DirList(path) => self.dir_list(probe, path),
                Probe::Sysctl(name) => {
                    let path = format!(
                        "/proc/sys/{}",
                        if name.contains('/') {
                            name.clone()
                        } else {
                            name.replace('.', "/")
                        }
                    );
                    if !self.live() {
                        Fact::failed(probe.clone(), path, "needs a live host; this is an OS tree")
                    } else {
                        match self.read_text(&path) {
                            Ok(value) => Fact::read(probe.clone(), path, value),
                            Err(reason) => Fact::failed(probe.clone(), path, reason),
                        }
                    }
                }
                Probe::Command(argv) => self.command(probe, argv),
                Probe::Mounts(point) => {
                    if self.live() {
                        let table = mount_table.get_or_insert_with(|| self.mount_table());
                        mounts_fact(table, probe, point)
                    } else {
                        Fact::failed(
                            probe.clone(),
                            MOUNTINFO,
                            "needs a live host; an OS tree has no mount table",
                        )
                    }
                }
                Probe::Elf(path) => self.elf(probe, path),
                Probe::LibcVersions(path) => match self.read_elf(path) {
                    Ok(None) => Fact::read(probe.clone(), path.clone(), FactValue::Absent),
                    Ok(Some(info)) => match info.libc_record() {
                        Ok(record) => Fact::read(probe.clone(), path.clone(), record),
                        Err(reason) => Fact::failed(probe.clone(), path.clone(), reason),
                    },
                    Err(reason) => Fact::failed(probe.clone(), path.clone(), reason),
                },
                Probe::OpensshVersion(path) => match self.read_bytes(path, MAX_ELF_BYTES) {
                    Ok(None) => Fact::read(probe.clone(), path.clone(), FactValue::Absent),
                    Ok(Some(bytes)) => Fact::read(
                        probe.clone(),
                        path.clone(),
                        super::elf::openssh_version(&bytes)
                            .map_or(FactValue::Absent, FactValue::Text),
                    ),
                    Err(reason) => Fact::failed(probe.clone(), path.clone(), reason),
                },
                Probe::Image(_) | Probe::LiveRun => {
                    Fact::not_given(probe.clone(), "--image", NO_IMAGE)
                }
                Probe::SeccompProfile(_) => {
                    Fact::not_given(probe.clone(), "--param seccomp-profile", NO_SECCOMP_PROFILE)
                }
                Probe::Boot => Fact::not_given(probe.clone(), "vm:", super::NOT_BOOTED),
                Probe::ProbeProgram => {
                    if self.live() {
                        super::probe_program::run_local(probe)
                    } else {
                        Fact::failed(
                            probe.clone(),
                            "hostcert-probe",
                            "needs a live host; nothing from an OS tree is ever run",
                        )
                    }
                }
                Probe::ImageIntegrity(_)
                | Probe::ImageConfig(_)
                | Probe::ImageLabel(_)
                | Probe::ImageInfo(_) => {
                    Fact::failed(probe.clone(), probe.to_string(), super::NOT_AN_IMAGE)
                }
                Probe::KernelModule(name) => {
                    let index =
                        modules.get_or_insert_with(|| self.module_index(release.as_ref().ok()));
                    match index {
                        Ok(index) => index.fact(probe, name),
                        Err(reason) => {
                            Fact::failed(probe.clone(), "kernel modules", reason.clone())
                        }
                    }
                }
            };
            facts.insert(fact);
        }
        let hostname_file = if self.live() {
            "/proc/sys/kernel/hostname"
        } else {
            "/etc/hostname"
        };
        let hostname = match self.read_text(hostname_file) {
            Ok(FactValue::Text(name)) if !name.is_empty() => Some(name),
            _ => None,
        };
        Gathered::complete(hostname, facts)
    }

    /// The live mount table.
    fn mount_table(&self) -> Result<MountTable, String> {
        let path = self.mountinfo_path();
        match self.read_text(path)? {
            FactValue::Text(text) => MountTable::parse(&text),
            _ => Err(format!("{path} is missing")),
        }
    }

    /// The names in a folder, `None` when there is no folder there.
    fn list(&self, dir: &str) -> Result<Option<Vec<String>>, String> {
        let Some(resolved) = self.resolve(dir)? else {
            return Ok(None);
        };
        match std::fs::read_dir(resolved) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .take(100_000)
                    .collect();
                names.sort();
                Ok(Some(names))
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(format!("{dir}: {error}")),
        }
    }

    /// The `file-caps` fact: the `security.capability` extended attribute (links followed, as
    /// getcap reads it).
    fn file_caps(&self, probe: &Probe, path: &str) -> Fact {
        let resolved = match self.resolve(path) {
            Ok(Some(resolved)) if resolved.exists() => resolved,
            Ok(_) => return Fact::read(probe.clone(), path, FactValue::Absent),
            Err(reason) => return Fact::failed(probe.clone(), path, reason),
        };
        let mut value = [0u8; 64];
        match rustix::fs::getxattr(&resolved, "security.capability", &mut value[..]) {
            Ok(length) => match node::file_caps(&value[..length]) {
                Ok(record) => {
                    Fact::read(probe.clone(), format!("{path} security.capability"), record)
                }
                Err(reason) => Fact::failed(probe.clone(), path, reason),
            },
            Err(rustix::io::Errno::NODATA) => Fact::read(probe.clone(), path, FactValue::Absent),
            Err(error) => {
                Fact::failed(probe.clone(), path, format!("security.capability: {error}"))
            }
        }
    }

    /// The `filesystem` fact: statfs's type of the filesystem under a path, and whether its
    /// folder entries report their types (d_type). Live hosts only.
    fn filesystem(&self, probe: &Probe, path: &str) -> Fact {
        if !self.live() {
            return Fact::failed(
                probe.clone(),
                path,
                "needs a live host; an OS tree has no mounted filesystems",
            );
        }
        let Ok(Some(resolved)) = self.resolve(path) else {
            return Fact::read(probe.clone(), path, FactValue::Absent);
        };
        let statfs = match rustix::fs::statfs(&resolved) {
            Ok(statfs) => statfs,
            Err(rustix::io::Errno::NOENT) => {
                return Fact::read(probe.clone(), path, FactValue::Absent)
            }
            Err(error) => return Fact::failed(probe.clone(), path, format!("statfs: {error}")),
        };
        #[allow(clippy::unnecessary_cast)]
        let magic = statfs.f_type as u64;
        let d_type = match d_type_support(&resolved) {
            Ok(Some(true)) => "yes",
            Ok(Some(false)) => "no",
            Ok(None) => "unknown",
            Err(reason) => return Fact::failed(probe.clone(), path, reason),
        };
        let fields = [
            (
                "type",
                node::filesystem_name(magic).map_or_else(|| format!("{magic:#x}"), str::to_owned),
            ),
            ("magic", format!("{magic:#x}")),
            ("d-type", d_type.to_owned()),
        ];
        Fact::read(
            probe.clone(),
            format!("statfs and getdents of {path}"),
            FactValue::Record(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), FactValue::Text(v)))
                    .collect(),
            ),
        )
    }

    /// The kernel release and where it was read, or where it was looked for and why it failed.
    fn kernel_release(&self) -> Result<(String, String), (String, String)> {
        match &self.mode {
            Mode::Live | Mode::HostRoot => {
                let path = "/proc/sys/kernel/osrelease";
                match self.read_text(path) {
                    Ok(FactValue::Text(release)) if !release.is_empty() => {
                        Ok((path.to_owned(), release))
                    }
                    Ok(_) => Err((path.to_owned(), format!("{path} is missing or empty"))),
                    Err(reason) => Err((path.to_owned(), reason)),
                }
            }
            Mode::Tree {
                kernel: Some(kernel),
            } => Ok((kernel.release_source.clone(), kernel.release.clone())),
            Mode::Tree { kernel: None } => Err((
                self.root.display().to_string(),
                NO_KERNEL_IN_TREE.to_owned(),
            )),
        }
    }

    /// Finds the kernel's config: on a live host the way moby's check-config.sh does; in a tree,
    /// the config of the kernel being judged. Records which file it was.
    fn kernel_config(&self, release: Option<&(String, String)>) -> Result<KernelConfig, String> {
        let candidates = match &self.mode {
            Mode::Live | Mode::HostRoot => match release {
                Some((_, release)) => kernel_config_places(release)
                    .iter()
                    .flat_map(|place| expand_place(place))
                    .collect(),
                None => vec!["/proc/config.gz".to_owned()],
            },
            Mode::Tree {
                kernel: Some(kernel),
            } => match &kernel.config {
                Some(config) => vec![config.clone()],
                None => {
                    return Err(format!(
                        "kernel {} in this tree has no config (looked for {})",
                        kernel.release,
                        kernel_config_places(&kernel.release)[1..].join(", ")
                    ))
                }
            },
            Mode::Tree { kernel: None } => return Err(NO_KERNEL_IN_TREE.to_owned()),
        };
        for candidate in &candidates {
            let Some(path) = self.resolve(candidate)? else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            return KernelConfig::read(&path, candidate);
        }
        let tried = match release {
            Some((_, release)) => kernel_config_places(release).join(", "),
            None => candidates.join(", "),
        };
        Err(format!(
            "no kernel config found (tried {tried}); enable CONFIG_IKCONFIG_PROC or install the kernel's config file"
        ))
    }

    /// Which modules the kernel has built in, installed and (on a live host) loaded.
    fn module_index(&self, release: Option<&(String, String)>) -> Result<ModuleIndex, String> {
        let release = match (&self.mode, release) {
            (_, Some((_, release))) => release.clone(),
            (Mode::Tree { .. }, None) => return Err(NO_KERNEL_IN_TREE.to_owned()),
            (Mode::Live | Mode::HostRoot, None) => {
                return Err("the kernel release is unknown".to_owned())
            }
        };
        let dir = match &self.mode {
            Mode::Tree {
                kernel:
                    Some(TreeKernel {
                        modules: Some(modules),
                        ..
                    }),
            } => modules.clone(),
            _ => format!("/lib/modules/{release}"),
        };
        let text = |value: FactValue| match value {
            FactValue::Text(text) => Some(text),
            _ => None,
        };
        let loaded = if self.live() {
            text(self.read_text("/proc/modules")?)
        } else {
            None
        };
        let builtin = text(self.read_text(&format!("{dir}/modules.builtin"))?);
        let dep = text(self.read_text(&format!("{dir}/modules.dep"))?);
        let files = if dep.is_none() {
            self.module_files(&dir)?
        } else {
            None
        };
        ModuleIndex::new(
            self.live(),
            &dir,
            loaded.as_deref(),
            builtin.as_deref(),
            dep.as_deref(),
            files,
        )
    }

    /// The module files (`*.ko`, compressed or not) under a modules folder, when it exists and has
    /// no `modules.dep`. Links inside it are not followed.
    fn module_files(
        &self,
        dir: &str,
    ) -> Result<Option<std::collections::BTreeSet<String>>, String> {
        let Some(root) = self.resolve(dir)? else {
            return Ok(None);
        };
        if !root.is_dir() {
            return Ok(None);
        }
        let mut names = std::collections::BTreeSet::new();
        let mut stack = vec![root];
        let mut visited = 0usize;
        while let Some(folder) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                visited += 1;
                if visited > 200_000 {
                    return Err(format!("{dir} holds too many files to list"));
                }
                let Ok(file_type) = entry.file_type() else {
                    continue;
                };
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if file_type.is_dir() {
                    stack.push(entry.path());
                } else if file_type.is_file() && is_module_file(&file_name) {
                    names.insert(module_name(&file_name));
                }
            }
        }
        Ok(Some(names))
    }

    fn architecture(&self, probe: &Probe) -> Fact {
        match run_command(&["uname".to_owned(), "-m".to_owned()]) {
            Ok(Some(output)) if output.status == 0 => Fact::read(
                probe.clone(),
                "uname -m",
                FactValue::Text(output.stdout.trim().to_owned()),
            ),
            Ok(_) => Fact::failed(probe.clone(), "uname -m", "uname -m failed"),
            Err(reason) => Fact::failed(probe.clone(), "uname -m", reason),
        }
    }

    fn os_release(&self, probe: &Probe, key: &str) -> Fact {
        for candidate in ["/etc/os-release", "/usr/lib/os-release"] {
            match self.read_text(candidate) {
                Ok(FactValue::Text(text)) => {
                    let value = parse_os_release(&text)
                        .remove(key)
                        .map_or(FactValue::Absent, FactValue::Text);
                    return Fact::read(probe.clone(), candidate, value);
                }
                Ok(_) => continue,
                Err(reason) => return Fact::failed(probe.clone(), candidate, reason),
            }
        }
        Fact::read(probe.clone(), "/etc/os-release", FactValue::Absent)
    }

    /// The `file` fact: the file's metadata with symbolic links followed (stat), and whether the
    /// path itself is a symbolic link (lstat of its last component, resolved in the tree).
    fn file(&self, probe: &Probe, path: &str) -> Fact {
        let resolved = match self.resolve(path) {
            Ok(Some(resolved)) => resolved,
            Ok(None) => return Fact::read(probe.clone(), path, FactValue::Absent),
            Err(reason) => return Fact::failed(probe.clone(), path, reason),
        };
        let metadata = match std::fs::metadata(resolved) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Fact::read(probe.clone(), path, FactValue::Absent)
            }
            Err(error) => return Fact::failed(probe.clone(), path, error.to_string()),
        };
        let symlink = match self.unresolved_last(path) {
            Ok(Some(last)) => std::fs::symlink_metadata(last).is_ok_and(|m| m.is_symlink()),
            Ok(None) => false,
            Err(reason) => return Fact::failed(probe.clone(), path, reason),
        };
        let rdev = metadata.rdev();
        let stat = FileStat {
            mode: metadata.mode(),
            uid: metadata.uid(),
            gid: metadata.gid(),
            size: metadata.len(),
            major: rustix::fs::major(rdev),
            minor: rustix::fs::minor(rdev),
            symlink,
        };
        Fact::read(probe.clone(), path, file_record(&stat))
    }

    /// The real path of an absolute path's parent joined with its last component, not followed:
    /// what lstat looks at. `None` for `/` or when the parent does not exist.
    fn unresolved_last(&self, absolute: &str) -> Result<Option<PathBuf>, String> {
        let path = Path::new(absolute);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(None);
        };
        Ok(self
            .resolve(&parent.to_string_lossy())?
            .map(|parent| parent.join(name)))
    }

    fn dir_list(&self, probe: &Probe, path: &str) -> Fact {
        let resolved = match self.resolve(path) {
            Ok(Some(resolved)) => resolved,
            Ok(None) => return Fact::read(probe.clone(), path, FactValue::Absent),
            Err(reason) => return Fact::failed(probe.clone(), path, reason),
        };
        match std::fs::read_dir(resolved) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                Fact::read(probe.clone(), path, FactValue::List(names))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Fact::read(probe.clone(), path, FactValue::Absent)
            }
            Err(error) => Fact::failed(probe.clone(), path, error.to_string()),
        }
    }

    /// A file's text with trailing whitespace trimmed; `Absent` when it does not exist. Only a
    /// regular file is read, at most [`MAX_FILE_BYTES`]: a device node or a FIFO could block.
    fn read_text(&self, path: &str) -> Result<FactValue, String> {
        Ok(match self.read_bytes(path, MAX_FILE_BYTES)? {
            Some(bytes) => FactValue::Text(String::from_utf8_lossy(&bytes).trim_end().to_owned()),
            None => FactValue::Absent,
        })
    }

    /// A regular file's bytes, at most `limit`; `None` when it does not exist.
    fn read_bytes(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        let Some(resolved) = self.resolve(path)? else {
            return Ok(None);
        };
        match crate::fsio::read_regular(&resolved, limit, "file") {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.not_found => Ok(None),
            Err(error) => Err(error.cause),
        }
    }

    /// A file's ELF facts; `None` when it does not exist.
    fn read_elf(&self, path: &str) -> Result<Option<ElfInfo>, String> {
        match self.read_bytes(path, MAX_ELF_BYTES)? {
            None => Ok(None),
            Some(bytes) => super::elf::parse(&bytes).map(Some),
        }
    }

    /// The `elf` fact: the headers' facts, and whether the interpreter exists in this filesystem.
    fn elf(&self, probe: &Probe, path: &str) -> Fact {
        let info = match self.read_elf(path) {
            Ok(Some(info)) => info,
            Ok(None) => return Fact::read(probe.clone(), path, FactValue::Absent),
            Err(reason) => return Fact::failed(probe.clone(), path, reason),
        };
        let present = match &info.interpreter {
            // Libraries to load and no loader to load them: exec runs it without them.
            None if !info.needed.is_empty() => Some(false),
            None => None,
            Some(interp) if !interp.starts_with('/') => Some(false),
            Some(interp) => match self.resolve(interp) {
                Ok(Some(resolved)) => Some(resolved.is_file()),
                Ok(None) => Some(false),
                Err(reason) => return Fact::failed(probe.clone(), path, reason),
            },
        };
        let glibc_provided = if !info.is_static() || !info.glibc_needed.is_empty() {
            super::elf::libc_candidates(&info)
                .iter()
                .find_map(|candidate| match self.read_elf(candidate) {
                    Ok(Some(libc)) if libc.machine == info.machine => {
                        libc.libc_record().ok().and_then(|r| match r.field("max") {
                            Some(FactValue::Text(max)) => Some(max.clone()),
                            _ => None,
                        })
                    }
                    _ => None,
                })
        } else {
            None
        };
        Fact::read(probe.clone(), path, info.record(present, glibc_provided))
    }

    fn command(&self, probe: &Probe, argv: &[String]) -> Fact {
        let source = argv.join(" ");
        if !self.runs_commands() {
            return Fact::failed(
                probe.clone(),
                source,
                "needs this machine itself; nothing from an OS tree or a mounted host root is ever run",
            );
        }
        match run_command(argv) {
            Ok(None) => Fact::read(probe.clone(), source, FactValue::Absent),
            Ok(Some(output)) => Fact::read(
                probe.clone(),
                source,
                command_record(output.status, &output.stdout, &output.stderr),
            ),
            Err(reason) => Fact::failed(probe.clone(), source, reason),
        }
    }
}

impl TargetFiles for HostFs {
    fn read_file(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        self.read_bytes(path, limit)
            .map_err(|reason| format!("{path}: {reason}"))
    }

    fn exists(&self, path: &str) -> Result<bool, String> {
        Ok(self.resolve(path)?.is_some_and(|p| p.exists()))
    }

    fn list(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        HostFs::list(self, path)
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn canonical(&self, path: &str) -> String {
        let real = match self.mode {
            Mode::Live => std::fs::canonicalize(path).ok(),
            _ => self.resolve(path).ok().flatten(),
        };
        real.and_then(|real| {
            let inside = real.strip_prefix(&self.root).ok()?;
            Some(format!("/{}", inside.display()))
        })
        .unwrap_or_else(|| path.to_owned())
    }
}

/// Whether a path is the running kernel's own (/proc, and /sys but its cgroup mount, which a
/// pod sees through its cgroup namespace): read from this process in host-root mode.
fn is_kernel_path(absolute: &str) -> bool {
    let under = |dir: &str| absolute == dir || absolute.starts_with(&format!("{dir}/"));
    under("/proc") || (under("/sys") && !under("/sys/fs/cgroup"))
}

/// Whether a folder's entries (other than `.` and `..`) report their file type through
/// getdents; `None` when it has no other entry to tell by.
fn d_type_support(folder: &Path) -> Result<Option<bool>, String> {
    let fd = rustix::fs::open(
        folder,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut dir =
        rustix::fs::Dir::read_from(&fd).map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut seen = 0usize;
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|e| format!("{}: {e}", folder.display()))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if entry.file_type() == rustix::fs::FileType::Unknown {
            return Ok(Some(false));
        }
        seen += 1;
        if seen >= 64 {
            break;
        }
    }
    Ok((seen > 0).then_some(true))
}

/// The modules of one kernel, by name (dashes as underscores, as the kernel names them).
pub(super) struct ModuleIndex {
    source: String,
    loaded: std::collections::BTreeSet<String>,
    builtin: std::collections::BTreeSet<String>,
    installed: std::collections::BTreeSet<String>,
}

impl ModuleIndex {
    /// Builds the index from what the host holds: `/proc/modules` (live hosts), the kernel's
    /// `modules.builtin` and `modules.dep`, or else the module files found in its folder.
    pub(super) fn new(
        live: bool,
        dir: &str,
        proc_modules: Option<&str>,
        builtin: Option<&str>,
        dep: Option<&str>,
        files: Option<std::collections::BTreeSet<String>>,
    ) -> Result<ModuleIndex, String> {
        let first_fields = |text: &str, separator: char| -> std::collections::BTreeSet<String> {
            text.lines()
                .filter_map(|line| line.split(separator).next())
                .filter(|field| !field.trim().is_empty())
                .map(module_name)
                .collect()
        };
        if live && proc_modules.is_none() && builtin.is_none() && dep.is_none() && files.is_none() {
            return Err(format!(
                "this kernel has no loadable module support (no /proc/modules, no {dir}): its features are judged by its config"
            ));
        }
        Ok(ModuleIndex {
            source: if live {
                format!("/proc/modules, {dir}")
            } else {
                dir.to_owned()
            },
            loaded: proc_modules
                .map(|t| first_fields(t, ' '))
                .unwrap_or_default(),
            builtin: builtin.map(|t| first_fields(t, ':')).unwrap_or_default(),
            installed: dep
                .map(|t| first_fields(t, ':'))
                .or(files)
                .unwrap_or_default(),
        })
    }

    /// The fact for one module.
    pub(super) fn fact(&self, probe: &Probe, name: &str) -> Fact {
        let state = if self.loaded.contains(name) {
            Some("loaded")
        } else if self.builtin.contains(name) {
            Some("builtin")
        } else if self.installed.contains(name) {
            Some("not-loaded")
        } else {
            None
        };
        let value = state.map_or(FactValue::Absent, |s| FactValue::Text(s.to_owned()));
        Fact::read(probe.clone(), self.source.clone(), value)
    }
}

/// What the `file` probe reads of a file: stat(2) with symbolic links followed, and whether the
/// path itself is a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStat {
    /// `st_mode`: the type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// The major and minor numbers of `st_rdev` (a device's; 0 for other types).
    pub major: u32,
    pub minor: u32,
    /// Whether the path's last component is a symbolic link (lstat).
    pub symlink: bool,
}

/// The record of a `file` fact: `type` (`regular`, `directory`, `char-device`, `block-device`,
/// `fifo`, `socket`, from the mode's type bits as stat(1) names them; links are followed, so a
/// link shows as what it leads to, and one that leads nowhere makes the fact absent), `major` and
/// `minor` (a device's numbers, `0` for other types), `symlink` (`yes` when the path itself is a
/// symbolic link), `kind` (`file`, `directory` or `other`: the coarse type of suites before
/// kernel-features 1.2.0), `mode` (permission bits, four octal digits), `uid`, `gid` and `size`.
pub(super) fn file_record(stat: &FileStat) -> FactValue {
    const TYPE_BITS: u32 = 0o170_000;
    let (file_type, kind) = match stat.mode & TYPE_BITS {
        0o040_000 => ("directory", "directory"),
        0o100_000 => ("regular", "file"),
        0o120_000 => ("symlink", "other"),
        0o020_000 => ("char-device", "other"),
        0o060_000 => ("block-device", "other"),
        0o010_000 => ("fifo", "other"),
        0o140_000 => ("socket", "other"),
        _ => ("unknown", "other"),
    };
    let fields = [
        ("type", file_type.to_owned()),
        ("major", stat.major.to_string()),
        ("minor", stat.minor.to_string()),
        (
            "symlink",
            if stat.symlink { "yes" } else { "no" }.to_owned(),
        ),
        ("kind", kind.to_owned()),
        ("mode", format!("{:04o}", stat.mode & 0o7777)),
        ("uid", stat.uid.to_string()),
        ("gid", stat.gid.to_string()),
        ("size", stat.size.to_string()),
    ];
    FactValue::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), FactValue::Text(v)))
            .collect(),
    )
}

pub(super) fn is_module_file(file_name: &str) -> bool {
    [".ko", ".ko.xz", ".ko.gz", ".ko.zst"]
        .iter()
        .any(|suffix| file_name.ends_with(suffix))
}

/// `kernel/fs/overlayfs/overlay.ko.xz` and `overlay` both to `overlay`; dashes to underscores.
pub(super) fn module_name(path: &str) -> String {
    let file_name = path.trim().rsplit('/').next().unwrap_or(path);
    let stem = [".ko.xz", ".ko.gz", ".ko.zst", ".ko"]
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix))
        .unwrap_or(file_name);
    stem.replace('-', "_")
}

const NO_KERNEL_IN_TREE: &str = "no kernel found in this tree (looked for /boot/config-*, /lib/modules/*/, /usr/lib/modules/*/, /usr/lib/ostree-boot/config-*, /boot/ostree/*/config-*, /snap/*/current/config-*, and a kernel build's .config with include/config/kernel.release)";

/// Where a running kernel's config is looked for, in this order (`*` is any folder): moby's
/// check-config.sh places (`/proc/config.gz`, `/boot/config-R`, the build tree's `.config`, last),
/// and where image-based OSes keep it: `/usr/lib/modules/R/config` and `/lib/modules/R/config`
/// (Fedora, Fedora CoreOS and RHEL CoreOS, bootc images, Arch), `/usr/lib/ostree-boot/config-R`
/// and `/boot/ostree/*/config-R` (ostree deployments: RHEL Atomic Host), and the kernel snap's
/// `config-R` (Ubuntu Core: `/snap/pc-kernel/current/config-R`).
pub(super) fn kernel_config_places(release: &str) -> [String; 8] {
    [
        "/proc/config.gz".to_owned(),
        format!("/boot/config-{release}"),
        format!("/usr/lib/modules/{release}/config"),
        format!("/lib/modules/{release}/config"),
        format!("/usr/lib/ostree-boot/config-{release}"),
        format!("/boot/ostree/*/config-{release}"),
        format!("/snap/*/current/config-{release}"),
        format!("/lib/modules/{release}/build/.config"),
    ]
}

/// The paths a place stands for on this machine: itself, or for one `*` segment each folder
/// there (sorted).
fn expand_place(place: &str) -> Vec<String> {
    let Some((parent, rest)) = place.split_once("/*/") else {
        return vec![place.to_owned()];
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| format!("{parent}/{name}/{rest}"))
        .collect()
}

/// Resolves an absolute path inside `root` as if `root` were `/`: `..` stops at the root and a
/// symbolic link, absolute or relative, is followed within the tree. `None` when a component
/// does not exist (or is not a directory where one is needed).
pub(super) fn resolve_in_tree(root: &Path, absolute: &str) -> Result<Option<PathBuf>, String> {
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, Path::new(absolute));
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = std::iter::once(root.as_os_str())
            .chain(resolved.iter().map(OsString::as_os_str))
            .chain(std::iter::once(part.as_os_str()))
            .collect();
        match std::fs::symlink_metadata(&candidate) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(format!(
                        "{absolute}: too many levels of symbolic links in the tree"
                    ));
                }
                let target = std::fs::read_link(&candidate).map_err(|e| e.to_string())?;
                if target.is_absolute() {
                    resolved.clear();
                }
                push_components(&mut pending, &target);
            }
            Ok(_) => resolved.push(part),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None)
            }
            Err(error) => return Err(format!("{absolute}: {error}")),
        }
    }
    Ok(Some(
        std::iter::once(root.as_os_str())
            .chain(resolved.iter().map(OsString::as_os_str))
            .collect(),
    ))
}

/// Pushes a path's components onto a stack so that the first component is popped first.
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// os-release's `KEY=value` lines, with shell quoting removed.
pub(super) fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(value);
            let mut out = String::new();
            let mut chars = unquoted.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            (key.trim().to_owned(), out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_from_paths_and_files() {
        assert_eq!(module_name("kernel/fs/overlayfs/overlay.ko.xz"), "overlay");
        assert_eq!(
            module_name("kernel/net/bridge/br_netfilter.ko"),
            "br_netfilter"
        );
        assert_eq!(module_name("nf-nat.ko.zst"), "nf_nat");
        assert_eq!(module_name("overlay"), "overlay");
        assert!(is_module_file("veth.ko.gz") && !is_module_file("modules.dep"));
    }

    #[test]
    fn tree_paths_resolve_inside_the_tree() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "ID=x\n").unwrap();
        std::os::unix::fs::symlink("/usr/lib/os-release", root.join("etc/abs")).unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/rel")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../etc/passwd", root.join("etc/out"))
            .unwrap();
        let inside = Some(root.join("usr/lib/os-release"));
        assert_eq!(resolve_in_tree(root, "/etc/abs").unwrap(), inside);
        assert_eq!(resolve_in_tree(root, "/etc/rel").unwrap(), inside);
        assert_eq!(resolve_in_tree(root, "/../../etc/abs").unwrap(), inside);
        assert_eq!(
            resolve_in_tree(root, "/etc/out").unwrap(),
            None,
            "clamped at the tree's root"
        );
        assert_eq!(resolve_in_tree(root, "/etc/abs/below").unwrap(), None);
    }

    #[test]
    fn os_release_unquotes_values() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID='12'\n# comment\nNAME=\"a \\\"b\\\"\"\n";
        let map = parse_os_release(text);
        assert_eq!(map["ID"], "debian");
        assert_eq!(map["VERSION_ID"], "12");
        assert_eq!(map["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(map["NAME"], "a \"b\"");
    }
}
