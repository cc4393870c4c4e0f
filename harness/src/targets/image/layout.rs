//! Reading an image's metadata: an OCI image layout (`oci:`), an archive of one
//! (`oci-archive:`), or the output of `docker save` (`docker-archive:`). Archives are extracted
//! (regular files only, every name checked) into the run's temporary folder; nothing else is
//! written anywhere. Every JSON document is read with a size bound and its digest checked.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

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

/// A sha256 digest, validated: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sha256Digest(pub String);

impl Sha256Digest {
    /// Parses `sha256:<hex>`; any other algorithm, or a malformed value, is an error naming it.
    pub(super) fn parse(text: &str) -> Result<Sha256Digest, String> {
        let Some((algorithm, encoded)) = text.split_once(':') else {
            return Err(format!(
                "`{}` is not a digest (algorithm:hex)",
                shorten(text)
            ));
        };
        if algorithm != "sha256" {
            return Err(format!(
                "digest `{}` uses the algorithm `{}`; hostcert verifies sha256 digests only",
                shorten(text),
                shorten(algorithm)
            ));
        }
        if encoded.len() != 64
            || !encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "digest `{}` is not sha256:<64 lowercase hex digits>",
                shorten(text)
            ));
        }
        Ok(Sha256Digest(encoded.to_owned()))
    }

    pub(super) fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(hex(&Sha256::digest(bytes)))
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text from an image cut to 80 characters for messages.
pub(super) fn shorten(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
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
    /// Annotations of the manifest and of the index entry that named it.
    pub annotations: BTreeMap<String, String>,
    pub config: Value,
    pub layers: Vec<Layer>,
    /// Problems found while reading the chain (index, manifest, config): each names the blob.
    pub problems: Vec<String>,
    /// How many blobs were checked while reading the chain.
    pub checked: usize,
    /// Every manifest in the layout's index, by tag (for cosign `.sig`/`.sbom` tags).
    pub index_entries: Vec<(Option<String>, Value)>,
}

