//! Image targets, named as skopeo names them: `oci:DIR[:TAG]` (an OCI image layout),
//! `oci-archive:FILE[:TAG]` (a tar of one) and `docker-archive:FILE` (the output of
//! `docker save`). Read-only: an archive is extracted, and the layers are unpacked (whiteouts
//! applied), into a temporary folder of the run that is removed when the gather ends. The
//! unpacked tree answers file probes through [`HostFs`] in tree mode, so every path is resolved
//! inside it and nothing from the image is run.
//!
//! Image probes (`image-integrity`, `image-config`, `image-label`, `image`) are answered from
//! the metadata: every digest is verified streaming ([`verify`]), signatures are checked against
//! a containers-policy.json ([`policy`]).

mod attest;
mod layout;
pub mod policy;
mod registry;
mod storage;
mod unpack;
mod verify;

pub use registry::RegistryOptions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::host::{resolve_in_tree, HostFs};
use super::{Gathered, Target, TargetError};
use crate::facts::{Fact, FactSet, FactValue, ProbeSet};
use crate::model::{Probe, TargetKind};
use layout::Image;

/// Options for image targets: the policy signatures are judged by, and where signatures are.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// A containers-policy.json (`--policy`).
    pub policy: Option<PathBuf>,
    /// Signature files given on the command line (`--signature`).
    pub signatures: Vec<PathBuf>,
    /// Lookaside folders in registries.d's layout (`--lookaside`).
    pub lookaside: Vec<PathBuf>,
    /// The public key attestations are verified with (`--attestation-key`).
    pub attestation_key: Option<PathBuf>,
    /// The Docker reference the image is judged as (`--param image-reference=`), when its tag or
    /// archive does not name one.
    pub reference: Option<String>,
    /// How `docker://` images are fetched: credentials, TLS, registries.d, time limits.
    pub registry: RegistryOptions,
}

/// Which kind of image a target address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Oci,
    OciArchive,
    DockerArchive,
    /// `docker://`, a registry.
    Docker,
    /// `containers-storage:`, podman's and buildah's local store.
    Storage,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Oci => "oci",
            Transport::OciArchive => "oci-archive",
            Transport::DockerArchive => "docker-archive",
            Transport::Docker => "docker",
            Transport::Storage => "containers-storage",
        }
    }
}

/// A `docker://` target's reference and the manifest or index it was resolved to when it was
/// opened (or why it could not be).
#[derive(Debug)]
struct Remote {
    reference: registry::DockerReference,
    resolved: Result<registry::Document, String>,
}

/// An image, read when it is gathered.
#[derive(Debug)]
pub struct ImageTarget {
    name: String,
    address: String,
    transport: Transport,
    path: PathBuf,
    tag: Option<String>,
    options: ImageOptions,
    remote: Option<Remote>,
    /// A `containers-storage:` target's image, found when it was opened (or why not).
    stored: Option<Result<storage::Found, String>>,
}

/// Whether an address names an image target.
pub fn is_image_address(address: &str) -> bool {
    [
        "oci:",
        "oci-archive:",
        "docker-archive:",
        "docker://",
        "containers-storage:",
    ]
    .iter()
    .any(|prefix| address.starts_with(prefix))
}

