//! Probes: the name of one fact to read from a target.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One fact to read from a target. Probes are plain data: the target decides how to read them
/// (from its own filesystem, over SSH, from a snapshot), and the same probe asked by many checks
/// is read once.
///
/// In YAML a probe is a one-key map (`{kernel-config: NET_NS}`) or, for probes without an
/// argument, a bare word (`kernel-release`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// A kernel config symbol (without `CONFIG_`): `y`, `m`, a string or number, or absent
    /// (`not set`). Read from the target's kernel config, whose path is the fact's source.
    KernelConfig(String),
    /// The target kernel's release, as `uname -r` prints it.
    KernelRelease,
    /// The target's machine architecture, as `uname -m` prints it (`x86_64`, `aarch64`).
    Architecture,
    /// One key of os-release (`ID`, `VERSION_ID`, ...), absent when the key is not there.
    OsRelease(String),
    /// A file's metadata, symbolic links followed (stat): a record with `type` (`regular`,
    /// `directory`, `char-device`, `block-device`, `fifo`, `socket`), `major` and `minor` (a
    /// device's numbers, `0` otherwise), `symlink` (`yes` when the path itself is a link), `kind`
    /// (`file`, `directory`, `other`), `mode` (octal), `uid`, `gid` and `size`, or absent.
    File(String),
    /// A file's text (trailing whitespace trimmed), or absent.
    FileContent(String),
    /// The sorted names in a directory, or absent.
    DirList(String),
    /// A sysctl by its dotted name (`net.ipv4.ip_forward`), read from `/proc/sys`; absent when the
    /// kernel has no such key.
    Sysctl(String),
    /// A command run on the target: a record with `exit-status`, `stdout` and `stderr`, or absent
    /// when the program does not exist. Live targets only.
    Command(Vec<String>),
    /// A kernel module by name (`overlay`, `br_netfilter`): `loaded`, `builtin`, or `not-loaded`
    /// (its file is installed but it is not loaded; in an OS tree, where nothing is loaded,
    /// every installed module is `not-loaded`), or absent when the kernel has no such module.
    /// Read from `/proc/modules`, `modules.builtin` and `modules.dep` of the target's kernel.
    KernelModule(String),
    /// ELF facts of a file, read and never run: a record with `class` (`32`, `64`), `machine`
    /// (as `uname -m` spells it), `interpreter` (PT_INTERP or `none`), `interpreter-present`
    /// (`yes`, `no`, or `none` without one; resolved in the same filesystem), `abi-min-kernel`
    /// (from the NT_GNU_ABI_TAG note, `0` without one), `glibc-needed` (the highest `GLIBC_x.y`
    /// version it needs, `0` for none), `static` (`yes`, `no`) and `libc` (`glibc`, `musl`,
    /// `none`), and `glibc-provided` (the highest `GLIBC_x.y` version of the `libc.so.6` beside
    /// its interpreter or in the usual folders, `none` when there is none). Absent when the file
    /// does not exist.
    Elf(String),
    /// The `GLIBC_x.y` version definitions of a C library: a record with `max` (the highest) and
    /// `versions` (all, space-separated, ascending). Absent when the file does not exist.
    LibcVersions(String),
    /// The OpenSSH version a binary carries (`9.2p1`), found by scanning it for `OpenSSH_`; never
    /// run. Absent when the file or the string is not there.
    OpensshVersion(String),
    /// A probe read from the run's `--image` rather than from the target itself: pair checks
    /// compare an image's facts with its host's. Without `--image` the fact is "not given" and
    /// checks that read it are skipped.
    Image(Box<Probe>),
    /// What the runtime seccomp profile given by `--param seccomp-profile=FILE` (a Docker or
    /// OCI seccomp JSON, read on the machine hostcert runs on) answers for one system call:
    /// `allow`, `errno EPERM`, `errno ENOSYS`, `kill`, `trap`, `log`... Without the parameter the
    /// fact is "not given" and checks that read it are skipped.
    SeccompProfile(String),
    /// The facts of hostcert's probe program (`hostcert-probe`), run on live targets: a record
    /// of `NAME` = `ok` or `errno NAME (N)` for each kernel interface it exercises (see
    /// `probe/src/main.rs`).
    ProbeProgram,
    /// The real run of the pair's image on a local host: its DHCP client gets a lease from a
    /// real dnsmasq and its sshd accepts an ssh2 login with a PTY, in namespaces torn down
    /// afterwards (see `harness/src/targets/live_run.rs`). A record; "not given" (the check is
    /// skipped) without `--image`, on SSH hosts, and when not root.
    LiveRun,
    /// An image's integrity, `blobs` (every blob from the index down exists with the size, the
    /// sha256 and a known media type its descriptor gives) or `diff-ids` (each layer's
    /// uncompressed sha256 equals its diff_id): `ok`, or the problems, each naming the blob.
    /// Image targets only.
    ImageIntegrity(String),
    /// A value of an image's config by JSON pointer (`/config/User`): a string as it is, other
    /// JSON compact; absent when the pointer leads nowhere. Image targets only.
    ImageConfig(String),
    /// One label of an image's config (`Config.Labels`), absent when unset. Image targets only.
    ImageLabel(String),
    /// A fact an image target derives (`image-info`): `layer-count`, `tag`, `reference`, `manifest-digest`,
    /// `user` (the user it runs as, names resolved through its /etc/passwd), `licenses`, `packages`,
    /// `base-image`, `sbom`, `signature` (the containers-policy.json verdict) or `provenance` (the
    /// builder id of a verified SLSA provenance attestation) or `modified-package-files`, or
    /// `based-on-ubi` (a record of what the image's files and labels say about a UBI base), or
    /// `index-digest` (the index the image was chosen from, absent when none).
    /// Image targets only.
    ImageInfo(String),
    /// The mount at a mount point, from the mount table of a live host
    /// (`/proc/self/mountinfo`, escapes such as `\040` decoded): a record with `fs-type`,
    /// `source`, `options` (the mount's own), `super-options` (the filesystem's), `read-only`
    /// (`yes`, `no`), `root`, `id`, `parent-id`, `device` (`major:minor`), `propagation` (the
    /// optional fields, such as `shared:1`) and `stacked` (how many mounts share the point; the
    /// record is the last mounted, the one in view). Absent when nothing is mounted exactly
    /// there. Live targets only.
    Mounts(String),
    /// One container runtime's installation (see [`RUNTIMES`]): a record with `version` (the
    /// upstream version: from the package database's version, or from the binary's Go build
    /// info or version string), `package`, `package-version` and `package-manager` (`dpkg`,
    /// `rpm`, `apk`, `none` for a binary installed by hand), `path`, `fixes` (the CVE ids the
    /// package's changelog names, space-separated, `none` without), `go-version`, `module` and
    /// `module-version` (a Go binary's build info, `none` otherwise), `version-source` and
    /// `other-copies`. Absent when the runtime is not installed. Read from the package
    /// databases and the binaries, which are never run.
    Runtime(String),
    /// Every container runtime found (see [`RUNTIMES`]): a record of name to
    /// `VERSION (SOURCE)`; empty when none is installed.
    Runtimes,
    /// The cgroup layout the host runs (`v2`, `hybrid` or `v1`): the filesystem mounted at
    /// /sys/fs/cgroup on a live host; in an OS tree, what its init system mounts at boot (systemd's
    /// version and the kernel command line it is configured with).
    CgroupMode,
    /// A user's subordinate id ranges (`/etc/subuid`, `/etc/subgid`, entries by name or uid):
    /// a record with `uid`, `subuid-count`, `subgid-count` (ids in all ranges),
    /// `subuid-ranges` and `subgid-ranges` (`START:COUNT ...`). The argument may be a suite
    /// parameter (`$user`). Absent when the user does not exist.
    SubidRanges(String),
    /// The cgroup controllers systemd delegates to a user's manager (`user@UID.service`): a record
    /// with `uid`, `delegate` (the controllers its unit and drop-ins' `Delegate=` give,
    /// space-separated, `all` for `yes`) and, on a live host where the user's manager runs,
    /// `controllers` (its cgroup's `cgroup.controllers`; `not running` otherwise). The argument
    /// may be a suite parameter (`$user`). Absent when the user does not exist.
    UserCgroup(String),
    /// The file capabilities of a file (its `security.capability` extended attribute, as
    /// getcap(8) reads it): a record with `permitted`, `inheritable` (capability names,
    /// space-separated, `none` when empty), `effective` (`yes`, `no`) and `rootid`. Absent when
    /// the file has none or does not exist.
    FileCaps(String),
    /// The filesystem holding a path (statfs), on a live host: a record with `type` (`xfs`,
    /// `ext4`, `btrfs`, `overlay`, `tmpfs`, ... or the magic number in hex), `magic`, and `d-type`
    /// (`yes` when the folder's entries report their file type, which overlayfs needs: XFS made
    /// with `ftype=0` reports `unknown` types and answers `no`; `unknown` when the folder has no
    /// entry to tell). Absent when the path does not exist.
    Filesystem(String),
    /// How hostcert booted a `vm:` target: a record with `accelerator` (`kvm`, `tcg`),
    /// `boot-secs` (from starting QEMU to the first SSH login), `key-injection` (`nocloud`,
    /// `ignition`, `none`), `host-key` (the pinned key and how it was learned), `console-log`
    /// (where the serial console's log was kept), `console-tail` and `console-problems` (kernel
    /// oopses, BUGs and warnings the console showed, `none` without), `machine`, `disk`,
    /// `ssh-port`. "Not given" (checks skipped) on every other kind of target.
    Boot,
    /// The installed packages' names, sorted, from every package database of the target: dpkg's
    /// status, apk's installed database and the rpm database (SQLite, Berkeley DB or NDB, found
    /// where rpm's macros put it). A database that is there but cannot be read is an error.
    Packages,
    /// One installed package: a record with `name`, `version` (as its package manager prints
    /// it: rpm's `[epoch:]version-release`, dpkg's and apk's version), `manager` (`dpkg`, `rpm`,
    /// `apk`), `architecture`, and for rpm packages `nevra` and `vendor`; absent when it is not
    /// installed. The argument may be a suite parameter (`$package`). `package-at-least` and
    /// `package-below` compare its version as its package manager does.
    Package(String),
}

