//! Entry points of the fuzz targets in `harness/fuzz`: one function per parser of untrusted
//! input, each taking the fuzzer's bytes and driving them through the code a run uses on such
//! input. Built only with the `fuzzing` feature; nothing here is part of hostcert's API.
//!
//! Every function must return for any input. A panic, a hang or unbounded memory is a bug of
//! the parser it reached; so is a file left behind in the scratch folder, which would mean an
//! image wrote outside its temporary folder or did not clean it up.
//!
//! Inputs that name several documents (an image layout, an image's layers) are split with a
//! separator, and digests and sizes are filled in by the harness (see [`image_layout`]), so that
//! the fuzzer reaches past the checks a random byte string cannot pass.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hostcert_reports::{attestation, diff, html, json, junit, markdown, matrix, RenderOptions};
use sha2::{Digest, Sha256};

use crate::catalog::{self, Catalog, DataFile};
use crate::engine::{describe_expectation, evaluate, TargetInfo};
use crate::facts::{Fact, FactSet, FactValue, ProbeSet};
use crate::model::{Probe, TargetKind, Waiver};
use crate::targets::image::{self as image_target, ImageOptions};
use crate::targets::packages::{rpmdb, TreeFile, TreeFiles};
use crate::targets::snapshot::SnapshotTarget;
use crate::targets::Target;

/// Where the harness writes its inputs, and the folder hostcert's temporary folders go to
/// (`TMPDIR`), which must be empty again after every input.
struct Scratch {
    input: PathBuf,
    tmp: PathBuf,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let base = tempfile::Builder::new()
            .prefix("hostcert-fuzz-")
            .tempdir()
            .expect("a scratch folder")
            .keep();
        let input = base.join("input");
        let tmp = base.join("tmp");
        std::fs::create_dir(&input).expect("a scratch folder");
        std::fs::create_dir(&tmp).expect("a scratch folder");
        // Before any other thread exists: hostcert's temporary folders go here.
        std::env::set_var("TMPDIR", &tmp);
        Scratch { input, tmp }
    })
}

/// Prepares the scratch folders; call it once before the first input (libFuzzer's `init`).
pub fn init() {
    scratch();
}

/// A fresh, empty input folder for one input.
fn input_dir() -> PathBuf {
    let dir = &scratch().input;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir(dir).expect("the input folder");
    dir.clone()
}

