//! Signatures, judged as containers/image judges them against a containers-policy.json
//! (containers-policy.json(5)): the requirements of the most specific scope of the image's
//! transport (else `default`) must all accept the image. `signedBy` verifies GPG "simple
//! signing" signatures (containers-signature(5)) with the pure-Rust OpenPGP crate `pgp`;
//! `sigstoreSigned` verifies cosign-style signatures with an ECDSA P-256 public key.
//!
//! Signatures are found where tools put them: files given with `--signature`, lookaside folders
//! in registries.d's layout (`…/<repo>@sha256=<hex>/signature-N`), and cosign's
//! `sha256-<hex>.sig` manifests inside the image's OCI layout.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::layout::{self, Image};
use super::policy_config::Reference;
use super::ImageOptions;

/// The largest signature or key file read.
const MAX_SIGNATURE_BYTES: u64 = 4 << 20;
const COSIGN_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// A signature found for the image, and where.
#[derive(Debug)]
enum Found {
    /// A GPG simple-signing signature (an OpenPGP signed message).
    Gpg { source: String, bytes: Vec<u8> },
    /// A cosign-style signature: the payload and the base64 signature over it.
    Sigstore {
        source: String,
        payload: Vec<u8>,
        signature: String,
    },
}

/// The policy's verdict on an image: `(evidence, "accepted" or "rejected: reason")`. `Err` when
/// the policy itself cannot be used (missing, not JSON, an unknown requirement).
pub(super) fn judge(
    image: &Image,
    transport: &str,
    scopes: &[String],
    options: &ImageOptions,
) -> Result<(String, String), String> {
    let Some(path) = &options.policy else {
        return Err(
            "no containers-policy.json given (--policy FILE, or the profile's `policy` parameter)"
                .to_owned(),
        );
    };
    let bytes = read_small(path)?;
    let policy = super::json::parse(&bytes)
        .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
    super::policy_config::check(&policy).map_err(|e| {
        format!(
            "{}: invalid policy (containers/image refuses it): {e}",
            path.display()
        )
    })?;
    let (scope, requirements) = requirements_for(&policy, transport, scopes);
    let found = find_signatures(image, options)?;
    let mut accepted_by = Vec::new();
    for (index, requirement) in requirements.iter().enumerate() {
        let kind = requirement
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let label = format!("{scope}[{index}] {kind}");
        let outcome = match kind {
            "insecureAcceptAnything" => Ok("accepts anything".to_owned()),
            "reject" => Err("the policy rejects every image here".to_owned()),
            "signedBaseLayer" => {
                Err("signedBaseLayer is not implemented (containers/image rejects it)".to_owned())
            }
            "signedBy" => signed_by(requirement, image, &found, path),
            "sigstoreSigned" => sigstore_signed(requirement, image, &found, path),
            other => {
                return Err(format!(
                    "{}: {scope}[{index}]: unknown requirement type `{}`",
                    path.display(),
                    layout::shorten(other)
                ))
            }
        };
        match outcome {
            Ok(evidence) => accepted_by.push(format!("{label}: {evidence}")),
            Err(reason) => {
                return Ok((
                    format!("{} {label}", path.display()),
                    format!("rejected: {reason}"),
                ))
            }
        }
    }
    Ok((
        format!("{} {}", path.display(), accepted_by.join("; ")),
        "accepted".to_owned(),
    ))
}

fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    crate::fsio::read_regular(path, MAX_SIGNATURE_BYTES, "signature, key or policy file")
        .map_err(|e| e.to_string())
}

/// The policy scopes of a layout folder or an archive file, most specific first, as
/// containers/image's path transports list them: the resolved path, then each parent folder
/// (never `/`); a docker archive has none.
pub(super) fn path_scopes(transport: &str, location: &Path) -> Vec<String> {
    let mut scopes = Vec::new();
    if transport != "docker-archive" {
        let root = location
            .canonicalize()
            .unwrap_or_else(|_| location.to_owned());
        let mut dir: Option<&Path> = Some(&root);
        while let Some(d) = dir.filter(|d| d.parent().is_some()) {
            scopes.push(d.display().to_string());
            dir = d.parent();
        }
    }
    scopes
}