/// The container runtimes the `runtime` probe knows.
pub const RUNTIMES: &[&str] = &[
    "runc",
    "crun",
    "containerd",
    "cri-o",
    "conmon",
    "podman",
    "docker",
    "kata",
];

/// The keys of the `image` probe.
pub const IMAGE_KEYS: &[&str] = &[
    "layer-count",
    "tag",
    "reference",
    "manifest-digest",
    "user",
    "licenses",
    "packages",
    "base-image",
    "sbom",
    "signature",
    "provenance",
    "modified-package-files",
    "based-on-ubi",
    "index-digest",
];

impl Probe {
    /// The probes every target answers for every run, because applicability needs them.
    pub fn identity() -> [Probe; 3] {
        [
            Probe::KernelRelease,
            Probe::Architecture,
            Probe::OsRelease("ID".to_owned()),
        ]
    }

    /// The kebab-case kind, as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::KernelConfig(_) => "kernel-config",
            Probe::KernelRelease => "kernel-release",
            Probe::Architecture => "architecture",
            Probe::OsRelease(_) => "os-release",
            Probe::File(_) => "file",
            Probe::FileContent(_) => "file-content",
            Probe::DirList(_) => "dir-list",
            Probe::Sysctl(_) => "sysctl",
            Probe::Command(_) => "command",
            Probe::KernelModule(_) => "kernel-module",
            Probe::Elf(_) => "elf",
            Probe::LibcVersions(_) => "libc-versions",
            Probe::OpensshVersion(_) => "openssh-version",
            Probe::Image(_) => "image",
            Probe::SeccompProfile(_) => "seccomp-profile",
            Probe::ProbeProgram => "probe-program",
            Probe::LiveRun => "live-run",
            Probe::ImageIntegrity(_) => "image-integrity",
            Probe::ImageConfig(_) => "image-config",
            Probe::ImageLabel(_) => "image-label",
            Probe::ImageInfo(_) => "image-info",
            Probe::Mounts(_) => "mounts",
            Probe::Runtime(_) => "runtime",
            Probe::Runtimes => "runtimes",
            Probe::CgroupMode => "cgroup-mode",
            Probe::SubidRanges(_) => "subid-ranges",
            Probe::UserCgroup(_) => "user-cgroup",
            Probe::FileCaps(_) => "file-caps",
            Probe::Filesystem(_) => "filesystem",
            Probe::Boot => "boot",
            Probe::Packages => "packages",
            Probe::Package(_) => "package",
        }
    }

    /// The argument of a probe that may name a suite parameter (`{subid-ranges: $user}`), to be
    /// replaced by the parameter's value when a profile is resolved.
    pub fn parameter_argument_mut(&mut self) -> Option<&mut String> {
        match self {
            Probe::SubidRanges(argument)
            | Probe::UserCgroup(argument)
            | Probe::Package(argument)
                if argument.starts_with('$') =>
            {
                Some(argument)
            }
            _ => None,
        }
    }

    /// Whether only an image target can answer this probe.
    pub fn is_image(&self) -> bool {
        matches!(
            self,
            Probe::ImageIntegrity(_)
                | Probe::ImageConfig(_)
                | Probe::ImageLabel(_)
                | Probe::ImageInfo(_)
        )
    }

    /// The word an absent value of this probe is shown as.
    pub fn absent_word(&self) -> &'static str {
        match self {
            Probe::KernelConfig(_) => "not set",
            Probe::Command(_) => "command not found",
            Probe::KernelModule(_) => "no such module",
            Probe::Image(inner) => inner.absent_word(),
            _ => "absent",
        }
    }
}

