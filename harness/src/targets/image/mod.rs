//! Image targets, named as skopeo names them: `oci:DIR[:TAG]` (an OCI image layout),
//! `oci-archive:FILE[:TAG]` (a tar of one), `docker-archive:FILE` (the output of
//! `docker save`), `docker://HOST/REPO[:TAG|@DIGEST]` (a registry, [`registry`]) and
//! `containers-storage:[DRIVER@ROOT]NAME[:TAG]` (podman's store, [`storage`]); the last two are
//! presented to the layout reader as OCI layouts. Read-only: an archive is extracted, and the layers are unpacked (whiteouts
//! applied), into a temporary folder of the run that is removed when the gather ends. The
//! unpacked tree answers file probes through [`HostFs`] in tree mode, so every path is resolved
//! inside it and nothing from the image is run.
//!
//! Image probes (`image-integrity`, `image-config`, `image-label`, `image`) are answered from
//! the metadata: every digest is verified streaming ([`verify`]), signatures are checked against
//! a containers-policy.json ([`policy`]).

mod attest;
mod descriptor;
mod json;
mod layout;
mod modified;
pub mod policy;
mod policy_config;
mod registry;
mod sbom;
mod storage;
mod ubi;
mod unpack;
mod user;
mod verify;

pub use descriptor::Platform;
pub use registry::RegistryOptions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::host::{resolve_in_tree, HostFs};
use super::{Gathered, Target, TargetError, Tree};
use crate::facts::{Fact, FactSet, FactValue, ProbeSet};
use crate::model::{ImageMetadata, Probe, ProbeClass, TargetKind};
use layout::{Image, Select};

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
    /// The platforms to read of a multi-platform index (`--platform`); empty: every platform,
    /// each its own target.
    pub platforms: Vec<Platform>,
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
#[derive(Debug, Clone)]
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
    /// Which image of an index this target reads.
    select: Select,
    /// Why the platform this target names cannot be read (`--platform` names one the index
    /// does not list).
    missing: Option<String>,
    /// A bootable container image (bootc: the label `containers.bootc=1` or
    /// `ostree.bootable=true`), whatever its transport: an OS tree (kind `os-tree`) with the
    /// kernel it ships in `/usr/lib/modules`.
    bootable: bool,
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