/// The requirements that apply, looked up as containers/image does: the transport's scope for
/// each of the image's `scopes` (its identity first, then its namespaces), then the transport's
/// `""`, then `default`. The policy was checked, so every list is non-empty.
fn requirements_for(policy: &Value, transport: &str, scopes: &[String]) -> (String, Vec<Value>) {
    if let Some(listed) = policy
        .pointer(&format!("/transports/{transport}"))
        .and_then(Value::as_object)
    {
        for candidate in scopes.iter().map(String::as_str).chain([""]) {
            if let Some(list) = listed.get(candidate).and_then(Value::as_array) {
                return (
                    format!("transports.{transport}[\"{candidate}\"]"),
                    list.clone(),
                );
            }
        }
    }
    let list = policy
        .get("default")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ("default".to_owned(), list)
}

/// Every signature of the image: `--signature` files, lookaside folders, cosign `.sig` tags.
fn find_signatures(image: &Image, options: &ImageOptions) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    for path in &options.signatures {
        let bytes = read_small(path)?;
        found.push(classify(path.display().to_string(), bytes));
    }
    if let Some(digest) = &image.manifest_digest {
        let wanted = format!("@{}", digest.replacen(':', "=", 1));
        for root in &options.lookaside {
            for dir in lookaside_dirs(root, &wanted) {
                for index in 1..=64 {
                    let path = dir.join(format!("signature-{index}"));
                    if !path.is_file() {
                        break;
                    }
                    let bytes = read_small(&path)?;
                    found.push(Found::Gpg {
                        source: path.display().to_string(),
                        bytes,
                    });
                }
            }
        }
        found.extend(cosign_signatures(image, digest));
    }
    Ok(found)
}

/// A `--signature` file: a cosign-style JSON (`{"payload": b64, "signature": b64}`) or a GPG
/// signature.
fn classify(source: String, bytes: Vec<u8>) -> Found {
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
        let payload = value
            .get("payload")
            .and_then(Value::as_str)
            .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok());
        let signature = value.get("signature").and_then(Value::as_str);
        if let (Some(payload), Some(signature)) = (payload, signature) {
            return Found::Sigstore {
                source,
                payload,
                signature: signature.to_owned(),
            };
        }
    }
    Found::Gpg { source, bytes }
}

/// Folders under a lookaside root whose name ends with `@sha256=<hex>`, up to 8 levels deep.
fn lookaside_dirs(root: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_owned(), 0)];
    let mut visited = 0;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            visited += 1;
            if visited > 100_000 {
                return out;
            }
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(suffix) {
                out.push(entry.path());
            } else if depth < 8 {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    out.sort();
    out
}