/// Opens an image address; nothing is read until the gather.
pub fn open(address: &str, options: &ImageOptions) -> Result<ImageTarget, TargetError> {
    let fail = |reason: &str| TargetError {
        target: address.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(rest) = address.strip_prefix("docker://") {
        let reference = registry::DockerReference::parse(rest).map_err(|e| fail(&e))?;
        let resolved = registry::resolve(&reference, &options.registry);
        return Ok(ImageTarget {
            name: rest.to_owned(),
            address: address.to_owned(),
            transport: Transport::Docker,
            path: PathBuf::from(reference.identity()),
            tag: reference.tag.clone(),
            options: options.clone(),
            remote: Some(Remote {
                reference,
                resolved,
            }),
            stored: None,
        });
    }
    if let Some(rest) = address.strip_prefix("containers-storage:") {
        let reference = storage::StorageReference::parse(rest).map_err(|e| fail(&e))?;
        return Ok(ImageTarget {
            name: reference.image.clone(),
            address: address.to_owned(),
            transport: Transport::Storage,
            path: PathBuf::new(),
            tag: None,
            options: options.clone(),
            remote: None,
            stored: Some(storage::find(&reference)),
        });
    }
    let (transport, rest) = if let Some(rest) = address.strip_prefix("oci:") {
        (Transport::Oci, rest)
    } else if let Some(rest) = address.strip_prefix("oci-archive:") {
        (Transport::OciArchive, rest)
    } else if let Some(rest) = address.strip_prefix("docker-archive:") {
        (Transport::DockerArchive, rest)
    } else {
        return Err(fail("not an image address"));
    };
    // As containers/image does: the path ends at the first `:`.
    let (path, tag) = match rest.split_once(':') {
        Some((path, tag)) if transport != Transport::DockerArchive => {
            (path, Some(tag.to_owned()).filter(|t| !t.is_empty()))
        }
        Some((path, _)) => (path, None),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(fail("names no path"));
    }
    let base = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_owned());
    let name = match &tag {
        Some(tag) => format!("{base}:{tag}"),
        None => base,
    };
    Ok(ImageTarget {
        name,
        address: address.to_owned(),
        transport,
        path: PathBuf::from(path),
        tag,
        options: options.clone(),
        remote: None,
        stored: None,
    })
}

impl Target for ImageTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TargetKind {
        TargetKind::Image
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        let fail = |reason: String| TargetError {
            target: self.address.clone(),
            reason,
        };
        // Everything the run writes for this image goes here, and goes away with it.
        let temp = tempfile::Builder::new()
            .prefix("hostcert-image-")
            .tempdir()
            .map_err(|e| fail(format!("cannot make a temporary folder: {e}")))?;
        let mut fetched = None;
        let mut stored_checks = None;
        let mut image = match self.transport {
            Transport::Storage => match &self.stored {
                Some(Ok(found)) => {
                    storage::read(found, temp.path(), layout::read_oci).map(|read| {
                        stored_checks = Some(read.checks);
                        read.image
                    })
                }
                Some(Err(reason)) => Err(reason.clone()),
                None => Err("names no image".to_owned()),
            },
            Transport::Docker => match &self.remote {
                Some(Remote {
                    reference,
                    resolved: Ok(top),
                }) => registry::read(
                    reference,
                    &self.options.registry,
                    top,
                    temp.path(),
                    layout::read_oci,
                )
                .map(|read| {
                    fetched = Some(read.registry);
                    read.image
                }),
                Some(Remote {
                    resolved: Err(reason),
                    ..
                }) => Err(reason.clone()),
                None => Err("names no registry reference".to_owned()),
            },
            Transport::Oci => layout::read_oci(&self.path, self.tag.as_deref()),
            Transport::OciArchive | Transport::DockerArchive => {
                let extracted = temp.path().join("archive");
                std::fs::create_dir(&extracted)
                    .map_err(|e| fail(format!("cannot make a temporary folder: {e}")))?;
                layout::extract_archive(&self.path, &extracted).and_then(|()| {
                    if self.transport == Transport::OciArchive {
                        layout::read_oci(&extracted, self.tag.as_deref())
                    } else {
                        layout::read_docker(&extracted)
                    }
                })
            }
        }
        .map_err(|reason| fail(format!("{} image: {reason}", self.transport.name())))?;
        if let Some(reference) = self
            .options
            .reference
            .as_ref()
            .filter(|_| fetched.is_none())
        {
            image.reference = Some(reference.clone());
        }
        let wants_integrity = probes.iter().any(|p| matches!(p, Probe::ImageIntegrity(_)));
        // The files are unpacked only when a probe reads them.
        let needs_files = probes.iter().any(|p| match p {
            Probe::ImageInfo(key) => matches!(
                key.as_str(),
                "user" | "licenses" | "packages" | "sbom" | "modified-package-files"
            ),
            Probe::ImageIntegrity(_) | Probe::ImageConfig(_) | Probe::ImageLabel(_) => false,
            Probe::KernelRelease | Probe::Architecture => false,
            Probe::OsRelease(key) => key != "ID",
            _ => true,
        });
        // A registry's layers are fetched (and so verified) whenever the gather reads them.
        let checks = match (&fetched, stored_checks) {
            (_, Some(checks)) => checks,
            (Some(registry), None) if wants_integrity || needs_files => {
                registry.layers(&image.layers)
            }
            (None, None) if wants_integrity => verify::verify_layers(&image.layers),
            _ => Vec::new(),
        };
        // Signatures and attestations kept in the registry join the image's index entries, and
        // its lookaside signatures a lookaside folder, where the policy and attestation code
        // look for them.
        let mut options = self.options.clone();
        let mut signature_error = None;
        if let Some(registry) = &fetched {
            let wants = registry::Wants {
                signatures: probes.contains(&Probe::ImageInfo("signature".to_owned())),
                attestations: probes.contains(&Probe::ImageInfo("provenance".to_owned())),
                sboms: probes.contains(&Probe::ImageInfo("sbom".to_owned())),
            };
            match registry.attach(&mut image, &self.options.registry, wants, temp.path()) {
                Ok(folder) => options.lookaside.extend(folder),
                Err(reason) => signature_error = Some(reason),
            }
        }
        let rootfs = temp.path().join("rootfs");
        let mut modified = Vec::new();
        let files: Result<HostFs, String> = if needs_files {
            std::fs::create_dir(&rootfs)
                .map_err(|e| format!("cannot make a temporary folder: {e}"))
                .and_then(|()| unpack::unpack(&image.layers, &rootfs))
                .map(|changed| {
                    modified = changed;
                    HostFs::tree(rootfs.clone(), None)
                })
        } else {
            Err("the image's files were not unpacked: no check of this run reads them".to_owned())
        };
        if let Err(reason) = &files {
            if needs_files {
                return Err(fail(format!("cannot unpack the image: {reason}")));
            }
        }
        let mut facts = FactSet::default();
        let mut hostname = None;
        let file_probes: ProbeSet = probes
            .iter()
            .filter(|p| !p.is_image() && !matches!(p, Probe::Architecture | Probe::KernelRelease))
            .cloned()
            .collect();
        match &files {
            Ok(host) => {
                let gathered = host.gather(&file_probes);
                hostname = gathered.hostname;
                for fact in gathered.facts.iter() {
                    facts.insert(fact.clone());
                }
            }
            Err(reason) => {
                for probe in &file_probes {
                    facts.insert(Fact::failed(
                        probe.clone(),
                        probe.to_string(),
                        reason.clone(),
                    ));
                }
            }
        }
        let context = Context {
            image: &image,
            checks: &checks,
            rootfs: files.is_ok().then_some(rootfs.as_path()),
            options: &options,
            signature_error: signature_error.as_deref(),
            transport: self.transport,
            location: &self.path,
            modified: &modified,
        };
        for probe in probes {
            if let Some(fact) = context.fact(probe) {
                facts.insert(fact);
            }
        }
        drop(temp);
        Ok(Gathered { hostname, facts })
    }
}