/// Opens an image address. When it names an image index, the index is read (bounded, without
/// extracting an archive) and every platform becomes its own target named `NAME[os/arch]`, or
/// only those `--platform` names; a platform asked for that the index does not list becomes a
/// target whose gather fails with the platforms it does list. Nothing else is read until the
/// gather; an index that cannot be read here is reported by the gather.
pub fn open(address: &str, options: &ImageOptions) -> Result<Vec<ImageTarget>, TargetError> {
    let fail = |reason: &str| TargetError {
        target: address.to_owned(),
        reason: reason.to_owned(),
    };
    let (transport, rest) = if let Some(rest) = address.strip_prefix("oci:") {
        (Transport::Oci, rest)
    } else if let Some(rest) = address.strip_prefix("oci-archive:") {
        (Transport::OciArchive, rest)
    } else if let Some(rest) = address.strip_prefix("docker-archive:") {
        (Transport::DockerArchive, rest)
    } else if let Some(rest) = address.strip_prefix("docker://") {
        (Transport::Docker, rest)
    } else if let Some(rest) = address.strip_prefix("containers-storage:") {
        (Transport::Storage, rest)
    } else {
        return Err(fail("not an image address"));
    };
    let mut remote = None;
    let mut stored = None;
    let (path, tag, name) = match transport {
        // A registry reference is resolved now: every target of the run reads the manifest or
        // index it names at this moment.
        Transport::Docker => {
            let reference = registry::DockerReference::parse(rest).map_err(|e| fail(&e))?;
            let resolved = registry::resolve(&reference, &options.registry);
            let tag = reference.tag.clone();
            let path = reference.identity();
            remote = Some(Remote {
                reference,
                resolved,
            });
            (path, tag, rest.to_owned())
        }
        Transport::Storage => {
            let reference = storage::StorageReference::parse(rest).map_err(|e| fail(&e))?;
            let found = storage::find(&reference);
            let tag = found.as_ref().ok().and_then(storage::Found::tag);
            stored = Some(found);
            (String::new(), tag, reference.image)
        }
        _ => {
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
            (path.to_owned(), tag, name)
        }
    };
    let path = path.as_str();
    let target = |name: String, select: Select, missing: Option<String>| {
        // A layout's config is read here (bounded), an archive's small members extracted, a
        // store's manifest and config read, and a registry's config fetched into the blob cache
        // the gather reads it from again.
        let read_oci = |root: &Path, tag: Option<&str>| layout::read_oci(root, tag, &select);
        let bootable = match (transport, &remote, &stored) {
            (Transport::Oci, _, _) => {
                read_oci(Path::new(path), tag.as_deref()).is_ok_and(|image| is_bootable(&image))
            }
            (Transport::OciArchive | Transport::DockerArchive, _, _) => bootable_as_read(|temp| {
                layout::extract_archive_metadata(Path::new(path), temp)?;
                match transport {
                    Transport::DockerArchive => layout::read_docker(temp, &select),
                    _ => read_oci(temp, tag.as_deref()),
                }
            }),
            (
                Transport::Docker,
                Some(Remote {
                    reference,
                    resolved: Ok(top),
                }),
                _,
            ) => bootable_as_read(|temp| {
                registry::read(reference, &options.registry, top, temp, read_oci)
                    .map(|fetched| fetched.image)
            }),
            (Transport::Storage, _, Some(Ok(found))) => bootable_as_read(|temp| {
                storage::read(found, temp, false, read_oci).map(|read| read.image)
            }),
            // Not found, or not resolved: the gather says why.
            (Transport::Docker | Transport::Storage, _, _) => false,
        };
        ImageTarget {
            name,
            address: address.to_owned(),
            transport,
            path: PathBuf::from(path),
            tag: tag.clone(),
            options: options.clone(),
            remote: remote.clone(),
            stored: stored.clone(),
            select,
            missing,
            bootable,
        }
    };
    let location = Path::new(path);
    let listed = match transport {
        Transport::Oci => layout::platforms_of(
            &|member| layout::read_bounded(&location.join(member), member),
            tag.as_deref(),
        ),
        Transport::OciArchive => layout::platforms_of(
            &|member| layout::archive_member(location, member),
            tag.as_deref(),
        ),
        Transport::Docker => match remote.as_ref().map(|r| &r.resolved) {
            Some(Ok(top)) => layout::platforms_of(
                &|member| registry::layout_file(top, tag.as_deref(), member),
                tag.as_deref(),
            ),
            _ => Ok(None),
        },
        Transport::DockerArchive | Transport::Storage => Ok(None),
    };
    let wanted = &options.platforms;
    let images = match listed {
        Ok(Some(images)) if !images.is_empty() => images,
        _ => {
            let select = if wanted.is_empty() {
                Select::Default
            } else {
                Select::Platforms(wanted.clone())
            };
            return Ok(vec![target(name, select, None)]);
        }
    };
    let entry = |image: &layout::IndexImage| {
        target(
            format!("{name}[{}]", image.label),
            Select::Entry(image.position, image.label.clone()),
            None,
        )
    };
    if wanted.is_empty() {
        return Ok(images.iter().map(entry).collect());
    }
    let mut targets: Vec<ImageTarget> = Vec::new();
    let mut taken = Vec::new();
    for platform in wanted {
        let matching: Vec<&layout::IndexImage> = images
            .iter()
            .filter(|i| i.platform.as_ref().is_some_and(|p| p.matches(platform)))
            .collect();
        if matching.is_empty() {
            let listed: Vec<&str> = images.iter().map(|i| i.label.as_str()).collect();
            targets.push(target(
                format!("{name}[{platform}]"),
                Select::Default,
                Some(format!(
                    "--platform {platform}: the image index lists no such platform (it lists {})",
                    listed.join(", ")
                )),
            ));
        }
        for image in matching {
            if !taken.contains(&image.position) {
                taken.push(image.position);
                targets.push(entry(image));
            }
        }
    }
    Ok(targets)
}

impl ImageTarget {
    /// The scopes a containers-policy.json looks the image up by, as its transport in
    /// containers/image lists them.
    fn policy_scopes(&self) -> Vec<String> {
        match (self.transport, &self.remote, &self.stored) {
            (Transport::Docker, Some(remote), _) => remote.reference.policy_scopes(),
            (Transport::Storage, _, Some(Ok(found))) => found.policy_scopes(),
            _ => policy::path_scopes(self.transport.name(), &self.path),
        }
    }
}