/// Cosign signatures stored in the layout: the manifest tagged `sha256-<hex>.sig`, whose
/// simple-signing layers carry the signature in an annotation.
fn cosign_signatures(image: &Image, digest: &str) -> Vec<Found> {
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    let mut found = Vec::new();
    for (name, descriptor) in &image.index_entries {
        if name.as_deref() != Some(tag.as_str()) {
            continue;
        }
        let Some(manifest) = image.read_json(descriptor) else {
            continue;
        };
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for layer in layers {
            if layer.get("mediaType").and_then(Value::as_str) != Some(COSIGN_LAYER) {
                continue;
            }
            let Some(signature) = layer
                .pointer(&format!(
                    "/annotations/{}",
                    COSIGN_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let Some(payload) = image.read_blob(&layer) else {
                continue;
            };
            found.push(Found::Sigstore {
                source: format!(
                    "cosign tag {tag} layer {}",
                    layer.get("digest").and_then(Value::as_str).unwrap_or("?")
                ),
                payload,
                signature: signature.to_owned(),
            });
        }
    }
    found
}

/// The key files or data of a requirement: exactly one of `keyPath`, `keyPaths`, `keyData`
/// (and `keyDatas` for sigstoreSigned).
fn key_material(
    requirement: &Value,
    policy: &Path,
    datas: bool,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut given = Vec::new();
    let mut keys = Vec::new();
    let base = policy.parent().unwrap_or(Path::new("."));
    let read_path = |p: &str| -> Result<(String, Vec<u8>), String> {
        let path = base.join(p);
        Ok((path.display().to_string(), read_small(&path)?))
    };
    if let Some(p) = requirement.get("keyPath").and_then(Value::as_str) {
        given.push("keyPath");
        keys.push(read_path(p)?);
    }
    if let Some(list) = requirement.get("keyPaths").and_then(Value::as_array) {
        given.push("keyPaths");
        for p in list.iter().filter_map(Value::as_str) {
            keys.push(read_path(p)?);
        }
    }
    let decode = |d: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(d)
            .map_err(|e| format!("keyData is not base64: {e}"))
    };
    if let Some(d) = requirement.get("keyData").and_then(Value::as_str) {
        given.push("keyData");
        keys.push(("keyData".to_owned(), decode(d)?));
    }
    if datas {
        if let Some(list) = requirement.get("keyDatas").and_then(Value::as_array) {
            given.push("keyDatas");
            for d in list.iter().filter_map(Value::as_str) {
                keys.push(("keyDatas".to_owned(), decode(d)?));
            }
        }
    }
    if given.len() != 1 {
        return Err(format!(
            "the requirement needs exactly one of keyPath, keyPaths, keyData{} (it has {})",
            if datas { ", keyDatas" } else { "" },
            if given.is_empty() {
                "none".to_owned()
            } else {
                given.join(", ")
            }
        ));
    }
    Ok(keys)
}

/// `signedBy`: some GPG signature by one of the keys, over a payload naming this manifest and
/// an identity the requirement accepts.
fn signed_by(
    requirement: &Value,
    image: &Image,
    found: &[Found],
    policy: &Path,
) -> Result<String, String> {
    let key_type = requirement
        .get("keyType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if key_type != "GPGKeys" {
        return Err(format!(
            "keyType `{}` is not implemented (containers/image rejects it)",
            layout::shorten(key_type)
        ));
    }
    let material = key_material(requirement, policy, false)?;
    let mut keys = Vec::new();
    for (source, bytes) in &material {
        keys.extend(load_gpg_keys(bytes).map_err(|e| format!("{source}: {e}"))?);
    }
    if keys.is_empty() {
        return Err("the requirement's keys hold no OpenPGP key".to_owned());
    }
    let signatures: Vec<(&String, &Vec<u8>)> = found
        .iter()
        .filter_map(|f| match f {
            Found::Gpg { source, bytes } => Some((source, bytes)),
            Found::Sigstore { .. } => None,
        })
        .collect();
    if signatures.is_empty() {
        return Err("a signature was required, but no signature exists".to_owned());
    }
    let mut reasons = Vec::new();
    for (source, bytes) in signatures {
        let result = verify_gpg(bytes, &keys).and_then(|(payload, fingerprint)| {
            let identity =
                check_payload(&payload, "atomic container signature", image, requirement)?;
            Ok(format!(
                "{source} signed by key {fingerprint} for {identity}"
            ))
        });
        match result {
            Ok(evidence) => return Ok(evidence),
            Err(reason) => reasons.push(format!("{source}: {reason}")),
        }
    }
    Err(reasons.join("; "))
}

fn load_gpg_keys(bytes: &[u8]) -> Result<Vec<pgp::composed::SignedPublicKey>, String> {
    use pgp::composed::Deserializable as _;
    let (keys, _) =
        pgp::composed::SignedPublicKey::from_reader_many(std::io::Cursor::new(bytes.to_vec()))
            .map_err(|e| format!("not an OpenPGP public key: {e}"))?;
    keys.collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not an OpenPGP public key: {e}"))
}

/// Verifies an OpenPGP signed message with any of the keys (primary keys and subkeys):
/// the payload and the primary key's fingerprint.
fn verify_gpg(
    bytes: &[u8],
    keys: &[pgp::composed::SignedPublicKey],
) -> Result<(Vec<u8>, String), String> {
    use pgp::types::KeyDetails as _;
    let message = pgp::composed::Message::from_bytes(std::io::Cursor::new(bytes.to_vec()))
        .map_err(|e| format!("not an OpenPGP signed message: {e}"))?;
    let mut message = message
        .decompress()
        .map_err(|e| format!("cannot decompress the signature: {e}"))?;
    let mut payload = Vec::new();
    (&mut message)
        .take(MAX_SIGNATURE_BYTES + 1)
        .read_to_end(&mut payload)
        .map_err(|e| format!("cannot read the signed payload: {e}"))?;
    if payload.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err("the signed payload is larger than 4 MiB".to_owned());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for key in keys {
        let fingerprint = format!("{:X}", key.fingerprint());
        if let Ok(signature) = message.verify(&key.primary_key) {
            key_valid(key, None, signature, now).map_err(|e| format!("key {fingerprint}: {e}"))?;
            return Ok((payload, fingerprint));
        }
        for subkey in &key.public_subkeys {
            if let Ok(signature) = message.verify(&subkey.key) {
                key_valid(key, Some(subkey), signature, now)
                    .map_err(|e| format!("key {fingerprint}: {e}"))?;
                return Ok((payload, fingerprint));
            }
        }
    }
    Err("the signature does not verify with any key of the requirement".to_owned())
}

/// Whether a key that verified a signature may be trusted now, as GnuPG (and so skopeo, through
/// gpgme) judges it: the key is not revoked or expired, the signing subkey (if one signed) is
/// not revoked or expired, and the signature itself has not expired.
fn key_valid(
    key: &pgp::composed::SignedPublicKey,
    subkey: Option<&pgp::composed::SignedPublicSubKey>,
    signature: &pgp::packet::Signature,
    now: i64,
) -> Result<(), String> {
    use pgp::packet::SignatureType;
    use pgp::types::PublicKeyTrait as _;
    let when = |seconds: i64| {
        time::OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| seconds.to_string())
    };
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|sig| sig.verify_key(&key.primary_key).is_ok())
    {
        return Err("the key is revoked".to_owned());
    }
    if let Some(expires) = key.expires_at() {
        if expires.timestamp() <= now {
            return Err(format!("the key expired at {}", when(expires.timestamp())));
        }
    }
    if let Some(subkey) = subkey {
        let bindings = subkey.signatures.iter();
        if bindings
            .clone()
            .any(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation))
        {
            return Err("the signing subkey is revoked".to_owned());
        }
        let created = subkey.key.created_at().timestamp();
        let expiry = bindings
            .filter(|sig| sig.typ() == Some(SignatureType::SubkeyBinding))
            .filter_map(|sig| sig.key_expiration_time())
            .map(|d| created + d.num_seconds())
            .max();
        if let Some(expires) = expiry.filter(|e| *e <= now) {
            return Err(format!("the signing subkey expired at {}", when(expires)));
        }
    }
    if let (Some(created), Some(lifetime)) =
        (signature.created(), signature.signature_expiration_time())
    {
        let expires = created.timestamp() + lifetime.num_seconds();
        if lifetime.num_seconds() > 0 && expires <= now {
            return Err(format!("the signature expired at {}", when(expires)));
        }
    }
    Ok(())
}