/// What image probes are answered from.
struct Context<'a> {
    image: &'a Image,
    checks: &'a [verify::LayerCheck],
    rootfs: Option<&'a Path>,
    options: &'a ImageOptions,
    /// Why the image's signatures could not be looked up where registries.d says they are.
    signature_error: Option<&'a str>,
    transport: Transport,
    /// The layout folder or archive file the user named (policy scopes refer to it).
    location: &'a Path,
    /// Files of lower layers that later layers replaced or deleted.
    modified: &'a [unpack::Modified],
}

impl Context<'_> {
    fn fact(&self, probe: &Probe) -> Option<Fact> {
        let image = self.image;
        let read =
            |source: String, value: FactValue| Some(Fact::read(probe.clone(), source, value));
        match probe {
            Probe::KernelRelease => Some(Fact::failed(
                probe.clone(),
                "image",
                "an image has no kernel: it runs on its host's",
            )),
            Probe::Architecture => {
                let arch = image.config.get("architecture").and_then(Value::as_str);
                match arch {
                    Some(arch) => read(
                        "config architecture".to_owned(),
                        FactValue::Text(
                            match arch {
                                "amd64" => "x86_64",
                                "arm64" => "aarch64",
                                "386" => "i686",
                                other => other,
                            }
                            .to_owned(),
                        ),
                    ),
                    None => Some(Fact::failed(
                        probe.clone(),
                        "config",
                        "the config names no architecture",
                    )),
                }
            }
            Probe::ImageIntegrity(scope) => {
                let mut problems: Vec<String> = Vec::new();
                let blobs = image.checked + image.layers.len();
                if scope == "blobs" {
                    problems.extend(image.problems.iter().cloned());
                    problems.extend(self.checks.iter().flat_map(|c| c.blob.iter().cloned()));
                } else {
                    problems.extend(self.checks.iter().flat_map(|c| c.diff_id.iter().cloned()));
                }
                let source = match &image.manifest_digest {
                    Some(digest) => format!("{blobs} blobs from manifest {digest}"),
                    None => format!("{blobs} files of the archive"),
                };
                read(
                    source,
                    FactValue::Text(if problems.is_empty() {
                        "ok".to_owned()
                    } else {
                        problems.join("; ")
                    }),
                )
            }
            Probe::ImageConfig(pointer) => {
                let value = match image.config.pointer(pointer) {
                    None | Some(Value::Null) => FactValue::Absent,
                    Some(Value::String(text)) => FactValue::Text(text.clone()),
                    Some(other) => FactValue::Text(other.to_string()),
                };
                read(format!("config {pointer}"), value)
            }
            Probe::ImageLabel(name) => {
                let value = self
                    .labels()
                    .get(name)
                    .map_or(FactValue::Absent, |v| FactValue::Text(v.clone()));
                read("config /config/Labels".to_owned(), value)
            }
            Probe::ImageInfo(key) => Some(self.derived(probe, key)),
            _ => None,
        }
    }

    fn labels(&self) -> BTreeMap<String, String> {
        self.image
            .config
            .pointer("/config/Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn derived(&self, probe: &Probe, key: &str) -> Fact {
        let image = self.image;
        let read = |source: &str, value: FactValue| Fact::read(probe.clone(), source, value);
        let text = |t: &str| FactValue::Text(t.to_owned());
        let failed = |source: &str, reason: String| Fact::failed(probe.clone(), source, reason);
        match key {
            "layer-count" => read(
                "manifest layers",
                FactValue::Text(image.layers.len().to_string()),
            ),
            "tag" => read(
                "the target's tag",
                image.tag.as_deref().map_or(FactValue::Absent, text),
            ),
            "reference" => read(
                "the image's Docker reference",
                image.reference.as_deref().map_or(FactValue::Absent, text),
            ),
            "manifest-digest" => read(
                "manifest",
                image
                    .manifest_digest
                    .as_deref()
                    .map_or(FactValue::Absent, text),
            ),
            "base-image" => {
                for key in [
                    "org.opencontainers.image.base.name",
                    "org.opencontainers.image.base.digest",
                ] {
                    if let Some(value) = image.annotations.get(key) {
                        return read(&format!("manifest annotation {key}"), text(value));
                    }
                    if let Some(value) = self.labels().get(key) {
                        return read(&format!("config label {key}"), text(value));
                    }
                }
                read("manifest annotations, config labels", FactValue::Absent)
            }
            "provenance" => {
                match attest::provenance(image, self.options.attestation_key.as_deref()) {
                    Ok((source, value)) => read(&source, value),
                    Err(reason) => failed("attestations", reason),
                }
            }
            "signature" if self.signature_error.is_some() => failed(
                "registries.d",
                self.signature_error.unwrap_or_default().to_owned(),
            ),
            "signature" => {
                match policy::judge(image, self.transport.name(), self.location, self.options) {
                    Ok((source, verdict)) => read(&source, text(&verdict)),
                    Err(reason) => failed("containers-policy.json", reason),
                }
            }
            _ => {
                let Some(root) = self.rootfs else {
                    return failed(
                        "image files",
                        "the image's files could not be unpacked".to_owned(),
                    );
                };
                match key {
                    "user" => match user(image, root) {
                        Ok((source, value)) => read(&source, value),
                        Err(reason) => failed("config /config/User", reason),
                    },
                    "licenses" => match licenses(root) {
                        Ok(value) => read("/licenses", value),
                        Err(reason) => failed("/licenses", reason),
                    },
                    "packages" => match packages(root) {
                        Ok((source, value)) => read(&source, value),
                        Err(reason) => failed("package databases", reason),
                    },
                    "modified-package-files" => match modified_package_files(root, self.modified) {
                        Ok((source, value)) => read(&source, value),
                        Err(reason) => failed("package databases", reason),
                    },
                    "sbom" => read(
                        "cosign .sbom tags, referrers, SBOM files",
                        sbom(image, root).map_or(FactValue::Absent, FactValue::Text),
                    ),
                    _ => failed("image", format!("unknown image fact `{key}`")),
                }
            }
        }
    }
}

