//! Reading an image's metadata: an OCI image layout (`oci:`), an archive of one
//! (`oci-archive:`), or the output of `docker save` (`docker-archive:`). Archives are extracted
//! (regular files only, every name checked) into the run's temporary folder; nothing else is
//! written anywhere. Every JSON document is read with a size bound and its digest checked.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

pub(super) use super::descriptor::{hex, shorten, Sha256Digest};
use super::descriptor::{kind, string_map, Descriptor, Platform};
use super::json;

/// The largest index, manifest or config read: a hostile one cannot exhaust memory.
pub(super) const MAX_JSON_BYTES: u64 = 4 << 20;
/// The most entries an archive of an image may have.
const MAX_ARCHIVE_ENTRIES: usize = 100_000;

pub(super) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The media types of layers hostcert knows, and their compression.
fn layer_compression(media_type: &str) -> Option<Compression> {
    Some(match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// One layer to verify and unpack.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    /// How evidence names it: its digest, or its file in a docker archive.
    pub name: String,
    /// The blob file.
    pub path: PathBuf,
    pub compression: Compression,
    /// The digest and size the manifest gives (OCI layouts).
    pub digest: Option<Sha256Digest>,
    pub size: Option<u64>,
    /// The config's diff_id for it.
    pub diff_id: Option<String>,
}

/// An image's metadata, read and partly verified.
#[derive(Debug)]
pub(super) struct Image {
    /// Where its blobs are (the layout, or the extracted archive).
    pub root: PathBuf,
    pub tag: Option<String>,
    /// The Docker reference it claims (a docker archive's RepoTags, a full reference as tag).
    pub reference: Option<String>,
    /// `sha256:<hex>` of the manifest bytes (none for a docker archive).
    pub manifest_digest: Option<String>,
    /// The platform the index names for the manifest, when the image came from an index.
    pub platform: Option<String>,
    /// `sha256:<hex>` of that index, when the image came from one.
    pub index_digest: Option<String>,
    /// Annotations of the manifest and of the index entry that named it.
    pub annotations: BTreeMap<String, String>,
    pub config: Value,
    pub layers: Vec<Layer>,
    /// Problems found while reading the chain (index, manifest, config): each names the blob.
    pub problems: Vec<String>,
    /// Where the chain from the index to the layers broke (a document that could not be read or
    /// is not what it must be): then only the integrity facts are known, and they fail.
    pub broken: Option<String>,
    /// How many blobs were checked while reading the chain.
    pub checked: usize,
    /// Every manifest in the layout's index, by tag (for cosign `.sig`/`.sbom` tags).
    pub index_entries: Vec<(Option<String>, Value)>,
}

impl Image {
    fn empty(root: &Path) -> Image {
        Image {
            root: root.to_owned(),
            tag: None,
            reference: None,
            manifest_digest: None,
            platform: None,
            index_digest: None,
            annotations: BTreeMap::new(),
            config: Value::Null,
            layers: Vec::new(),
            problems: Vec::new(),
            broken: None,
            checked: 0,
            index_entries: Vec::new(),
        }
    }

    /// Stops reading: the chain broke here.
    fn break_at(mut self, reason: String) -> Image {
        self.problems.push(reason.clone());
        self.broken = Some(reason);
        self
    }

    /// A blob of the layout by its descriptor, whose size and sha256 match (else `None`).
    pub(super) fn read_blob(&self, descriptor: &Value) -> Option<Vec<u8>> {
        let descriptor = Descriptor::parse(descriptor).ok()?;
        let bytes = read_bounded(&blob_path(&self.root, &descriptor.digest), "blob").ok()?;
        (bytes.len() as u64 == descriptor.size && Sha256Digest::of(&bytes) == descriptor.digest)
            .then_some(bytes)
    }

    /// A JSON blob of the layout by its descriptor, checked as [`Image::read_blob`] and parsed
    /// strictly.
    pub(super) fn read_json(&self, descriptor: &Value) -> Option<Value> {
        json::parse(&self.read_blob(descriptor)?).ok()
    }
}

/// Reads a JSON blob of a layout by its descriptor: bounded, size and digest checked (a mismatch
/// is a problem, reading goes on), parsed strictly. `Err` when it cannot be read or parsed.
fn read_blob_json(
    root: &Path,
    what: &str,
    descriptor: &Descriptor,
    problems: &mut Vec<String>,
) -> Result<Value, String> {
    let digest = &descriptor.digest;
    if descriptor.size > MAX_JSON_BYTES {
        return Err(format!(
            "{what} {digest} is {} bytes, more than the {} MiB hostcert reads",
            descriptor.size,
            MAX_JSON_BYTES >> 20
        ));
    }
    let bytes = read_bounded(&blob_path(root, digest), &format!("{what} {digest}"))?;
    if descriptor.size != bytes.len() as u64 {
        problems.push(format!(
            "{what} {digest}: {} bytes, the descriptor says {}",
            bytes.len(),
            descriptor.size
        ));
    }
    let actual = Sha256Digest::of(&bytes);
    if actual != *digest {
        problems.push(format!("{what} {digest}: its sha256 is {actual}"));
    }
    json::parse(&bytes).map_err(|e| format!("{what} {digest} is not valid JSON: {e}"))
}

/// The path of a blob in a layout; the digest is validated, so it stays inside the layout.
pub(super) fn blob_path(root: &Path, digest: &Sha256Digest) -> PathBuf {
    root.join("blobs").join("sha256").join(&digest.0)
}

/// Reads a small file whole through [`crate::fsio::read_regular`] (a regular file only, opened
/// without blocking and checked again through its descriptor), refusing more than
/// [`MAX_JSON_BYTES`]. Layouts, registry caches, auth files, registries.d, certs.d and the
/// containers store's files are all read here.
pub(super) fn read_bounded(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    match crate::fsio::read_regular(path, MAX_JSON_BYTES, what) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.cause.starts_with("larger than") => Err(format!(
            "{what} is more than the {} MiB hostcert reads",
            MAX_JSON_BYTES >> 20
        )),
        // `what` often names the path already (`auth file PATH`).
        Err(e) if what.contains(&e.path) => Err(format!("{what}: {}", e.cause)),
        Err(e) => Err(format!("{what}: {}: {}", e.path, e.cause)),
    }
}