/// What answers a probe, as every target kind sorts them: the one exhaustive classification
/// of [`Probe`], so a target matches on a dozen classes rather than listing every kind (and a
/// new kind is sorted here once, the compiler pointing at this match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeClass<'p> {
    /// A kernel config symbol: the target's kernel config.
    KernelConfig(&'p str),
    /// The kernel's release.
    KernelRelease,
    /// The machine's architecture.
    Architecture,
    /// A key of os-release.
    OsRelease(&'p str),
    /// Read from a root filesystem (files, folders, commands, kernel modules, binaries, the
    /// mount table, runtimes, cgroups, package databases): a live host, an OS tree, an image's
    /// unpacked files.
    Files,
    /// An image's own metadata (integrity, config, labels, derived facts).
    ImageMetadata(ImageMetadata<'p>),
    /// A pair's: a probe of the pair's image.
    PairImage(&'p Probe),
    /// A pair's: the runtime seccomp profile's action for a system call.
    SeccompProfile(&'p str),
    /// A pair's: the real run of its image on its host.
    LiveRun,
    /// A VM's boot record.
    Boot,
}

/// The probes an image answers from its metadata rather than its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageMetadata<'p> {
    /// [`Probe::ImageIntegrity`].
    Integrity(&'p str),
    /// [`Probe::ImageConfig`].
    Config(&'p str),
    /// [`Probe::ImageLabel`].
    Label(&'p str),
    /// [`Probe::ImageInfo`].
    Info(&'p str),
}

impl Probe {
    /// What answers this probe (see [`ProbeClass`]).
    pub fn class(&self) -> ProbeClass<'_> {
        match self {
            Probe::KernelConfig(symbol) => ProbeClass::KernelConfig(symbol),
            Probe::KernelRelease => ProbeClass::KernelRelease,
            Probe::Architecture => ProbeClass::Architecture,
            Probe::OsRelease(key) => ProbeClass::OsRelease(key),
            Probe::File(_)
            | Probe::FileContent(_)
            | Probe::DirList(_)
            | Probe::Sysctl(_)
            | Probe::Command(_)
            | Probe::KernelModule(_)
            | Probe::Elf(_)
            | Probe::LibcVersions(_)
            | Probe::OpensshVersion(_)
            | Probe::ProbeProgram
            | Probe::Mounts(_)
            | Probe::Runtime(_)
            | Probe::Runtimes
            | Probe::CgroupMode
            | Probe::SubidRanges(_)
            | Probe::UserCgroup(_)
            | Probe::FileCaps(_)
            | Probe::Filesystem(_)
            | Probe::Packages
            | Probe::Package(_) => ProbeClass::Files,
            Probe::ImageIntegrity(scope) => {
                ProbeClass::ImageMetadata(ImageMetadata::Integrity(scope))
            }
            Probe::ImageConfig(pointer) => {
                ProbeClass::ImageMetadata(ImageMetadata::Config(pointer))
            }
            Probe::ImageLabel(name) => ProbeClass::ImageMetadata(ImageMetadata::Label(name)),
            Probe::ImageInfo(key) => ProbeClass::ImageMetadata(ImageMetadata::Info(key)),
            Probe::Image(inner) => ProbeClass::PairImage(inner),
            Probe::SeccompProfile(syscall) => ProbeClass::SeccompProfile(syscall),
            Probe::LiveRun => ProbeClass::LiveRun,
            Probe::Boot => ProbeClass::Boot,
        }
    }
}

/// Shown in evidence: `CONFIG_NET_NS`, `sysctl net.ipv4.ip_forward`, `file-content /proc/...`.
impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::KernelConfig(symbol) => write!(f, "CONFIG_{symbol}"),
            Probe::KernelRelease
            | Probe::Architecture
            | Probe::ProbeProgram
            | Probe::LiveRun
            | Probe::Runtimes
            | Probe::CgroupMode
            | Probe::Boot
            | Probe::Packages => f.write_str(self.kind()),
            Probe::Image(inner) => write!(f, "image {inner}"),
            Probe::OsRelease(key)
            | Probe::File(key)
            | Probe::FileContent(key)
            | Probe::DirList(key)
            | Probe::Sysctl(key)
            | Probe::KernelModule(key)
            | Probe::Elf(key)
            | Probe::LibcVersions(key)
            | Probe::OpensshVersion(key)
            | Probe::SeccompProfile(key)
            | Probe::ImageIntegrity(key)
            | Probe::ImageConfig(key)
            | Probe::ImageLabel(key)
            | Probe::ImageInfo(key)
            | Probe::Mounts(key)
            | Probe::Runtime(key)
            | Probe::SubidRanges(key)
            | Probe::UserCgroup(key)
            | Probe::FileCaps(key)
            | Probe::Filesystem(key)
            | Probe::Package(key) => write!(f, "{} {key}", self.kind()),
            Probe::Command(argv) => write!(f, "command `{}`", argv.join(" ")),
        }
    }
}

const PROBE_KINDS: &[&str] = &[
    "kernel-config",
    "kernel-release",
    "architecture",
    "os-release",
    "file",
    "file-content",
    "dir-list",
    "sysctl",
    "command",
    "kernel-module",
    "elf",
    "libc-versions",
    "openssh-version",
    "image",
    "seccomp-profile",
    "probe-program",
    "live-run",
    "image-integrity",
    "image-config",
    "image-label",
    "image-info",
    "mounts",
    "runtime",
    "runtimes",
    "cgroup-mode",
    "subid-ranges",
    "user-cgroup",
    "file-caps",
    "filesystem",
    "boot",
    "packages",
    "package",
];

/// Read by hand rather than derived: serde_yaml 0.9 reads derived enums only from YAML tags
/// (`!kernel-config NET_NS`), and suites are friendlier as `{kernel-config: NET_NS}`. The
/// arguments are validated inside the visitor, where the YAML position is still known.
impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Probe, D::Error> {
        use serde::de::{Error, MapAccess, Visitor};
        struct ProbeVisitor;
        impl<'de> Visitor<'de> for ProbeVisitor {
            type Value = Probe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a probe such as `{kernel-config: NET_NS}` or `kernel-release`")
            }
            fn visit_str<E: Error>(self, kind: &str) -> Result<Probe, E> {
                match kind {
                    "kernel-release" => Ok(Probe::KernelRelease),
                    "architecture" => Ok(Probe::Architecture),
                    "probe-program" => Ok(Probe::ProbeProgram),
                    "live-run" => Ok(Probe::LiveRun),
                    "runtimes" => Ok(Probe::Runtimes),
                    "cgroup-mode" => Ok(Probe::CgroupMode),
                    "boot" => Ok(Probe::Boot),
                    "packages" => Ok(Probe::Packages),
                    other if PROBE_KINDS.contains(&other) => Err(E::custom(format!(
                        "probe `{other}` needs an argument: `{{{other}: ...}}`"
                    ))),
                    other => Err(E::unknown_variant(other, PROBE_KINDS)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
                let Some(kind) = map.next_key::<String>()? else {
                    return Err(A::Error::custom("an empty map is not a probe"));
                };
                let probe = match kind.as_str() {
                    "kernel-config" => Probe::KernelConfig(map.next_value()?),
                    "os-release" => Probe::OsRelease(map.next_value()?),
                    "file" => Probe::File(map.next_value()?),
                    "file-content" => Probe::FileContent(map.next_value()?),
                    "dir-list" => Probe::DirList(map.next_value()?),
                    "sysctl" => Probe::Sysctl(map.next_value()?),
                    "command" => Probe::Command(map.next_value()?),
                    "kernel-module" => Probe::KernelModule(map.next_value()?),
                    "image-integrity" => Probe::ImageIntegrity(map.next_value()?),
                    "image-config" => Probe::ImageConfig(map.next_value()?),
                    "image-label" => Probe::ImageLabel(map.next_value()?),
                    "image-info" => Probe::ImageInfo(map.next_value()?),
                    "elf" => Probe::Elf(map.next_value()?),
                    "libc-versions" => Probe::LibcVersions(map.next_value()?),
                    "openssh-version" => Probe::OpensshVersion(map.next_value()?),
                    "seccomp-profile" => Probe::SeccompProfile(map.next_value()?),
                    "mounts" => Probe::Mounts(map.next_value()?),
                    "runtime" => Probe::Runtime(map.next_value()?),
                    "subid-ranges" => Probe::SubidRanges(map.next_value()?),
                    "user-cgroup" => Probe::UserCgroup(map.next_value()?),
                    "file-caps" => Probe::FileCaps(map.next_value()?),
                    "filesystem" => Probe::Filesystem(map.next_value()?),
                    "package" => Probe::Package(map.next_value()?),
                    "image" => {
                        let inner: Probe = map.next_value()?;
                        if matches!(
                            inner,
                            Probe::Image(_)
                                | Probe::SeccompProfile(_)
                                | Probe::ProbeProgram
                                | Probe::LiveRun
                                | Probe::Boot
                        ) {
                            return Err(A::Error::custom(format!(
                                "`{}` cannot be read from an image",
                                inner.kind()
                            )));
                        }
                        Probe::Image(Box::new(inner))
                    }
                    "kernel-release" | "architecture" | "probe-program" | "live-run"
                    | "runtimes" | "cgroup-mode" | "boot" | "packages" => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        match kind.as_str() {
                            "packages" => Probe::Packages,
                            "architecture" => Probe::Architecture,
                            "boot" => Probe::Boot,
                            "probe-program" => Probe::ProbeProgram,
                            "live-run" => Probe::LiveRun,
                            "runtimes" => Probe::Runtimes,
                            "cgroup-mode" => Probe::CgroupMode,
                            _ => Probe::KernelRelease,
                        }
                    }
                    other => return Err(A::Error::unknown_variant(other, PROBE_KINDS)),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "a probe has exactly one kind; `{extra}` is a second one"
                    )));
                }
                probe.validated().map_err(A::Error::custom)
            }
        }
        deserializer.deserialize_any(ProbeVisitor)
    }
}