/// Reads a small text file of the unpacked image, resolved inside it.
fn read_tree_text(root: &Path, path: &str) -> Result<Option<String>, String> {
    let Some(resolved) = resolve_in_tree(root, path)? else {
        return Ok(None);
    };
    if !resolved.is_file() {
        return Ok(None);
    }
    let bytes = layout::read_bounded(&resolved, path)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The uid the image runs as: `User` from the config (`name`, `uid`, `name:group`, `uid:gid`),
/// names resolved through the image's /etc/passwd. Absent when no user is set (root).
fn user(image: &Image, root: &Path) -> Result<(String, FactValue), String> {
    let raw = image
        .config
        .pointer("/config/User")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    if raw.is_empty() {
        return Ok((
            "config /config/User (unset: root)".to_owned(),
            FactValue::Absent,
        ));
    }
    let user = raw.split(':').next().unwrap_or("");
    if !user.is_empty() && user.bytes().all(|b| b.is_ascii_digit()) {
        return Ok((
            format!("config /config/User `{raw}`"),
            FactValue::Text(user.to_owned()),
        ));
    }
    let passwd = read_tree_text(root, "/etc/passwd")?.ok_or_else(|| {
        format!(
            "user `{}` cannot be resolved: the image has no /etc/passwd",
            layout::shorten(user)
        )
    })?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 3 && fields[0] == user {
            return Ok((
                format!("config /config/User `{raw}` via /etc/passwd"),
                FactValue::Text(fields[2].to_owned()),
            ));
        }
    }
    Err(format!(
        "user `{}` is not in the image's /etc/passwd",
        layout::shorten(user)
    ))
}