fn ref_name(descriptor: &Value) -> Option<String> {
    descriptor
        .pointer("/annotations/org.opencontainers.image.ref.name")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Whether a tag is itself a full Docker reference (`registry.example/app:1.0`).
fn reference_of_tag(tag: &str) -> Option<String> {
    let (name, _) = tag.rsplit_once(':')?;
    name.contains('/').then(|| tag.to_owned())
}

/// Checks what an image index (index.json or an index blob) must be: `schemaVersion` 2, the
/// index media type when it names one, a `manifests` list, no `config` or `layers` (which would
/// make it ambiguous with a manifest, as containers/image refuses). Returns its entries.
fn check_index(what: &str, index: &Value) -> Result<Vec<Value>, String> {
    if !index.is_object() {
        return Err(format!("{what} is {}, not an object", kind(index)));
    }
    let mut problems = Vec::new();
    schema_version_2(index, &mut problems);
    match index.get("mediaType") {
        None => {}
        Some(Value::String(t)) if t == OCI_INDEX || t == DOCKER_LIST => {}
        Some(other) => problems.push(format!("its mediaType is {other}, not an index's")),
    }
    for key in ["config", "layers"] {
        if index.get(key).is_some() {
            problems.push(format!("an index with `{key}` is ambiguous"));
        }
    }
    let entries = match index.get("manifests") {
        Some(Value::Array(entries)) => entries.clone(),
        Some(other) => {
            problems.push(format!("manifests is {}, not a list", kind(other)));
            Vec::new()
        }
        None => {
            problems.push("it has no `manifests` list".to_owned());
            Vec::new()
        }
    };
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(format!("{what}: {}", problems.join(", ")))
    }
}