impl Probe {
    /// Checks a probe's argument: absolute paths without `..`, well-formed symbols and names.
    fn validated(self) -> Result<Probe, String> {
        let absolute = |kind: &str, path: String| {
            if path.starts_with('/') && !path.split('/').any(|part| part == "..") {
                Ok(path)
            } else {
                Err(format!(
                    "{kind} path `{path}` must be absolute and free of `..`"
                ))
            }
        };
        Ok(match self {
            Probe::KernelConfig(symbol) => {
                let symbol = symbol.strip_prefix("CONFIG_").unwrap_or(&symbol).to_owned();
                let valid = !symbol.is_empty()
                    && symbol
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if !valid {
                    return Err(format!(
                        "invalid kernel config symbol `{symbol}` (expected upper-case such as NET_NS)"
                    ));
                }
                Probe::KernelConfig(symbol)
            }
            Probe::KernelRelease => Probe::KernelRelease,
            Probe::Architecture => Probe::Architecture,
            Probe::OsRelease(key) => {
                if key.is_empty()
                    || !key
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    return Err(format!(
                        "invalid os-release key `{key}` (expected such as VERSION_ID)"
                    ));
                }
                Probe::OsRelease(key)
            }
            Probe::File(path) => Probe::File(absolute("file", path)?),
            Probe::FileContent(path) => Probe::FileContent(absolute("file-content", path)?),
            Probe::DirList(path) => Probe::DirList(absolute("dir-list", path)?),
            Probe::Elf(path) => Probe::Elf(absolute("elf", path)?),
            Probe::LibcVersions(path) => Probe::LibcVersions(absolute("libc-versions", path)?),
            Probe::OpensshVersion(path) => {
                Probe::OpensshVersion(absolute("openssh-version", path)?)
            }
            Probe::Mounts(path) => {
                let path = absolute("mounts", path)?;
                // `/sys/fs/cgroup/` is the mount point `/sys/fs/cgroup`.
                let trimmed = path.trim_end_matches('/');
                Probe::Mounts(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
            }
            Probe::Runtime(name) => {
                if !RUNTIMES.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown runtime `{name}` (expected one of {})",
                        RUNTIMES.join(", ")
                    ));
                }
                Probe::Runtime(name)
            }
            Probe::Runtimes => Probe::Runtimes,
            Probe::CgroupMode => Probe::CgroupMode,
            Probe::SubidRanges(user) => Probe::SubidRanges(user_argument("subid-ranges", user)?),
            Probe::UserCgroup(user) => Probe::UserCgroup(user_argument("user-cgroup", user)?),
            Probe::FileCaps(path) => Probe::FileCaps(absolute("file-caps", path)?),
            Probe::Filesystem(path) => Probe::Filesystem(absolute("filesystem", path)?),
            Probe::Packages => Probe::Packages,
            Probe::Package(name) => {
                let body = name.strip_prefix('$');
                let valid = match body {
                    Some(parameter) => super::Name::try_from(parameter.to_owned()).is_ok(),
                    None => {
                        !name.is_empty()
                            && name.len() <= 256
                            && !name.starts_with('-')
                            && name.chars().all(|c| {
                                c.is_ascii_alphanumeric()
                                    || matches!(c, '.' | '_' | '+' | '-' | '~' | '^')
                            })
                    }
                };
                if !valid {
                    return Err(format!(
                        "invalid package name `{name}` (expected such as openssh-server, or a parameter such as $package)"
                    ));
                }
                Probe::Package(name)
            }
            Probe::Image(inner) => Probe::Image(Box::new(inner.validated()?)),
            Probe::ProbeProgram => Probe::ProbeProgram,
            Probe::LiveRun => Probe::LiveRun,
            Probe::Boot => Probe::Boot,
            Probe::SeccompProfile(syscall) => {
                if syscall.is_empty()
                    || !syscall
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    return Err(format!(
                        "invalid system call name `{syscall}` (expected such as clone3)"
                    ));
                }
                Probe::SeccompProfile(syscall)
            }
            Probe::Sysctl(name) => {
                let valid = !name.is_empty()
                    && !name
                        .split(['.', '/'])
                        .any(|part| part.is_empty() || part == "..")
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
                if !valid {
                    return Err(format!(
                        "invalid sysctl name `{name}` (expected such as net.ipv4.ip_forward)"
                    ));
                }
                Probe::Sysctl(name)
            }
            Probe::KernelModule(name) => {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return Err(format!(
                        "invalid kernel module name `{name}` (expected such as br_netfilter)"
                    ));
                }
                Probe::KernelModule(name.replace('-', "_"))
            }
            Probe::ImageIntegrity(scope) => {
                if scope != "blobs" && scope != "diff-ids" {
                    return Err(format!(
                        "invalid image-integrity scope `{scope}` (expected blobs or diff-ids)"
                    ));
                }
                Probe::ImageIntegrity(scope)
            }
            Probe::ImageConfig(pointer) => {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(format!(
                        "image-config `{pointer}` must be a JSON pointer such as /config/User"
                    ));
                }
                Probe::ImageConfig(pointer)
            }
            Probe::ImageLabel(name) => {
                if name.is_empty() || name.chars().any(char::is_control) {
                    return Err(format!("invalid image label name `{name}`"));
                }
                Probe::ImageLabel(name)
            }
            Probe::ImageInfo(key) => {
                if !IMAGE_KEYS.contains(&key.as_str()) {
                    return Err(format!(
                        "unknown image-info fact `{key}` (expected one of {})",
                        IMAGE_KEYS.join(", ")
                    ));
                }
                Probe::ImageInfo(key)
            }
            Probe::Command(argv) => {
                if argv.first().is_none_or(|program| program.is_empty()) {
                    return Err(
                        "a command probe needs a program: `command: [uname, -m]`".to_owned()
                    );
                }
                Probe::Command(argv)
            }
        })
    }
}

