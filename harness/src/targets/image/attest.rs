//! Attestations: in-toto statements in DSSE envelopes attached to the image cosign-style (a
//! manifest tagged `sha256-<hex>.att`) or as referrers (a manifest whose `subject` is the
//! image's manifest), each layer of type `application/vnd.dsse.envelope.v1+json` one envelope.
//! An attestation counts when its envelope verifies with the attestation key, its statement's
//! subject is the image's manifest digest, and it is SLSA provenance (v0.2 or v1): its builder id
//! is the fact.

use std::path::Path;

use serde_json::Value;

use super::layout::{self, Image};
use crate::dsse::{Envelope, VerifyingKey};
use crate::facts::FactValue;

const DSSE_LAYER: &str = "application/vnd.dsse.envelope.v1+json";
const IN_TOTO: &str = "application/vnd.in-toto+json";

/// The builder of the image's verified SLSA provenance: `(evidence, builder id)`, the value
/// `rejected: REASON` when attestations exist and none holds, absent when there is none.
pub(super) fn provenance(image: &Image, key: Option<&Path>) -> Result<(String, FactValue), String> {
    let Some(key_path) = key else {
        return Err(
            "no attestation key given (--attestation-key FILE, or the `attestation-key` parameter)"
                .to_owned(),
        );
    };
    let key = VerifyingKey::read(key_path).map_err(|e| e.to_string())?;
    let key_id = key.key_id();
    let Some(digest) = &image.manifest_digest else {
        return Ok((
            "a docker archive has no attestations".to_owned(),
            FactValue::Absent,
        ));
    };
    let hex = digest.trim_start_matches("sha256:");
    let tag = format!("sha256-{hex}.att");
    let mut reasons = Vec::new();
    let mut sources = Vec::new();
    let mut seen = 0;
    for (name, descriptor) in &image.index_entries {
        let Some(manifest) = image.read_json(descriptor) else {
            continue;
        };
        let referrer = manifest.pointer("/subject/digest").and_then(Value::as_str) == Some(digest);
        if name.as_deref() != Some(tag.as_str()) && !referrer {
            continue;
        }
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for layer in layers {
            if layer.get("mediaType").and_then(Value::as_str) != Some(DSSE_LAYER) {
                continue;
            }
            seen += 1;
            let blob = layer
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let source = format!(
                "attestation {blob} ({})",
                if referrer { "referrer" } else { tag.as_str() }
            );
            let result = (|| {
                let bytes = image
                    .read_blob(&layer)
                    .ok_or("the blob is missing or does not match its digest")?;
                let envelope = Envelope::from_json(&String::from_utf8_lossy(&bytes))
                    .map_err(|e| e.to_string())?;
                let payload = envelope.verify(IN_TOTO, &key).map_err(|e| e.to_string())?;
                let statement: Value = serde_json::from_slice(&payload)
                    .map_err(|e| format!("the statement is not JSON: {e}"))?;
                let kind = statement.get("_type").and_then(Value::as_str).unwrap_or("");
                if !kind.starts_with("https://in-toto.io/Statement/") {
                    return Err(format!(
                        "`{}` is not an in-toto statement",
                        layout::shorten(kind)
                    ));
                }
                let subjects = statement
                    .get("subject")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !subjects
                    .iter()
                    .any(|s| s.pointer("/digest/sha256").and_then(Value::as_str) == Some(hex))
                {
                    return Err(format!(
                        "no subject of the statement is the image's manifest {digest}"
                    ));
                }
                let predicate = statement
                    .get("predicateType")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let builder = match predicate {
                    "https://slsa.dev/provenance/v0.2" => {
                        statement.pointer("/predicate/builder/id")
                    }
                    "https://slsa.dev/provenance/v1" => {
                        statement.pointer("/predicate/runDetails/builder/id")
                    }
                    other => {
                        return Err(format!(
                            "predicate `{}` is not SLSA provenance",
                            layout::shorten(other)
                        ))
                    }
                }
                .and_then(Value::as_str)
                .ok_or("the provenance names no builder id")?;
                Ok((predicate.to_owned(), builder.to_owned()))
            })();
            match result {
                Ok((predicate, builder)) => {
                    return Ok((
                        format!(
                            "{source}, {predicate}, signed by key sha256:{}",
                            &key_id[..16.min(key_id.len())]
                        ),
                        FactValue::Text(builder),
                    ))
                }
                Err(reason) => {
                    reasons.push(reason);
                    sources.push(source);
                }
            }
        }
    }
    if seen == 0 {
        return Ok((format!("cosign tag {tag} and referrers"), FactValue::Absent));
    }
    Ok((
        format!("{seen} attestations: {}", sources.join(", ")),
        FactValue::Text(format!("rejected: {}", reasons.join("; "))),
    ))
}
