//! `containers-storage:[DRIVER@ROOT+RUNROOT]NAME[:TAG]`: images in podman's and buildah's
//! local store (containers/storage), read-only, so a freshly built image is certified without a
//! push.
//!
//! The store is the one the address names in brackets, otherwise the one `storage.conf` names
//! (`CONTAINERS_STORAGE_CONF`, then `/etc/containers/storage.conf`, then
//! `/usr/share/containers/storage.conf`; `graphroot` defaults to `/var/lib/containers/storage`);
//! its driver is `overlay` or `vfs`. `DRIVER-images/images.json` gives the image (by name as
//! containers/image normalises it, `localhost/NAME` as podman names local builds, or ID); the
//! manifest and config it keeps are big-data files beside it (`manifest-sha256:HEX`, the config
//! digest, stored under `=BASE64` names); `DRIVER-layers/layers.json` gives its layers from the
//! top one down through `parent`. A small OCI layout in the run's temporary folder holds that
//! manifest and config under the digests the store claims for them, so the layout reader
//! checks them. Each layer's tar stream is then reassembled from its tar-split record and its
//! folder ([`tarsplit`]) into the temporary folder, measured on the way (the diff_id), and
//! becomes the layer the reader unpacks: nothing in the store is written or trusted unchecked.

mod tarsplit;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::layout::{read_bounded, shorten, Compression, Image, Sha256Digest, OCI_INDEX};
use super::registry::DockerReference;
use super::verify::{self, LayerCheck};

/// The store's default folder for root.
const DEFAULT_GRAPHROOT: &str = "/var/lib/containers/storage";
/// The drivers whose layer folders hostcert reads.
const DRIVERS: &[&str] = &["overlay", "vfs"];
/// The most layers an image may have.
const MAX_LAYERS: usize = 1000;

/// A parsed `containers-storage:` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageReference {
    /// `DRIVER@` of the bracketed store, when given.
    pub driver: Option<String>,
    /// The store's graph root, when given in brackets.
    pub root: Option<PathBuf>,
    /// The image's name (`NAME[:TAG]`) or ID as given.
    pub image: String,
}

impl StorageReference {
    /// Parses what follows `containers-storage:`.
    pub(crate) fn parse(text: &str) -> Result<StorageReference, String> {
        let (driver, root, image) = match text.strip_prefix('[') {
            Some(rest) => {
                let (store, image) = rest
                    .split_once(']')
                    .ok_or("the store in brackets is not closed (`[DRIVER@ROOT+RUNROOT]NAME`)")?;
                let (driver, rest) = match store.split_once('@') {
                    Some((driver, rest)) => (Some(driver.to_owned()), rest),
                    None => (None, store),
                };
                let root = rest.split(['+', ':']).next().unwrap_or("");
                if !root.starts_with('/') {
                    return Err(format!(
                        "the store's graph root `{}` is not an absolute path",
                        shorten(root)
                    ));
                }
                (driver, Some(PathBuf::from(root)), image)
            }
            None => (None, None, text),
        };
        if image.is_empty() {
            return Err("names no image (`containers-storage:NAME[:TAG]`)".to_owned());
        }
        Ok(StorageReference {
            driver: driver.filter(|d| !d.is_empty()),
            root,
            image: image.to_owned(),
        })
    }
}

/// `storage.conf`'s `[storage]` table.
#[derive(Debug, Default, Deserialize)]
struct StorageConf {
    #[serde(default)]
    storage: StorageTable,
}

#[derive(Debug, Default, Deserialize)]
struct StorageTable {
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    graphroot: Option<String>,
}

/// Where the store is: its graph root and driver.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub root: PathBuf,
    pub driver: String,
}

/// The storage.conf containers/storage reads (for root).
fn storage_conf() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CONTAINERS_STORAGE_CONF").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    [
        "/etc/containers/storage.conf",
        "/usr/share/containers/storage.conf",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