/// Asserts that nothing was left in hostcert's temporary folder, and clears the inputs.
fn assert_clean() {
    let scratch = scratch();
    let left: Vec<String> = std::fs::read_dir(&scratch.tmp)
        .expect("the scratch folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    let _ = std::fs::remove_dir_all(&scratch.input);
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("the input folder");
    }
    std::fs::write(path, bytes).expect("an input file");
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn today() -> time::Date {
    time::macros::date!(2026 - 01 - 01)
}

/// Evaluates every planned check on no facts and on facts that all say `y`.
fn evaluate_plan(plan: &catalog::Plan) {
    let target = TargetInfo {
        name: "fuzz".to_owned(),
        kind: TargetKind::Local,
        unreadable: None,
        image_kind: None,
    };
    let empty = FactSet::default();
    let yes: FactSet = plan
        .checks
        .iter()
        .flat_map(|p| p.check.probes.values())
        .map(|probe| Fact::read(probe.clone(), "fuzz", FactValue::Text("y".to_owned())))
        .collect();
    for planned in &plan.checks {
        let _ = describe_expectation(&planned.check);
        for facts in [&empty, &yes] {
            let _ = evaluate(planned, &target, facts, &plan.profile.profile, today());
        }
    }
}

/// A YAML data file: a suite or a profile (told apart as `--suites` folders are read) and a
/// waivers file. A profile is resolved against the built-in suites; a suite is resolved under a
/// profile that asks for it. The checks of the plan are then evaluated.
pub fn yaml(data: &[u8]) {
    static BUILTIN: OnceLock<Catalog> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Waiver::parse_file("fuzz-waivers.yaml", text);
    match catalog::parse_data_file("fuzz.yaml", text) {
        Ok(DataFile::Profile(profile)) => {
            let builtin =
                BUILTIN.get_or_init(|| Catalog::builtin().expect("the built-in suites load"));
            if let Ok(plan) = builtin.resolve(&Arc::new(profile)) {
                evaluate_plan(&plan);
            }
        }
        Ok(DataFile::Suite(suite)) => {
            let profile_text = format!(
                "name: fuzz\nversion: 1.0.0\ndescription: fuzz\nsuites:\n  {}: \"={}\"\ngate: [critical, high, medium, low]\n",
                suite.suite.name, suite.suite.version
            );
            let Ok(DataFile::Profile(profile)) =
                catalog::parse_data_file("fuzz-profile.yaml", &profile_text)
            else {
                panic!("the generated profile parses:\n{profile_text}");
            };
            let catalog = Catalog {
                suites: vec![Arc::new(suite)],
                profiles: Vec::new(),
                warnings: Vec::new(),
            };
            if let Ok(plan) = catalog.resolve(&Arc::new(profile)) {
                evaluate_plan(&plan);
            }
        }
        Err(_) => {}
    }
}

/// A fact snapshot (`run --facts`): loaded from a file as a run loads it, then gathered and
/// digested.
pub fn snapshot(data: &[u8]) {
    let path = input_dir().join("snapshot.json");
    write(&path, data);
    if let Ok(target) = SnapshotTarget::load(&path) {
        let probes: ProbeSet = [
            Probe::KernelRelease,
            Probe::Architecture,
            Probe::OsRelease("ID".to_owned()),
            Probe::KernelConfig("NET_NS".to_owned()),
            Probe::File("/dev/ptmx".to_owned()),
        ]
        .into_iter()
        .collect();
        if let Ok(gathered) = target.gather(&probes) {
            let _ = gathered.facts.digest();
        }
    }
    assert_clean();
}

/// A JSON report (`report --from`, `diff`, `--baseline`, `attest`): read, then rendered in
/// every format, compared with itself, and written again; what was read must read back equal.
pub fn report(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(report) = json::from_str(text) else {
        return;
    };
    let options = RenderOptions::default();
    let _ = junit::render(&report);
    let _ = html::render(&report, &options);
    let _ = markdown::render(&report, &options);
    let _ = matrix::render_text(&report);
    let _ = diff::render_text(&diff::compare(&report, "old.json", &report, "new.json"));
    let statement = attestation::statement(&report, "report.json", "sha256:00");
    let _ = attestation::from_payload(&attestation::to_payload(&statement));
    let written = json::to_string(&report);
    let again = json::from_str(&written).expect("a report hostcert wrote reads back");
    assert_eq!(again, report, "a report changes when written and read back");
}

/// A kernel config (plain or gzip), as every target reads one.
pub fn kernel_config(data: &[u8]) {
    crate::targets::fuzzing::kernel_config(data);
}

/// An ELF file, as the `elf`, `libc-versions` and `openssh-version` probes read it.
pub fn elf(data: &[u8]) {
    crate::targets::fuzzing::elf(data);
}

/// The probes an image target answers, every image fact and a few file facts of its tree.
fn image_probes() -> ProbeSet {
    let mut probes: ProbeSet = [
        Probe::ImageIntegrity("blobs".to_owned()),
        Probe::ImageIntegrity("diff-ids".to_owned()),
        Probe::ImageConfig("/config/User".to_owned()),
        Probe::ImageConfig("/architecture".to_owned()),
        Probe::ImageLabel("org.opencontainers.image.base.name".to_owned()),
        Probe::Architecture,
        Probe::KernelRelease,
        Probe::OsRelease("ID".to_owned()),
        Probe::OsRelease("VERSION_ID".to_owned()),
        Probe::File("/etc/passwd".to_owned()),
        Probe::File("/bin/sh".to_owned()),
        Probe::FileContent("/etc/hostname".to_owned()),
        Probe::DirList("/etc".to_owned()),
        Probe::Elf("/bin/sh".to_owned()),
        Probe::LibcVersions("/lib/libc.so.6".to_owned()),
        Probe::OpensshVersion("/usr/sbin/sshd".to_owned()),
        Probe::KernelModule("overlay".to_owned()),
    ]
    .into_iter()
    .collect();
    for key in [
        "layer-count",
        "tag",
        "reference",
        "manifest-digest",
        "base-image",
        "provenance",
        "signature",
        "user",
        "licenses",
        "packages",
        "modified-package-files",
        "sbom",
    ] {
        probes.insert(Probe::ImageInfo(key.to_owned()));
    }
    probes
}

/// Opens an image address as a run does and gathers `probes` from every target it gives.
fn gather_image(address: &str, options: &ImageOptions, probes: &ProbeSet) {
    if let Ok(targets) = image_target::open(address, options) {
        for target in targets {
            let _ = target.gather(probes);
        }
    }
}

/// An image archive (`oci-archive:` and `docker-archive:`): the tar read for its index without
/// extracting it, extracted, and the image in it gathered.
pub fn oci_archive(data: &[u8]) {
    let path = input_dir().join("image.tar");
    write(&path, data);
    let probes = image_probes();
    for transport in ["oci-archive", "docker-archive"] {
        gather_image(
            &format!("{transport}:{}", path.display()),
            &ImageOptions::default(),
            &probes,
        );
    }
    assert_clean();
}

/// Separates the documents of an [`image_layout`] input.
pub const BLOB_SEPARATOR: &[u8] = b"\n--blob--\n";

/// Splits `data` at every `separator`.
fn split<'a>(data: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest
        .windows(separator.len())
        .position(|window| window == separator)
    {
        parts.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest);
    parts
}