/// Reads a JSON blob of a layout by its descriptor: bounded, size and digest checked.
fn read_blob_json(
    root: &Path,
    what: &str,
    descriptor: &Value,
    problems: &mut Vec<String>,
) -> Result<(Sha256Digest, Vec<u8>, Value), String> {
    let digest_text = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the {what} descriptor has no digest"))?;
    let digest = Sha256Digest::parse(digest_text).map_err(|e| format!("{what}: {e}"))?;
    let size = descriptor.get("size").and_then(Value::as_u64);
    if let Some(size) = size {
        if size > MAX_JSON_BYTES {
            return Err(format!(
                "{what} {digest} is {size} bytes, more than the {} MiB hostcert reads",
                MAX_JSON_BYTES >> 20
            ));
        }
    }
    let path = blob_path(root, &digest);
    let bytes = read_bounded(&path, &format!("{what} {digest}"))?;
    match size {
        Some(size) if size != bytes.len() as u64 => problems.push(format!(
            "{what} {digest}: {} bytes, the descriptor says {size}",
            bytes.len()
        )),
        None => problems.push(format!("{what} {digest}: the descriptor has no size")),
        _ => {}
    }
    let actual = Sha256Digest::of(&bytes);
    if actual != digest {
        problems.push(format!("{what} {digest}: its sha256 is {actual}"));
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{what} {digest} is not valid JSON: {e}"))?;
    Ok((digest, bytes, value))
}

/// The path of a blob in a layout; the digest is validated, so it stays inside the layout.
pub(super) fn blob_path(root: &Path, digest: &Sha256Digest) -> PathBuf {
    root.join("blobs").join("sha256").join(&digest.0)
}

/// Reads a small file whole, refusing more than [`MAX_JSON_BYTES`] and anything but a regular
/// file (a FIFO would block).
pub(super) fn read_bounded(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!("{what}: {} is not a regular file", path.display()));
    }
    if metadata.len() > MAX_JSON_BYTES {
        return Err(format!(
            "{what} is {} bytes, more than the {} MiB hostcert reads",
            metadata.len(),
            MAX_JSON_BYTES >> 20
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_JSON_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(format!(
            "{what} is more than the {} MiB hostcert reads",
            MAX_JSON_BYTES >> 20
        ));
    }
    Ok(bytes)
}

fn ref_name(descriptor: &Value) -> Option<String> {
    descriptor
        .pointer("/annotations/org.opencontainers.image.ref.name")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a tag is itself a full Docker reference (`registry.example/app:1.0`).
fn reference_of_tag(tag: &str) -> Option<String> {
    let (name, _) = tag.rsplit_once(':')?;
    name.contains('/').then(|| tag.to_owned())
}

/// The architecture of this machine as OCI names it.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Reads an OCI image layout at `root`, choosing the manifest tagged `tag` (or the only one).
pub(super) fn read_oci(root: &Path, tag: Option<&str>) -> Result<Image, String> {
    let layout = read_bounded(&root.join("oci-layout"), "oci-layout")?;
    let layout: Value =
        serde_json::from_slice(&layout).map_err(|e| format!("oci-layout is not JSON: {e}"))?;
    if layout.get("imageLayoutVersion").and_then(Value::as_str) != Some("1.0.0") {
        return Err("oci-layout: imageLayoutVersion is not 1.0.0".to_owned());
    }
    let index = read_bounded(&root.join("index.json"), "index.json")?;
    let index: Value =
        serde_json::from_slice(&index).map_err(|e| format!("index.json is not JSON: {e}"))?;
    let entries: Vec<Value> = index
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .ok_or("index.json has no `manifests` list")?;
    let index_entries: Vec<(Option<String>, Value)> =
        entries.iter().map(|e| (ref_name(e), e.clone())).collect();
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
    let entry = match candidates.as_slice() {
        [one] => (*one).clone(),
        [] => {
            let tags: Vec<String> = entries.iter().filter_map(ref_name).collect();
            return Err(match tag {
                Some(tag) => format!(
                    "no image tagged `{}` in index.json (tags: {})",
                    shorten(tag),
                    if tags.is_empty() {
                        "none".to_owned()
                    } else {
                        tags.join(", ")
                    }
                ),
                None => "index.json names no image".to_owned(),
            });
        }
        _ => {
            let tags: Vec<String> = entries.iter().filter_map(ref_name).collect();
            return Err(format!(
                "index.json holds several images; name one with oci:DIR:TAG (tags: {})",
                tags.join(", ")
            ));
        }
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut annotations = string_map(entry.get("annotations"));
    let mut descriptor = entry;
    // An index entry may be an image index (several platforms): pick this machine's.
    for _ in 0..2 {
        let media_type = descriptor
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or("");
        if media_type != OCI_INDEX && media_type != DOCKER_LIST {
            break;
        }
        let (digest, _, nested) = read_blob_json(root, "index", &descriptor, &mut problems)?;
        checked += 1;
        let manifests = nested
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let arch = host_architecture();
        descriptor = manifests
            .iter()
            .find(|m| m.pointer("/platform/architecture").and_then(Value::as_str) == Some(arch))
            .or(manifests.first())
            .cloned()
            .ok_or_else(|| format!("index {digest} lists no manifest"))?;
    }
    let media_type = descriptor
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        problems.push(format!(
            "manifest {}: unknown media type `{}`",
            descriptor
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            shorten(&media_type)
        ));
    }
    let (manifest_digest, _, manifest) =
        read_blob_json(root, "manifest", &descriptor, &mut problems)?;
    checked += 1;
    annotations.extend(string_map(manifest.get("annotations")));
    let config_descriptor = manifest
        .get("config")
        .ok_or_else(|| format!("manifest {manifest_digest} has no config"))?;
    let config_type = config_descriptor
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !CONFIG_TYPES.contains(&config_type) {
        problems.push(format!(
            "config {}: unknown media type `{}`",
            config_descriptor
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            shorten(config_type)
        ));
    }
    let (_, _, config) = read_blob_json(root, "config", config_descriptor, &mut problems)?;
    checked += 1;
    let diff_ids = diff_ids(&config);
    let descriptors = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if descriptors.len() != diff_ids.len() {
        problems.push(format!(
            "config: {} diff_ids for {} layers in manifest {manifest_digest}",
            diff_ids.len(),
            descriptors.len()
        ));
    }
    let mut layers = Vec::new();
    for (index, layer) in descriptors.iter().enumerate() {
        let digest_text = layer.get("digest").and_then(Value::as_str).unwrap_or("");
        let media_type = layer.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let digest = match Sha256Digest::parse(digest_text) {
            Ok(digest) => digest,
            Err(e) => {
                problems.push(format!("layer {index}: {e}"));
                continue;
            }
        };
        let Some(compression) = layer_compression(media_type) else {
            problems.push(format!(
                "layer {digest}: unknown media type `{}`",
                shorten(media_type)
            ));
            continue;
        };
        layers.push(Layer {
            name: digest.to_string(),
            path: blob_path(root, &digest),
            compression,
            size: layer.get("size").and_then(Value::as_u64),
            digest: Some(digest),
            diff_id: diff_ids.get(index).cloned(),
        });
    }
    Ok(Image {
        root: root.to_owned(),
        reference: tag.and_then(reference_of_tag),
        tag: tag.map(str::to_owned).or_else(|| {
            annotations
                .get("org.opencontainers.image.ref.name")
                .cloned()
        }),
        manifest_digest: Some(manifest_digest.to_string()),
        annotations,
        config,
        layers,
        problems,
        checked,
        index_entries,
    })
}

/// Reads the output of `docker save`, extracted at `root`.
pub(super) fn read_docker(root: &Path) -> Result<Image, String> {
    let manifest_bytes = read_bounded(&root.join("manifest.json"), "manifest.json")?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format!("manifest.json is not JSON: {e}"))?;
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
    let mut problems = Vec::new();
    let config_name = entry
        .get("Config")
        .and_then(Value::as_str)
        .ok_or("manifest.json has no Config")?;
    let config_bytes = read_bounded(&member(config_name)?, &format!("config {config_name}"))?;
    let expected = Path::new(config_name)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".json").to_owned())
        .unwrap_or_default();
    let actual = Sha256Digest::of(&config_bytes);
    if expected.len() == 64 && expected != actual.0 {
        problems.push(format!("config {config_name}: its sha256 is {actual}"));
    }
    let config: Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| format!("config {config_name} is not valid JSON: {e}"))?;
    let diff_ids = diff_ids(&config);
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
        problems.push(format!(
            "config: {} diff_ids for {} layers in manifest.json",
            diff_ids.len(),
            names.len()
        ));
    }
    let mut layers = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let path = member(name)?;
        // docker save writes plain tars; newer versions may compress: look at the magic.
        let mut magic = [0u8; 4];
        let compression = match std::fs::File::open(&path).and_then(|mut f| f.read(&mut magic)) {
            Ok(n) if n >= 2 && magic[..2] == [0x1f, 0x8b] => Compression::Gzip,
            Ok(n) if n >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
            _ => Compression::None,
        };
        layers.push(Layer {
            name: name.clone(),
            path,
            compression,
            digest: None,
            size: None,
            diff_id: diff_ids.get(index).cloned(),
        });
    }
    let tag = entry
        .pointer("/RepoTags/0")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Image {
        root: root.to_owned(),
        reference: tag.clone(),
        tag: tag
            .as_deref()
            .and_then(|t| t.rsplit_once(':'))
            .map(|(_, t)| t.to_owned()),
        manifest_digest: None,
        annotations: BTreeMap::new(),
        config,
        layers,
        problems,
        checked: 1,
        index_entries: Vec::new(),
    })
}

/// Extracts an archive of an image (an OCI layout or `docker save` output) into `dest`:
/// regular files and folders only, names checked, duplicates refused. Links (docker save's
/// legacy `layer.tar` links) are skipped: nothing reads them.
pub(super) fn extract_archive(file: &Path, dest: &Path) -> Result<(), String> {
    let archive =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    if !archive.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(format!("{} is not a regular file", file.display()));
    }
    let mut archive = tar::Archive::new(std::io::BufReader::new(archive));
    let mut seen = std::collections::BTreeSet::new();
    let entries = archive
        .entries()
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
            std::fs::create_dir_all(dest.join(&name))
                .map_err(|e| format!("archive entry `{}`: {e}", shorten(&raw)))?;
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        if !seen.insert(name.clone()) {
            return Err(format!("archive entry `{}` appears twice", shorten(&raw)));
        }
        let target = dest.join(&name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("archive entry `{}`: {e}", shorten(&raw)))?;
        }
        let declared = entry.header().size().unwrap_or(0);
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
