//! Image targets end to end: images built with Debian's umoci from a busybox-static rootfs,
//! copied with skopeo, signed with gpg and skopeo, tampered with; Red Hat's container checks on
//! one image that passes them all and one that fails each; and hostile layouts built byte by
//! byte, each refused with the entry named and nothing written outside the run's folder.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use support::gpg::Gpg;
use support::image::*;
use support::*;

/// Runs `hostcert run --profile isv-image` on targets, with TMPDIR inside the work folder so
/// that the test can see the run left nothing behind.
fn run_image(work: &Work, args: &[&str]) -> Output {
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(BIN)
        .args(["run", "--profile", "isv-image", "--report-dir", "report"])
        .args(args)
        .current_dir(work.dir.path())
        .env("TMPDIR", &tmp)
        .output()
        .expect("hostcert runs");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(
        left.is_empty(),
        "the run left files in its temporary folder: {left:?}"
    );
    output
}

/// The outcome of one check on the only target of `report/report.json`.
fn outcome(work: &Work, check: &str) -> (String, Value) {
    let report = work.json("report/report.json");
    let results = report["results"].as_array().unwrap();
    let result = results
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no result for {check}"));
    (
        result["outcome"].as_str().unwrap().to_owned(),
        result.clone(),
    )
}

const RED_HAT_CHECKS: &[&str] = &[
    "image.redhat.required-labels",
    "image.redhat.licenses",
    "image.redhat.layer-count",
    "image.redhat.non-root",
    "image.redhat.unique-tag",
    "image.redhat.prohibited-packages",
    "image.redhat.modified-package-files",
    "image.redhat.base-image",
    "image.redhat.sbom",
];

#[test]
fn a_good_image_passes_integrity_and_every_red_hat_check() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let output = run_image(
        &work,
        &["--target", "oci:img:1.0", "--skip", "image.signature"],
    );
    let out = stdout(&output);
    assert_eq!(code(&output), 0, "{out}{}", stderr(&output));
    assert!(out.contains("verdict: CERTIFIED"), "{out}");
    for check in RED_HAT_CHECKS
        .iter()
        .chain(&["image.integrity.blobs", "image.integrity.diff-ids"])
    {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}");
    }
    // The evidence names the manifest the blobs hang from, and the user as resolved.
    let (_, blobs) = outcome(&work, "image.integrity.blobs");
    let manifest = tool(
        work.dir.path(),
        "sh",
        &[
            "-c",
            "sed 's/.*\"digest\":\"\\([^\"]*\\)\".*/\\1/' img/index.json",
        ],
    );
    assert!(
        blobs.to_string().contains(manifest.trim()),
        "{blobs} names {manifest}"
    );
    let (_, user) = outcome(&work, "image.redhat.non-root");
    assert!(user.to_string().contains("1001"), "{user}");
    assert!(user.to_string().contains("via /etc/passwd"), "{user}");
}

#[test]
fn each_red_hat_check_fails_on_an_image_made_to_fail_it() {
    let work = Work::new();
    let good = Spec::good();
    let cases: Vec<(&str, Spec, &str)> = vec![
        (
            "image.redhat.required-labels",
            Spec {
                labels: good
                    .labels
                    .iter()
                    .copied()
                    .filter(|(k, _)| *k != "maintainer")
                    .collect(),
                ..good.clone()
            },
            "image-label maintainer = absent",
        ),
        (
            "image.redhat.licenses",
            Spec {
                licenses: false,
                ..good.clone()
            },
            "image-info licenses = absent",
        ),
        (
            "image.redhat.layer-count",
            Spec {
                extra_layers: 40,
                ..good.clone()
            },
            "image-info layer-count = 41",
        ),
        (
            "image.redhat.non-root",
            Spec {
                user: Some("root"),
                ..good.clone()
            },
            "image-info user = 0",
        ),
        (
            "image.redhat.unique-tag",
            Spec {
                tag: "latest",
                ..good.clone()
            },
            "image-info tag = latest",
        ),
        (
            "image.redhat.prohibited-packages",
            Spec {
                dpkg_packages: vec!["busybox-static", "linux-image-amd64"],
                ..good.clone()
            },
            "image-info packages has linux-image-amd64",
        ),
        (
            "image.redhat.modified-package-files",
            Spec {
                overwrite_busybox: true,
                ..good.clone()
            },
            "image-info modified-package-files = /bin/busybox (package busybox-static, layer 1)",
        ),
        (
            "image.redhat.base-image",
            Spec {
                labels: good
                    .labels
                    .iter()
                    .copied()
                    .filter(|(k, _)| !k.starts_with("org.opencontainers"))
                    .collect(),
                ..good.clone()
            },
            "image-info base-image = absent",
        ),
        (
            "image.redhat.sbom",
            Spec {
                sbom: false,
                ..good.clone()
            },
            "image-info sbom = absent",
        ),
    ];
    for (index, (check, spec, observed)) in cases.iter().enumerate() {
        let dir = format!("bad{index}");
        build_image(&work, &dir, spec);
        let target = format!("oci:{dir}:{}", spec.tag);
        let output = run_image(&work, &["--target", &target, "--skip", "image.signature"]);
        let out = stdout(&output);
        assert_eq!(code(&output), 1, "{check}: {out}{}", stderr(&output));
        for other in RED_HAT_CHECKS {
            let (outcome, result) = outcome(&work, other);
            let wanted = if other == check { "fail" } else { "pass" };
            assert_eq!(outcome, wanted, "{check} case, {other}: {result}");
        }
        let (_, result) = outcome(&work, check);
        assert!(
            result.to_string().contains(observed),
            "{check}: {result} should say {observed}"
        );
    }
}

#[test]
fn archives_are_read_like_layouts_and_tampering_is_named() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let at = work.dir.path();
    // oci-archive: a tar of the layout, as skopeo writes it.
    tool(
        at,
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "oci:img:1.0",
            "oci-archive:img.tar:1.0",
        ],
    );
    tool(
        at,
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "oci:img:1.0",
            "docker-archive:docker.tar:registry.example/hcc/busybox:1.0",
        ],
    );
    for target in ["oci-archive:img.tar:1.0", "docker-archive:docker.tar"] {
        let output = run_image(&work, &["--target", target, "--skip", "image.signature"]);
        let out = stdout(&output);
        for check in ["image.integrity.blobs", "image.integrity.diff-ids"]
            .iter()
            .chain(RED_HAT_CHECKS.iter().filter(|c| !c.ends_with("base-image")))
        {
            let (outcome, result) = outcome(&work, check);
            assert_eq!(outcome, "pass", "{target} {check}: {result}\n{out}");
        }
    }
    // A docker archive names its reference.
    let (_, tag) = outcome(&work, "image.redhat.unique-tag");
    assert!(tag.to_string().contains("image-info tag = 1.0"), "{tag}");

    // Tampering: one byte of the layer, then the manifest.
    let index: Value = serde_json::from_str(&work.read("img/index.json")).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest_path = work.path(&format!(
        "img/blobs/sha256/{}",
        manifest_digest.trim_start_matches("sha256:")
    ));
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let layer_path = work.path(&format!(
        "img/blobs/sha256/{}",
        layer.trim_start_matches("sha256:")
    ));
    let original = std::fs::read(&layer_path).unwrap();
    let mut tampered = original.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x55;
    std::fs::write(&layer_path, &tampered).unwrap();
    let output = run_image(
        &work,
        &[
            "--target",
            "oci:img:1.0",
            "--skip",
            "image.signature",
            "--skip",
            "image.redhat",
        ],
    );
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let (outcome_blobs, result) = outcome(&work, "image.integrity.blobs");
    assert_eq!(outcome_blobs, "fail", "{result}");
    assert!(
        result
            .to_string()
            .contains(&format!("layer {layer}: its sha256 is")),
        "{result}"
    );
    std::fs::write(&layer_path, &original).unwrap();

    let mut text = std::fs::read_to_string(&manifest_path).unwrap();
    text = text.replacen("\"schemaVersion\":2", "\"schemaVersion\": 2", 1);
    std::fs::write(&manifest_path, text).unwrap();
    let output = run_image(
        &work,
        &["--target", "oci:img:1.0", "--skip", "image.signature"],
    );
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let (outcome_blobs, result) = outcome(&work, "image.integrity.blobs");
    assert_eq!(outcome_blobs, "fail", "{result}");
    assert!(
        result
            .to_string()
            .contains(&format!("manifest {manifest_digest}:")),
        "{result}"
    );
}

// ---- hostile layouts, built byte by byte ----

/// One raw tar entry: a ustar header (checksum computed) and the data, padded.
fn entry(name: &str, kind: u8, data: &[u8], link: &str, declared: Option<u64>) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    let size = declared.unwrap_or(data.len() as u64);
    header[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn end() -> Vec<u8> {
    vec![0u8; 1024]
}

/// Writes an OCI layout of one image, tagged `1.0`, whose single layer is `layer` (a plain
/// tar, or gzip when `gzip`). `edit` may change the manifest before it is written.
fn layout(dir: &Path, layer: &[u8], gzip: bool, edit: impl Fn(&mut Value)) {
    let diff_id = format!("sha256:{}", sha256(layer));
    let blob = if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(layer).unwrap();
        encoder.finish().unwrap()
    } else {
        layer.to_vec()
    };
    layout_blob(dir, &blob, &diff_id, gzip, edit);
}

/// Writes an OCI layout of one image, tagged `1.0`, whose single layer blob is `blob`.
fn layout_blob(dir: &Path, blob: &[u8], diff_id: &str, gzip: bool, edit: impl Fn(&mut Value)) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest), bytes).unwrap();
        format!("sha256:{digest}")
    };
    let layer_digest = put(blob);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": "1000", "Labels": {"name": "hostile"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }))
    .unwrap();
    let config_digest = put(&config);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{
            "mediaType": if gzip { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" },
            "digest": layer_digest, "size": blob.len()
        }]
    });
    edit(&mut manifest);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put(&manifest);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "1.0"}
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
}

/// Runs the image checks on a hostile layout and returns stdout and stderr.
fn run_hostile(work: &Work, dir: &str) -> String {
    let output = run_image(
        work,
        &[
            "--target",
            &format!("oci:{dir}:1.0"),
            "--skip",
            "image.signature",
        ],
    );
    assert_ne!(code(&output), 0, "{}", stdout(&output));
    format!("{}{}", stdout(&output), stderr(&output))
}

#[test]
fn hostile_layers_are_refused_with_the_entry_named_and_nothing_written_outside() {
    let work = Work::new();
    let file = |name: &str| entry(name, b'0', b"hello\n", "", None);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            [file("../escaped"), end()].concat(),
            "entry `../escaped`: a path with `..` is not allowed",
        ),
        (
            "absolute",
            [file("/etc/escaped"), end()].concat(),
            "entry `/etc/escaped`: an absolute path is not allowed",
        ),
        (
            "symlink-out",
            [
                entry("link", b'2', b"", "../../../../etc/passwd", None),
                end(),
            ]
            .concat(),
            "entry `link`: a symbolic link to `../../../../etc/passwd`, outside the image",
        ),
        (
            "hardlink-out",
            [entry("hard", b'1', b"", "../outside", None), end()].concat(),
            "entry `hard`: a hard link to `../outside`, outside the image",
        ),
        (
            "device",
            [entry("dev/sda", b'4', b"", "", None), end()].concat(),
            "entry `dev/sda`: a device node, which an image may not carry",
        ),
        (
            "duplicate",
            [file("etc/motd"), file("etc/motd"), end()].concat(),
            "entry `etc/motd`: appears twice in the layer",
        ),
        (
            "size-lies",
            entry("big", b'0', b"only a few bytes\n", "", Some(100_000)),
            "entry `big`: cut short",
        ),
    ];
    for (dir, layer, expected) in &cases {
        layout(&work.path(dir), layer, true, |_| {});
        let out = run_hostile(&work, dir);
        assert!(
            out.contains(expected),
            "{dir}: expected `{expected}` in\n{out}"
        );
        assert!(!work.path("escaped").exists() && !work.path("tmp/escaped").exists());
    }
}