/// `sigstoreSigned` with public keys: some cosign-style signature verifying with one of the
/// keys, over a payload naming this manifest and an accepted identity.
fn sigstore_signed(
    requirement: &Value,
    image: &Image,
    found: &[Found],
    policy: &Path,
) -> Result<String, String> {
    use p256::ecdsa::signature::Verifier as _;
    use p256::pkcs8::DecodePublicKey as _;
    if requirement.get("fulcio").is_some() {
        return Err("fulcio certificates are not supported (public keys only)".to_owned());
    }
    let material = key_material(requirement, policy, true)?;
    let mut keys = Vec::new();
    for (source, bytes) in &material {
        let text = String::from_utf8_lossy(bytes);
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(&text)
            .map_err(|e| format!("{source}: not an ECDSA P-256 public key in PEM: {e}"))?;
        let der = p256::pkcs8::EncodePublicKey::to_public_key_der(&key)
            .map(|d| layout::hex(&<sha2::Sha256 as sha2::Digest>::digest(d.as_bytes())))
            .unwrap_or_default();
        keys.push((key, der));
    }
    let signatures: Vec<(&String, &Vec<u8>, &String)> = found
        .iter()
        .filter_map(|f| match f {
            Found::Sigstore {
                source,
                payload,
                signature,
            } => Some((source, payload, signature)),
            Found::Gpg { .. } => None,
        })
        .collect();
    if signatures.is_empty() {
        return Err("a signature was required, but no signature exists".to_owned());
    }
    let mut reasons = Vec::new();
    for (source, payload, signature) in signatures {
        let result = (|| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(signature.trim())
                .map_err(|e| format!("the signature is not base64: {e}"))?;
            let signature = p256::ecdsa::Signature::from_der(&raw)
                .or_else(|_| p256::ecdsa::Signature::from_slice(&raw))
                .map_err(|e| format!("not an ECDSA signature: {e}"))?;
            let Some((_, key_id)) = keys
                .iter()
                .find(|(key, _)| key.verify(payload, &signature).is_ok())
            else {
                return Err(
                    "the signature does not verify with any key of the requirement".to_owned(),
                );
            };
            let identity = check_payload(
                payload,
                "cosign container image signature",
                image,
                requirement,
            )?;
            Ok(format!(
                "{source} signed by P-256 key sha256:{} for {identity}",
                &key_id[..16.min(key_id.len())]
            ))
        })();
        match result {
            Ok(evidence) => return Ok(evidence),
            Err(reason) => reasons.push(format!("{source}: {reason}")),
        }
    }
    Err(reasons.join("; "))
}