/// The uncompressed bytes of a layer blob, when it is gzip (as a diff_id is computed).
fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(flate2::read::GzDecoder::new(bytes), 1 << 24),
        &mut out,
    )
    .ok()?;
    Some(out)
}

/// Replaces the placeholders of one document: `@D<k>` by `sha256:<hex>` of document `k`,
/// `@S<k>` by its size and `@U<k>` by the sha256 of its gunzipped bytes (a diff_id), for the
/// documents after this one (`k` is one digit).
fn fill_placeholders(document: &[u8], later: &BTreeMap<usize, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(document.len());
    let mut at = 0;
    while at < document.len() {
        if document[at] == b'@' {
            let kind = document.get(at + 1).copied();
            let index = document
                .get(at + 2)
                .and_then(|d| char::from(*d).to_digit(10));
            if let (Some(kind @ (b'D' | b'S' | b'U')), Some(index)) = (kind, index) {
                if let Some(blob) = later.get(&(index as usize)) {
                    let text = match kind {
                        b'D' => format!("sha256:{}", sha256_hex(blob)),
                        b'S' => blob.len().to_string(),
                        _ => format!(
                            "sha256:{}",
                            sha256_hex(gunzip(blob).as_deref().unwrap_or(blob))
                        ),
                    };
                    out.extend_from_slice(text.as_bytes());
                    at += 3;
                    continue;
                }
            }
        }
        out.push(document[at]);
        at += 1;
    }
    out
}