/// How many files /licenses holds (links resolved inside the image); absent without it.
fn licenses(root: &Path) -> Result<FactValue, String> {
    let Some(dir) = resolve_in_tree(root, "/licenses")? else {
        return Ok(FactValue::Absent);
    };
    if !dir.is_dir() {
        return Ok(FactValue::Absent);
    }
    let mut count = 0usize;
    let mut stack = vec![dir];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
        {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                count += 1;
            }
            if count > 100_000 {
                return Ok(FactValue::Text(count.to_string()));
            }
        }
    }
    Ok(FactValue::Text(count.to_string()))
}

/// The installed packages' names, sorted, space-separated: from dpkg's status and apk's
/// installed database. RPM's database is not read (it is SQLite or Berkeley DB).
fn packages(root: &Path) -> Result<(String, FactValue), String> {
    let mut names = std::collections::BTreeSet::new();
    let mut sources = Vec::new();
    if let Some(status) = read_tree_text_large(root, "/var/lib/dpkg/status")? {
        sources.push("/var/lib/dpkg/status");
        for stanza in status.split("\n\n") {
            let mut name = None;
            let mut installed = false;
            for line in stanza.lines() {
                if let Some(value) = line.strip_prefix("Package:") {
                    name = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("Status:") {
                    installed = value.trim().ends_with(" installed");
                }
            }
            if let (Some(name), true) = (name, installed) {
                names.insert(name);
            }
        }
    }
    if let Some(installed) = read_tree_text_large(root, "/lib/apk/db/installed")? {
        sources.push("/lib/apk/db/installed");
        for line in installed.lines() {
            if let Some(name) = line.strip_prefix("P:") {
                names.insert(name.trim().to_owned());
            }
        }
    }
    if sources.is_empty() {
        for rpmdb in ["/var/lib/rpm", "/usr/lib/sysimage/rpm"] {
            if resolve_in_tree(root, rpmdb)?.is_some_and(|p| p.is_dir()) {
                return Err(format!(
                    "the image has an RPM database ({rpmdb}), which hostcert does not read yet"
                ));
            }
        }
        return Ok((
            "dpkg status, apk installed (neither present)".to_owned(),
            FactValue::Text(String::new()),
        ));
    }
    Ok((
        sources.join(", "),
        FactValue::Text(names.into_iter().collect::<Vec<_>>().join(" ")),
    ))
}

/// The files installed by a package in one layer that a later layer replaced or deleted, except
/// where that layer also rewrote the package's file list (the package was upgraded there):
/// `none`, or `PATH (package NAME, layer N)` items. dpkg's `info/*.list` and apk's installed
/// database say which package owns a file.
fn modified_package_files(
    root: &Path,
    modified: &[unpack::Modified],
) -> Result<(String, FactValue), String> {
    let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut sources = Vec::new();
    if let Some(info) = resolve_in_tree(root, "/var/lib/dpkg/info")?.filter(|p| p.is_dir()) {
        sources.push("/var/lib/dpkg/info/*.list");
        let entries = std::fs::read_dir(&info).map_err(|e| e.to_string())?;
        for entry in entries.filter_map(Result::ok).take(100_000) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(package) = name.strip_suffix(".list") else {
                continue;
            };
            let list = format!("/var/lib/dpkg/info/{name}");
            let Some(text) = read_tree_text_large(root, &list)? else {
                continue;
            };
            for line in text.lines().filter(|l| l.starts_with('/')) {
                owners.insert(line.to_owned(), (package.to_owned(), list.clone()));
            }
        }
    }
    if let Some(text) = read_tree_text_large(root, "/lib/apk/db/installed")? {
        sources.push("/lib/apk/db/installed");
        let (mut package, mut dir) = (String::new(), String::new());
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("P:") {
                package = name.to_owned();
            } else if let Some(d) = line.strip_prefix("F:") {
                dir = d.to_owned();
            } else if let Some(file) = line.strip_prefix("R:") {
                owners.insert(
                    format!("/{dir}/{file}"),
                    (package.clone(), "/lib/apk/db/installed".to_owned()),
                );
            }
        }
    }
    if sources.is_empty() {
        return Ok((
            "dpkg and apk file lists (neither present)".to_owned(),
            FactValue::Text("none".to_owned()),
        ));
    }
    let found: Vec<String> = modified
        .iter()
        .filter_map(|change| {
            let (package, list) = owners.get(&change.path)?;
            let upgraded = modified
                .iter()
                .any(|other| other.layer == change.layer && other.path == *list);
            (!upgraded).then(|| {
                format!(
                    "{} (package {package}, layer {})",
                    change.path, change.layer
                )
            })
        })
        .collect();
    Ok((
        sources.join(", "),
        FactValue::Text(if found.is_empty() {
            "none".to_owned()
        } else {
            found.join(", ")
        }),
    ))
}