#[test]
fn hostile_metadata_is_refused_with_bounds() {
    let work = Work::new();
    let layer = [entry("etc/motd", b'0', b"hi\n", "", None), end()].concat();
    // A gzip bomb: a file of 100 MiB of zeros compresses to about 100 KiB, made by gzip.
    let header = entry("zeros", b'0', b"", "", Some(100 << 20));
    std::fs::write(work.path("zeros-header"), &header[..512]).unwrap();
    tool(
        work.dir.path(),
        "sh",
        &[
            "-c",
            "{ cat zeros-header; head -c 104858624 /dev/zero; } | gzip -9 > bomb.gz",
        ],
    );
    let blob = std::fs::read(work.path("bomb.gz")).unwrap();
    assert!(blob.len() < 200 << 10, "gzip -9 makes a small bomb");
    layout_blob(
        &work.path("bomb"),
        &blob,
        &format!("sha256:{}", "0".repeat(64)),
        true,
        |_| {},
    );
    let out = run_hostile(&work, "bomb");
    assert!(out.contains("refused as a decompression bomb"), "{out}");
    // Unpacking refuses it too, naming the entry, when integrity is not asked for.
    let output = run_image(
        &work,
        &[
            "--target",
            "oci:bomb:1.0",
            "--skip",
            "image.signature",
            "--skip",
            "image.integrity",
        ],
    );
    let out = stdout(&output);
    assert!(out.contains("refused as a decompression bomb"), "{out}");
    assert!(out.contains("entry `zeros`"), "{out}");

    // A manifest of 5 MiB.
    layout(&work.path("huge"), &layer, false, |manifest| {
        manifest["annotations"] = json!({"padding": "x".repeat(5 << 20)});
    });
    let out = run_hostile(&work, "huge");
    assert!(out.contains("more than the 4 MiB hostcert reads"), "{out}");

    // A layer digest of another algorithm.
    layout(&work.path("sha512"), &layer, false, |manifest| {
        manifest["layers"][0]["digest"] = json!(format!("sha512:{}", "ab".repeat(64)));
    });
    let out = run_hostile(&work, "sha512");
    assert!(
        out.contains("uses the algorithm `sha512`; hostcert verifies sha256 digests only"),
        "{out}"
    );

    // A layer whose size the manifest misstates.
    layout(&work.path("size"), &layer, false, |manifest| {
        manifest["layers"][0]["size"] = json!(12);
    });
    let out = run_hostile(&work, "size");
    assert!(out.contains("bytes, the descriptor says 12"), "{out}");
}

/// Rewrites the text of a layout's manifest (`what` = "manifest") or config (`what` =
/// "config") with `edit`, storing it as a new blob and updating the descriptors that name it,
/// so that every digest and size still holds.
fn rewrite_document(dir: &Path, what: &str, edit: impl Fn(&str) -> String) {
    let blob = |digest: &str| {
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let put = |text: &str| {
        let hex = sha256(text.as_bytes());
        std::fs::write(blob(&hex), text).unwrap();
        (format!("sha256:{hex}"), text.len())
    };
    let index_text = std::fs::read_to_string(dir.join("index.json")).unwrap();
    let index: Value = serde_json::from_str(&index_text).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let mut manifest_text = std::fs::read_to_string(blob(&manifest_digest)).unwrap();
    if what == "config" {
        let manifest: Value = serde_json::from_str(&manifest_text).unwrap();
        let old = manifest["config"]["digest"].as_str().unwrap().to_owned();
        let text = std::fs::read_to_string(blob(&old)).unwrap();
        let (digest, size) = put(&edit(&text));
        manifest_text = manifest_text.replace(&old, &digest).replace(
            &format!("\"size\":{}", text.len()),
            &format!("\"size\":{size}"),
        );
    } else {
        manifest_text = edit(&manifest_text);
    }
    let old_size = std::fs::metadata(blob(&manifest_digest)).unwrap().len();
    let (digest, size) = put(&manifest_text);
    std::fs::write(
        dir.join("index.json"),
        index_text
            .replace(&manifest_digest, &digest)
            .replace(&format!("\"size\":{old_size}"), &format!("\"size\":{size}")),
    )
    .unwrap();
}

/// OCI descriptors and documents that break the image-spec are refused: integrity fails and
/// names the blob or descriptor; they never pass. skopeo refuses those it reads too.
#[test]
fn descriptors_and_documents_that_break_the_image_spec_fail_integrity() {
    let work = Work::new();
    let layer = [entry("etc/motd", b'0', b"hi\n", "", None), end()].concat();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "no-size",
            Box::new(|m| drop(m["layers"][0].as_object_mut().unwrap().remove("size"))),
            "it has no size",
        ),
        (
            "negative-size",
            Box::new(|m| m["layers"][0]["size"] = json!(-1)),
            "size -1 is negative",
        ),
        (
            "string-size",
            Box::new(|m| {
                let size = m["layers"][0]["size"].to_string();
                m["layers"][0]["size"] = json!(size)
            }),
            "size is a string, not an int64",
        ),
        (
            "float-size",
            Box::new(|m| {
                let size = m["layers"][0]["size"].as_u64().unwrap();
                m["layers"][0]["size"] = json!(size as f64 + 0.5)
            }),
            "is a float, not an int64",
        ),
        (
            "config-size-missing",
            Box::new(|m| drop(m["config"].as_object_mut().unwrap().remove("size"))),
            "config: it has no size",
        ),
        (
            "bad-digest",
            Box::new(|m| m["layers"][0]["digest"] = json!("sha256:a/b")),
            "does not follow the digest grammar",
        ),
        (
            "uppercase-digest",
            Box::new(|m| {
                let digest = m["layers"][0]["digest"].as_str().unwrap().to_uppercase();
                m["layers"][0]["digest"] = json!(digest.replacen("SHA256", "sha256", 1))
            }),
            "is not sha256:<64 lowercase",
        ),
        (
            "no-media-type",
            Box::new(|m| drop(m["layers"][0].as_object_mut().unwrap().remove("mediaType"))),
            "it has no mediaType",
        ),
        (
            "schema-version-1",
            Box::new(|m| m["schemaVersion"] = json!(1)),
            "schemaVersion is 1, not 2",
        ),
        (
            "no-schema-version",
            Box::new(|m| drop(m.as_object_mut().unwrap().remove("schemaVersion"))),
            "it has no schemaVersion",
        ),
        (
            "ambiguous",
            Box::new(|m| m["manifests"] = json!([])),
            "a manifest with `manifests` is ambiguous",
        ),
    ];
    let mut dirs = Vec::new();
    for (dir, edit, expected) in &cases {
        layout(&work.path(dir), &layer, true, edit);
        dirs.push((dir.to_string(), *expected));
    }
    // Documents with a key twice: serde_json and Go keep the last value, a reader that keeps
    // the first sees another document.
    layout(&work.path("dup-manifest-key"), &layer, true, |_| {});
    rewrite_document(&work.path("dup-manifest-key"), "manifest", |text| {
        text.replacen("{", "{\"schemaVersion\":1,", 1)
    });
    dirs.push(("dup-manifest-key".into(), "duplicate key `schemaVersion`"));
    layout(&work.path("dup-config-key"), &layer, true, |_| {});
    rewrite_document(&work.path("dup-config-key"), "config", |text| {
        text.replacen("{", "{\"architecture\":\"arm64\",", 1)
    });
    dirs.push(("dup-config-key".into(), "duplicate key `architecture`"));
    layout(&work.path("dup-index-key"), &layer, true, |_| {});
    let index = work.read("dup-index-key/index.json");
    work.write(
        "dup-index-key/index.json",
        &index.replacen("{", "{\"manifests\":[],", 1),
    );
    dirs.push(("dup-index-key".into(), "duplicate key `manifests`"));
    for (dir, expected) in &dirs {
        let output = run_image(
            &work,
            &[
                "--target",
                &format!("oci:{dir}:1.0"),
                "--skip",
                "image.signature",
            ],
        );
        assert_eq!(
            code(&output),
            1,
            "{dir}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        let (outcome, result) = outcome(&work, "image.integrity.blobs");
        assert_eq!(outcome, "fail", "{dir}: {result}");
        assert!(
            result.to_string().contains(expected),
            "{dir}: expected `{expected}` in {result}"
        );
    }
    // The unedited layout passes, so each failure above is the edit's.
    layout(&work.path("plain"), &layer, true, |_| {});
    run_image(&work, &["--target", "oci:plain:1.0", "image.integrity"]);
    let (outcome, result) = outcome(&work, "image.integrity.blobs");
    assert_eq!(outcome, "pass", "{result}");
}

/// One byte flipped in a layer: integrity fails naming the blob (NOT CERTIFIED, exit 1, as
/// skopeo refuses to copy it), the checks that need the image's files are errors saying why,
/// and what was measured (labels, layer count, tag) is still judged.
#[test]
fn a_flipped_byte_in_a_layer_is_not_certified_and_keeps_what_was_measured() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let digest = manifest_digest(&work.path("img"));
    let manifest = work.json(&format!(
        "img/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    ));
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    flip(&work.path(&format!(
        "img/blobs/sha256/{}",
        layer.trim_start_matches("sha256:")
    )));
    let skopeo = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "oci:img:1.0", "dir:copy"])
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    assert!(!skopeo.status.success(), "skopeo refuses the flipped layer");
    let output = run_image(
        &work,
        &["--target", "oci:img:1.0", "--skip", "image.signature"],
    );
    let out = stdout(&output);
    assert_eq!(code(&output), 1, "{out}{}", stderr(&output));
    assert!(out.contains("verdict: NOT CERTIFIED"), "{out}");
    let (blobs, result) = outcome(&work, "image.integrity.blobs");
    assert_eq!(blobs, "fail", "{result}");
    assert!(
        result
            .to_string()
            .contains(&format!("layer {layer}: its sha256 is")),
        "{result}"
    );
    let (diff_ids, result) = outcome(&work, "image.integrity.diff-ids");
    assert_eq!(diff_ids, "fail", "{result}");
    assert!(
        result.to_string().contains(&format!("layer {layer}")),
        "{result}"
    );
    for check in [
        "image.redhat.licenses",
        "image.redhat.non-root",
        "image.redhat.prohibited-packages",
        "image.redhat.modified-package-files",
        "image.redhat.sbom",
    ] {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "error", "{check}: {result}");
        assert!(
            result
                .to_string()
                .contains("the image's files are not read: the image fails integrity")
                && result.to_string().contains(&layer),
            "{check}: {result}"
        );
    }
    for check in [
        "image.redhat.required-labels",
        "image.redhat.layer-count",
        "image.redhat.unique-tag",
        "image.redhat.base-image",
    ] {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}");
    }
}