/// An OCI image layout (`oci:`): the input is index.json, then the blobs, separated by
/// [`BLOB_SEPARATOR`]. In each document `@D<k>`, `@S<k>` and `@U<k>` stand for the digest, the
/// size and the diff_id of a later document `k` (index.json is 0), so that a manifest can name
/// its config and layers. Each blob is stored under its digest, and the image is gathered.
pub fn image_layout(data: &[u8]) {
    let dir = input_dir().join("layout");
    let parts = split(data, BLOB_SEPARATOR);
    let mut filled: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for (index, part) in parts.iter().enumerate().rev() {
        let document = fill_placeholders(part, &filled);
        filled.insert(index, document);
    }
    write(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    for (index, document) in &filled {
        if *index == 0 {
            write(&dir.join("index.json"), document);
        } else {
            write(
                &dir.join("blobs/sha256").join(sha256_hex(document)),
                document,
            );
        }
    }
    gather_image(
        &format!("oci:{}", dir.display()),
        &ImageOptions::default(),
        &image_probes(),
    );
    assert_clean();
}

/// Separates the layers of a [`layer_tar`] input.
pub const LAYER_SEPARATOR: &[u8] = b"\n--layer--\n";

/// The media types of a layer, by the first byte of a [`layer_tar`] input.
fn layer_media_type(flag: u8) -> (&'static str, bool) {
    match flag % 4 {
        // The harness gzips the tar.
        1 => ("application/vnd.oci.image.layer.v1.tar+gzip", true),
        // Raw bytes under a compressed type: the decoders meet them as they are.
        2 => ("application/vnd.oci.image.layer.v1.tar+gzip", false),
        3 => ("application/vnd.oci.image.layer.v1.tar+zstd", false),
        _ => ("application/vnd.oci.image.layer.v1.tar", false),
    }
}

/// Writes an OCI layout at `dir` whose image has these layers (blob bytes, media type, diff_id),
/// a config running as `app`, and the tag `fuzz`.
fn write_layout(dir: &Path, layers: &[(Vec<u8>, &str, String)]) {
    let blob = |bytes: &[u8]| {
        let hex = sha256_hex(bytes);
        write(&dir.join("blobs/sha256").join(&hex), bytes);
        format!("sha256:{hex}")
    };
    let diff_ids: Vec<String> = layers.iter().map(|(_, _, d)| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"User":"app","Labels":{{"org.opencontainers.image.base.name":"fuzz"}}}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let descriptors: Vec<String> = layers
        .iter()
        .map(|(bytes, media_type, _)| {
            format!(
                r#"{{"mediaType":"{media_type}","digest":"{}","size":{}}}"#,
                blob(bytes),
                bytes.len()
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        blob(config.as_bytes()),
        config.len(),
        descriptors.join(",")
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"fuzz"}}}}]}}"#,
        blob(manifest.as_bytes()),
        manifest.len()
    );
    write(&dir.join("index.json"), index.as_bytes());
    write(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
}

/// The layers of an image (tar, verified, unpacked with whiteouts, then read as a tree): the
/// first byte chooses the media type (the harness gzips the tar, or the decoders meet the raw
/// bytes), the rest is the layers' tars separated by [`LAYER_SEPARATOR`]. The harness writes a
/// valid layout around them, digests and diff_ids right, so that every layer is unpacked.
pub fn layer_tar(data: &[u8]) {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let (media_type, gzip) = layer_media_type(flag);
    let layers: Vec<(Vec<u8>, &str, String)> = split(rest, LAYER_SEPARATOR)
        .into_iter()
        .map(|tar| {
            let diff_id = format!("sha256:{}", sha256_hex(tar));
            let blob = if gzip {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(tar).expect("gzip in memory");
                encoder.finish().expect("gzip in memory")
            } else {
                tar.to_vec()
            };
            (blob, media_type, diff_id)
        })
        .collect();
    let dir = input_dir().join("layout");
    write_layout(&dir, &layers);
    gather_image(
        &format!("oci:{}:fuzz", dir.display()),
        &ImageOptions::default(),
        &image_probes(),
    );
    assert_clean();
}

/// A containers-policy.json (`--policy`), judged for a small valid image as a run judges it.
pub fn policy(data: &[u8]) {
    let dir = input_dir();
    let layout = dir.join("layout");
    write_layout(&layout, &[]);
    let policy = dir.join("policy.json");
    write(&policy, data);
    let options = ImageOptions {
        policy: Some(policy),
        reference: Some("registry.example/app:1.0".to_owned()),
        ..ImageOptions::default()
    };
    let probes: ProbeSet = [Probe::ImageInfo("signature".to_owned())]
        .into_iter()
        .collect();
    gather_image(&format!("oci:{}", layout.display()), &options, &probes);
    assert_clean();
}

/// A tree of files in memory, as a remote host's files reach the package readers.
struct MemoryTree(BTreeMap<String, Vec<u8>>);

impl TreeFiles for MemoryTree {
    fn open(&self, path: &str) -> Result<Option<TreeFile>, String> {
        Ok(self.0.get(path).map(|bytes| TreeFile::Bytes(bytes.clone())))
    }

