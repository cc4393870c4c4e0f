//! `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: images read from a registry over the OCI
//! distribution API, presented to the layout reader exactly as an OCI layout is.
//!
//! The manifest (or index) the reference names is fetched, its sha256 checked against the
//! reference's digest or the registry's `Docker-Content-Digest`, and stored in the blob cache
//! ([`cache`]), whose `blobs/sha256` is an OCI layout's. A small layout in the run's temporary
//! folder (`oci-layout`, an `index.json` naming that manifest by its tag, and `blobs` linked
//! to the cache) is then read by [`super::layout::read_oci`] like any other: every check,
//! signature, attestation and Red Hat check works unchanged. Manifests and configs are fetched
//! before the reader runs; layers after it, in parallel ([`PARALLEL_FETCHES`] at a time), each
//! streamed once through the same measurement as a layout's layers ([`super::verify::measure`]:
//! size, sha256 and diff_id in one pass) into an exclusive temporary file of the cache, renamed
//! to its digest only when it verifies. Memory stays bounded: every JSON document is read up to
//! 4 MiB, a blob in fixed chunks.
//!
//! Signatures and attestations are found where their tools put them: the lookaside store
//! registries.d names ([`registries_d`]), cosign's `sha256-HEX.sig` (when registries.d says
//! `use-sigstore-attachments`), `.att` and `.sbom` tags, and the OCI 1.1 referrers API (or its
//! `sha256-HEX` tag fallback). They join the image's index entries and lookaside folders, where
//! the policy and attestation code already look.

mod auth;
mod cache;
mod client;
mod reference;
mod registries_d;
mod tls;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use super::layout::{shorten, Image, Layer, Sha256Digest, MAX_JSON_BYTES};
use super::verify::{self, LayerCheck, Measured};
pub(crate) use reference::DockerReference;

/// Layers fetched at once from one registry (containers/image uses 6; the verification is
/// CPU-bound, so fewer keep up).
const PARALLEL_FETCHES: usize = 4;
/// The chunk a layer is measured and written in while it streams: small enough to stay in the
/// CPU's cache between hashing, decompressing and writing.
const STREAM_CHUNK: usize = 64 << 10;
/// The most manifests an index may list: more is refused before anything is fetched or cached.
pub(crate) const MAX_INDEX_ENTRIES: usize = 1000;
/// The most lookaside signatures read for one manifest.
const MAX_SIGNATURES: usize = 64;

/// The manifest media types asked for.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// How registries are reached: credentials, TLS, signature stores, time limits.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The auth file (`--authfile`; otherwise `REGISTRY_AUTH_FILE` and the default files).
    pub authfile: Option<PathBuf>,
    /// The folder of CA (`*.crt`) and client (`*.cert`, `*.key`) certificates (`--cert-dir`;
    /// otherwise `/etc/containers/certs.d/HOST:PORT` and the other certs.d folders).
    pub cert_dir: Option<PathBuf>,
    /// Whether TLS certificates are verified (`--tls-verify`, true unless set to false).
    pub tls_verify: bool,
    /// The registries.d folder (`--registries.d`).
    pub registries_d: Option<PathBuf>,
    /// The time to wait for a connection (`--connect-timeout`).
    pub connect_timeout: Duration,
    /// The time to wait for an answer, and for each read of a body (`--gather-timeout`).
    pub gather_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> RegistryOptions {
        RegistryOptions {
            authfile: None,
            cert_dir: None,
            tls_verify: true,
            registries_d: None,
            connect_timeout: Duration::from_secs(10),
            gather_timeout: Duration::from_secs(60),
        }
    }
}

/// A manifest or index fetched, verified and cached: its descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub digest: Sha256Digest,
    pub media_type: String,
    pub size: u64,
}

impl Document {
    fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.to_string(), "size": self.size})
    }

    pub(crate) fn is_index(&self) -> bool {
        INDEX_TYPES.contains(&self.media_type.as_str())
    }
}