fn schema_version_2(document: &Value, problems: &mut Vec<String>) {
    match document.get("schemaVersion") {
        Some(Value::Number(n)) if n.as_u64() == Some(2) => {}
        Some(other) => problems.push(format!("schemaVersion is {other}, not 2")),
        None => problems.push("it has no schemaVersion (2 is required)".to_owned()),
    }
}

/// Checks an image manifest (OCI or Docker schema 2): `schemaVersion` 2, a media type equal to
/// its descriptor's (Docker's requires one), a config descriptor, a `layers` list, no
/// `manifests`.
fn check_manifest(manifest: &Value, descriptor_type: &str, problems: &mut Vec<String>) {
    let mut found = Vec::new();
    if !manifest.is_object() {
        found.push(format!("it is {}, not an object", kind(manifest)));
    }
    schema_version_2(manifest, &mut found);
    match manifest.get("mediaType").and_then(Value::as_str) {
        Some(t) if t == descriptor_type => {}
        None if descriptor_type == OCI_MANIFEST && manifest.get("mediaType").is_none() => {}
        _ => found.push(format!(
            "its mediaType {} is not its descriptor's {descriptor_type}",
            manifest.get("mediaType").unwrap_or(&Value::Null)
        )),
    }
    if manifest.get("manifests").is_some() {
        found.push("a manifest with `manifests` is ambiguous".to_owned());
    }
    if !manifest.get("layers").is_some_and(Value::is_array) {
        found.push("it has no `layers` list".to_owned());
    }
    problems.extend(found);
}

/// Checks an image config: `architecture` and `os` strings, `rootfs.type` `layers`, and
/// `rootfs.diff_ids` a list of digests.
fn check_config(config: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if !config.is_object() {
        return vec![format!("it is {}, not an object", kind(config))];
    }
    for key in ["architecture", "os"] {
        if config
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.push(format!("it has no `{key}` string"));
        }
    }
    if config.pointer("/rootfs/type").and_then(Value::as_str) != Some("layers") {
        problems.push("rootfs.type is not `layers`".to_owned());
    }
    match config.pointer("/rootfs/diff_ids") {
        Some(Value::Array(ids)) => {
            for (index, id) in ids.iter().enumerate() {
                match id.as_str().map(Sha256Digest::parse) {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => problems.push(format!("diff_ids[{index}]: {e}")),
                    None => problems.push(format!("diff_ids[{index}] is not a string")),
                }
            }
        }
        _ => problems.push("rootfs.diff_ids is not a list".to_owned()),
    }
    problems
}

/// The platform a config says the image is for.
fn config_platform(config: &Value) -> Option<Platform> {
    Platform::from_json(config).ok()
}

/// Which manifest of an image index a target reads.
#[derive(Debug, Clone)]
pub(super) enum Select {
    /// The only image the tag names (an index of one platform, or a manifest).
    Default,
    /// The entry at this position of the index the tag names, with the platform label the
    /// target was opened with (checked again when read).
    Entry(usize, String),
    /// An image for one of these platforms (`--platform`), checked against its config when
    /// the tag names a manifest.
    Platforms(Vec<Platform>),
}

/// One image of an index: its position, and its platform as a target name suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IndexImage {
    pub position: usize,
    pub platform: Option<Platform>,
    pub label: String,
}

/// The images of an index entry's nested index, attestation manifests (docker buildx's
/// `unknown/unknown` entries) left out; each labelled by its platform (or its position).
fn index_images(entries: &[Value]) -> Vec<IndexImage> {
    let mut images: Vec<IndexImage> = Vec::new();
    for (position, entry) in entries.iter().enumerate() {
        let attestation = entry
            .pointer("/annotations/vnd.docker.reference.type")
            .and_then(Value::as_str)
            == Some("attestation-manifest");
        let platform = entry
            .get("platform")
            .and_then(|p| Platform::from_json(p).ok());
        if attestation || platform.as_ref().is_some_and(|p| p.os == "unknown") {
            continue;
        }
        let mut label = match &platform {
            Some(platform) => platform.to_string(),
            None => format!("manifest {position}"),
        };
        if images.iter().any(|i| i.label == label) {
            label = format!("{label} #{position}");
        }
        images.push(IndexImage {
            position,
            platform,
            label,
        });
    }
    images
}