    fn list(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let names: Vec<String> = self
            .0
            .keys()
            .filter_map(|file| file.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
            .collect();
        Ok((!names.is_empty()).then_some(names))
    }
}

/// Separates an [`rpmdb`] database from the macro file that follows it.
pub const MACROS_SEPARATOR: &[u8] = b"\n--macros--\n";

/// An rpm database, read as the `packages` fact reads it. The first byte chooses what the rest
/// is (flag % 4): a Berkeley DB `Packages`, an NDB `Packages.db`, an SQLite `rpmdb.sqlite` (all
/// in `/var/lib/rpm`), or one header blob. A database may be followed by
/// [`MACROS_SEPARATOR`] and the text of `/etc/rpm/macros`, which may move it.
pub fn rpmdb(data: &[u8]) {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let file = match flag % 4 {
        0 => "Packages",
        1 => "Packages.db",
        2 => "rpmdb.sqlite",
        _ => {
            crate::targets::packages::rpmdb::fuzz_header(rest);
            return;
        }
    };
    let mut parts = split(rest, MACROS_SEPARATOR).into_iter();
    let database = parts.next().unwrap_or_default();
    let mut files = BTreeMap::from([(format!("/var/lib/rpm/{file}"), database.to_vec())]);
    if let Some(macros) = parts.next() {
        files.insert("/etc/rpm/macros".to_owned(), macros.to_vec());
    }
    if let Ok(Some(database)) = rpmdb::read(&MemoryTree(files)) {
        for package in &database.packages {
            let _ = (package.nevra(), package.evr(), package.signature_key_id());
        }
    }
    assert_clean();
}

/// The nonce of the batches [`batch_output`] reads: frames must carry it.
pub const BATCH_NONCE: &str = "fz";

/// The probes of the batch [`batch_output`] reads: every kind an SSH host answers, so that the
/// frame ids are `p0`, `p1`, ... in this order.
pub fn batch_probes() -> ProbeSet {
    [
        Probe::KernelRelease,
        Probe::Architecture,
        Probe::OsRelease("ID".to_owned()),
        Probe::KernelConfig("NET_NS".to_owned()),
        Probe::KernelConfig("CMDLINE".to_owned()),
        Probe::File("/etc/passwd".to_owned()),
        Probe::File("/dev/ptmx".to_owned()),
        Probe::FileContent("/proc/filesystems".to_owned()),
        Probe::DirList("/proc/self/ns".to_owned()),
        Probe::Sysctl("kernel.ostype".to_owned()),
        Probe::Command(vec!["uname".to_owned(), "-a".to_owned()]),
        Probe::KernelModule("overlay".to_owned()),
        Probe::KernelModule("br_netfilter".to_owned()),
        Probe::Mounts("/".to_owned()),
        Probe::Mounts("/sys/fs/cgroup".to_owned()),
    ]
    .into_iter()
    .collect()
}

/// The script of the batch [`batch_output`] reads; its output run through `sh` on a machine,
/// decoded, behind the byte 1, is a seed.
pub fn batch_script() -> String {
    crate::targets::ssh::fuzz_batch_script(&batch_probes(), BATCH_NONCE)
}

/// What a host prints for the decoded batch output `rest`, by `flag`: `rest` as it is (0), or
/// encoded as the batch's `base64` (1) or `od` (2) would, behind a line of noise.
fn encode_batch_output(flag: u8, rest: &[u8]) -> Vec<u8> {
    match flag % 3 {
        0 => rest.to_vec(),
        1 => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(rest);
            let lines: Vec<&[u8]> = encoded.as_bytes().chunks(76).collect();
            let mut output = b"Last login: never\nHC-ENC b\n".to_vec();
            output.extend_from_slice(&lines.join(&b'\n'));
            output.push(b'\n');
            output
        }
        _ => {
            let mut output = b"HC-ENC x\n".to_vec();
            for line in rest.chunks(16) {
                for byte in line {
                    output.extend_from_slice(format!(" {byte:02x}").as_bytes());
                }
                output.push(b'\n');
            }
            output
        }
    }
}