/// The media type of a manifest or index: its own `mediaType`, else the `Content-Type` it was
/// served with when that is a manifest's or an index's, else what its fields say (an OCI
/// document may leave `mediaType` out).
fn media_type_of(value: &Value, content_type: &str) -> String {
    if let Some(own) = value.get("mediaType").and_then(Value::as_str) {
        return own.to_owned();
    }
    let served = content_type.split(';').next().unwrap_or("").trim();
    if INDEX_TYPES.contains(&served) || MANIFEST_TYPES.contains(&served) {
        served.to_owned()
    } else if value.get("manifests").is_some() {
        INDEX_TYPES[0].to_owned()
    } else {
        MANIFEST_TYPES[0].to_owned()
    }
}

/// One repository of a registry, with its client and the blob cache.
pub(crate) struct Registry {
    pub reference: DockerReference,
    client: client::Client,
    cache: cache::Cache,
    /// Fetches that failed while the layout was prepared, by digest: reported if the image
    /// read needs the blob.
    failures: std::sync::Mutex<BTreeMap<String, String>>,
}

impl Registry {
    /// Prepares to read a reference: its credentials, its TLS setup and the blob cache. Nothing
    /// is sent yet.
    pub(crate) fn open(
        reference: &DockerReference,
        options: &RegistryOptions,
    ) -> Result<Registry, String> {
        let credentials = auth::find(reference, options.authfile.as_deref())?;
        let client = client::Client::new(reference, options, credentials)?;
        let cache = cache::Cache::open(&cache::default_root()?)?;
        Ok(Registry {
            reference: reference.clone(),
            client,
            cache,
            failures: Default::default(),
        })
    }

    fn api(&self, kind: &str, reference: &str) -> String {
        format!("/v2/{}/{kind}/{reference}", self.reference.repository)
    }