impl Store {
    /// The store a reference names, or the configured one.
    pub(crate) fn locate(reference: &StorageReference) -> Result<Store, String> {
        let (mut driver, root) = match &reference.root {
            Some(root) => (reference.driver.clone(), root.clone()),
            None => {
                let conf = match storage_conf() {
                    Some(path) => {
                        let bytes =
                            read_bounded(&path, &format!("storage.conf {}", path.display()))?;
                        toml::from_str::<StorageConf>(&String::from_utf8_lossy(&bytes))
                            .map_err(|e| format!("{}: {e}", path.display()))?
                    }
                    None => StorageConf::default(),
                };
                (
                    reference.driver.clone().or(conf.storage.driver),
                    conf.storage
                        .graphroot
                        .filter(|g| !g.is_empty())
                        .map_or_else(|| PathBuf::from(DEFAULT_GRAPHROOT), PathBuf::from),
                )
            }
        };
        if driver.as_deref().is_some_and(str::is_empty) {
            driver = None;
        }
        let driver = match driver {
            Some(driver) => driver,
            None => DRIVERS
                .iter()
                .find(|d| root.join(format!("{d}-images/images.json")).is_file())
                .map(|d| (*d).to_owned())
                .ok_or_else(|| {
                    format!(
                        "{} holds no overlay or vfs image store (no overlay-images/images.json or vfs-images/images.json)",
                        root.display()
                    )
                })?,
        };
        if !DRIVERS.contains(&driver.as_str()) {
            return Err(format!(
                "the store's driver is `{}`; hostcert reads overlay and vfs stores",
                shorten(&driver)
            ));
        }
        Ok(Store { root, driver })
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join(format!("{}-images", self.driver))
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join(format!("{}-layers", self.driver))
    }

    /// The folder holding a layer's files.
    fn layer_folder(&self, id: &str) -> PathBuf {
        match self.driver.as_str() {
            "vfs" => self.root.join("vfs/dir").join(id),
            _ => self.root.join("overlay").join(id).join("diff"),
        }
    }
}

/// One image of images.json.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ImageRecord {
    pub id: String,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub layer: Option<String>,
    #[serde(default, rename = "big-data-names")]
    pub big_data_names: Vec<String>,
    /// containers/image's metadata of the image, JSON in a string (`signatures-sizes`).
    #[serde(default)]
    pub metadata: Option<String>,
}

/// One layer of layers.json.
#[derive(Debug, Clone, Deserialize)]
struct LayerRecord {
    id: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default, rename = "compressed-diff-digest")]
    compressed_digest: Option<String>,
    #[serde(default, rename = "diff-digest")]
    diff_digest: Option<String>,
    #[serde(default, rename = "diff-size")]
    diff_size: Option<i64>,
}