impl Target for ImageTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TargetKind {
        // A bootc image is an OS tree judged with the kernel it ships.
        if self.bootable {
            TargetKind::OsTree
        } else {
            TargetKind::Image
        }
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        self.read(probes, false).map(|(gathered, _)| gathered)
    }

    fn gather_keeping_tree(
        &self,
        probes: &ProbeSet,
        keep_tree: bool,
    ) -> Result<(Gathered, Result<Tree, String>), TargetError> {
        self.read(probes, keep_tree)
    }
}

impl ImageTarget {
    /// Reads the image once for every probe; with `keep_tree`, its files are unpacked (also when
    /// no probe reads them) and kept for a real run until the returned tree is dropped.
    fn read(
        &self,
        probes: &ProbeSet,
        keep_tree: bool,
    ) -> Result<(Gathered, Result<Tree, String>), TargetError> {
        let fail = |reason: String| TargetError {
            target: self.address.clone(),
            reason,
        };
        let kernel_probe = |p: &Probe| {
            matches!(
                p,
                Probe::KernelRelease
                    | Probe::Architecture
                    | Probe::KernelConfig(_)
                    | Probe::KernelModule(_)
            )
        };
        if let Some(reason) = &self.missing {
            return Err(fail(reason.clone()));
        }
        // Everything the run writes for this image goes here, and goes away with it.
        let temp = crate::temp::folder("image")
            .map_err(|e| fail(format!("cannot make a temporary folder: {e}")))?;
        let wants_integrity = probes.iter().any(|p| matches!(p, Probe::ImageIntegrity(_)));
        // The files are unpacked only when a probe reads them, or a real run mounts them.
        let needs_files = keep_tree || probes.iter().any(|p| reads_files(p, self.bootable));
        let layers_needed = wants_integrity || needs_files;
        let mut fetched = None;
        let mut stored_checks = None;
        let mut image = match self.transport {
            Transport::Storage => match &self.stored {
                Some(Ok(found)) => storage::read(found, temp.path(), layers_needed, |root, tag| {
                    layout::read_oci(root, tag, &self.select)
                })
                .map(|read| {
                    stored_checks = Some(read.checks);
                    read.image
                }),
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
                    |root, tag| layout::read_oci(root, tag, &self.select),
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
            Transport::Oci => layout::read_oci(&self.path, self.tag.as_deref(), &self.select),
            Transport::OciArchive | Transport::DockerArchive => {
                let extracted = temp.path().join("archive");
                std::fs::create_dir(&extracted)
                    .map_err(|e| fail(format!("cannot make a temporary folder: {e}")))?;
                layout::extract_archive(&self.path, &extracted).and_then(|()| {
                    if self.transport == Transport::OciArchive {
                        layout::read_oci(&extracted, self.tag.as_deref(), &self.select)
                    } else {
                        layout::read_docker(&extracted, &self.select)
                    }
                })
            }
        }
        .map_err(|reason| fail(format!("{} image: {reason}", self.transport.name())))?;
        // A registry's or a store's image has its own reference.
        let knows_reference = matches!(self.transport, Transport::Docker | Transport::Storage);
        if let Some(reference) = self.options.reference.as_ref().filter(|_| !knows_reference) {
            image.reference = Some(reference.clone());
        }
        // A registry's layers are fetched (and so verified) whenever the gather reads them.
        let checks = match (&fetched, stored_checks) {
            (_, Some(checks)) => checks,
            _ if image.broken.is_some() => Vec::new(),
            (Some(registry), None) if layers_needed => registry.layers(&image.layers),
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
        // A store keeps the signatures of the images it holds beside them.
        if let (Some(Ok(found)), Some(digest)) = (&self.stored, &image.manifest_digest) {
            if probes.contains(&Probe::ImageInfo("signature".to_owned())) {
                match storage::signatures(found, digest, &temp.path().join("signatures")) {
                    Ok(folder) => options.lookaside.extend(folder),
                    Err(reason) => signature_error = Some(reason),
                }
            }
        }
        // Files of an image whose digests do not hold are not the image's: they are not read,
        // and every fact that needs them says why. What was measured (integrity, config,
        // labels, signatures) is still reported.
        let untrusted = image.broken.clone().or_else(|| {
            image
                .problems
                .iter()
                .chain(checks.iter().flat_map(|c| c.blob.iter().chain(&c.diff_id)))
                .next()
                .cloned()
        });
        let rootfs = temp.path().join("rootfs");
        let history = temp.path().join("rpmdb-states");
        let mut unpacked = unpack::Unpacked::default();
        let files: Result<HostFs, String> = if !needs_files {
            Err("the image's files were not unpacked: no check of this run reads them".to_owned())
        } else if let Some(problem) = &untrusted {
            Err(format!(
                "the image's files are not read: the image fails integrity ({problem})"
            ))
        } else {
            std::fs::create_dir(&rootfs)
                .and_then(|()| std::fs::create_dir(&history))
                .map_err(|e| format!("cannot make a temporary folder: {e}"))
                .and_then(|()| unpack::unpack(&image.layers, &rootfs, &history))
                .and_then(|done| {
                    unpacked = done;
                    // A bootc image is judged with the kernel it ships (the newest, when it
                    // ships several).
                    let kernel = if self.bootable {
                        super::rootfs::find_kernels(&rootfs)?.pop()
                    } else {
                        None
                    };
                    Ok(HostFs::tree(rootfs.clone(), kernel))
                })
                .map_err(|reason| format!("cannot unpack the image: {reason}"))
        };
        let mut facts = FactSet::default();
        let mut hostname = None;
        let file_probes: ProbeSet = probes
            .iter()
            .filter(|p| {
                !p.is_image()
                    && (self.bootable || !matches!(p, Probe::Architecture | Probe::KernelRelease))
            })
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
            rootfs: files
                .as_ref()
                .map(|_| rootfs.as_path())
                .map_err(String::as_str),
            options: &options,
            signature_error: signature_error.as_deref(),
            transport: self.transport,
            scopes: self.policy_scopes(),
            unpacked: &unpacked,
        };
        // The image's digests are always reported: they identify what was certified (the
        // report's `image-digests`, the subjects of a signed attestation).
        let digests = crate::facts::image_digest_probes();
        for probe in probes.iter().chain(&digests) {
            if self.bootable && kernel_probe(probe) {
                continue;
            }
            if let Some(fact) = context.fact(probe) {
                facts.insert(fact);
            }
        }
        // A layer wrote an rpm database that the image no longer has: its packages' files are
        // there but cannot be listed, so every fact that needs the packages is an error.
        if let Some(reason) = files
            .as_ref()
            .ok()
            .and_then(|_| modified::removed_rpm_database(&rootfs, &unpacked))
        {
            for probe in probes {
                if super::package_list::reads_package_databases(probe) {
                    facts.insert(Fact::failed(
                        probe.clone(),
                        "package databases",
                        reason.clone(),
                    ));
                }
            }
        }
        let tree = match files {
            Ok(_) if keep_tree => {
                // The archive's copy is not needed by a real run: only the unpacked files stay.
                let _ = std::fs::remove_dir_all(temp.path().join("archive"));
                Ok(Tree::Unpacked {
                    root: rootfs,
                    folder: temp,
                })
            }
            Ok(_) => Err(NOT_KEPT.to_owned()),
            Err(reason) => Err(reason),
        };
        Ok((Gathered::complete(hostname, facts), tree))
    }
}

/// Why an image read without `keep_tree` has no tree.
const NOT_KEPT: &str = "the image's files were not kept: no pair of this run makes a real run";

/// Whether reading `probe` from an image needs its files unpacked (a bootable image's kernel
/// is in its files).
fn reads_files(probe: &Probe, bootable: bool) -> bool {
    match probe.class() {
        ProbeClass::ImageMetadata(ImageMetadata::Info(key)) => matches!(
            key,
            "user" | "licenses" | "packages" | "sbom" | "modified-package-files" | "based-on-ubi"
        ),
        ProbeClass::ImageMetadata(_) => false,
        ProbeClass::KernelRelease | ProbeClass::Architecture => bootable,
        ProbeClass::OsRelease(key) => key != "ID",
        // Read from the unpacked files, as from an OS tree.
        ProbeClass::KernelConfig(_) | ProbeClass::Files => true,
        // A pair's own probes, which an image target asked directly answers as "not given"
        // through the tree reader, so only when its files are there.
        ProbeClass::PairImage(_) | ProbeClass::SeccompProfile(_) | ProbeClass::LiveRun => true,
        // A VM's boot record, which the tree reader answers as "not given" for an image.
        ProbeClass::Boot => true,
    }
}

/// Whether the image `read` gives is bootable, `read` writing what it needs (an archive's
/// small members, a store's or a registry's layout) into a temporary folder of its own, removed
/// after. An image that cannot be read is not (its gather then says why).
fn bootable_as_read(read: impl FnOnce(&Path) -> Result<Image, String>) -> bool {
    let Ok(temp) = crate::temp::folder("image") else {
        return false;
    };
    read(temp.path()).is_ok_and(|image| is_bootable(&image))
}

/// Whether an image is a bootable container image (bootc): its config's label
/// `containers.bootc` is `1`, or `ostree.bootable` is `true`.
fn is_bootable(image: &Image) -> bool {
    let label = |name: &str| {
        image
            .config
            .pointer(&format!(
                "/config/Labels/{}",
                name.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    label("containers.bootc").as_deref() == Some("1")
        || label("ostree.bootable").as_deref() == Some("true")
}

/// What image probes are answered from.
struct Context<'a> {
    image: &'a Image,
    checks: &'a [verify::LayerCheck],
    /// The unpacked files, or why there are none.
    rootfs: Result<&'a Path, &'a str>,
    options: &'a ImageOptions,
    /// Why the image's signatures could not be looked up where registries.d says they are.
    signature_error: Option<&'a str>,
    transport: Transport,
    /// The policy scopes of the image, most specific first.
    scopes: Vec<String>,
    /// Files of lower layers that later layers replaced or deleted, and the rpm database after
    /// each layer that changed it.
    unpacked: &'a unpack::Unpacked,
}

/// The probes an image target answers from its metadata rather than its files.
#[derive(Clone, Copy)]
enum Metadata<'p> {
    Architecture,
    Integrity(&'p str),
    Config(&'p str),
    Label(&'p str),
    Info(&'p str),
}

impl Context<'_> {
    /// The fact of a probe answered from the image's metadata, `None` for one read from its
    /// files (by the tree reader) or a pair's own.
    fn fact(&self, probe: &Probe) -> Option<Fact> {
        let metadata = match probe.class() {
            ProbeClass::KernelRelease => {
                return Some(Fact::failed(
                    probe.clone(),
                    "image",
                    "an image has no kernel: it runs on its host's",
                ))
            }
            ProbeClass::Architecture => Metadata::Architecture,
            ProbeClass::ImageMetadata(ImageMetadata::Integrity(scope)) => {
                Metadata::Integrity(scope)
            }
            ProbeClass::ImageMetadata(ImageMetadata::Config(pointer)) => Metadata::Config(pointer),
            ProbeClass::ImageMetadata(ImageMetadata::Label(name)) => Metadata::Label(name),
            ProbeClass::ImageMetadata(ImageMetadata::Info(key)) => Metadata::Info(key),
            ProbeClass::KernelConfig(_)
            | ProbeClass::OsRelease(_)
            | ProbeClass::Files
            | ProbeClass::PairImage(_)
            | ProbeClass::SeccompProfile(_)
            | ProbeClass::LiveRun
            | ProbeClass::Boot => return None,
        };
        Some(self.metadata(probe, metadata))
    }

    fn metadata(&self, probe: &Probe, metadata: Metadata<'_>) -> Fact {
        let image = self.image;
        let read = |source: String, value: FactValue| Fact::read(probe.clone(), source, value);
        if let Some(broken) = &image.broken {
            // Only the integrity of what was read is known: it fails, the rest is an error.
            return match metadata {
                Metadata::Integrity("blobs") => read(
                    format!("{} blobs read before the chain broke", image.checked),
                    FactValue::Text(image.problems.join("; ")),
                ),
                Metadata::Integrity(_)
                | Metadata::Config(_)
                | Metadata::Label(_)
                | Metadata::Info(_)
                | Metadata::Architecture => Fact::failed(
                    probe.clone(),
                    "image metadata",
                    format!("the image's metadata cannot be read: {broken}"),
                ),
            };
        }
        match metadata {
            Metadata::Architecture => {
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
                    None => {
                        Fact::failed(probe.clone(), "config", "the config names no architecture")
                    }
                }
            }
            Metadata::Integrity(scope) => {
                let mut problems: Vec<String> = Vec::new();
                let blobs = image.checked + image.layers.len();
                if scope == "blobs" {
                    problems.extend(image.problems.iter().cloned());
                    problems.extend(self.checks.iter().flat_map(|c| c.blob.iter().cloned()));
                } else {
                    problems.extend(self.checks.iter().flat_map(|c| c.diff_id.iter().cloned()));
                }
                let mut source = match &image.manifest_digest {
                    Some(digest) => format!("{blobs} blobs from manifest {digest}"),
                    None => format!("{blobs} files of the archive"),
                };
                if let Some(platform) = &image.platform {
                    source = format!("{source} ({platform} of the index)");
                }
                read(
                    source,
                    FactValue::Text(if problems.is_empty() {
                        "ok".to_owned()
                    } else {
                        problems.join("; ")
                    }),
                )
            }
            Metadata::Config(pointer) => {
                let value = match image.config.pointer(pointer) {
                    None | Some(Value::Null) => FactValue::Absent,
                    Some(Value::String(text)) => FactValue::Text(text.clone()),
                    Some(other) => FactValue::Text(other.to_string()),
                };
                read(format!("config {pointer}"), value)
            }
            Metadata::Label(name) => {
                let value = self
                    .labels()
                    .get(name)
                    .map_or(FactValue::Absent, |v| FactValue::Text(v.clone()));
                read("config /config/Labels".to_owned(), value)
            }
            Metadata::Info(key) => self.derived(probe, key),
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
            "index-digest" => read(
                "the index the manifest was chosen from",
                image
                    .index_digest
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
                "signature stores",
                self.signature_error.unwrap_or_default().to_owned(),
            ),
            "signature" => {
                match policy::judge(image, self.transport.name(), &self.scopes, self.options) {
                    Ok((source, verdict)) => read(&source, text(&verdict)),
                    Err(reason) => failed("containers-policy.json", reason),
                }
            }
            _ => {
                let root = match self.rootfs {
                    Ok(root) => root,
                    Err(reason) => return failed("image files", reason.to_owned()),
                };
                match key {
                    "user" => match user::resolve(image, root) {
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
                    "modified-package-files" => {
                        match modified::modified_package_files(root, self.unpacked) {
                            Ok((source, value)) => read(&source, value),
                            Err(reason) => failed("package databases", reason),
                        }
                    }
                    "based-on-ubi" => {
                        let diff_ids: Vec<String> = image
                            .config
                            .pointer("/rootfs/diff_ids")
                            .and_then(Value::as_array)
                            .map(|ids| {
                                ids.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_owned)
                                    .collect()
                            })
                            .unwrap_or_default();
                        match ubi::based_on_ubi(root, &self.labels(), &diff_ids) {
                            Ok((source, value)) => read(&source, value),
                            Err(reason) => failed("package databases, os-release, labels", reason),
                        }
                    }
                    "sbom" => {
                        let (source, value) = sbom::find(image, root);
                        read(&source, value)
                    }
                    _ => failed("image", format!("unknown image fact `{key}`")),
                }
            }
        }
    }
}

/// Reads a small text file of the unpacked image, resolved inside it.
pub(super) fn read_tree_text(root: &Path, path: &str) -> Result<Option<String>, String> {
    let Some(resolved) = resolve_in_tree(root, path)? else {
        return Ok(None);
    };
    if !resolved.is_file() {
        return Ok(None);
    }
    let bytes = layout::read_bounded(&resolved, path)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
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

/// The installed packages' names, sorted, space-separated: the shared package list
/// ([`super::package_list::PackageList`]: dpkg's status, apk's installed database and the rpm
/// database).
fn packages(root: &Path) -> Result<(String, FactValue), String> {
    let list = super::package_list::PackageList::read(&HostFs::tree(root.to_owned(), None))?;
    if list.sources.is_empty() {
        return Ok((
            "dpkg status, apk installed (neither present)".to_owned(),
            FactValue::Text(String::new()),
        ));
    }
    Ok((
        list.sources.join(", "),
        FactValue::Text(list.packages.into_keys().collect::<Vec<_>>().join(" ")),
    ))
}

/// Like [`read_tree_text`], with a 64 MiB bound for package databases.
pub(super) fn read_tree_text_large(root: &Path, path: &str) -> Result<Option<String>, String> {
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