/// An SSH host's batch output for [`batch_script`], read as a gather reads it. The first byte
/// chooses how the rest reaches the reader ([`encode_batch_output`]; the useful case is 1, the
/// decoded frames); with its high bit set the batch is read as cut off by a timeout.
pub fn batch_output(data: &[u8]) {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let output = encode_batch_output(flag, rest);
    let ended = (flag & 0x80 != 0).then_some("the gather timed out");
    // The output arrives in pieces: whole, or cut at odd places (bits 2 to 6 of the flag).
    let piece = match (flag >> 2) & 0x1f {
        0 => output.len(),
        n => usize::from(n),
    };
    crate::targets::ssh::fuzz_batch_output(&batch_probes(), BATCH_NONCE, &output, piece, ended);
}

/// The public keys [`known_hosts`] checks and appends: real ones, made with ssh-keygen.
pub const KNOWN_HOSTS_KEYS: [&str; 3] = [
    "AAAAC3NzaC1lZDI1NTE5AAAAIH3XIFiu1XFIu87LBkVXV/zJ6tyZBJliBJdOCq10C1cy",
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBB9lDVmZfD79lPB6pBy/G1o9+GsGM9nLXcf2KbSgvcWSEdi1EZ5ckltDIHde6kvFqHUWUUPFyMz/+cQrUhdCeZo=",
    "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8WWQ1EzC3/OSHwZw1K9zLkxSlRT7IOKXZaQAGz0+T87+8dMjGgwTlOxnXC1CcAe4Uv762ab7uEmPlwiAGb2ipu1TsiAwGa7wHqcoI4cwvoFOlDCh8KOpAHOir3PBM28mmj/FQ0Ltv3sHT+Lw/heOmYZkaClUGpQ2z4V1T/fKAUQ==",
];

/// A known_hosts file, read for a few hosts as a connection reads it (`host.example`,
/// `[10.0.0.1]:2222`), with the keys of [`KNOWN_HOSTS_KEYS`] and every base64 word of the file
/// checked against it; then a key is appended as `--accept-new-host-keys` appends it, and the
/// file read again must trust it (or revoke it, when a `@revoked` line says so).
pub fn known_hosts(data: &[u8]) {
    use base64::Engine;
    let engine = &base64::engine::general_purpose::STANDARD;
    let keys: Vec<Vec<u8>> = KNOWN_HOSTS_KEYS
        .iter()
        .map(|k| engine.decode(k).expect("a valid key"))
        .collect();
    let mut blobs: Vec<Vec<u8>> = keys.clone();
    blobs.extend(
        data.split(|b| b.is_ascii_whitespace())
            .filter(|word| word.len() >= 16)
            .filter_map(|word| engine.decode(word).ok())
            .take(16),
    );
    let blobs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    for (index, (host, port)) in [("host.example", 22), ("10.0.0.1", 2222)]
        .into_iter()
        .enumerate()
    {
        let path = input_dir().join("known_hosts");
        write(&path, data);
        crate::targets::ssh::fuzz_known_hosts(&path, host, port, &blobs, &keys[index]);
    }
    assert_clean();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch script run here gives output that, decoded and encoded again by the harness,
    /// reads as the facts of this machine: the harness reaches the frames, not just the decoder.
    #[test]
    fn batch_output_seeds_reach_the_frames() {
        use base64::Engine;
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(batch_script())
            .output()
            .expect("sh runs");
        let text = String::from_utf8(output.stdout).expect("base64 output");
        let body = text.strip_prefix("HC-ENC b\n").expect("base64 is there");
        let compact: String = body.split_whitespace().collect();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .expect("the output decodes");
        for flag in [1, 2] {
            let facts = crate::targets::ssh::fuzz_batch_output(
                &batch_probes(),
                BATCH_NONCE,
                &encode_batch_output(flag, &raw),
                7,
                None,
            );
            let release = facts.get(&Probe::KernelRelease).expect("asked");
            assert!(release.value.is_some(), "{release:?}");
            let passwd = facts
                .get(&Probe::File("/etc/passwd".to_owned()))
                .expect("asked");
            assert!(passwd.value.is_some(), "{passwd:?}");
        }
        if let Some(dir) = std::env::var_os("HOSTCERT_FUZZ_SEEDS") {
            let mut seed = vec![1];
            seed.extend_from_slice(&raw);
            std::fs::write(Path::new(&dir).join("local-host"), seed).expect("the seed is written");
        }
    }
}