fn is_hex(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads a JSON file of the store (through fsio: a regular file only, 64 MiB for the lists); a
/// missing list is an empty one.
fn read_list<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, String> {
    const LIMIT: u64 = 64 << 20;
    let bytes = match crate::fsio::read_regular(path, LIMIT, "store's list") {
        Ok(bytes) => bytes,
        Err(e) if e.not_found => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not valid: {e}", path.display()))
}

/// A found image: its record, and the name it was found by (a full reference), if any.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub store: Store,
    pub record: ImageRecord,
    pub name: Option<String>,
}

impl Found {
    /// The policy scopes of the image, as containers/image's storage transport lists them:
    /// `[DRIVER@GRAPHROOT]NAME:TAG` (with `@ID`), the name without the ID, its repository and
    /// each parent namespace, then `[DRIVER@GRAPHROOT]` and `[GRAPHROOT]`.
    pub(crate) fn policy_scopes(&self) -> Vec<String> {
        let store = format!("[{}@{}]", self.store.driver, self.store.root.display());
        let named = self
            .name
            .as_deref()
            .and_then(|n| DockerReference::parse(n).ok());
        let mut scopes = Vec::new();
        let identity = named.as_ref().map(DockerReference::identity);
        scopes.push(format!(
            "{store}{}@{}",
            identity.clone().unwrap_or_default(),
            self.record.id
        ));
        if let Some(named) = &named {
            scopes.push(format!("{store}{}", named.identity()));
            let mut name = named.name();
            loop {
                scopes.push(format!("{store}{name}"));
                match name.rfind('/') {
                    Some(slash) => name.truncate(slash),
                    None => break,
                }
            }
        }
        scopes.push(store);
        scopes.push(format!("[{}]", self.store.root.display()));
        scopes
    }

    /// The tag of the name the image was found by.
    pub(crate) fn tag(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        DockerReference::parse(name).ok().and_then(|r| r.tag)
    }
}

/// Finds the image a reference names: by its name as containers/image normalises it
/// (`busybox` is `docker.io/library/busybox:latest`), then as podman names local builds
/// (`localhost/NAME:TAG`), then by ID or a unique ID prefix (`@ID` too).
pub(crate) fn find(reference: &StorageReference) -> Result<Found, String> {
    let store = Store::locate(reference)?;
    let images: Vec<ImageRecord> = read_list(&store.images_dir().join("images.json"))?;
    let wanted = reference.image.trim_start_matches('@');
    let mut candidates = Vec::new();
    if let Ok(named) = DockerReference::parse(wanted) {
        candidates.push(named.identity());
    }
    if let Ok(local) = DockerReference::parse(&format!("localhost/{wanted}")) {
        candidates.push(local.identity());
    }
    for candidate in &candidates {
        if let Some(record) = images
            .iter()
            .find(|i| i.names.iter().any(|n| n == candidate))
        {
            return Ok(Found {
                store,
                record: record.clone(),
                name: Some(candidate.clone()),
            });
        }
    }
    let id = wanted.strip_prefix("sha256:").unwrap_or(wanted);
    if id.len() >= 3 && is_hex(id) {
        let matching: Vec<&ImageRecord> = images.iter().filter(|i| i.id.starts_with(id)).collect();
        match matching.as_slice() {
            [one] => {
                return Ok(Found {
                    store,
                    record: (*one).clone(),
                    name: None,
                })
            }
            [] => {}
            _ => {
                return Err(format!(
                    "the ID prefix `{}` names several images",
                    shorten(id)
                ))
            }
        }
    }
    Err(format!(
        "no image `{}` in the store {} ({} images{})",
        shorten(&reference.image),
        store.root.display(),
        images.len(),
        if candidates.is_empty() {
            String::new()
        } else {
            format!("; looked for {}", candidates.join(", "))
        }
    ))
}

/// The file a big-data item of an image is stored in: `=BASE64(key)` (or the key itself, for
/// keys containers/storage leaves as they are).
fn big_data(store: &Store, id: &str, key: &str) -> Result<Vec<u8>, String> {
    if !is_hex(id) {
        return Err(format!("image ID `{}` is not hex", shorten(id)));
    }
    let folder = store.images_dir().join(id);
    let encoded = format!("={}", base64::engine::general_purpose::STANDARD.encode(key));
    for name in [encoded.as_str(), key] {
        if name.contains('/') || name == "." || name == ".." {
            continue;
        }
        let path = folder.join(name);
        if path.is_file() {
            return read_bounded(&path, &format!("{key} of image {}", shorten(id)));
        }
    }
    Err(format!(
        "image {}: the store keeps no `{}`",
        shorten(id),
        shorten(key)
    ))
}

/// A `containers-storage:` image read for one gather.
pub(crate) struct Read {
    pub image: Image,
    /// One check per layer of `image.layers`, from reassembling it.
    pub checks: Vec<LayerCheck>,
}

/// Reads a found image for a gather: its manifest and config into a layout in `temp`, read by
/// `read_layout`; then, when `layers` is set (a probe reads them), each layer reassembled into
/// `temp` and measured.
pub(crate) fn read(
    found: &Found,
    temp: &Path,
    layers: bool,
    read_layout: impl FnOnce(&Path, Option<&str>) -> Result<Image, String>,
) -> Result<Read, String> {
    let store = &found.store;
    let record = &found.record;
    let manifest_key = record
        .digest
        .as_ref()
        .map(|d| format!("manifest-{d}"))
        .filter(|k| record.big_data_names.contains(k))
        .unwrap_or_else(|| "manifest".to_owned());
    let manifest = big_data(store, &record.id, &manifest_key)?;
    // The digest the store claims for the manifest; the reader checks the bytes against it.
    let manifest_digest = match &record.digest {
        Some(digest) => Sha256Digest::parse(digest).map_err(|e| format!("images.json: {e}"))?,
        None => Sha256Digest::of(&manifest),
    };
    let value: Value = serde_json::from_slice(&manifest)
        .map_err(|e| format!("the stored manifest is not valid JSON: {e}"))?;
    let media_type = value
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or(super::layout::OCI_MANIFEST)
        .to_owned();
    let root = temp.join("layout");
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|e| {
            format!(
                "cannot write {} in the temporary folder: {e}",
                path.display()
            )
        })
    };
    write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#,
    )?;
    let mut entry = json!({"mediaType": media_type, "digest": manifest_digest.to_string(), "size": manifest.len()});
    let tag = found.tag();
    if let Some(tag) = &tag {
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    }
    write(
        root.join("index.json"),
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
            .to_string()
            .as_bytes(),
    )?;
    write(blobs.join(&manifest_digest.0), &manifest)?;
    if let Some(config) = value.pointer("/config/digest").and_then(Value::as_str) {
        let digest = Sha256Digest::parse(config)
            .map_err(|e| format!("the stored manifest's config: {e}"))?;
        if let Ok(bytes) = big_data(store, &record.id, config) {
            write(blobs.join(&digest.0), &bytes)?;
        }
    }
    let mut image = read_layout(&root, tag.as_deref())?;
    image.reference = found.name.clone();
    image.tag = tag;
    let checks = if layers && image.broken.is_none() {
        reassemble(store, record, &mut image, temp)?
    } else {
        Vec::new()
    };
    Ok(Read { image, checks })
}