/// Like [`read_tree_text`], with a 64 MiB bound for package databases.
fn read_tree_text_large(root: &Path, path: &str) -> Result<Option<String>, String> {
    use std::io::Read;
    let Some(resolved) = resolve_in_tree(root, path)? else {
        return Ok(None);
    };
    if !resolved.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&resolved)
        .and_then(|f| f.take((64 << 20) + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() > 64 << 20 {
        return Err(format!("{path} is larger than 64 MiB"));
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Where an SBOM for the image is: a cosign `.sbom` tag or an SBOM artifact in the layout's
/// index, or an SPDX or CycloneDX file in the image.
fn sbom(image: &Image, root: &Path) -> Option<String> {
    if let Some(digest) = &image.manifest_digest {
        let tag = format!("{}.sbom", digest.replace(':', "-"));
        if image
            .index_entries
            .iter()
            .any(|(name, _)| name.as_deref() == Some(tag.as_str()))
        {
            return Some(format!("cosign tag {tag}"));
        }
    }
    for (_, entry) in &image.index_entries {
        let artifact = entry
            .get("artifactType")
            .and_then(Value::as_str)
            .unwrap_or("");
        if artifact.contains("spdx") || artifact.contains("cyclonedx") {
            return Some(format!("referrer of type {artifact}"));
        }
    }
    for dir in [
        "/",
        "/sbom",
        "/usr/share/sbom",
        "/root/buildinfo/content_manifests",
    ] {
        let Ok(Some(path)) = resolve_in_tree(root, dir) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.ends_with(".spdx.json")
                    || n.ends_with(".spdx")
                    || n.ends_with(".cdx.json")
                    || n == "bom.json"
                    || n == "sbom.json"
            })
            .collect();
        names.sort();
        if let Some(name) = names.first() {
            return Some(format!("{}/{name}", dir.trim_end_matches('/')));
        }
    }
    None
}