/// Checks a simple-signing payload: its type, the manifest digest it names, and its identity
/// against the requirement's `signedIdentity`. Returns the identity.
fn check_payload(
    payload: &[u8],
    kind: &str,
    image: &Image,
    requirement: &Value,
) -> Result<String, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let critical = value
        .get("critical")
        .and_then(Value::as_object)
        .ok_or("the payload has no `critical`")?;
    if let Some(unknown) = critical
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "image" | "identity"))
    {
        return Err(format!(
            "the payload's critical section has an unknown member `{}`",
            layout::shorten(unknown)
        ));
    }
    let found_type = critical.get("type").and_then(Value::as_str).unwrap_or("");
    if found_type != kind {
        return Err(format!(
            "the payload's type is `{}`, not `{kind}`",
            layout::shorten(found_type)
        ));
    }
    let digest = critical
        .get("image")
        .and_then(|i| i.get("docker-manifest-digest"))
        .and_then(Value::as_str)
        .ok_or("the payload names no manifest digest")?;
    let manifest = image
        .manifest_digest
        .as_deref()
        .ok_or("the image has no manifest digest to match")?;
    if digest != manifest {
        return Err(format!(
            "signature for digest {} does not match the manifest {manifest}",
            layout::shorten(digest)
        ));
    }
    let identity = critical
        .get("identity")
        .and_then(|i| i.get("docker-reference"))
        .and_then(Value::as_str)
        .ok_or("the payload names no docker-reference")?;
    let signed = Reference::parse(identity).ok_or_else(|| {
        format!(
            "the signed identity `{}` is not a Docker reference",
            layout::shorten(identity)
        )
    })?;
    match_identity(
        requirement.get("signedIdentity"),
        &signed,
        image.reference.as_deref(),
    )?;
    Ok(signed.text())
}

/// containers/image's signedIdentity rules.
fn match_identity(
    rule: Option<&Value>,
    signed: &Reference,
    image_reference: Option<&str>,
) -> Result<(), String> {
    let kind = rule
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("matchRepoDigestOrExact");
    let image = || -> Result<Reference, String> {
        image_reference.and_then(Reference::parse).ok_or_else(|| {
            format!("signedIdentity {kind} needs the image's Docker reference, which an oci: or archive image does not have (use exactReference or exactRepository, or --param image-reference=)")
        })
    };
    let mismatch = |wanted: &str| {
        Err(format!(
            "Docker reference {} does not match {wanted}",
            signed.text()
        ))
    };
    match kind {
        "matchExact" => {
            let image = image()?;
            if image.tag.is_none() && image.digest.is_none() {
                return Err("matchExact needs a tagged or digested image reference".to_owned());
            }
            if *signed == image {
                Ok(())
            } else {
                mismatch(&image.text())
            }
        }
        "matchRepoDigestOrExact" => {
            let image = image()?;
            repo_digest_or_exact(&image, signed)
        }
        "matchRepository" => {
            let image = image()?;
            if image.repository == signed.repository {
                Ok(())
            } else {
                mismatch(&image.repository)
            }
        }
        "exactReference" => {
            let wanted = rule
                .and_then(|r| r.get("dockerReference"))
                .and_then(Value::as_str)
                .and_then(Reference::parse)
                .ok_or("exactReference needs a valid dockerReference")?;
            if wanted.tag.is_none() && wanted.digest.is_none() {
                return Err("exactReference needs a tagged or digested dockerReference".to_owned());
            }
            if *signed == wanted {
                Ok(())
            } else {
                mismatch(&wanted.text())
            }
        }
        "exactRepository" => {
            let wanted = rule
                .and_then(|r| r.get("dockerRepository"))
                .and_then(Value::as_str)
                .and_then(Reference::parse)
                .ok_or("exactRepository needs a valid dockerRepository")?;
            if signed.repository == wanted.repository {
                Ok(())
            } else {
                mismatch(&wanted.repository)
            }
        }
        "remapIdentity" => {
            let prefix = rule
                .and_then(|r| r.get("prefix"))
                .and_then(Value::as_str)
                .ok_or("remapIdentity needs a prefix")?;
            let signed_prefix = rule
                .and_then(|r| r.get("signedPrefix"))
                .and_then(Value::as_str)
                .ok_or("remapIdentity needs a signedPrefix")?;
            let image = image()?;
            let text = image.text();
            let remapped = match text.strip_prefix(prefix) {
                Some(rest)
                    if rest.is_empty()
                        || rest.starts_with(['/', ':', '@'])
                        || prefix.ends_with('/') =>
                {
                    Reference::parse(&format!("{signed_prefix}{rest}"))
                        .ok_or("remapIdentity makes an invalid reference")?
                }
                _ => image,
            };
            repo_digest_or_exact(&remapped, signed)
        }
        other => Err(format!(
            "unknown signedIdentity type `{}`",
            layout::shorten(other)
        )),
    }
}