/// The signatures the store keeps for a manifest of the image, as containers/image keeps them
/// (the big-data item `signature-HEX`, its signatures one after the other, cut by the sizes
/// the image's metadata lists under `signatures-sizes`), written into `dir` in registries.d's
/// lookaside layout (`NAME@sha256=HEX/signature-N`). Returns the folder when there are any.
pub(crate) fn signatures(
    found: &Found,
    manifest_digest: &str,
    dir: &Path,
) -> Result<Option<PathBuf>, String> {
    let digest = Sha256Digest::parse(manifest_digest)?;
    let metadata: Value = match found.record.metadata.as_deref() {
        Some(text) if !text.is_empty() => serde_json::from_str(text)
            .map_err(|e| format!("images.json: the image's metadata is not JSON: {e}"))?,
        _ => return Ok(None),
    };
    let sizes: Vec<u64> = metadata
        .pointer(&format!("/signatures-sizes/{digest}"))
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if sizes.is_empty() {
        return Ok(None);
    }
    let all = big_data(
        &found.store,
        &found.record.id,
        &format!("signature-{}", digest.0),
    )?;
    if sizes.iter().sum::<u64>() != all.len() as u64 {
        return Err(format!(
            "the store's signatures of {digest} are {} bytes, its metadata says {}",
            all.len(),
            sizes.iter().sum::<u64>()
        ));
    }
    let folder = dir.join(format!("image@sha256={}", digest.0));
    std::fs::create_dir_all(&folder).map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let mut start = 0usize;
    for (index, size) in sizes.iter().enumerate() {
        let end = start + *size as usize;
        std::fs::write(
            folder.join(format!("signature-{}", index + 1)),
            &all[start..end],
        )
        .map_err(|e| format!("cannot write a signature in the temporary folder: {e}"))?;
        start = end;
    }
    Ok(Some(dir.to_owned()))
}

/// The image's layers from the top one down, through layers.json's `parent`, bottom first.
fn chain(store: &Store, record: &ImageRecord) -> Result<Vec<LayerRecord>, String> {
    let mut all: BTreeMap<String, LayerRecord> = BTreeMap::new();
    for file in ["layers.json", "volatile-layers.json"] {
        for layer in read_list::<LayerRecord>(&store.layers_dir().join(file))? {
            all.insert(layer.id.clone(), layer);
        }
    }
    let mut chain = Vec::new();
    let mut next = record.layer.clone();
    while let Some(id) = next {
        if chain.len() >= MAX_LAYERS {
            return Err(format!(
                "image {}: more than {MAX_LAYERS} layers, or a loop of parents",
                shorten(&record.id)
            ));
        }
        let layer = all
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("layers.json has no layer {}", shorten(&id)))?;
        next = layer.parent.clone();
        chain.push(layer);
    }
    chain.reverse();
    Ok(chain)
}