/// Finds the entry of index.json a tag names (or the only image when no tag is given).
fn choose_entry(entries: &[Value], tag: Option<&str>) -> Result<Value, String> {
    let candidates: Vec<&Value> = match tag {
        Some(tag) => entries
            .iter()
            .filter(|e| ref_name(e).as_deref() == Some(tag))
            .collect(),
        None => entries
            .iter()
            .filter(|e| !ref_name(e).is_some_and(|n| n.starts_with("sha256-")))
            .collect(),
    };
    let tags = || {
        let tags: Vec<String> = entries.iter().filter_map(ref_name).collect();
        if tags.is_empty() {
            "none".to_owned()
        } else {
            tags.join(", ")
        }
    };
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(match tag {
            Some(tag) => format!(
                "no image tagged `{}` in index.json (tags: {})",
                shorten(tag),
                tags()
            ),
            None => "index.json names no image".to_owned(),
        }),
        _ => Err(format!(
            "index.json holds several images; name one with oci:DIR:TAG (tags: {})",
            tags()
        )),
    }
}

fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The images of the index a layout's tag names, when it names an index; `None` when it names
/// a manifest. `read` gives a file of the layout by its relative path. Used when a target is
/// opened, to make one target per platform; an error here is reported again by the gather.
pub(super) fn platforms_of(
    read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    tag: Option<&str>,
) -> Result<Option<Vec<IndexImage>>, String> {
    let index = json::parse(&read("index.json")?).map_err(|e| format!("index.json: {e}"))?;
    let entry = choose_entry(&check_index("index.json", &index)?, tag)?;
    let descriptor = Descriptor::parse(&entry)?;
    if !is_index_type(&descriptor.media_type) {
        return Ok(None);
    }
    let bytes = read(&format!("blobs/sha256/{}", descriptor.digest.0))?;
    let nested = json::parse(&bytes).map_err(|e| format!("index {}: {e}", descriptor.digest))?;
    let entries = check_index(&format!("index {}", descriptor.digest), &nested)?;
    Ok(Some(index_images(&entries)))
}

