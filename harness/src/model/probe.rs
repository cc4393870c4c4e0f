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
    /// A file's metadata: a record with `kind`, `mode` (octal), `uid`, `gid` and `size`, or absent.
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
    /// A fact an image target derives: `layer-count`, `tag`, `reference`, `manifest-digest`,
    /// `user` (the user it runs as, names resolved through its /etc/passwd), `licenses`, `packages`,
    /// `base-image`, `sbom`, `signature` (the containers-policy.json verdict) or `provenance` (the
    /// builder id of a verified SLSA provenance attestation) or `modified-package-files`.
    /// Image targets only.
    Image(String),
}

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
            Probe::ImageIntegrity(_) => "image-integrity",
            Probe::ImageConfig(_) => "image-config",
            Probe::ImageLabel(_) => "image-label",
            Probe::Image(_) => "image",
        }
    }

    /// Whether only an image target can answer this probe.
    pub fn is_image(&self) -> bool {
        matches!(
            self,
            Probe::ImageIntegrity(_)
                | Probe::ImageConfig(_)
                | Probe::ImageLabel(_)
                | Probe::Image(_)
        )
    }

    /// The word an absent value of this probe is shown as.
    pub fn absent_word(&self) -> &'static str {
        match self {
            Probe::KernelConfig(_) => "not set",
            Probe::Command(_) => "command not found",
            Probe::KernelModule(_) => "no such module",
            _ => "absent",
        }
    }
}

/// Shown in evidence: `CONFIG_NET_NS`, `sysctl net.ipv4.ip_forward`, `file-content /proc/...`.
impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::KernelConfig(symbol) => write!(f, "CONFIG_{symbol}"),
            Probe::KernelRelease | Probe::Architecture => f.write_str(self.kind()),
            Probe::OsRelease(key)
            | Probe::File(key)
            | Probe::FileContent(key)
            | Probe::DirList(key)
            | Probe::Sysctl(key)
            | Probe::KernelModule(key)
            | Probe::ImageIntegrity(key)
            | Probe::ImageConfig(key)
            | Probe::ImageLabel(key)
            | Probe::Image(key) => write!(f, "{} {key}", self.kind()),
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
    "image-integrity",
    "image-config",
    "image-label",
    "image",
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
                    "image" => Probe::Image(map.next_value()?),
                    "kernel-release" | "architecture" => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        if kind == "architecture" {
                            Probe::Architecture
                        } else {
                            Probe::KernelRelease
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
            Probe::Image(key) => {
                if !IMAGE_KEYS.contains(&key.as_str()) {
                    return Err(format!(
                        "unknown image fact `{key}` (expected one of {})",
                        IMAGE_KEYS.join(", ")
                    ));
                }
                Probe::Image(key)
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