    /// Fetches the manifest or index a tag or digest names, verified: its sha256 must be the
    /// digest asked for (when asked by digest) and the registry's `Docker-Content-Digest`
    /// (when it sends one). An index may list at most [`MAX_INDEX_ENTRIES`] manifests. Nothing
    /// is cached that does not hold.
    pub(crate) fn manifest(&self, tag_or_digest: &str) -> Result<Document, String> {
        let what = format!("manifest {}", shorten(tag_or_digest));
        let expected = Sha256Digest::parse(tag_or_digest).ok();
        if let Some(digest) = &expected {
            if let Some(document) = self.cached_document(digest) {
                return Ok(document);
            }
        }
        let response = self
            .client
            .get(
                &what,
                &self.api("manifests", tag_or_digest),
                MANIFEST_ACCEPT,
                true,
            )
            .map_err(|e| e.message)?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let served_digest = header("docker-content-digest");
        let content_type = header("content-type").unwrap_or_default();
        if let Some(length) = header("content-length").and_then(|l| l.parse::<u64>().ok()) {
            if length > MAX_JSON_BYTES {
                return Err(format!(
                    "{what}: the registry serves {length} bytes, more than the {} MiB hostcert reads",
                    MAX_JSON_BYTES >> 20
                ));
            }
        }
        let bytes = client::read_limited(response.into_body(), MAX_JSON_BYTES)
            .map_err(|e| format!("{what}: {e}"))?;
        let digest = Sha256Digest::of(&bytes);
        if let Some(wanted) = &expected {
            if *wanted != digest {
                return Err(format!(
                    "{what}: the registry served a manifest whose sha256 is {digest}, not the digest the reference names"
                ));
            }
        }
        if let Some(served) = served_digest {
            match Sha256Digest::parse(served.trim()) {
                Ok(served) if served == digest => {}
                Ok(served) => {
                    return Err(format!(
                        "{what}: the registry says its digest is {served} (Docker-Content-Digest), but the manifest it served has the sha256 {digest}"
                    ))
                }
                Err(e) => return Err(format!("{what}: Docker-Content-Digest: {e}")),
            }
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{what} {digest} is not valid JSON: {e}"))?;
        let media_type = media_type_of(&value, &content_type);
        if !INDEX_TYPES.contains(&media_type.as_str())
            && !MANIFEST_TYPES.contains(&media_type.as_str())
        {
            return Err(format!(
                "{what} {digest}: media type `{}` is neither an image manifest nor an index",
                shorten(&media_type)
            ));
        }
        if let Some(entries) = value.get("manifests").and_then(Value::as_array) {
            if entries.len() > MAX_INDEX_ENTRIES {
                return Err(format!(
                    "{what} {digest}: an index of {} manifests, more than the {MAX_INDEX_ENTRIES} hostcert reads",
                    entries.len()
                ));
            }
        }
        self.cache.store(&digest, &bytes)?;
        Ok(Document {
            digest,
            media_type,
            size: bytes.len() as u64,
        })
    }

    /// A document already in the cache whose bytes still are its digest's.
    fn cached_document(&self, digest: &Sha256Digest) -> Option<Document> {
        let path = self.cache.path(digest);
        let bytes = super::layout::read_bounded(&path, "cached manifest").ok()?;
        if Sha256Digest::of(&bytes) != *digest {
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        let media_type = media_type_of(&value, "");
        Some(Document {
            digest: digest.clone(),
            media_type,
            size: bytes.len() as u64,
        })
    }

    /// Fetches a small blob (a config, a signature payload) by its descriptor into the cache,
    /// verified; at most [`MAX_JSON_BYTES`].
    fn small_blob(&self, what: &str, descriptor: &Value) -> Result<(), String> {
        let digest = descriptor
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the {what} descriptor has no digest"))
            .and_then(|d| Sha256Digest::parse(d).map_err(|e| format!("{what}: {e}")))?;
        let _guard = cache::lock(&digest);
        let _held = _guard.lock().unwrap_or_else(|e| e.into_inner());
        if self.cache.has(&digest) {
            let bytes = super::layout::read_bounded(&self.cache.path(&digest), what)?;
            if Sha256Digest::of(&bytes) == digest {
                return Ok(());
            }
            let _ = std::fs::remove_file(self.cache.path(&digest));
        }
        let what = format!("{what} {digest}");
        if let Some(size) = descriptor.get("size").and_then(Value::as_u64) {
            if size > MAX_JSON_BYTES {
                return Err(format!(
                    "{what} is {size} bytes, more than the {} MiB hostcert reads",
                    MAX_JSON_BYTES >> 20
                ));
            }
        }
        let response = self
            .client
            .get(&what, &self.api("blobs", &digest.to_string()), "*/*", true)
            .map_err(|e| e.message)?;
        let bytes = client::read_limited(response.into_body(), MAX_JSON_BYTES)
            .map_err(|e| format!("{what}: {e}"))?;
        let actual = Sha256Digest::of(&bytes);
        if actual != digest {
            return Err(format!(
                "{what}: the registry served a blob whose sha256 is {actual}"
            ));
        }
        self.cache.store(&digest, &bytes)
    }

    fn fail(&self, digest: &str, reason: String) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.to_owned(), reason);
    }