/// Reads an OCI image layout at `root`, choosing the manifest tagged `tag` (or the only one), and
/// in an index the one `select` names. `Err` when the folder is not a layout or names no such
/// image; a chain that breaks below index.json gives an [`Image`] whose `broken` says where.
pub(super) fn read_oci(root: &Path, tag: Option<&str>, select: &Select) -> Result<Image, String> {
    let layout = read_bounded(&root.join("oci-layout"), "oci-layout")?;
    let layout = json::parse(&layout).map_err(|e| format!("oci-layout is not JSON: {e}"))?;
    if layout.get("imageLayoutVersion").and_then(Value::as_str) != Some("1.0.0") {
        return Err("oci-layout: imageLayoutVersion is not 1.0.0".to_owned());
    }
    let mut image = Image::empty(root);
    image.reference = tag.and_then(reference_of_tag);
    image.tag = tag.map(str::to_owned);
    let index = read_bounded(&root.join("index.json"), "index.json")?;
    let index = match json::parse(&index) {
        Ok(index) => index,
        Err(e) => return Ok(image.break_at(format!("index.json is not valid JSON: {e}"))),
    };
    let entries = match check_index("index.json", &index) {
        Ok(entries) => entries,
        Err(e) => return Ok(image.break_at(e)),
    };
    image.index_entries = entries.iter().map(|e| (ref_name(e), e.clone())).collect();
    let entry = choose_entry(&entries, tag)?;
    if image.tag.is_none() {
        image.tag = ref_name(&entry);
    }
    image.annotations = entry
        .get("annotations")
        .and_then(string_map)
        .unwrap_or_default();
    let mut descriptor = match Descriptor::parse(&entry) {
        Ok(descriptor) => descriptor,
        Err(e) => return Ok(image.break_at(format!("index.json's entry for the image: {e}"))),
    };
    if is_index_type(&descriptor.media_type) {
        let digest = descriptor.digest.clone();
        let nested = match read_blob_json(root, "index", &descriptor, &mut image.problems) {
            Ok(nested) => nested,
            Err(e) => return Ok(image.break_at(e)),
        };
        image.checked += 1;
        let entries = match check_index(&format!("index {digest}"), &nested) {
            Ok(entries) => entries,
            Err(e) => return Ok(image.break_at(e)),
        };
        let images = index_images(&entries);
        let listed = || {
            images
                .iter()
                .map(|i| i.label.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let chosen = match select {
            Select::Entry(position, label) => images
                .iter()
                .find(|i| i.position == *position && i.label == *label)
                .ok_or_else(|| {
                    format!(
                        "index {digest} no longer lists {label} (it lists {})",
                        listed()
                    )
                })?,
            Select::Platforms(wanted) => {
                let matching: Vec<&IndexImage> = images
                    .iter()
                    .filter(|i| {
                        i.platform
                            .as_ref()
                            .is_some_and(|p| wanted.iter().any(|w| p.matches(w)))
                    })
                    .collect();
                match matching.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(format!(
                            "index {digest} has no image for {} (it lists {})",
                            platform_list(wanted),
                            listed()
                        ))
                    }
                    _ => {
                        return Err(format!(
                            "index {digest} has several images for {}",
                            platform_list(wanted)
                        ))
                    }
                }
            }
            Select::Default => match images.as_slice() {
                [one] => one,
                [] => return Ok(image.break_at(format!("index {digest} lists no image"))),
                _ => {
                    return Err(format!(
                        "index {digest} lists several platforms ({}); pick one with --platform",
                        listed()
                    ))
                }
            },
        };
        image.platform = Some(chosen.label.clone());
        image.index_digest = Some(digest.to_string());
        let entry = &entries[chosen.position];
        image.annotations.extend(
            entry
                .get("annotations")
                .and_then(string_map)
                .unwrap_or_default(),
        );
        descriptor = match Descriptor::parse(entry) {
            Ok(descriptor) => descriptor,
            Err(e) => {
                return Ok(image.break_at(format!(
                    "index {digest}: the entry for {}: {e}",
                    chosen.label
                )))
            }
        };
        if is_index_type(&descriptor.media_type) {
            return Ok(image.break_at(format!(
                "index {digest}: the entry for {} is another index, which hostcert does not follow",
                chosen.label
            )));
        }
    }
    if descriptor.media_type != OCI_MANIFEST && descriptor.media_type != DOCKER_MANIFEST {
        return Ok(image.break_at(format!(
            "manifest {}: media type `{}` is not an image manifest's",
            descriptor.digest,
            shorten(&descriptor.media_type)
        )));
    }
    let manifest_digest = descriptor.digest.clone();
    image.manifest_digest = Some(manifest_digest.to_string());
    let manifest = match read_blob_json(root, "manifest", &descriptor, &mut image.problems) {
        Ok(manifest) => manifest,
        Err(e) => return Ok(image.break_at(e)),
    };
    image.checked += 1;
    let mut found = Vec::new();
    check_manifest(&manifest, &descriptor.media_type, &mut found);
    image.problems.extend(
        found
            .into_iter()
            .map(|p| format!("manifest {manifest_digest}: {p}")),
    );
    image.annotations.extend(
        manifest
            .get("annotations")
            .and_then(string_map)
            .unwrap_or_default(),
    );
    let config_descriptor = match manifest.get("config").map(Descriptor::parse) {
        Some(Ok(descriptor)) => descriptor,
        Some(Err(e)) => {
            return Ok(image.break_at(format!("manifest {manifest_digest}: config: {e}")))
        }
        None => return Ok(image.break_at(format!("manifest {manifest_digest} has no config"))),
    };
    if !CONFIG_TYPES.contains(&config_descriptor.media_type.as_str()) {
        image.problems.push(format!(
            "config {}: unknown media type `{}`",
            config_descriptor.digest,
            shorten(&config_descriptor.media_type)
        ));
    }
    let config = match read_blob_json(root, "config", &config_descriptor, &mut image.problems) {
        Ok(config) => config,
        Err(e) => return Ok(image.break_at(e)),
    };
    image.checked += 1;
    let config_digest = config_descriptor.digest.clone();
    image.problems.extend(
        check_config(&config)
            .into_iter()
            .map(|p| format!("config {config_digest}: {p}")),
    );
    image.config = config;
    let diff_ids = diff_ids(&image.config);
    let descriptors = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if descriptors.len() != diff_ids.len() {
        image.problems.push(format!(
            "config: {} diff_ids for {} layers in manifest {manifest_digest}",
            diff_ids.len(),
            descriptors.len()
        ));
    }
    for (index, layer) in descriptors.iter().enumerate() {
        let layer = match Descriptor::parse(layer) {
            Ok(layer) => layer,
            Err(e) => {
                image
                    .problems
                    .push(format!("manifest {manifest_digest}: layer {index}: {e}"));
                continue;
            }
        };
        let Some(compression) = layer_compression(&layer.media_type) else {
            image.problems.push(format!(
                "layer {}: unknown media type `{}`",
                layer.digest,
                shorten(&layer.media_type)
            ));
            continue;
        };
        image.layers.push(Layer {
            name: layer.digest.to_string(),
            path: blob_path(root, &layer.digest),
            compression,
            size: Some(layer.size),
            digest: Some(layer.digest),
            diff_id: diff_ids.get(index).cloned(),
        });
    }
    if let Select::Platforms(wanted) = select {
        if image.platform.is_none() {
            check_platform(&image.config, wanted)?;
        }
    }
    Ok(image)
}