/// Reassembles and measures every layer; the image's layers become the reassembled streams.
fn reassemble(
    store: &Store,
    record: &ImageRecord,
    image: &mut Image,
    temp: &Path,
) -> Result<Vec<LayerCheck>, String> {
    let chain = chain(store, record)?;
    if chain.len() != image.layers.len() {
        return Err(format!(
            "the store keeps {} layers for image {}, its manifest lists {}",
            chain.len(),
            shorten(&record.id),
            image.layers.len()
        ));
    }
    let folder = temp.join("layers");
    std::fs::create_dir_all(&folder).map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let mut checks = Vec::new();
    for (index, (layer, stored)) in image.layers.iter_mut().zip(&chain).enumerate() {
        let mut check = LayerCheck::default();
        let manifest_digest = layer.digest.as_ref().map(ToString::to_string);
        let names_it = [&stored.compressed_digest, &stored.diff_digest]
            .iter()
            .any(|d| d.is_some() && d.as_deref() == manifest_digest.as_deref());
        if !names_it {
            check.blob.push(format!(
                "layer {}: the store's layer {} was not made from it (its digests are {} and {})",
                layer.name,
                shorten(&stored.id),
                stored.compressed_digest.as_deref().unwrap_or("none"),
                stored.diff_digest.as_deref().unwrap_or("none")
            ));
        }
        let Some(diff) = stored
            .diff_digest
            .as_deref()
            .map(Sha256Digest::parse)
            .transpose()?
        else {
            return Err(format!(
                "layers.json: layer {} has no diff-digest",
                shorten(&stored.id)
            ));
        };
        let size = u64::try_from(stored.diff_size.unwrap_or(-1)).map_err(|_| {
            format!(
                "layers.json: layer {} has no diff-size",
                shorten(&stored.id)
            )
        })?;
        if !is_hex(&stored.id) {
            return Err(format!(
                "layers.json: layer ID `{}` is not hex",
                shorten(&stored.id)
            ));
        }
        let path = folder.join(format!("{index}.tar"));
        // The layer as the reader sees it now: the reassembled stream, named by its digest.
        layer.path = path.clone();
        layer.compression = Compression::None;
        layer.digest = Some(diff.clone());
        layer.size = Some(size);
        let tar_split = store
            .layers_dir()
            .join(format!("{}.tar-split.gz", stored.id));
        let mut assembler =
            match tarsplit::Assembler::open(&tar_split, &store.layer_folder(&stored.id), size) {
                Ok(assembler) => assembler,
                Err(reason) => {
                    check.blob.push(format!("layer {}: {reason}", layer.name));
                    check
                        .diff_id
                        .push(format!("layer {}: {reason}", layer.name));
                    checks.push(check);
                    continue;
                }
            };
        let file = std::fs::File::create(&path).map_err(|e| {
            format!(
                "cannot write {} in the temporary folder: {e}",
                path.display()
            )
        })?;
        let mut sink = std::io::BufWriter::with_capacity(256 << 10, file);
        let measured = {
            let mut tee = verify::Tee {
                source: std::io::Read::take(&mut assembler, size.saturating_add(1)),
                sink: &mut sink,
            };
            verify::measure(&mut tee, Compression::None, size)
        };
        sink.flush().map_err(|e| {
            format!(
                "cannot write {} in the temporary folder: {e}",
                path.display()
            )
        })?;
        // Changed files are named first: they say why the digests below do not hold.
        if !assembler.changed.is_empty() {
            check.diff_id.push(format!(
                "layer {}: files changed in the store since the layer was stored (their CRC-64 is not tar-split's): {}",
                layer.name,
                assembler
                    .changed
                    .iter()
                    .take(10)
                    .map(|n| shorten(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(reason) = &measured.source_error {
            let reason = format!(
                "layer {}: cannot reassemble it from the store: {reason}",
                layer.name
            );
            check.blob.push(reason.clone());
            check.diff_id.push(reason);
        } else {
            let judged = verify::judge(layer, &measured);
            check.blob.extend(judged.blob);
            check.diff_id.extend(judged.diff_id);
        }
        checks.push(check);
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_references_name_a_store_and_an_image() {
        let r = StorageReference::parse("[vfs@/tmp/root+/tmp/run]localhost/app:1.0").unwrap();
        assert_eq!(r.driver.as_deref(), Some("vfs"));
        assert_eq!(r.root.as_deref(), Some(Path::new("/tmp/root")));
        assert_eq!(r.image, "localhost/app:1.0");
        let r = StorageReference::parse("busybox").unwrap();
        assert_eq!(r.root, None);
        assert!(StorageReference::parse("[vfs@relative]x").is_err());
        assert!(StorageReference::parse("[vfs@/x").is_err());
        assert!(StorageReference::parse("").is_err());
    }
}