/// `User` is judged as runc judges it (`umoci unpack`, which resolves it with runc's user
/// library into the runtime config's uid, is the reference): leading zeros and signs, `0:0`,
/// names through /etc/passwd (an alias of uid 0, an entry whose uid is not a number), uids
/// beyond passwd, unknown names and groups, and ids out of range.
#[test]
fn image_users_are_judged_as_runc_resolves_them() {
    require_image_tools();
    let work = Work::new();
    work.write(
        "users-rootfs/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001::/home/app:/bin/sh\ntoor:x:0:0:alias of root:/:/bin/sh\nodd:x:notanumber:5::/:/bin/sh\n",
    );
    work.write("users-rootfs/etc/group", "root:x:0:\nstaff:x:50:app\n");
    let at = work.dir.path();
    tool(at, "umoci", &["init", "--layout", "users"]);
    tool(at, "umoci", &["new", "--image", "users:base"]);
    tool(
        at,
        "umoci",
        &["insert", "--image", "users:base", "users-rootfs", "/"],
    );
    let users = [
        "",
        "0",
        "00",
        "000:000",
        "+0",
        "-0",
        "0:0",
        "root",
        "root:root",
        "toor",
        "odd",
        "app",
        "app:staff",
        "app:0",
        "1001",
        "01001",
        "4242",
        "4242:4242",
        "nobody",
        "app:wheel",
        "-1",
        "2147483648",
        " app",
    ];
    let mut targets = Vec::new();
    let mut expected = Vec::new();
    for (index, user) in users.iter().enumerate() {
        let tag = format!("u{index}");
        tool(
            at,
            "umoci",
            &[
                "config",
                "--image",
                "users:base",
                "--config.user",
                user,
                "--tag",
                &tag,
            ],
        );
        // The reference: the uid runc's library gives, or its refusal.
        let bundle = work.path(&format!("bundle-{index}"));
        let unpack = Command::new("umoci")
            .args(["unpack", "--image", &format!("users:{tag}")])
            .arg(&bundle)
            .current_dir(at)
            .output()
            .unwrap();
        let uid = unpack.status.success().then(|| {
            let config = work.json(&format!("bundle-{index}/config.json"));
            config["process"]["user"]["uid"].as_u64().unwrap()
        });
        let _ = std::fs::remove_dir_all(&bundle);
        targets.extend(["--target".to_owned(), format!("oci:users:{tag}")]);
        expected.push((format!("users:{tag}"), *user, uid));
    }
    let mut args: Vec<&str> = targets.iter().map(String::as_str).collect();
    args.push("image.redhat.non-root");
    run_image(&work, &args);
    let report = work.json("report/report.json");
    for (target, user, uid) in expected {
        let result = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == target.as_str())
            .unwrap_or_else(|| panic!("no result for {target}"));
        let wanted = match uid {
            None => "error",
            Some(0) => "fail",
            Some(_) => "pass",
        };
        assert_eq!(
            result["outcome"], wanted,
            "User `{user}` (runc: {uid:?}): {result}"
        );
        if let Some(uid) = uid {
            assert!(
                result
                    .to_string()
                    .contains(&format!("image-info user = {uid}")),
                "User `{user}`: {result}"
            );
        }
    }
}

/// The results of one check on every target of `report/report.json`, by target.
fn outcomes_by_target(work: &Work, check: &str) -> Vec<(String, String, Value)> {
    work.json("report/report.json")["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["check"] == check)
        .map(|r| {
            (
                r["target"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
                r.clone(),
            )
        })
        .collect()
}

/// Every platform of an index is its own target, `NAME[os/arch]`, judged on its own manifest
/// (the one skopeo picks for that architecture); `--platform` picks, and a platform the index
/// lacks is an error naming those it has. Archives of the index (skopeo copy --all) read alike.
#[test]
fn every_platform_of_an_index_is_its_own_target() {
    let work = Work::new();
    let digests = build_index(&work, "multi");
    let at = work.dir.path();
    // skopeo's choice of manifest per architecture is the reference.
    for (platform, digest) in &digests {
        let arch = platform.trim_start_matches("linux/");
        tool(
            at,
            "skopeo",
            &[
                "--insecure-policy",
                "--override-arch",
                arch,
                "copy",
                "oci:multi:1.0",
                &format!("dir:skopeo-{arch}"),
            ],
        );
        let chosen = tool(
            at,
            "skopeo",
            &["manifest-digest", &format!("skopeo-{arch}/manifest.json")],
        );
        assert_eq!(
            chosen.trim(),
            digest,
            "skopeo picks {digest} for {platform}"
        );
    }
    tool(
        at,
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--all",
            "oci:multi:1.0",
            "oci-archive:multi.tar:1.0",
        ],
    );
    for target in ["oci:multi:1.0", "oci-archive:multi.tar:1.0"] {
        let name = if target.starts_with("oci:") {
            "multi:1.0"
        } else {
            "multi.tar:1.0"
        };
        let output = run_image(&work, &["--target", target, "--skip", "image.signature"]);
        assert_eq!(code(&output), 1, "{}", stdout(&output));
        let blobs = outcomes_by_target(&work, "image.integrity.blobs");
        assert_eq!(blobs.len(), 2, "{blobs:?}");
        for ((platform, digest), (target_name, outcome, result)) in digests.iter().zip(&blobs) {
            assert_eq!(target_name, &format!("{name}[{platform}]"));
            assert_eq!(outcome, "pass", "{result}");
            assert!(
                result
                    .to_string()
                    .contains(&format!("manifest {digest} ({platform} of the index)")),
                "{result}"
            );
        }
        // Each platform's own config: arm64 runs as root.
        let users = outcomes_by_target(&work, "image.redhat.non-root");
        let verdicts: Vec<(&str, &str)> = users
            .iter()
            .map(|(t, o, _)| (t.as_str(), o.as_str()))
            .collect();
        assert_eq!(
            verdicts,
            [
                (format!("{name}[linux/amd64]").as_str(), "pass"),
                (format!("{name}[linux/arm64]").as_str(), "fail")
            ]
        );
    }
    // --platform picks one; a platform the index lacks is an error naming what it has.
    let output = run_image(
        &work,
        &[
            "--target",
            "oci:multi:1.0",
            "--platform",
            "linux/arm64",
            "image.redhat.non-root",
        ],
    );
    assert_eq!(code(&output), 1);
    let users = outcomes_by_target(&work, "image.redhat.non-root");
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].0.as_str(), users[0].1.as_str()),
        ("multi:1.0[linux/arm64]", "fail")
    );
    let output = run_image(
        &work,
        &[
            "--target",
            "oci:multi:1.0",
            "--platform",
            "linux/s390x",
            "--platform",
            "linux/amd64",
            "image.redhat.non-root",
        ],
    );
    assert_eq!(code(&output), 2, "{}", stdout(&output));
    let users = outcomes_by_target(&work, "image.redhat.non-root");
    let verdicts: Vec<(&str, &str)> = users
        .iter()
        .map(|(t, o, _)| (t.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("multi:1.0[linux/s390x]", "error"),
            ("multi:1.0[linux/amd64]", "pass")
        ]
    );
    assert!(
        users[0].2.to_string().contains("--platform linux/s390x: the image index lists no such platform (it lists linux/amd64, linux/arm64)"),
        "{}",
        users[0].2
    );
    // A single-platform image: --platform must name its platform.
    build_image(&work, "single", &Spec::good());
    run_image(
        &work,
        &[
            "--target",
            "oci:single:1.0",
            "--platform",
            "linux/amd64",
            "image.redhat.non-root",
        ],
    );
    let (verdict, result) = outcome(&work, "image.redhat.non-root");
    assert_eq!(verdict, "pass", "{result}");
    let output = run_image(
        &work,
        &[
            "--target",
            "oci:single:1.0",
            "--platform",
            "linux/arm64",
            "image.redhat.non-root",
        ],
    );
    assert_eq!(code(&output), 2);
    let (verdict, result) = outcome(&work, "image.redhat.non-root");
    assert_eq!(verdict, "error", "{result}");
    assert!(
        result
            .to_string()
            .contains("the image is for linux/amd64, not linux/arm64"),
        "{result}"
    );
    // Paired with a host, an index needs --platform.
    let output = Command::new(BIN)
        .args([
            "run",
            "--profile",
            "isv-container",
            "--image",
            "oci:multi:1.0",
            "--target",
            "local",
            "--list",
        ])
        .current_dir(at)
        .output()
        .unwrap();
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains("pick the one to pair with --platform"),
        "{}",
        stderr(&output)
    );
}

// ---- SBOMs: hostcert's verdict equals the reference validators' ----

/// The reference SBOM tools (ci/sbom-tools installs them): the virtual environment's `bin`.
fn sbom_tools() -> PathBuf {
    let dir = std::env::var_os("HOSTCERT_SBOM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hostcert-fixtures/sbom-tools"));
    assert!(
        dir.join("stamp").is_file(),
        "the SBOM generators and validators are needed by this test; install them: ci/sbom-tools (ci/test does)"
    );
    dir.join("bin")
}

/// The reference verdict on one SBOM file: spdx-tools (parse and validate_full_spdx_document)
/// for SPDX, cyclonedx-python-lib's JSON schema validator for CycloneDX 1.4-1.6; and, as
/// hostcert requires of an image's SBOM, at least one package or component.
/// Prints one line per file given: `valid` or `refused: why`.
const SBOM_JUDGE: &str = r#"
import json, sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

def judge(path):
    text = open(path, 'rb').read()
    try:
        doc = json.loads(text)
    except Exception:
        doc = None
    if isinstance(doc, dict) and 'bomFormat' in doc:
        version = {'1.4': SchemaVersion.V1_4, '1.5': SchemaVersion.V1_5, '1.6': SchemaVersion.V1_6}.get(doc.get('specVersion'))
        if version is None:
            return 'refused: specVersion'
        error = JsonStrictValidator(version).validate_str(text.decode())
        if error:
            return 'refused: %s' % str(error).splitlines()[0]
        return 'valid' if doc.get('components') else 'refused: no component'
    try:
        document = parse_file(path)
    except BaseException as error:
        return 'refused: %s' % str(error).splitlines()[0]
    messages = validate_full_spdx_document(document)
    if messages:
        return 'refused: %s' % [m.validation_message for m in messages][:2]
    return 'valid' if document.packages else 'refused: no package'

for path in sys.argv[1:]:
    print(judge(path).replace('\n', ' '))
"#;