fn platform_list(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(Platform::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A single-platform image asked for with `--platform`: its config must name one of them.
fn check_platform(config: &Value, wanted: &[Platform]) -> Result<(), String> {
    match config_platform(config) {
        Some(platform) if wanted.iter().any(|w| platform.matches(w)) => Ok(()),
        Some(platform) => Err(format!(
            "the image is for {platform}, not {}",
            platform_list(wanted)
        )),
        None => Err(format!(
            "the image's config names no platform, so it cannot be picked as {}",
            platform_list(wanted)
        )),
    }
}

/// Reads the output of `docker save`, extracted at `root`.
pub(super) fn read_docker(root: &Path, select: &Select) -> Result<Image, String> {
    let manifest_bytes = read_bounded(&root.join("manifest.json"), "manifest.json")?;
    let manifest = json::parse(&manifest_bytes)
        .map_err(|e| format!("manifest.json is not valid JSON: {e}"))?;
    let entry = match manifest.as_array().map(Vec::as_slice) {
        Some([one]) => one.clone(),
        Some([]) | None => return Err("manifest.json lists no image".to_owned()),
        Some(_) => {
            return Err(
                "manifest.json lists several images; hostcert reads archives of one".to_owned(),
            )
        }
    };
    let member = |name: &str| -> Result<PathBuf, String> {
        let relative = Path::new(name);
        if name.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "manifest.json names `{}`, which is not a plain member path",
                shorten(name)
            ));
        }
        Ok(root.join(relative))
    };
    let mut image = Image::empty(root);
    image.checked = 1;
    let tag = entry
        .pointer("/RepoTags/0")
        .and_then(Value::as_str)
        .map(str::to_owned);
    image.reference = tag.clone();
    image.tag = tag
        .as_deref()
        .and_then(|t| t.rsplit_once(':'))
        .map(|(_, t)| t.to_owned());
    let config_name = entry
        .get("Config")
        .and_then(Value::as_str)
        .ok_or("manifest.json has no Config")?;
    let config_bytes = match read_bounded(&member(config_name)?, &format!("config {config_name}")) {
        Ok(bytes) => bytes,
        Err(e) => return Ok(image.break_at(e)),
    };
    let expected = Path::new(config_name)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".json").to_owned())
        .unwrap_or_default();
    let actual = Sha256Digest::of(&config_bytes);
    if expected.len() == 64 && expected != actual.0 {
        image
            .problems
            .push(format!("config {config_name}: its sha256 is {actual}"));
    }
    let config = match json::parse(&config_bytes) {
        Ok(config) => config,
        Err(e) => return Ok(image.break_at(format!("config {config_name} is not valid JSON: {e}"))),
    };
    image.problems.extend(
        check_config(&config)
            .into_iter()
            .map(|p| format!("config {config_name}: {p}")),
    );
    image.config = config;
    let diff_ids = diff_ids(&image.config);
    let names: Vec<String> = entry
        .get("Layers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if names.len() != diff_ids.len() {
        image.problems.push(format!(
            "config: {} diff_ids for {} layers in manifest.json",
            diff_ids.len(),
            names.len()
        ));
    }
    for (index, name) in names.iter().enumerate() {
        let path = member(name)?;
        // docker save writes plain tars; newer versions may compress: look at the magic.
        let mut magic = [0u8; 4];
        let compression = match std::fs::File::open(&path).and_then(|mut f| f.read(&mut magic)) {
            Ok(n) if n >= 2 && magic[..2] == [0x1f, 0x8b] => Compression::Gzip,
            Ok(n) if n >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
            _ => Compression::None,
        };
        image.layers.push(Layer {
            name: name.clone(),
            path,
            compression,
            digest: None,
            size: None,
            diff_id: diff_ids.get(index).cloned(),
        });
    }
    if let Select::Platforms(wanted) = select {
        check_platform(&image.config, wanted)?;
    }
    Ok(image)
}