    /// Why a blob the image needs could not be fetched, if it could not.
    pub(crate) fn failure(&self, digest: &str) -> Option<String> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .cloned()
    }

    /// Fetches a manifest's config into the cache (a failure is kept for [`Registry::failure`]).
    fn config_of(&self, manifest: &Document) {
        let result = super::layout::read_bounded(&self.cache.path(&manifest.digest), "manifest")
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string()))
            .and_then(|value| {
                let config = value
                    .get("config")
                    .cloned()
                    .ok_or_else(|| format!("manifest {} has no config", manifest.digest))?;
                let digest = config
                    .get("digest")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.small_blob("config", &config)
                    .inspect_err(|reason| self.fail(&digest, reason.clone()))
            });
        if let Err(reason) = result {
            self.fail(&manifest.digest.to_string(), reason);
        }
    }

    /// Writes the layout the reader reads in `dir`: `oci-layout`, an `index.json` whose one
    /// entry is `top` (tagged `tag`), and `blobs` linked to the cache's. The manifests an index
    /// lists and every manifest's config are fetched into the cache first; one that cannot be
    /// is remembered ([`Registry::failure`]) and fails only the image that needs it.
    pub(crate) fn layout(
        &self,
        top: &Document,
        tag: Option<&str>,
        dir: &Path,
    ) -> Result<PathBuf, String> {
        if top.is_index() {
            let bytes = super::layout::read_bounded(&self.cache.path(&top.digest), "index")?;
            let index: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("index {} is not valid JSON: {e}", top.digest))?;
            let entries = index
                .get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for entry in entries.iter().take(MAX_INDEX_ENTRIES) {
                let Some(digest) = entry.get("digest").and_then(Value::as_str) else {
                    continue;
                };
                if Sha256Digest::parse(digest).is_err() {
                    continue;
                }
                match self.manifest(digest) {
                    Ok(child) if !child.is_index() => self.config_of(&child),
                    Ok(_) => {}
                    Err(reason) => self.fail(digest, reason),
                }
            }
        } else {
            self.config_of(top);
        }
        let root = dir.join("layout");
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot make a temporary folder: {e}"))?;
        let write = |name: &str, value: &Value| {
            std::fs::write(root.join(name), value.to_string())
                .map_err(|e| format!("cannot write {name} in the temporary folder: {e}"))
        };
        write("oci-layout", &json!({"imageLayoutVersion": "1.0.0"}))?;
        write("index.json", &index_json(top, tag))?;
        std::os::unix::fs::symlink(self.cache.root().join("blobs"), root.join("blobs"))
            .map_err(|e| format!("cannot link the blob cache into the temporary folder: {e}"))?;
        Ok(root)
    }

    /// Fetches and verifies the layers an image needs, [`PARALLEL_FETCHES`] at a time; a layer
    /// already cached is verified again from the cache (once per run). Returns one check per
    /// layer, in order, judged as a layout's layers are.
    pub(crate) fn layers(&self, layers: &[Layer]) -> Vec<LayerCheck> {
        let next = AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<LayerCheck>>> =
            layers.iter().map(|_| Default::default()).collect();
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL_FETCHES.min(layers.len()) {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(layer) = layers.get(index) else {
                        break;
                    };
                    let check = self.layer(layer);
                    *results[index].lock().unwrap_or_else(|e| e.into_inner()) = Some(check);
                });
            }
        });
        results
            .into_iter()
            .map(|r| {
                r.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn layer(&self, layer: &Layer) -> LayerCheck {
        let Some(digest) = &layer.digest else {
            return LayerCheck::blob(format!(
                "layer {}: the descriptor names no digest",
                layer.name
            ));
        };
        let key = format!("{digest} {:?}", layer.compression);
        let lock = cache::lock(digest);
        let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(measured) = cache::measured(&key) {
            return verify::judge(layer, &measured);
        }
        let size = layer.size.unwrap_or(verify::MAX_LAYER_BYTES);
        if self.cache.has(digest) {
            if let Ok(file) = std::fs::File::open(self.cache.path(digest)) {
                let measured = verify::measure(file, layer.compression, size);
                if measured.digest == digest.to_string() && measured.source_error.is_none() {
                    cache::remember(key, measured.clone());
                    return verify::judge(layer, &measured);
                }
            }
            // The cached copy no longer holds: fetch it again.
            let _ = std::fs::remove_file(self.cache.path(digest));
        }
        match self.fetch_layer(layer, digest, size) {
            Ok(measured) => {
                let check = verify::judge(layer, &measured);
                if measured.digest == digest.to_string() && measured.size == size {
                    cache::remember(key, measured);
                }
                check
            }
            Err(check) => check,
        }
    }

    /// Streams a layer from the registry into an exclusive temporary file of the cache, through
    /// the measurement; renames it to its digest only when its size and sha256 hold.
    fn fetch_layer(
        &self,
        layer: &Layer,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<Measured, LayerCheck> {
        let fail = |reason: String| LayerCheck::blob(format!("layer {}: {reason}", layer.name));
        let what = format!("layer {digest}");
        let response = self
            .client
            .get(&what, &self.api("blobs", &digest.to_string()), "*/*", false)
            .map_err(|e| LayerCheck::blob(e.message))?;
        if let Some(length) = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.parse::<u64>().ok())
        {
            if length != size && layer.size.is_some() {
                return Err(fail(format!(
                    "the registry serves {length} bytes (Content-Length), the descriptor says {size}"
                )));
            }
        }
        let file = self.cache.temporary().map_err(&fail)?;
        // Removed as the run exits if a signal stops it while the blob streams in.
        let _abandoned = crate::interrupt::RemoveOnExit::register(file.path());
        let mut tee = verify::Tee {
            source: client::MinimumRate::new(
                response.into_body().into_reader(),
                self.client.gather_timeout(),
            )
            .take(size + 1),
            sink: std::io::BufWriter::with_capacity(STREAM_CHUNK, file),
        };
        let measured = verify::measure_in(&mut tee, layer.compression, size, STREAM_CHUNK);
        if let Some(error) = &measured.source_error {
            return Err(fail(format!(
                "cannot fetch it: {} (after {} of its {size} bytes)",
                self.client.redact(error),
                measured.size
            )));
        }
        if measured.size > size {
            return Err(fail(format!(
                "the registry sent more than the {size} bytes the descriptor says"
            )));
        }
        if measured.digest == digest.to_string() && measured.size == size {
            let file = tee
                .sink
                .into_inner()
                .map_err(|e| fail(format!("cannot write the blob cache: {}", e.error())))?;
            self.cache.commit(file, digest).map_err(fail)?;
        }
        Ok(measured)
    }

    /// Cosign-style attachments of a manifest (`sha256-HEX.sig`, `.att`, `.sbom` tags, as
    /// `kinds` asks) and its OCI 1.1 referrers (the referrers API, else its `sha256-HEX` tag):
    /// each manifest, and its layers up to 4 MiB, fetched into the cache and returned as index
    /// entries, tag-named as a layout names them. Missing ones are simply absent.
    pub(crate) fn attachments(
        &self,
        digest: &str,
        kinds: &[&str],
        referrers: bool,
    ) -> Vec<(Option<String>, Value)> {
        let mut entries = Vec::new();
        let hex = digest.trim_start_matches("sha256:");
        for kind in kinds {
            let tag = format!("sha256-{hex}.{kind}");
            if let Ok(document) = self.manifest(&tag) {
                self.attachment_layers(&document);
                entries.push((Some(tag), document.descriptor()));
            }
        }
        if referrers {
            let listed = self
                .client
                .get(
                    "referrers",
                    &self.api("referrers", digest),
                    INDEX_TYPES[0],
                    true,
                )
                .ok()
                .and_then(|r| client::read_limited(r.into_body(), MAX_JSON_BYTES).ok())
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .or_else(|| {
                    // The referrers tag schema: an index tagged `sha256-HEX`.
                    let document = self.manifest(&format!("sha256-{hex}")).ok()?;
                    let bytes =
                        super::layout::read_bounded(&self.cache.path(&document.digest), "index")
                            .ok()?;
                    serde_json::from_slice(&bytes).ok()
                });
            let descriptors = listed
                .as_ref()
                .and_then(|l| l.get("manifests"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (position, descriptor) in descriptors.iter().take(MAX_INDEX_ENTRIES).enumerate() {
                let Some(referrer) = descriptor.get("digest").and_then(Value::as_str) else {
                    continue;
                };
                if let Ok(document) = self.manifest(referrer) {
                    self.attachment_layers(&document);
                    let mut entry = document.descriptor();
                    if let Some(kind) = descriptor.get("artifactType") {
                        entry["artifactType"] = kind.clone();
                    }
                    entries.push((Some(format!("sha256-{hex}.referrer-{position}")), entry));
                }
            }
        }
        entries
    }

    fn attachment_layers(&self, document: &Document) {
        let Ok(bytes) = super::layout::read_bounded(&self.cache.path(&document.digest), "manifest")
        else {
            return;
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            return;
        };
        for layer in value
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(64)
        {
            if layer
                .get("size")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX)
                <= MAX_JSON_BYTES
            {
                let _ = self.small_blob("attachment layer", layer);
            }
        }
    }

    /// Where this reference's signatures are kept, per registries.d.
    pub(crate) fn signature_store(
        &self,
        options: &RegistryOptions,
    ) -> Result<registries_d::SignatureStore, String> {
        let folder = registries_d::folder(options.registries_d.as_deref());
        Ok(registries_d::RegistriesD::read(&folder)?.store(&self.reference))
    }

    /// Reads the lookaside signatures of a manifest (`BASE@sha256=HEX/signature-N`, from 1
    /// until one is missing) into `dir`, in registries.d's layout, so the policy code finds them
    /// as in a `--lookaside` folder. Returns how many were found.
    pub(crate) fn lookaside(
        &self,
        store: &registries_d::SignatureStore,
        digest: &str,
        dir: &Path,
    ) -> Result<usize, String> {
        let hex = digest.trim_start_matches("sha256:");
        let folder = dir.join(format!(
            "{}@sha256={hex}",
            self.reference.repository.replace('/', "_")
        ));
        let mut count = 0;
        for index in 1..=MAX_SIGNATURES {
            let url = format!("{}@sha256={hex}/signature-{index}", store.lookaside);
            let bytes = if let Some(path) = url.strip_prefix("file://") {
                match std::fs::metadata(path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    _ => Some(super::layout::read_bounded(
                        Path::new(path),
                        &format!("signature {path}"),
                    )?),
                }
            } else if url.starts_with("http://") || url.starts_with("https://") {
                self.client.get_plain(&url, MAX_JSON_BYTES)?
            } else {
                return Err(format!(
                    "lookaside `{}`: only file://, http:// and https:// signature stores are read",
                    shorten(&store.lookaside)
                ));
            };
            let Some(bytes) = bytes else {
                break;
            };
            std::fs::create_dir_all(&folder)
                .map_err(|e| format!("cannot make a temporary folder: {e}"))?;
            std::fs::write(folder.join(format!("signature-{index}")), bytes)
                .map_err(|e| format!("cannot write a signature in the temporary folder: {e}"))?;
            count += 1;
        }
        Ok(count)
    }
}

/// The `index.json` of the layout of `top`: one entry, tagged `tag`.
fn index_json(top: &Document, tag: Option<&str>) -> Value {
    let mut entry = top.descriptor();
    if let Some(tag) = tag {
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    }
    json!({"schemaVersion": 2, "mediaType": super::layout::OCI_INDEX, "manifests": [entry]})
}

/// A file of the layout of `top` by its path in the layout (`index.json`, `blobs/sha256/HEX`
/// from the cache), for reading its index's platforms when the target is opened.
pub(crate) fn layout_file(
    top: &Document,
    tag: Option<&str>,
    member: &str,
) -> Result<Vec<u8>, String> {
    if member == "index.json" {
        return Ok(index_json(top, tag).to_string().into_bytes());
    }
    let hex = member
        .strip_prefix("blobs/sha256/")
        .ok_or_else(|| format!("{member} is not in a registry image's layout"))?;
    let digest = Sha256Digest::parse(&format!("sha256:{hex}"))?;
    let cache = cache::Cache::open(&cache::default_root()?)?;
    super::layout::read_bounded(&cache.path(&digest), member)
}

/// Resolves a reference when its target is opened: the manifest or index its tag names (or
/// its digest), fetched, verified and cached, so that every gather of the run reads that same
/// document even if the tag moves meanwhile.
pub(crate) fn resolve(
    reference: &DockerReference,
    options: &RegistryOptions,
) -> Result<Document, String> {
    Registry::open(reference, options)?.manifest(&reference.manifest_reference())
}

/// What the probes of a gather need from the registry besides the image itself.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wants {
    /// Signatures (`image-info: signature`): lookaside and, when registries.d says so, sigstore
    /// attachments.
    pub signatures: bool,
    /// Attestations (`image-info: provenance`): `.att` tags and referrers.
    pub attestations: bool,
    /// SBOMs (`image-info: sbom`): `.sbom` tags and referrers.
    pub sboms: bool,
}

/// A `docker://` image read for one gather.
pub(crate) struct Fetched {
    pub registry: Registry,
    pub image: Image,
}

/// Reads a `docker://` image for a gather: the layout of `top` (resolved when the target was
/// opened) is written in `temp` and read with `read_layout` (the layout reader, given the
/// layout's root and tag); the image's reference is its registry reference. A blob the chosen
/// image needs that could not be fetched is the error, with the registry's reason.
pub(crate) fn read(
    reference: &DockerReference,
    options: &RegistryOptions,
    top: &Document,
    temp: &Path,
    read_layout: impl FnOnce(&Path, Option<&str>) -> Result<Image, String>,
) -> Result<Fetched, String> {
    let registry = Registry::open(reference, options)?;
    let root = registry.layout(top, reference.tag.as_deref(), temp)?;
    let fetch_failure = |text: &str| {
        let failures = registry.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .iter()
            .find(|(digest, _)| text.contains(digest.as_str()))
            .map(|(_, reason)| reason.clone())
    };
    let mut image = read_layout(&root, reference.tag.as_deref())
        .map_err(|reason| fetch_failure(&reason).unwrap_or(reason))?;
    if let Some(digest) = &image.manifest_digest {
        if let Some(reason) = registry.failure(digest) {
            return Err(reason);
        }
    }
    image.reference = Some(reference.identity());
    image.tag = reference.tag.clone();
    Ok(Fetched { registry, image })
}

impl Registry {
    /// Adds what the probes need: attachments and referrers as index entries of the image,
    /// lookaside signatures into `temp/lookaside` (returned when it holds any, to be read as a
    /// `--lookaside` folder). As containers/image judges one image of an index, only the
    /// signatures of the manifest read count, not the index's.
    pub(crate) fn attach(
        &self,
        image: &mut Image,
        options: &RegistryOptions,
        wants: Wants,
        temp: &Path,
    ) -> Result<Option<PathBuf>, String> {
        let Some(manifest) = image.manifest_digest.clone() else {
            return Ok(None);
        };
        let digests = [manifest];
        let store = if wants.signatures {
            Some(self.signature_store(options)?)
        } else {
            None
        };
        let mut kinds = Vec::new();
        if store.as_ref().is_some_and(|s| s.sigstore_attachments) {
            kinds.push("sig");
        }
        if wants.attestations {
            kinds.push("att");
        }
        if wants.sboms {
            kinds.push("sbom");
        }
        let referrers = wants.attestations || wants.sboms;
        let mut found = 0;
        let folder = temp.join("lookaside");
        for digest in &digests {
            let entries = self.attachments(digest, &kinds, referrers);
            image.index_entries.extend(entries);
            if let Some(store) = &store {
                found += self.lookaside(store, digest, &folder)?;
            }
        }
        Ok((found > 0).then_some(folder))
    }
}