/// A user argument: a user name or uid as /etc/passwd spells them, or `$parameter`.
fn user_argument(kind: &str, user: String) -> Result<String, String> {
    let (body, is_parameter) = match user.strip_prefix('$') {
        Some(name) => (name, true),
        None => (user.as_str(), false),
    };
    let valid = if is_parameter {
        super::Name::try_from(body.to_owned()).is_ok()
    } else {
        !body.is_empty()
            && body.len() <= 256
            && !body.starts_with('-')
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
    };
    if valid {
        Ok(user)
    } else {
        Err(format!(
            "{kind}: invalid user `{user}` (expected a user name, a uid or a parameter such as $user)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Probe, String> {
        crate::yaml::parse::<Probe>("t.yaml", yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn image_and_abi_probes_parse_and_validate() {
        assert_eq!(
            parse("{image: {elf: /usr/sbin/sshd}}").unwrap(),
            Probe::Image(Box::new(Probe::Elf("/usr/sbin/sshd".to_owned())))
        );
        assert_eq!(parse("probe-program").unwrap(), Probe::ProbeProgram);
        assert_eq!(parse("live-run").unwrap(), Probe::LiveRun);
        assert_eq!(
            parse("{seccomp-profile: clone3}").unwrap(),
            Probe::SeccompProfile("clone3".to_owned())
        );
        assert!(parse("{elf: usr/sbin/sshd}")
            .unwrap_err()
            .contains("must be absolute"));
        assert!(parse("{image: {elf: /a/../b}}").is_err());
        assert!(parse("{image: live-run}")
            .unwrap_err()
            .contains("cannot be read from an image"));
        assert!(parse("{image: {image: {elf: /x}}}").is_err());
        assert!(parse("{seccomp-profile: 'clone3; rm'}").is_err());
        let probe = Probe::Image(Box::new(Probe::OpensshVersion("/usr/sbin/sshd".to_owned())));
        assert_eq!(probe.to_string(), "image openssh-version /usr/sbin/sshd");
        let json = serde_json::to_string(&probe).unwrap();
        assert_eq!(json, r#"{"image":{"openssh-version":"/usr/sbin/sshd"}}"#);
        assert_eq!(serde_json::from_str::<Probe>(&json).unwrap(), probe);
    }
}