/// Reads one member of an image archive (`index.json`, `blobs/sha256/<hex>`) without
/// extracting it: regular files only, bounded like every JSON document. Used to list an
/// archive's platforms when it is opened.
pub(super) fn archive_member(file: &Path, wanted: &str) -> Result<Vec<u8>, String> {
    let archive =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    if !archive.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(format!("{} is not a regular file", file.display()));
    }
    let mut archive = tar::Archive::new(archive);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| format!("{} is not a tar archive: {e}", file.display()))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ARCHIVE_ENTRIES {
            break;
        }
        let entry = entry.map_err(|e| format!("the archive is damaged: {e}"))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !entry.header().entry_type().is_file()
            || safe_relative(&raw).ok().as_deref() != Some(Path::new(wanted))
        {
            continue;
        }
        if entry.header().size().unwrap_or(u64::MAX) > MAX_JSON_BYTES {
            return Err(format!(
                "{wanted} is more than the {} MiB hostcert reads",
                MAX_JSON_BYTES >> 20
            ));
        }
        let mut bytes = Vec::new();
        entry
            .take(MAX_JSON_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{wanted}: {e}"))?;
        return Ok(bytes);
    }
    Err(format!("the archive has no {wanted}"))
}

/// Extracts an archive of an image (an OCI layout or `docker save` output) into `dest`:
/// regular files and folders only, names checked, duplicates refused. Links (docker save's
/// legacy `layer.tar` links) are skipped: nothing reads them.
pub(super) fn extract_archive(file: &Path, dest: &Path) -> Result<(), String> {
    extract(file, dest, Members::All)
}

/// The most an archive's small members ([`extract_archive_metadata`]) may hold in all.
const MAX_METADATA_BYTES: u64 = 64 << 20;

/// Extracts what an archive says of its image without its layers: every regular member of at
/// most [`MAX_JSON_BYTES`] (`oci-layout`, `index.json` or `manifest.json`, indexes, manifests,
/// configs; larger members, the layers, are skipped without being read), at most
/// [`MAX_METADATA_BYTES`] in all, names checked as [`extract_archive`] checks them. For what a
/// target must know when it is opened (a bootc image's labels); the gather extracts it whole.
pub(super) fn extract_archive_metadata(file: &Path, dest: &Path) -> Result<(), String> {
    extract(file, dest, Members::Small)
}

