//! Images for the image tests (tests/images.rs, tests/registry.rs): OCI layouts built with
//! Debian's umoci from a busybox-static rootfs, GnuPG keys in a home of the test's own for
//! skopeo's simple signing, and cosign-style signatures made with openssl.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{require, run_ok, Work};

/// The sha256 of bytes, as hex.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs a tool, failing the test with its output when it fails.
pub fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    run_ok(Command::new(program).args(args).current_dir(dir))
}

pub fn require_image_tools() {
    require("umoci", "umoci");
    require("skopeo", "skopeo");
    require("/bin/busybox", "busybox-static");
}

/// How a test image differs from the one that passes every Red Hat check.
#[derive(Clone)]
pub struct Spec {
    pub tag: &'static str,
    pub user: Option<&'static str>,
    pub labels: Vec<(&'static str, &'static str)>,
    pub licenses: bool,
    pub extra_layers: usize,
    pub dpkg_packages: Vec<&'static str>,
    pub sbom: bool,
    /// A later layer copies another file over /bin/busybox, which busybox-static owns.
    pub overwrite_busybox: bool,
}

impl Spec {
    pub fn good() -> Spec {
        Spec {
            tag: "1.0",
            user: Some("app"),
            labels: vec![
                ("name", "hcc-busybox"),
                ("vendor", "Example"),
                ("version", "1.0"),
                ("release", "1"),
                ("summary", "tiny test image"),
                ("description", "busybox-static rootfs"),
                ("maintainer", "hcc-test@example.invalid"),
                ("org.opencontainers.image.base.name", "scratch"),
            ],
            licenses: true,
            extra_layers: 0,
            dpkg_packages: vec!["busybox-static"],
            sbom: true,
            overwrite_busybox: false,
        }
    }
}

/// A minimal SPDX 2.3 JSON document listing one package, which spdx-tools accepts.
pub fn spdx_document(package: &str) -> String {
    json!({
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": "hcc-busybox", "documentNamespace": "https://example.invalid/spdx/hcc-busybox-1",
        "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: hostcert-tests"]},
        "packages": [{"SPDXID": "SPDXRef-Package-1", "name": package, "downloadLocation": "NOASSERTION"}],
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Package-1"}]
    })
    .to_string()
}

/// Builds an OCI layout `dir` holding one image tagged `spec.tag`, with umoci.
pub fn build_image(work: &Work, dir: &str, spec: &Spec) -> PathBuf {
    require_image_tools();
    let root = work.path(&format!("{dir}-rootfs"));
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    write(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/home/app:/bin/sh\n",
    );
    write("etc/os-release", "ID=busybox\nVERSION_ID=1.35\n");
    let mut status = String::new();
    for package in &spec.dpkg_packages {
        status += &format!("Package: {package}\nStatus: install ok installed\nVersion: 1.0\n\n");
    }
    write("var/lib/dpkg/status", &status);
    write(
        "var/lib/dpkg/info/busybox-static.list",
        "/.\n/bin\n/bin/busybox\n",
    );
    if spec.licenses {
        write("licenses/LICENSE", "Apache-2.0\n");
    }
    if spec.sbom {
        write("sbom/image.spdx.json", &spdx_document("busybox-static"));
    }
    let image = format!("{dir}:{}", spec.tag);
    let at = work.dir.path();
    tool(at, "umoci", &["init", "--layout", dir]);
    tool(at, "umoci", &["new", "--image", &image]);
    let rootfs = root.display().to_string();
    tool(at, "umoci", &["insert", "--image", &image, &rootfs, "/"]);
    for index in 0..spec.extra_layers {
        let file = work.path(&format!("{dir}-extra-{index}"));
        std::fs::write(&file, format!("layer {index}\n")).unwrap();
        let file = file.display().to_string();
        tool(
            at,
            "umoci",
            &[
                "insert",
                "--image",
                &image,
                &file,
                &format!("/extra/{index}"),
            ],
        );
    }
    if spec.overwrite_busybox {
        let file = work.path(&format!("{dir}-patched-busybox"));
        std::fs::write(&file, "#!/bin/sh\necho patched\n").unwrap();
        let file = file.display().to_string();
        tool(
            at,
            "umoci",
            &["insert", "--image", &image, &file, "/bin/busybox"],
        );
    }
    let mut args: Vec<String> = vec![
        "config".into(),
        "--image".into(),
        image.clone(),
        "--config.cmd".into(),
        "/bin/sh".into(),
        "--author".into(),
        "hcc test".into(),
    ];
    if let Some(user) = spec.user {
        args.push("--config.user".into());
        args.push(user.into());
    }
    for (key, value) in &spec.labels {
        args.push("--config.label".into());
        args.push(format!("{key}={value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tool(at, "umoci", &args);
    tool(at, "umoci", &["gc", "--layout", dir]);
    work.path(dir)
}

/// Makes an ECDSA P-256 key pair with openssl: `NAME.key` and `NAME.pub` in `dir`.
pub fn p256_key(dir: &Path, name: &str) {
    require("openssl", "openssl");
    let key = format!("{name}.key");
    tool(
        dir,
        "openssl",
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ],
    );
    tool(
        dir,
        "openssl",
        &["ec", "-in", &key, "-pubout", "-out", &format!("{name}.pub")],
    );
}

/// Signs the image tagged `tag` in the layout `layout` as cosign does, with the P-256 key
/// `key` (openssl signs the simple-signing payload naming `identity`), and stores the
/// signature in the layout: a manifest tagged `sha256-HEX.sig` whose layer is the payload and
/// whose annotation is the signature. `payload.json` and `payload.sig` (DER) are left in `out`.
/// Returns the signature's tag.
pub fn cosign_sign(layout: &Path, tag: &str, key: &Path, identity: &str, out: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .expect("the tag's manifest")
        .to_owned();
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string();
    std::fs::write(out.join("payload.json"), &payload).unwrap();
    tool(
        out,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-sign",
            &key.display().to_string(),
            "-out",
            "payload.sig",
            "payload.json",
        ],
    );
    let signature = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(out.join("payload.sig")).unwrap())
    };
    let blobs = layout.join("blobs/sha256");
    let put = |bytes: &[u8]| {
        let hex = sha256(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (payload_digest, payload_size) = put(payload.as_bytes());
    let (config_digest, config_size) = put(b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": payload_digest, "size": payload_size,
            "annotations": {"dev.cosignproject.cosign/signature": signature}
        }]
    })
    .to_string();
    let (manifest_digest, manifest_size) = put(manifest.as_bytes());
    let sig_tag = format!("{}.sig", digest.replacen(':', "-", 1));
    let mut index = index;
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": sig_tag}
    }));
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    sig_tag
}