fn repo_digest_or_exact(image: &Reference, signed: &Reference) -> Result<(), String> {
    let holds = if image.digest.is_some() {
        image.repository == signed.repository
    } else if image.tag.is_some() {
        image == signed
    } else {
        return Err("matchRepoDigestOrExact needs a tagged or digested image reference".to_owned());
    };
    if holds {
        Ok(())
    } else {
        Err(format!(
            "Docker reference {} does not match {}",
            signed.text(),
            image.text()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_as_docker_does() {
        let r = Reference::parse("busybox:1.0").unwrap();
        assert_eq!(r.text(), "docker.io/library/busybox:1.0");
        let r = Reference::parse("registry.example/hcc/busybox:1.0").unwrap();
        assert_eq!(r.repository, "registry.example/hcc/busybox");
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.repository, "localhost:5000/app");
        assert_eq!(r.tag, None);
        assert!(Reference::parse("").is_none());
        assert!(Reference::parse("a b").is_none());
    }

    #[test]
    fn identities_follow_containers_policy() {
        let signed = Reference::parse("registry.example/hcc/busybox:1.0").unwrap();
        let rule = |v: Value| Some(v);
        let exact = serde_json::json!({"type": "exactReference", "dockerReference": "registry.example/hcc/busybox:1.0"});
        assert!(match_identity(rule(exact).as_ref(), &signed, None).is_ok());
        let other = serde_json::json!({"type": "exactReference", "dockerReference": "registry.example/other:1.0"});
        let err = match_identity(rule(other).as_ref(), &signed, None).unwrap_err();
        assert!(
            err.contains("does not match registry.example/other:1.0"),
            "{err}"
        );
        let repo = serde_json::json!({"type": "exactRepository", "dockerRepository": "registry.example/hcc/busybox"});
        assert!(match_identity(rule(repo).as_ref(), &signed, None).is_ok());
        assert!(match_identity(None, &signed, Some("registry.example/hcc/busybox:1.0")).is_ok());
        assert!(match_identity(None, &signed, Some("registry.example/hcc/busybox:2.0")).is_err());
        assert!(match_identity(None, &signed, None)
            .unwrap_err()
            .contains("needs the image's Docker reference"));
        let repository = serde_json::json!({"type": "matchRepository"});
        assert!(match_identity(
            rule(repository).as_ref(),
            &signed,
            Some("registry.example/hcc/busybox:9")
        )
        .is_ok());
        let remap = serde_json::json!({"type": "remapIdentity", "prefix": "mirror.example/hcc", "signedPrefix": "registry.example/hcc"});
        assert!(match_identity(
            rule(remap).as_ref(),
            &signed,
            Some("mirror.example/hcc/busybox:1.0")
        )
        .is_ok());
        let exact_match = serde_json::json!({"type": "matchExact"});
        assert!(match_identity(
            rule(exact_match).as_ref(),
            &signed,
            Some("registry.example/hcc/busybox:1.0")
        )
        .is_ok());
    }
}