/// Which members of an archive [`extract`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Members {
    /// Every regular file and folder.
    All,
    /// Regular files of at most [`MAX_JSON_BYTES`].
    Small,
}

fn extract(file: &Path, dest: &Path, members: Members) -> Result<(), String> {
    let archive =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    if !archive.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(format!("{} is not a regular file", file.display()));
    }
    let mut archive = tar::Archive::new(std::io::BufReader::new(archive));
    let mut seen = std::collections::BTreeSet::new();
    let mut small_total = 0u64;
    // Seeking past what is not extracted (a layer, when only the small members are).
    let entries = archive
        .entries_with_seek()
        .map_err(|e| format!("{} is not a tar archive: {e}", file.display()))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ARCHIVE_ENTRIES {
            return Err(format!(
                "the archive has more than {MAX_ARCHIVE_ENTRIES} entries"
            ));
        }
        let mut entry = entry.map_err(|e| format!("the archive is damaged: {e}"))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = safe_relative(&raw)
            .map_err(|reason| format!("archive entry `{}`: {reason}", shorten(&raw)))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            if members == Members::All {
                std::fs::create_dir_all(dest.join(&name))
                    .map_err(|e| format!("archive entry `{}`: {e}", shorten(&raw)))?;
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let declared = entry.header().size().unwrap_or(0);
        if members == Members::Small {
            if declared > MAX_JSON_BYTES {
                continue;
            }
            small_total += declared;
            if small_total > MAX_METADATA_BYTES {
                return Err(format!(
                    "the archive's small members hold more than {} MiB",
                    MAX_METADATA_BYTES >> 20
                ));
            }
        }
        if !seen.insert(name.clone()) {
            return Err(format!("archive entry `{}` appears twice", shorten(&raw)));
        }
        let target = dest.join(&name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("archive entry `{}`: {e}", shorten(&raw)))?;
        }
        let mut out = std::fs::File::create(&target)
            .map_err(|e| format!("archive entry `{}`: {e}", shorten(&raw)))?;
        let copied = std::io::copy(&mut (&mut entry).take(declared), &mut out)
            .map_err(|e| format!("archive entry `{}`: {e}", shorten(&raw)))?;
        if copied != declared {
            return Err(format!(
                "archive entry `{}` is cut short: {copied} of the {declared} bytes its header says",
                shorten(&raw)
            ));
        }
    }
    Ok(())
}

/// A path from a tar entry as a relative path of normal components; `..` and absolute paths are
/// refused.
pub(super) fn safe_relative(raw: &str) -> Result<PathBuf, String> {
    if raw.starts_with('/') {
        return Err("an absolute path".to_owned());
    }
    let mut path = PathBuf::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("a path with `..`".to_owned()),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path".to_owned()),
        }
    }
    Ok(path)
}

/// The layers' uncompressed digests a config lists (`rootfs.diff_ids`), empty when it lists none.
fn diff_ids(config: &Value) -> Vec<String> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_sha256_digests_are_accepted() {
        let hex = "a".repeat(64);
        assert_eq!(
            Sha256Digest::parse(&format!("sha256:{hex}")).unwrap().0,
            hex
        );
        let err = Sha256Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap_err();
        assert!(err.contains("uses the algorithm `sha512`"), "{err}");
        assert!(Sha256Digest::parse("sha256:../../etc/passwd").is_err());
        assert!(Sha256Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Sha256Digest::parse("nocolon").is_err());
    }

    #[test]
    fn archive_member_names_stay_relative() {
        assert_eq!(safe_relative("./a/b").unwrap(), PathBuf::from("a/b"));
        assert!(safe_relative("../a").is_err());
        assert!(safe_relative("/a").is_err());
        assert!(safe_relative("a/../../b").is_err());
    }
}