/// SBOM files in images, made by a real generator (distro2sbom, from dpkg's record of
/// busybox-static) in SPDX 2.2 and 2.3 (JSON and tag-value) and CycloneDX 1.4, 1.5 and 1.6, as
/// generated, repaired, and broken one field at a time, plus files that are no SBOM: the image's
/// SBOM check passes exactly when the reference validators accept the document (and it lists a
/// package). An SBOM referrer counts only when its subject is this image.
#[test]
fn sboms_are_valid_documents_that_describe_the_image() {
    let bin = sbom_tools();
    require_image_tools();
    let work = Work::new();
    let at = work.dir.path();
    work.write("judge.py", SBOM_JUDGE);
    // The generator runs once per format, in parallel.
    type Format<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let formats: [Format; 6] = [
        (
            "gen.spdx.json",
            &["--sbom", "spdx", "--format", "json"],
            &[],
        ),
        (
            "gen22.spdx.json",
            &["--sbom", "spdx", "--format", "json"],
            &[("LIB4SBOM_SPDX_VERSION", "SPDX-2.2")],
        ),
        ("gen.spdx", &["--sbom", "spdx", "--format", "tag"], &[]),
        (
            "gen-1.4.cdx.json",
            &["--sbom", "cyclonedx", "--format", "json"],
            &[("LIB4SBOM_CYCLONEDX_VERSION", "1.4")],
        ),
        (
            "gen-1.5.cdx.json",
            &["--sbom", "cyclonedx", "--format", "json"],
            &[("LIB4SBOM_CYCLONEDX_VERSION", "1.5")],
        ),
        (
            "gen-1.6.cdx.json",
            &["--sbom", "cyclonedx", "--format", "json"],
            &[("LIB4SBOM_CYCLONEDX_VERSION", "1.6")],
        ),
    ];
    let generated: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = formats
            .iter()
            .map(|(name, args, env)| {
                let bin = &bin;
                let work = &work;
                scope.spawn(move || {
                    let output = Command::new(bin.join("distro2sbom"))
                        .args([
                            "--distro",
                            "deb",
                            "-n",
                            "debian",
                            "-r",
                            "12",
                            "-p",
                            "busybox-static",
                        ])
                        .args(*args)
                        .args(["-o", name])
                        .envs(env.iter().copied())
                        .current_dir(work.dir.path())
                        .output()
                        .unwrap();
                    assert!(output.status.success(), "distro2sbom: {}", stderr(&output));
                    work.read(name)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let [spdx23, spdx22, tag, cdx14, cdx15, cdx16] = <[String; 6]>::try_from(generated).unwrap();
    let edit = |text: &str, f: &dyn Fn(&mut Value)| {
        let mut doc: Value = serde_json::from_str(text).unwrap();
        f(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap()
    };
    // lib4sbom writes a licenseListVersion spdx-tools refuses (3.28.0, not 3.28), and
    // CycloneDX 1.5's metadata.lifecycles into 1.4: the repaired documents.
    let fix_spdx = |doc: &mut Value| doc["creationInfo"]["licenseListVersion"] = json!("3.28");
    let spdx23_fixed = edit(&spdx23, &fix_spdx);
    // In 2.2 a package has no primaryPackagePurpose either (spdx-tools refuses it).
    let spdx22_purpose = edit(&spdx22, &fix_spdx);
    let spdx22_fixed = edit(&spdx22_purpose, &|doc| {
        for package in doc["packages"].as_array_mut().unwrap() {
            package
                .as_object_mut()
                .unwrap()
                .remove("primaryPackagePurpose");
        }
    });
    let tag_fixed = tag
        .lines()
        .map(|l| {
            if l.starts_with("LicenseListVersion:") {
                "LicenseListVersion: 3.28"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let cdx14_fixed = edit(&cdx14, &|doc| {
        drop(
            doc["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("lifecycles"),
        )
    });
    type Edit = Box<dyn Fn(&mut Value)>;
    let spdx_breaks: Vec<(&str, Edit)> = vec![
        (
            "no-spdx-version",
            Box::new(|d| drop(d.as_object_mut().unwrap().remove("spdxVersion"))),
        ),
        (
            "spdx-2.1",
            Box::new(|d| d["spdxVersion"] = json!("SPDX-2.1")),
        ),
        (
            "data-license",
            Box::new(|d| d["dataLicense"] = json!("MIT")),
        ),
        (
            "document-id",
            Box::new(|d| d["SPDXID"] = json!("SPDXRef-DOC")),
        ),
        (
            "no-name",
            Box::new(|d| drop(d.as_object_mut().unwrap().remove("name"))),
        ),
        (
            "namespace-fragment",
            Box::new(|d| d["documentNamespace"] = json!("https://example.invalid/doc#1")),
        ),
        (
            "no-namespace",
            Box::new(|d| drop(d.as_object_mut().unwrap().remove("documentNamespace"))),
        ),
        (
            "no-created",
            Box::new(|d| drop(d["creationInfo"].as_object_mut().unwrap().remove("created"))),
        ),
        (
            "no-creators",
            Box::new(|d| d["creationInfo"]["creators"] = json!([])),
        ),
        (
            "bad-creator",
            Box::new(|d| d["creationInfo"]["creators"] = json!(["hostcert"])),
        ),
        (
            "no-download-location",
            Box::new(|d| {
                drop(
                    d["packages"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("downloadLocation"),
                )
            }),
        ),
        (
            "bad-package-id",
            Box::new(|d| d["packages"][0]["SPDXID"] = json!("Package-1")),
        ),
        ("no-packages", Box::new(|d| d["packages"] = json!([]))),
    ];
    let cdx_breaks: Vec<(&str, Edit)> = vec![
        (
            "bom-format",
            Box::new(|d| d["bomFormat"] = json!("cyclonedx")),
        ),
        ("spec-1.3", Box::new(|d| d["specVersion"] = json!("1.3"))),
        ("spec-2.0", Box::new(|d| d["specVersion"] = json!("2.0"))),
        ("version-0", Box::new(|d| d["version"] = json!(0))),
        ("version-text", Box::new(|d| d["version"] = json!("1"))),
        (
            "serial",
            Box::new(|d| d["serialNumber"] = json!("urn:uuid:not-a-uuid")),
        ),
        ("unknown-field", Box::new(|d| d["extra"] = json!(true))),
        (
            "component-type",
            Box::new(|d| d["components"][0]["type"] = json!("package")),
        ),
        (
            "component-name",
            Box::new(|d| drop(d["components"][0].as_object_mut().unwrap().remove("name"))),
        ),
        ("no-components", Box::new(|d| d["components"] = json!([]))),
    ];
    let mut files: Vec<(String, &str, String)> = vec![
        (
            "spdx23-generated".into(),
            "/sbom/image.spdx.json",
            spdx23.clone(),
        ),
        (
            "spdx22-generated".into(),
            "/sbom/image.spdx.json",
            spdx22.clone(),
        ),
        ("tag-generated".into(), "/sbom/image.spdx", tag.clone()),
        (
            "cdx14-generated".into(),
            "/sbom/bom.cdx.json",
            cdx14.clone(),
        ),
        (
            "cdx15-generated".into(),
            "/sbom/bom.cdx.json",
            cdx15.clone(),
        ),
        (
            "cdx16-generated".into(),
            "/sbom/bom.cdx.json",
            cdx16.clone(),
        ),
        (
            "spdx23".into(),
            "/sbom/image.spdx.json",
            spdx23_fixed.clone(),
        ),
        (
            "spdx22".into(),
            "/sbom/image.spdx.json",
            spdx22_fixed.clone(),
        ),
        (
            "spdx22-purpose".into(),
            "/sbom/image.spdx.json",
            spdx22_purpose.clone(),
        ),
        ("tag".into(), "/sbom/image.spdx", tag_fixed.clone()),
        (
            "tag-no-namespace".into(),
            "/sbom/image.spdx",
            tag_fixed
                .lines()
                .filter(|l| !l.starts_with("DocumentNamespace:"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("cdx14".into(), "/sbom/bom.cdx.json", cdx14_fixed.clone()),
        ("empty".into(), "/sbom/image.spdx.json", String::new()),
        (
            "not-an-sbom".into(),
            "/sbom/sbom.json",
            "{\"name\": \"hello\"}\n".into(),
        ),
        (
            "spdx-version-only".into(),
            "/sbom/image.spdx.json",
            "{\"spdxVersion\":\"SPDX-2.3\"}\n".into(),
        ),
        ("text".into(), "/sbom/image.spdx", "hello\n".into()),
    ];
    for (name, change) in &spdx_breaks {
        files.push((
            format!("spdx23-{name}"),
            "/sbom/image.spdx.json",
            edit(&spdx23_fixed, change.as_ref()),
        ));
    }
    for (base, text) in [("cdx15", &cdx15), ("cdx16", &cdx16)] {
        for (name, change) in &cdx_breaks {
            files.push((
                format!("{base}-{name}"),
                "/sbom/bom.cdx.json",
                edit(text, change.as_ref()),
            ));
        }
    }
    // The reference verdicts, one judge process for every file.
    let mut paths = Vec::new();
    for (name, path, text) in &files {
        let file = format!(
            "doc-{name}.{}",
            path.split_once('.').map_or("json", |(_, ext)| ext)
        );
        work.write(&file, text);
        paths.push(file);
    }
    let judge = Command::new(bin.join("python"))
        .arg("judge.py")
        .args(&paths)
        .current_dir(at)
        .output()
        .unwrap();
    assert!(judge.status.success(), "{}", stderr(&judge));
    let verdicts: Vec<String> = stdout(&judge).lines().map(str::to_owned).collect();
    assert_eq!(verdicts.len(), files.len(), "{verdicts:?}");
    // One image layout per document, its only layer adding the file.
    let mut args: Vec<String> = Vec::new();
    for (name, path, text) in &files {
        let layer = [
            entry(
                path.trim_start_matches('/'),
                b'0',
                text.as_bytes(),
                "",
                None,
            ),
            end(),
        ]
        .concat();
        layout(&work.path(&format!("sbom-{name}")), &layer, true, |_| {});
        args.extend(["--target".to_owned(), format!("oci:sbom-{name}:1.0")]);
    }
    let accepted = verdicts.iter().filter(|v| v.starts_with("valid")).count();
    assert!(accepted >= 6, "{verdicts:?}");
    args.push("image.redhat.sbom".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_image(&work, &args);
    let results = outcomes_by_target(&work, "image.redhat.sbom");
    for ((name, _, _), verdict) in files.iter().zip(&verdicts) {
        let (_, outcome, result) = results
            .iter()
            .find(|(t, _, _)| *t == format!("sbom-{name}:1.0"))
            .unwrap_or_else(|| panic!("no result for {name}"));
        let valid = verdict.starts_with("valid");
        assert_eq!(
            outcome == "pass",
            valid,
            "{name}: the validator says {verdict}; hostcert: {result}"
        );
        if !valid {
            assert!(
                result.to_string().contains("no valid SBOM: /sbom/"),
                "{name}: {result}"
            );
        }
    }

    // Referrers: an SBOM whose subject is this image counts, one whose subject is another
    // image does not, and says so.
    let refer = |tag: &str, subject: &str| {
        let blobs = work.path("refer/blobs/sha256");
        let put = |bytes: &[u8]| {
            let hex = sha256(bytes);
            std::fs::write(blobs.join(&hex), bytes).unwrap();
            (format!("sha256:{hex}"), bytes.len())
        };
        let (doc, doc_size) = put(spdx23_fixed.as_bytes());
        let (empty, empty_size) = put(b"{}");
        let manifest = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/spdx+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": empty_size},
            "layers": [{"mediaType": "application/spdx+json", "digest": doc, "size": doc_size}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": 100}
        })
        .to_string();
        let (digest, size) = put(manifest.as_bytes());
        let mut index: Value = serde_json::from_str(&work.read("refer/index.json")).unwrap();
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
            "artifactType": "application/spdx+json",
            "annotations": {"org.hostcert.test": tag}
        }));
        work.write("refer/index.json", &index.to_string());
        digest
    };
    let layer = [entry("etc/os-release", b'0', b"ID=test\n", "", None), end()].concat();
    layout(&work.path("refer"), &layer, true, |_| {});
    let base = manifest_digest(&work.path("refer"));
    let other = format!("sha256:{}", "ab".repeat(32));
    let foreign = refer("other", &other);
    run_image(&work, &["--target", "oci:refer:1.0", "image.redhat.sbom"]);
    let (verdict, result) = outcome(&work, "image.redhat.sbom");
    assert_eq!(verdict, "fail", "{result}");
    assert!(
        result
            .to_string()
            .contains(&format!("referrer {foreign}: its subject is {other}")),
        "{result}"
    );
    let own = refer("own", &base);
    run_image(&work, &["--target", "oci:refer:1.0", "image.redhat.sbom"]);
    let (verdict, result) = outcome(&work, "image.redhat.sbom");
    assert_eq!(verdict, "pass", "{result}");
    assert!(
        result.to_string().contains(&format!("referrer {own}")),
        "{result}"
    );
}

// ---- signatures: hostcert's verdict equals skopeo's under the same policy.json ----

/// A throwaway GnuPG home with signing keys; its agent is stopped when dropped.
const REFERENCE: &str = "registry.example/hcc/busybox:1.0";

/// Flips one byte in the middle of a file.
fn flip(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn gpg_signatures_are_judged_as_skopeo_judges_them() {
    let work = Work::new();
    let at = work.dir.path();
    build_image(&work, "img", &Spec::good());
    let gpg = Gpg::new(work.dir.path());
    let signer = gpg.key("signer@example.invalid", &work.path("signer.gpg"));
    let other = gpg.key("other@example.invalid", &work.path("other.gpg"));
    let requirement = json!({
        "type": "signedBy", "keyType": "GPGKeys",
        "keyPath": work.path("signer.gpg"),
        "signedIdentity": {"type": "exactReference", "dockerReference": REFERENCE}
    });
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {"dir": {"": [requirement]}, "oci": {"": [requirement]}}
    });
    std::fs::write(work.path("policy.json"), policy.to_string()).unwrap();

    let sign = |dir: &str, fingerprint: &str, identity: &str| {
        let output = gpg.skopeo(
            at,
            &[
                "--insecure-policy",
                "copy",
                "--sign-by",
                fingerprint,
                "--sign-identity",
                identity,
                "oci:img:1.0",
                &format!("dir:{dir}"),
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
    };
    sign("signed", &signer, REFERENCE);
    sign("wrong-key", &other, REFERENCE);
    sign("wrong-identity", &signer, "registry.example/other:1.0");
    let output = gpg.skopeo(
        at,
        &["--insecure-policy", "copy", "oci:img:1.0", "dir:unsigned"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // skopeo keeps the manifest's bytes: the dir: copy signs the same digest.
    let digest = manifest_digest(&work.path("img"));
    assert_eq!(
        tool(at, "skopeo", &["manifest-digest", "signed/manifest.json"]).trim(),
        digest
    );

    // Each case: a dir: copy for skopeo and the equivalent OCI layout and signature for
    // hostcert.
    copy_dir(&work.path("signed"), &work.path("tampered-layer"));
    copy_dir(&work.path("img"), &work.path("img-tampered-layer"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(work.path("signed/manifest.json")).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    flip(&work.path(&format!("tampered-layer/{layer}")));
    flip(&work.path(&format!("img-tampered-layer/blobs/sha256/{layer}")));

    copy_dir(&work.path("signed"), &work.path("tampered-manifest"));
    copy_dir(&work.path("img"), &work.path("img-tampered-manifest"));
    let text = std::fs::read_to_string(work.path("signed/manifest.json")).unwrap();
    let edited = text.replacen("\"schemaVersion\":2", "\"schemaVersion\": 2", 1);
    assert_ne!(text, edited);
    std::fs::write(work.path("tampered-manifest/manifest.json"), &edited).unwrap();
    // In the layout the edited manifest is a new blob that index.json names, so every digest
    // holds and only the signature can tell.
    let new_digest = sha256(edited.as_bytes());
    std::fs::write(
        work.path(&format!("img-tampered-manifest/blobs/sha256/{new_digest}")),
        &edited,
    )
    .unwrap();
    let index = std::fs::read_to_string(work.path("img/index.json"))
        .unwrap()
        .replace(&digest, &format!("sha256:{new_digest}"))
        .replace(
            &format!("\"size\":{}", text.len()),
            &format!("\"size\":{}", edited.len()),
        );
    std::fs::write(work.path("img-tampered-manifest/index.json"), index).unwrap();

    copy_dir(&work.path("signed"), &work.path("tampered-signature"));
    flip(&work.path("tampered-signature/signature-1"));

    let cases = [
        ("signed", "img", true),
        ("wrong-key", "img", false),
        ("wrong-identity", "img", false),
        ("unsigned", "img", false),
        ("tampered-layer", "img-tampered-layer", false),
        ("tampered-manifest", "img-tampered-manifest", false),
        ("tampered-signature", "img", false),
    ];
    for (dir, layout, accepted) in cases {
        let skopeo = gpg.skopeo(
            at,
            &[
                "--policy",
                "policy.json",
                "copy",
                "--remove-signatures",
                &format!("dir:{dir}"),
                &format!("oci:out-{dir}:1.0"),
            ],
        );
        assert_eq!(
            skopeo.status.success(),
            accepted,
            "skopeo on {dir}: {}",
            stderr(&skopeo)
        );
        let mut args = vec![
            "--target".to_owned(),
            format!("oci:{layout}:1.0"),
            "--policy".to_owned(),
            "policy.json".to_owned(),
            "--skip".to_owned(),
            "image.redhat".to_owned(),
        ];
        let signature = work.path(&format!("{dir}/signature-1"));
        if signature.exists() {
            args.push("--signature".to_owned());
            args.push(signature.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run_image(&work, &args);
        let out = stdout(&output);
        assert_eq!(
            code(&output) == 0,
            accepted,
            "hostcert on {dir} disagrees with skopeo ({}): {out}{}",
            stderr(&skopeo),
            stderr(&output)
        );
        let (outcome, result) = outcome(&work, "image.signature.policy");
        let text = result.to_string();
        if accepted {
            assert_eq!(outcome, "pass", "{text}");
            assert!(text.contains(&signer), "the evidence names the key: {text}");
            assert!(
                text.contains(REFERENCE),
                "the evidence names the identity: {text}"
            );
            assert!(
                text.contains("transports.oci[\\\"\\\"][0] signedBy"),
                "{text}"
            );
        } else if dir != "tampered-layer" {
            assert_eq!(outcome, "fail", "{dir}: {text}");
        }
        let reason = match dir {
            "wrong-key" => Some("does not verify with any key"),
            // Where the flipped byte lands decides whether the deflate stream or the RSA
            // signature breaks; either way the signature file is named.
            "tampered-signature" => Some("tampered-signature/signature-1: "),
            "wrong-identity" => Some("Docker reference registry.example/other:1.0 does not match registry.example/hcc/busybox:1.0"),
            "unsigned" => Some("a signature was required, but no signature exists"),
            "tampered-manifest" => Some("does not match the manifest"),
            _ => None,
        };
        if let Some(reason) = reason {
            assert!(text.contains(reason), "{dir}: {text}");
        }
    }

    // A signature made with skopeo standalone-sign, found in a lookaside folder in
    // registries.d's layout, and verified by skopeo standalone-verify as well.
    let sigdir = work.path(&format!(
        "lookaside/hcc/busybox@{}",
        digest.replacen(':', "=", 1)
    ));
    std::fs::create_dir_all(&sigdir).unwrap();
    let signature = sigdir.join("signature-1").display().to_string();
    let output = gpg.skopeo(
        at,
        &[
            "standalone-sign",
            "-o",
            &signature,
            "signed/manifest.json",
            REFERENCE,
            &signer,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = gpg.skopeo(
        at,
        &[
            "standalone-verify",
            "signed/manifest.json",
            REFERENCE,
            &signer,
            &signature,
        ],
    );
    assert!(
        stdout(&output).contains("Signature verified"),
        "{}",
        stderr(&output)
    );
    let output = run_image(
        &work,
        &[
            "--target",
            "oci:img:1.0",
            "--policy",
            "policy.json",
            "--lookaside",
            "lookaside",
            "--skip",
            "image.redhat",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stdout(&output));
}

/// containers-policy.json files containers/image accepts or refuses, each judged by skopeo
/// (`skopeo copy --policy`) and by hostcert on the same signed image: the verdicts agree.
/// `{T}` is the transport (`dir` for skopeo, `oci` for hostcert), `{DIR}` the image's folder,
/// `{PARENT}` its parent, `{KEY}` the signer's public key, `{REF}` the signed identity.
#[test]
fn policies_are_accepted_and_refused_as_skopeo_does() {
    let work = Work::new();
    let at = work.dir.path();
    build_image(&work, "img", &Spec::good());
    let gpg = Gpg::new(work.dir.path());
    let signer = gpg.key("signer@example.invalid", &work.path("signer.gpg"));
    let output = gpg.skopeo(
        at,
        &[
            "--insecure-policy",
            "copy",
            "--sign-by",
            &signer,
            "--sign-identity",
            REFERENCE,
            "oci:img:1.0",
            "dir:signed",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let signed = r#"{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{KEY}", "signedIdentity": {"type": "exactReference", "dockerReference": "{REF}"}}"#;
    let accept = r#"{"type": "insecureAcceptAnything"}"#;
    let reject = r#"{"type": "reject"}"#;
    let with = |requirement: &str| {
        format!(r#"{{"default": [{reject}], "transports": {{"{{T}}": {{"": [{requirement}]}}}}}}"#)
    };
    let cases: Vec<(&str, String)> = vec![
        ("signed-by", with(signed)),
        ("accept-anything", format!(r#"{{"default": [{accept}]}}"#)),
        ("empty-default", r#"{"default": []}"#.to_owned()),
        ("null-default", r#"{"default": null}"#.to_owned()),
        ("no-default", format!(r#"{{"transports": {{"{{T}}": {{"": [{accept}]}}}}}}"#)),
        ("empty-scope-list", format!(r#"{{"default": [{accept}], "transports": {{"{{T}}": {{"": []}}}}}}"#)),
        ("duplicate-default", format!(r#"{{"default": [{reject}], "default": [{accept}]}}"#)),
        ("duplicate-scope", format!(r#"{{"default": [{reject}], "transports": {{"{{T}}": {{"": [{reject}], "": [{accept}]}}}}}}"#)),
        ("duplicate-type", with(r#"{"type": "reject", "type": "insecureAcceptAnything"}"#)),
        ("duplicate-key-path", with(&signed.replacen("\"keyPath\"", "\"keyPath\": \"/nonexistent\", \"keyPath\"", 1))),
        ("unknown-top-key", format!(r#"{{"default": [{accept}], "defaults": [{reject}]}}"#)),
        ("unknown-requirement-key", r#"{"default": [{"type": "insecureAcceptAnything", "comment": "x"}]}"#.to_owned()),
        ("unknown-signed-by-key", with(&signed.replacen("\"keyType\"", "\"keyId\": \"x\", \"keyType\"", 1))),
        ("unknown-identity-key", with(&signed.replacen("\"dockerReference\"", "\"note\": \"x\", \"dockerReference\"", 1))),
        ("unknown-type", r#"{"default": [{"type": "acceptEverything"}]}"#.to_owned()),
        ("not-an-object", r#"{"default": [1]}"#.to_owned()),
        ("trailing-data", format!(r#"{{"default": [{accept}]}} {{}}"#)),
        ("no-key-type", with(&signed.replacen("\"keyType\": \"GPGKeys\", ", "", 1))),
        ("bad-key-type", with(&signed.replacen("GPGKeys", "PGPKeys", 1))),
        ("signed-by-gpg-keys", with(&signed.replacen("GPGKeys", "signedByGPGKeys", 1))),
        ("two-key-sources", with(&signed.replacen("\"keyPath\"", "\"keyData\": \"eA==\", \"keyPath\"", 1))),
        ("empty-key-path", with(&signed.replacen("{KEY}", "", 1))),
        ("no-key-source", with(&signed.replacen("\"keyPath\": \"{KEY}\", ", "", 1))),
        ("key-paths", with(&signed.replacen("\"keyPath\": \"{KEY}\"", "\"keyPaths\": [\"{KEY}\"]", 1))),
        ("untagged-exact-reference", with(&signed.replacen("{REF}", "registry.example/hcc/busybox", 1))),
        ("bad-identity-type", with(&signed.replacen("exactReference", "exactRef", 1))),
        ("match-repository", with(&signed.replacen(r#"{"type": "exactReference", "dockerReference": "{REF}"}"#, r#"{"type": "exactRepository", "dockerRepository": "registry.example/hcc/busybox"}"#, 1))),
        ("signed-base-layer", r#"{"default": [{"type": "signedBaseLayer", "baseLayerIdentity": {"type": "matchRepository"}}]}"#.to_owned()),
        ("sigstore-without-key", r#"{"default": [{"type": "sigstoreSigned"}]}"#.to_owned()),
        ("relative-oci-scope", format!(r#"{{"default": [{accept}], "transports": {{"oci": {{"relative/dir": [{accept}]}}}}}}"#)),
        ("root-dir-scope", format!(r#"{{"default": [{accept}], "transports": {{"dir": {{"/": [{accept}]}}}}}}"#)),
        ("unclean-scope", format!(r#"{{"default": [{accept}], "transports": {{"oci": {{"/tmp/./x": [{accept}]}}}}}}"#)),
        ("docker-archive-scope", format!(r#"{{"default": [{accept}], "transports": {{"docker-archive": {{"/tmp/x.tar": [{accept}]}}}}}}"#)),
        ("unknown-transport-scope", format!(r#"{{"default": [{accept}], "transports": {{"nosuch": {{"any thing": [{accept}]}}}}}}"#)),
        ("docker-scope", format!(r#"{{"default": [{accept}], "transports": {{"docker": {{"registry.example/hcc": [{reject}]}}}}}}"#)),
        ("null-transports", format!(r#"{{"default": [{accept}], "transports": null}}"#)),
        ("scope-reject-wins", format!(r#"{{"default": [{accept}], "transports": {{"{{T}}": {{"{{DIR}}": [{reject}], "": [{accept}]}}}}}}"#)),
        ("parent-scope", format!(r#"{{"default": [{reject}], "transports": {{"{{T}}": {{"{{PARENT}}": [{accept}], "": [{reject}]}}}}}}"#)),
        ("remap-bad-prefix", with(&signed.replacen(r#"{"type": "exactReference", "dockerReference": "{REF}"}"#, r#"{"type": "remapIdentity", "prefix": "not a prefix", "signedPrefix": "registry.example"}"#, 1))),
    ];
    let parent = at.canonicalize().unwrap().display().to_string();
    let fill = |text: &str, transport: &str, dir: &str| {
        text.replace("{T}", transport)
            .replace("{DIR}", &format!("{parent}/{dir}"))
            .replace("{PARENT}", &parent)
            .replace("{KEY}", &work.path("signer.gpg").display().to_string())
            .replace("{REF}", REFERENCE)
    };
    // Each case in its own files and report folder, four at a time.
    let judge = |name: &str, policy: &str| -> bool {
        work.write(
            &format!("skopeo-{name}.json"),
            &fill(policy, "dir", "signed"),
        );
        work.write(
            &format!("hostcert-{name}.json"),
            &fill(policy, "oci", "img"),
        );
        let skopeo = gpg.skopeo(
            at,
            &[
                "--policy",
                &format!("skopeo-{name}.json"),
                "copy",
                "--remove-signatures",
                "dir:signed",
                &format!("dir:out-{name}"),
            ],
        );
        let tmp = work.path(&format!("tmp-{name}"));
        std::fs::create_dir_all(&tmp).unwrap();
        let output = Command::new(BIN)
            .args([
                "run",
                "--profile",
                "isv-image",
                "--report-dir",
                &format!("report-{name}"),
            ])
            .args([
                "--target",
                "oci:img:1.0",
                "--policy",
                &format!("hostcert-{name}.json"),
            ])
            .args([
                "--signature",
                "signed/signature-1",
                "image.signature.policy",
            ])
            .current_dir(at)
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "{name}: the run left files"
        );
        let report = work.json(&format!("report-{name}/report.json"));
        let result = &report["results"][0];
        assert_eq!(
            result["outcome"] == "pass",
            skopeo.status.success(),
            "{name}: skopeo says {} ({}); hostcert ({}): {result}",
            skopeo.status,
            stderr(&skopeo).trim(),
            code(&output)
        );
        skopeo.status.success()
    };
    let verdicts: Vec<bool> = std::thread::scope(|scope| {
        let workers: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| {
                let judge = &judge;
                scope.spawn(move || chunk.iter().map(|(n, p)| judge(n, p)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let accepted = verdicts.iter().filter(|v| **v).count();
    let refused = verdicts.len() - accepted;
    assert!(
        accepted >= 6 && refused >= 30,
        "{accepted} accepted, {refused} refused"
    );
}

/// Signatures by an expired key, or by a revoked one, are refused, as skopeo (through gpgme)
/// refuses them; a signature by a key that is still valid is accepted by both.
#[test]
fn signatures_by_expired_or_revoked_gpg_keys_are_refused_as_skopeo_does() {
    let work = Work::new();
    let at = work.dir.path();
    build_image(&work, "img", &Spec::good());
    let gpg = Gpg::new(work.dir.path());
    // The expired key: made, and used, in 2020, with a one-day lifetime.
    work.write("gnupg/gpg.conf", "faked-system-time 20200101T000000\n");
    let expired = gpg.key("expired@example.invalid", &work.path("expired.gpg"));
    let sign = |dir: &str, fingerprint: &str| {
        let output = gpg.skopeo(
            at,
            &[
                "--insecure-policy",
                "copy",
                "--sign-by",
                fingerprint,
                "--sign-identity",
                REFERENCE,
                "oci:img:1.0",
                &format!("dir:{dir}"),
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
    };
    sign("signed-expired", &expired);
    std::fs::remove_file(work.path("gnupg/gpg.conf")).unwrap();
    let _ = gpg.command("gpgconf").args(["--kill", "all"]).output();
    let valid = gpg.key("valid@example.invalid", &work.path("valid.gpg"));
    sign("signed-valid", &valid);
    // The revoked key: signed with, then revoked with the certificate gpg stored for it.
    let revoked = gpg.key("revoked@example.invalid", &work.path("revoked.gpg"));
    sign("signed-revoked", &revoked);
    let certificate = work.read(&format!("gnupg/openpgp-revocs.d/{revoked}.rev"));
    work.write(
        "revoke.asc",
        &certificate.replace(":-----BEGIN", "-----BEGIN"),
    );
    let output = gpg
        .command("gpg")
        .args(["--batch", "--import"])
        .arg(work.path("revoke.asc"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let output = gpg
        .command("gpg")
        .args(["--export", &revoked])
        .output()
        .unwrap();
    std::fs::write(work.path("revoked.gpg"), &output.stdout).unwrap();
    for (dir, key, accepted, reason) in [
        ("signed-valid", "valid.gpg", true, "signed by key"),
        (
            "signed-expired",
            "expired.gpg",
            false,
            "the key expired at 2020-01-02",
        ),
        ("signed-revoked", "revoked.gpg", false, "the key is revoked"),
    ] {
        let requirement = json!({
            "type": "signedBy", "keyType": "GPGKeys", "keyPath": work.path(key),
            "signedIdentity": {"type": "exactReference", "dockerReference": REFERENCE}
        });
        let policy = json!({"default": [{"type": "reject"}], "transports": {"dir": {"": [requirement]}, "oci": {"": [requirement]}}});
        work.write("policy.json", &policy.to_string());
        let skopeo = gpg.skopeo(
            at,
            &[
                "--policy",
                "policy.json",
                "copy",
                "--remove-signatures",
                &format!("dir:{dir}"),
                &format!("dir:out-{dir}"),
            ],
        );
        assert_eq!(
            skopeo.status.success(),
            accepted,
            "skopeo on {dir}: {}",
            stderr(&skopeo)
        );
        let signature = format!("{dir}/signature-1");
        run_image(
            &work,
            &[
                "--target",
                "oci:img:1.0",
                "--policy",
                "policy.json",
                "--signature",
                &signature,
                "image.signature.policy",
            ],
        );
        let (verdict, result) = outcome(&work, "image.signature.policy");
        assert_eq!(verdict == "pass", accepted, "hostcert on {dir}: {result}");
        assert!(result.to_string().contains(reason), "{dir}: {result}");
    }
}

#[test]
fn sigstore_signatures_verify_with_a_p256_public_key() {
    require("openssl", "openssl");
    let work = Work::new();
    let at = work.dir.path();
    build_image(&work, "img", &Spec::good());
    for name in ["signer", "other"] {
        p256_key(at, name);
    }
    let digest = manifest_digest(&work.path("img"));
    // An unsigned copy, for signatures given with --signature.
    copy_dir(&work.path("img"), &work.path("unsigned"));
    // Signed as cosign does: a manifest tagged sha256-<hex>.sig in the layout (payload.json and
    // payload.sig are left in the work folder).
    cosign_sign(
        &work.path("img"),
        "1.0",
        &work.path("signer.key"),
        REFERENCE,
        at,
    );
    let payload = work.read("payload.json");

    for (key, identity, accepted) in [
        ("signer.pub", REFERENCE, true),
        ("other.pub", REFERENCE, false),
        ("signer.pub", "registry.example/other:1.0", false),
    ] {
        // The reference verdict: openssl's own verification of the signature with the key.
        let openssl = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                key,
                "-signature",
                "payload.sig",
                "payload.json",
            ])
            .current_dir(at)
            .output()
            .unwrap();
        let policy = json!({
            "default": [{"type": "reject"}],
            "transports": {"oci": {"": [{
                "type": "sigstoreSigned", "keyPath": work.path(key),
                "signedIdentity": {"type": "exactReference", "dockerReference": identity}
            }]}}
        });
        std::fs::write(work.path("sigstore-policy.json"), policy.to_string()).unwrap();
        let output = run_image(
            &work,
            &[
                "--target",
                "oci:img:1.0",
                "--policy",
                "sigstore-policy.json",
                "--skip",
                "image.redhat",
            ],
        );
        let (outcome, result) = outcome(&work, "image.signature.policy");
        assert_eq!(outcome == "pass", accepted, "{key} {identity}: {result}");
        assert_eq!(code(&output) == 0, accepted, "{}", stdout(&output));
        if identity == REFERENCE {
            assert_eq!(
                openssl.status.success(),
                accepted,
                "openssl agrees on {key}"
            );
        }
        if accepted {
            assert!(
                result.to_string().contains("signed by P-256 key sha256:"),
                "{result}"
            );
        }
    }

    // The same signature given with --signature as cosign-style JSON, on the unsigned copy:
    // accepted; with one byte of the signature flipped, or on an edited manifest, refused.
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {"oci": {"": [{
            "type": "sigstoreSigned", "keyPath": work.path("signer.pub"),
            "signedIdentity": {"type": "exactReference", "dockerReference": REFERENCE}
        }]}}
    });
    std::fs::write(work.path("sigstore-policy.json"), policy.to_string()).unwrap();
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let der = std::fs::read(work.path("payload.sig")).unwrap();
    let mut tampered = der.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    std::fs::write(work.path("tampered.sig"), &tampered).unwrap();
    let openssl = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "signer.pub",
            "-signature",
            "tampered.sig",
            "payload.json",
        ])
        .current_dir(at)
        .output()
        .unwrap();
    assert!(
        !openssl.status.success(),
        "openssl refuses the tampered signature"
    );
    for (name, signature) in [("good.json", &der), ("tampered.json", &tampered)] {
        let json = json!({"payload": b64(payload.as_bytes()), "signature": b64(signature)});
        std::fs::write(work.path(name), json.to_string()).unwrap();
    }
    copy_dir(&work.path("unsigned"), &work.path("edited"));
    let text = std::fs::read_to_string(work.path(&format!(
        "edited/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    )))
    .unwrap();
    let edited = text.replacen("\"schemaVersion\":2", "\"schemaVersion\": 2", 1);
    assert_ne!(text, edited);
    let new_digest = sha256(edited.as_bytes());
    std::fs::write(
        work.path(&format!("edited/blobs/sha256/{new_digest}")),
        &edited,
    )
    .unwrap();
    let index = work
        .read("edited/index.json")
        .replace(&digest, &format!("sha256:{new_digest}"))
        .replace(
            &format!("\"size\":{}", text.len()),
            &format!("\"size\":{}", edited.len()),
        );
    std::fs::write(work.path("edited/index.json"), index).unwrap();
    for (layout, signature, accepted, reason) in [
        (
            "unsigned",
            None,
            false,
            "a signature was required, but no signature exists",
        ),
        ("unsigned", Some("good.json"), true, "signed by P-256 key"),
        (
            "unsigned",
            Some("tampered.json"),
            false,
            "does not verify with any key",
        ),
        (
            "edited",
            Some("good.json"),
            false,
            "does not match the manifest",
        ),
    ] {
        let target = format!("oci:{layout}:1.0");
        let mut args = vec![
            "--target",
            &target,
            "--policy",
            "sigstore-policy.json",
            "--skip",
            "image.redhat",
        ];
        if let Some(signature) = signature {
            args.extend(["--signature", signature]);
        }
        let output = run_image(&work, &args);
        let (outcome, result) = outcome(&work, "image.signature.policy");
        assert_eq!(
            outcome == "pass",
            accepted,
            "{layout} {signature:?}: {result}"
        );
        assert_eq!(code(&output) == 0, accepted, "{}", stdout(&output));
        assert!(
            result.to_string().contains(reason),
            "{layout} {signature:?}: {result}"
        );
    }
}

#[test]
fn zstd_layers_are_verified_and_unpacked() {
    require("zstd", "zstd");
    let work = Work::new();
    let layer = [
        entry("licenses/LICENSE", b'0', b"MIT\n", "", None),
        entry("etc/motd", b'0', b"hello from zstd\n", "", None),
        end(),
    ]
    .concat();
    std::fs::write(work.path("layer.tar"), &layer).unwrap();
    tool(
        work.dir.path(),
        "zstd",
        &["-q", "-19", "layer.tar", "-o", "layer.tar.zst"],
    );
    let blob = std::fs::read(work.path("layer.tar.zst")).unwrap();
    let zstd = |manifest: &mut Value| {
        manifest["layers"][0]["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+zstd");
    };
    let diff_id = format!("sha256:{}", sha256(&layer));
    layout_blob(&work.path("zst"), &blob, &diff_id, false, zstd);
    let output = run_image(
        &work,
        &["--target", "oci:zst:1.0", "--skip", "image.signature"],
    );
    for check in [
        "image.integrity.blobs",
        "image.integrity.diff-ids",
        "image.redhat.licenses",
        "image.redhat.non-root",
    ] {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}\n{}", stdout(&output));
    }
    // The same layer under a diff_id that is not its content.
    layout_blob(
        &work.path("zst-bad"),
        &blob,
        &format!("sha256:{}", "1".repeat(64)),
        false,
        zstd,
    );
    let output = run_image(
        &work,
        &["--target", "oci:zst-bad:1.0", "--skip", "image.signature"],
    );
    assert_eq!(code(&output), 1);
    let (outcome, result) = outcome(&work, "image.integrity.diff-ids");
    assert_eq!(outcome, "fail", "{result}");
    assert!(
        result
            .to_string()
            .contains(&format!("its uncompressed sha256 is {diff_id}")),
        "{result}"
    );
}

/// A DSSE envelope of an in-toto statement, signed by openssl with a P-256 key.
#[test]
fn slsa_provenance_attestations_are_verified_against_key_subject_and_builder() {
    require("openssl", "openssl");
    let work = Work::new();
    let at = work.dir.path();
    for name in ["signer", "other"] {
        p256_key(at, name);
    }
    let statement = |digest: &str, builder: &str| {
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "registry.example/hcc/busybox", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "https://example.invalid/build"},
                          "runDetails": {"builder": {"id": builder}}}
        })
    };
    let builder = "https://ci.example.invalid/builder";
    type Envelopes<'a> = Box<dyn Fn(&str) -> Vec<Value> + 'a>;
    let cases: Vec<(&str, Envelopes, &str, &str)> = vec![
        (
            "good",
            Box::new(|d: &str| vec![envelope(&work, "signer.key", &statement(d, builder))]),
            "pass",
            builder,
        ),
        (
            "wrong-key",
            Box::new(|d: &str| vec![envelope(&work, "other.key", &statement(d, builder))]),
            "fail",
            "rejected: no signature in the envelope verifies",
        ),
        (
            "wrong-subject",
            Box::new(|_: &str| {
                vec![envelope(
                    &work,
                    "signer.key",
                    &statement(&"ab".repeat(32), builder),
                )]
            }),
            "fail",
            "no subject of the statement is the image's manifest",
        ),
        (
            "unknown-builder",
            Box::new(|d: &str| {
                vec![envelope(
                    &work,
                    "signer.key",
                    &statement(d, "https://evil.example/builder"),
                )]
            }),
            "fail",
            "https://evil.example/builder",
        ),
        (
            "none",
            Box::new(|_: &str| vec![]),
            "fail",
            "image-info provenance = absent",
        ),
    ];
    for (dir, envelopes, wanted, evidence) in &cases {
        build_image(&work, dir, &Spec::good());
        let digest = manifest_digest(&work.path(dir));
        let envelopes = envelopes(&digest);
        if !envelopes.is_empty() {
            attach(&work, dir, &envelopes);
        }
        let output = run_image(
            &work,
            &[
                "--target",
                &format!("oci:{dir}:1.0"),
                "--attestation-key",
                "signer.pub",
                "--param",
                &format!("allowed-builders={builder}"),
                "image.attestation",
            ],
        );
        let (outcome, result) = outcome(&work, "image.attestation.provenance");
        assert_eq!(&outcome, wanted, "{dir}: {result}\n{}", stdout(&output));
        assert!(result.to_string().contains(evidence), "{dir}: {result}");
    }
}

#[test]
fn file_probes_read_the_merged_layers_with_whiteouts_applied() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let at = work.dir.path();
    // A later layer deletes /sbom (whiteout) and makes /licenses an empty folder (opaque).
    tool(
        at,
        "umoci",
        &["insert", "--image", "img:1.0", "--whiteout", "/sbom"],
    );
    std::fs::create_dir_all(work.path("empty")).unwrap();
    let empty = work.path("empty").display().to_string();
    tool(
        at,
        "umoci",
        &[
            "insert",
            "--image",
            "img:1.0",
            "--opaque",
            &empty,
            "/licenses",
        ],
    );
    work.write(
        "suites/files.yaml",
        r#"name: image-files
version: 1.0.0
checks:
  - id: image-files.os-release
    version: 1.0.0
    title: os-release is read from the image
    severity: high
    probes:
      id: {os-release: ID}
    expect: {equals: busybox}
  - id: image-files.busybox
    version: 1.0.0
    title: /bin/busybox is a file of the image
    severity: high
    probes:
      busybox: {file: /bin/sh}
    expect: {fact: busybox.kind, equals: file}
  - id: image-files.passwd
    version: 1.0.0
    title: /etc/passwd names the app user
    severity: high
    probes:
      passwd: {file-content: /etc/passwd}
    expect: {matches: '(?m)^app:x:1001:'}
  - id: image-files.sbom-gone
    version: 1.0.0
    title: /sbom was deleted by a whiteout
    severity: high
    probes:
      sbom: {dir-list: /sbom}
    expect: {exists: false}
  - id: image-files.licenses-empty
    version: 1.0.0
    title: /licenses was emptied by an opaque whiteout
    severity: high
    probes:
      licenses: {dir-list: /licenses}
    expect: {exists: true}
"#,
    );
    work.write(
        "profiles/files.yaml",
        "name: image-files\nversion: 1.0.0\nsuites:\n  image-files: ^1\n  image-provenance: ^1\ngate: [critical, high]\n",
    );
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(BIN)
        .args([
            "run",
            "--suites",
            "suites",
            "--profiles",
            "profiles",
            "--profile",
            "image-files",
        ])
        .args([
            "--report-dir",
            "report",
            "--target",
            "oci:img:1.0",
            "--skip",
            "image.signature",
        ])
        .current_dir(at)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    for check in [
        "image-files.os-release",
        "image-files.busybox",
        "image-files.passwd",
        "image-files.sbom-gone",
        "image-files.licenses-empty",
    ] {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}\n{}", stdout(&output));
    }
    for (check, observed) in [
        ("image.redhat.sbom", "image-info sbom = absent"),
        ("image.redhat.licenses", "image-info licenses = 0"),
    ] {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "fail", "{check}: {result}");
        assert!(result.to_string().contains(observed), "{check}: {result}");
    }
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn hostile_archives_are_refused_with_the_member_named() {
    let work = Work::new();
    let cases = [
        (
            "dotdot.tar",
            [entry("../escaped", b'0', b"x", "", None), end()].concat(),
            "archive entry `../escaped`: a path with `..`",
        ),
        (
            "twice.tar",
            [
                entry("index.json", b'0', b"{}", "", None),
                entry("index.json", b'0', b"{}", "", None),
                end(),
            ]
            .concat(),
            "archive entry `index.json` appears twice",
        ),
        (
            "short.tar",
            entry("oci-layout", b'0', b"{}", "", Some(50_000)),
            "archive entry `oci-layout` is cut short",
        ),
    ];
    for (file, bytes, expected) in cases {
        std::fs::write(work.path(file), bytes).unwrap();
        let out = run_hostile_target(&work, &format!("oci-archive:{file}"));
        assert!(
            out.contains(expected),
            "{file}: expected `{expected}` in\n{out}"
        );
    }
    assert!(!work.path("escaped").exists());
}

/// Runs the image checks on a target expected to be refused; stdout and stderr.
fn run_hostile_target(work: &Work, target: &str) -> String {
    let output = run_image(work, &["--target", target, "--skip", "image.signature"]);
    assert_ne!(code(&output), 0, "{}", stdout(&output));
    format!("{}{}", stdout(&output), stderr(&output))
}

#[test]
fn a_layer_that_upgrades_a_package_may_replace_its_files() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    // One layer replaces /bin/busybox and rewrites busybox-static's file list, as dpkg does.
    work.write("upgrade/bin/busybox", "#!/bin/sh\necho upgraded\n");
    work.write(
        "upgrade/var/lib/dpkg/info/busybox-static.list",
        "/.\n/bin\n/bin/busybox\n",
    );
    let upgrade = work.path("upgrade").display().to_string();
    tool(
        work.dir.path(),
        "umoci",
        &["insert", "--image", "img:1.0", &upgrade, "/"],
    );
    run_image(
        &work,
        &[
            "--target",
            "oci:img:1.0",
            "image.redhat.modified-package-files",
        ],
    );
    let (outcome, result) = outcome(&work, "image.redhat.modified-package-files");
    assert_eq!(outcome, "pass", "{result}");
}

#[test]
fn image_facts_gathered_into_a_snapshot_evaluate_the_same() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let output = Command::new(BIN)
        .args([
            "gather",
            "--profile",
            "isv-image",
            "--target",
            "oci:img:1.0",
            "--output",
            "img.json",
        ])
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let snapshot = work.json("img.json");
    assert_eq!(snapshot["target"]["kind"], "image");
    let live = run_image(
        &work,
        &["--target", "oci:img:1.0", "--skip", "image.signature"],
    );
    let live_report = work.json("report/report.json");
    let offline = run_image(&work, &["--facts", "img.json", "--skip", "image.signature"]);
    let offline_report = work.json("report/report.json");
    assert_eq!(code(&live), code(&offline));
    // A snapshot's facts digest names all its facts (`jq -cj .facts img.json | sha256sum`),
    // whatever a filter leaves out: the live run that asks what `gather` asked gives the same.
    run_image(&work, &["--target", "oci:img:1.0"]);
    let live_all = work.json("report/report.json");
    assert_eq!(
        live_all["targets"][0]["facts-digest"],
        offline_report["targets"][0]["facts-digest"]
    );
    let outcomes = |report: &Value| -> Vec<(String, String)> {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["check"].to_string(), r["outcome"].to_string()))
            .collect()
    };
    assert_eq!(outcomes(&live_report), outcomes(&offline_report));
}

/// An image on a host (`--image oci:...`, the pair of isv-container) answers the image checks
/// as an image target does: a pair is judged as its host's kind and its image's kind.
#[test]
fn an_oci_image_on_a_host_answers_the_image_checks_in_isv_container() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(BIN)
        .args([
            "run",
            "--profile",
            "isv-container",
            "--image",
            "oci:img:1.0",
            "--target",
            "local",
            "--report-dir",
            "report",
            "image.",
            "--skip",
            "image.signature",
        ])
        .current_dir(work.dir.path())
        .env("TMPDIR", &tmp)
        .output()
        .expect("hostcert runs");
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let report = work.json("report/report.json");
    let target = report["targets"][0]["name"].as_str().unwrap().to_owned();
    assert!(target.ends_with("@local"), "a pair: {target}");
    for check in RED_HAT_CHECKS
        .iter()
        .chain(&["image.integrity.blobs", "image.integrity.diff-ids"])
    {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}");
    }
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "nothing left behind"
    );
}

/// How many times a run traced with `strace` opened each blob of a layout: `blob hex -> opens`,
/// counting only the opens that succeeded.
fn blob_opens(trace: &str, layout: &str) -> std::collections::BTreeMap<String, usize> {
    let needle = format!("{layout}/blobs/sha256/");
    let mut opens = std::collections::BTreeMap::new();
    for line in trace
        .lines()
        .filter(|l| l.contains("open") && !l.contains("= -1"))
    {
        if let Some(at) = line.find(&needle) {
            let hex: String = line[at + needle.len()..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            *opens.entry(hex).or_default() += 1;
        }
    }
    opens
}

/// The digests (hex) of the layers of the image tagged in a layout.
fn layer_digests(layout: &Path) -> Vec<String> {
    let blob = |digest: &str| -> Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let manifest = blob(&manifest_digest(layout));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_owned()
        })
        .collect()
}

/// Runs hostcert under `strace -f` (every open of every thread traced), in the work folder with
/// TMPDIR inside it; returns the output and the trace.
fn traced_run(work: &Work, name: &str, args: &[String]) -> (Output, String) {
    require("strace", "strace");
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let trace = work.path(&format!("{name}.trace"));
    let output = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat", "-o"])
        .arg(&trace)
        .arg(BIN)
        .args(args)
        .current_dir(work.dir.path())
        .env("TMPDIR", &tmp)
        .env("HOME", work.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("strace runs hostcert");
    (output, std::fs::read_to_string(trace).unwrap())
}

/// The compatibility matrix: three images on three SSH hosts in one run
/// (`--profile isv-container --image A --image B --image C --target h1 --target h2 --target h3`).
/// Every pair is in the report with its verdict, in the JSON's matrix, the HTML's and the
/// Markdown's table and the console's; each image is verified and unpacked once whatever the
/// number of hosts (strace counts the opens of its layer blobs: the same as in a run on one
/// host), and each host is contacted once (sshd's log: one connection, one login, and the exec
/// channels of one pair).
#[test]
fn a_matrix_of_three_images_on_three_hosts_reads_each_image_and_each_host_once() {
    let work = Work::new();
    let mut without_licenses = Spec::good();
    without_licenses.licenses = false;
    let mut as_root = Spec::good();
    as_root.user = None;
    let specs = [
        ("img-a", Spec::good()),
        ("img-b", without_licenses),
        ("img-c", as_root),
    ];
    for (dir, spec) in &specs {
        build_image(&work, dir, spec);
    }
    let client = Client::new();
    let hosts: Vec<SshHost> = ["h0", "h1", "h2", "h3"]
        .iter()
        .map(|name| client.host(name))
        .collect();
    let refs: Vec<&SshHost> = hosts.iter().collect();
    let known = client.known_hosts("known_hosts", &refs);
    let base = |report: &str| -> Vec<String> {
        [
            "run",
            "--profile",
            "isv-container",
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
            "--report-dir",
            report,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let images: Vec<String> = specs
        .iter()
        .flat_map(|(dir, _)| ["--image".to_owned(), format!("oci:{dir}:1.0")])
        .collect();
    // The three images on one host (h0): how often one run opens each blob.
    let mut args = base("one-host");
    args.extend(images.iter().cloned());
    args.extend(["--target".to_owned(), hosts[0].address()]);
    let (output, one_host) = traced_run(&work, "one-host", &args);
    assert!(code(&output) <= 1, "{}{}", stdout(&output), stderr(&output));
    // Every host but h0 answered only the readiness probe so far.
    let before: Vec<usize> = hosts
        .iter()
        .map(|h| h.log().matches("Connection from 127.0.0.1").count())
        .collect();
    let exec_channels = hosts[0].log().matches("Starting session: command").count();
    assert!(exec_channels >= 1, "{}", hosts[0].log());

    // The matrix: three images by three hosts.
    let mut args = base("matrix");
    args.extend(images.iter().cloned());
    for host in &hosts[1..] {
        args.extend(["--target".to_owned(), host.address()]);
    }
    let (output, matrix) = traced_run(&work, "matrix", &args);
    let printed = format!("{}{}", stdout(&output), stderr(&output));
    assert!(code(&output) <= 1, "{printed}");
    for (dir, _) in &specs {
        let layers = layer_digests(&work.path(dir));
        let once = blob_opens(&one_host, dir);
        let nine = blob_opens(&matrix, dir);
        for layer in &layers {
            assert!(
                once.get(layer).copied().unwrap_or(0) >= 2,
                "{dir}: verified and unpacked, its layer is opened: {once:?}"
            );
        }
        assert_eq!(
            nine, once,
            "{dir}: read as often for three hosts as for one"
        );
    }
    let names: Vec<String> = hosts[1..]
        .iter()
        .map(|h| h.address().trim_start_matches("ssh://").to_owned())
        .collect();
    for (host, connections) in hosts[1..].iter().zip(&before[1..]) {
        let log = host.log();
        assert_eq!(
            log.matches("Connection from 127.0.0.1").count() - connections,
            1,
            "{log}"
        );
        assert_eq!(
            log.matches("Accepted publickey for root").count(),
            1,
            "{log}"
        );
        assert_eq!(
            log.matches("Starting session: command").count(),
            exec_channels,
            "the exec channels of one pair: {log}"
        );
    }

    // The report: nine pairs, each its own target, and the matrix of their verdicts.
    let report = work.json("matrix/report.json");
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 9);
    let matrix = &report["matrix"];
    let images: Vec<&str> = specs.iter().map(|(dir, _)| *dir).collect();
    let rows: Vec<String> = images.iter().map(|i| format!("{i}:1.0")).collect();
    assert_eq!(matrix["images"], json!(rows));
    assert_eq!(matrix["hosts"], json!(names));
    let cells = matrix["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 9);
    for (cell, target) in cells.iter().zip(targets) {
        assert_eq!(cell["target"], target["name"]);
        assert_eq!(
            target["pair"],
            json!({"image": cell["image"], "host": cell["host"]})
        );
        let results: Vec<&Value> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["target"] == cell["target"])
            .collect();
        let failing: Vec<&Value> = results
            .iter()
            .filter(|r| r["gating"] == true && r["outcome"] == "fail")
            .map(|r| &r["check"])
            .collect();
        assert_eq!(
            cell["failing"]
                .as_array()
                .map_or(vec![], |f| f.iter().collect()),
            failing
        );
        let verdict = if failing.is_empty() {
            cell["verdict"].clone()
        } else {
            json!("not-certified")
        };
        assert_eq!(cell["verdict"], verdict, "{cell}");
    }
    // The image without /licenses fails image.redhat.licenses on every host, and only it.
    for cell in cells {
        let fails = cell["failing"]
            .as_array()
            .is_some_and(|f| f.iter().any(|c| c == "image.redhat.licenses"));
        assert_eq!(fails, cell["image"] == "img-b:1.0", "{cell}");
    }
    let html = work.read("matrix/report.html");
    assert!(html.contains("<section id=\"pairs\">"));
    assert_eq!(html.matches("<td class=\"c\"><a href=\"#t").count(), 9);
    let markdown = work.read("matrix/report.md");
    assert!(markdown.contains("### Images by host"), "{markdown}");
    assert!(
        markdown.contains("- `img-b:1.0@") && markdown.contains("failing `image.redhat.licenses`"),
        "{markdown}"
    );
    assert!(printed.contains("images by host:"), "{printed}");
    for row in &rows {
        assert!(
            printed.lines().any(|l| l.starts_with(row.as_str())),
            "a row for {row}: {printed}"
        );
    }
    assert!(
        printed.contains(&format!("img-b:1.0@{}: not certified: failing", names[0])),
        "{printed}"
    );
    let left: Vec<_> = std::fs::read_dir(work.path("tmp")).unwrap().collect();
    assert!(
        left.is_empty(),
        "the run left files in its temporary folder: {left:?}"
    );
}

/// A matrix cell is its own pair's verdict, never another's: of two images on two SSH hosts, the
/// good image certifies on the host that answers, the image without /licenses fails only its own
/// check there, and both pairs on the host that does not answer (stopped before the run) are
/// incomplete with the host named, although their image sides were read and would pass. The
/// hosts and images are given in an order (down host first, failing image first) where a cell
/// taking its neighbour's verdict would show.
#[test]
fn a_matrix_cell_never_takes_another_pairs_verdict() {
    let work = Work::new();
    let mut without_licenses = Spec::good();
    without_licenses.licenses = false;
    build_image(&work, "img-bad", &without_licenses);
    build_image(&work, "img-good", &Spec::good());
    let client = Client::new();
    let mut down = client.host("down");
    let up = client.host("up");
    let known = client.known_hosts("known_hosts", &[&down, &up]);
    let (down_address, up_address) = (down.address(), up.address());
    down.stop();
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(BIN)
        .args([
            "run",
            "--profile",
            "isv-container",
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
            "--image",
            "oci:img-bad:1.0",
            "--image",
            "oci:img-good:1.0",
            "--target",
            &down_address,
            "--target",
            &up_address,
            "--report-dir",
            "report",
            "image.",
            "--skip",
            "image.signature",
        ])
        .current_dir(work.dir.path())
        .env("TMPDIR", &tmp)
        .env("HOME", work.dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("hostcert runs");
    let printed = format!("{}{}", stdout(&output), stderr(&output));
    assert_ne!(code(&output), 0, "{printed}");
    let report = work.json("report/report.json");
    assert_ne!(report["verdict"], "certified", "{printed}");
    let (down_name, up_name) = (
        down_address.trim_start_matches("ssh://").to_owned(),
        up_address.trim_start_matches("ssh://").to_owned(),
    );
    let cells = report["matrix"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "{}", report["matrix"]);
    let cell = |image: &str, host: &str| -> &Value {
        cells
            .iter()
            .find(|c| c["image"] == image && c["host"] == host)
            .unwrap_or_else(|| panic!("no cell {image}@{host}: {}", report["matrix"]))
    };
    let good_up = cell("img-good:1.0", &up_name);
    assert_eq!(good_up["verdict"], "certified", "{good_up}");
    assert!(good_up.get("failing").is_none(), "{good_up}");
    let bad_up = cell("img-bad:1.0", &up_name);
    assert_eq!(bad_up["verdict"], "not-certified", "{bad_up}");
    assert_eq!(
        bad_up["failing"],
        json!(["image.redhat.licenses"]),
        "{bad_up}"
    );
    for image in ["img-bad:1.0", "img-good:1.0"] {
        let on_down = cell(image, &down_name);
        assert_eq!(on_down["verdict"], "incomplete", "{on_down}");
        assert!(on_down.get("failing").is_none(), "{on_down}");
        let target = report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == on_down["target"])
            .unwrap();
        assert!(
            target["error"]
                .as_str()
                .is_some_and(|reason| reason.contains("127.0.0.1")),
            "the host is named: {target}"
        );
    }
    // Every result belongs to the pair it was evaluated on: the up host's results pass or fail
    // on their image, the down host's are errors.
    for result in report["results"].as_array().unwrap() {
        let target = result["target"].as_str().unwrap();
        if target.ends_with(&format!("@{down_name}")) {
            assert_eq!(result["outcome"], "error", "{result}");
        } else if result["check"] == "image.redhat.licenses" {
            let expected = if target.starts_with("img-bad") {
                "fail"
            } else {
                "pass"
            };
            assert_eq!(result["outcome"], expected, "{result}");
        }
    }
}