/// The digest of the manifest tagged 1.0 in a layout.
pub fn manifest_digest(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

/// A DSSE envelope of an in-toto statement, signed with openssl and the key `key` (a file in
/// the work folder).
pub fn envelope(work: &Work, key: &str, statement: &Value) -> Value {
    use base64::Engine as _;
    let body = statement.to_string();
    let payload_type = "application/vnd.in-toto+json";
    let pae = format!(
        "DSSEv1 {} {payload_type} {} {body}",
        payload_type.len(),
        body.len()
    );
    std::fs::write(work.path("pae"), pae).unwrap();
    tool(
        work.dir.path(),
        "openssl",
        &["dgst", "-sha256", "-sign", key, "-out", "pae.sig", "pae"],
    );
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({
        "payloadType": payload_type,
        "payload": b64(body.as_bytes()),
        "signatures": [{"keyid": "", "sig": b64(&std::fs::read(work.path("pae.sig")).unwrap())}]
    })
}

/// Attaches envelopes to the image of layout `dir` cosign-style, as a manifest tagged
/// `sha256-<hex>.att`.
pub fn attach(work: &Work, dir: &str, envelopes: &[Value]) {
    let digest = manifest_digest(&work.path(dir));
    let blobs = work.path(&format!("{dir}/blobs/sha256"));
    let put = |bytes: &[u8]| {
        let hex = sha256(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
    };
    let mut config = put(b"{}");
    config["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let layers: Vec<Value> = envelopes
        .iter()
        .map(|e| {
            let mut d = put(e.to_string().as_bytes());
            d["mediaType"] = json!("application/vnd.dsse.envelope.v1+json");
            d
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers
    });
    let mut entry = put(manifest.to_string().as_bytes());
    entry["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": format!("{}.att", digest.replacen(':', "-", 1))});
    let mut index: Value = serde_json::from_str(&work.read(&format!("{dir}/index.json"))).unwrap();
    index["manifests"].as_array_mut().unwrap().push(entry);
    std::fs::write(work.path(&format!("{dir}/index.json")), index.to_string()).unwrap();
}

/// Builds an OCI layout `dir` whose tag `1.0` names an image index of two umoci images:
/// linux/amd64 (User app) and linux/arm64 (User root). Returns the manifest digests by
/// platform.
pub fn build_index(work: &Work, dir: &str) -> Vec<(&'static str, String)> {
    build_image(work, dir, &Spec::good());
    let at = work.dir.path();
    let image = format!("{dir}:1.0");
    tool(
        at,
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--architecture",
            "arm64",
            "--config.user",
            "root",
            "--tag",
            "arm",
        ],
    );
    let index: Value = serde_json::from_str(&work.read(&format!("{dir}/index.json"))).unwrap();
    let find = |tag: &str| {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap()
            .clone()
    };
    let (amd, arm_entry) = (find("1.0"), find("arm"));
    let entry = |m: &Value, architecture: &str| {
        json!({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
               "platform": {"architecture": architecture, "os": "linux"}})
    };
    let nested = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd, "amd64"), entry(&arm_entry, "arm64")]
    })
    .to_string();
    let hex = sha256(nested.as_bytes());
    std::fs::write(work.path(&format!("{dir}/blobs/sha256/{hex}")), &nested).unwrap();
    let top = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                       "digest": format!("sha256:{hex}"), "size": nested.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "1.0"}}]
    });
    std::fs::write(work.path(&format!("{dir}/index.json")), top.to_string()).unwrap();
    vec![
        ("linux/amd64", amd["digest"].as_str().unwrap().to_owned()),
        (
            "linux/arm64",
            arm_entry["digest"].as_str().unwrap().to_owned(),
        ),
    ]
}
