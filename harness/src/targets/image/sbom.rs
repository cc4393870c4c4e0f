//! SBOMs of an image, validated as documents that describe it. An SBOM counts only when it is
//! a well-formed SPDX 2.2/2.3 (JSON or tag-value) or CycloneDX 1.4-1.6 (JSON) document that
//! lists at least one package or component, and, when it is attached to the image (a referrer),
//! when its subject is this image's manifest. Candidates are looked for where tools put them: a
//! cosign `sha256-<hex>.sbom` tag and OCI referrers in the layout, and SPDX or CycloneDX files
//! in the image (`/`, `/sbom`, `/usr/share/sbom`, `/root/buildinfo/content_manifests`).
//!
//! The rules are the ones the reference validators apply (SPDX's `spdx-tools`, CycloneDX's JSON
//! schemas as `cyclonedx-python-lib` checks them), as far as a certification needs them:
//!
//! - SPDX: `spdxVersion` `SPDX-2.2` or `SPDX-2.3`, `SPDXID` `SPDXRef-DOCUMENT`, `dataLicense`
//!   `CC0-1.0`, `name`, `documentNamespace` (an absolute URI without `#`), `creationInfo` with
//!   `created` (`YYYY-MM-DDThh:mm:ssZ`) and `creators` (`Person:`, `Organization:`, `Tool:`),
//!   `packages` each with a valid `SPDXID`, `name` and `downloadLocation` (in 2.2 also
//!   `licenseConcluded`, `licenseDeclared`, `copyrightText`), unique SPDX ids, relationships
//!   between elements the document has, and a `DESCRIBES` relationship unless the document holds
//!   a single package;
//! - CycloneDX: `bomFormat` `CycloneDX`, `specVersion` 1.4, 1.5 or 1.6, no top-level key the
//!   version's schema does not define, `version` an integer (at least 1 from 1.5),
//!   `serialNumber` a `urn:uuid:`, every component an object with a `type` of the version's
//!   list and a `name`.

use std::path::Path;

use serde_json::Value;

use super::descriptor::{kind, Descriptor};
use super::layout::{shorten, Image};
use super::{json, read_tree_text_large};
use crate::facts::FactValue;
use crate::targets::host::resolve_in_tree;

/// The folders of an image SBOM files are looked for in.
const SBOM_DIRS: &[&str] = &[
    "/",
    "/sbom",
    "/usr/share/sbom",
    "/root/buildinfo/content_manifests",
];
/// The most candidates judged; more are not read.
const MAX_CANDIDATES: usize = 64;

/// The image's SBOM: `(evidence, value)`, the value saying which valid document describes the
/// image; absent when none does, the evidence then naming every candidate and why it was
/// refused.
pub(super) fn find(image: &Image, root: &Path) -> (String, FactValue) {
    let mut refused = Vec::new();
    let mut judge = |place: String, bytes: Result<Vec<u8>, String>| -> Option<String> {
        match bytes.and_then(|b| validate(&b)) {
            Ok(summary) => Some(format!("{summary}: {place}")),
            Err(reason) => {
                refused.push(format!("{place}: {reason}"));
                None
            }
        }
    };
    for (place, bytes) in attached(image) {
        if let Some(found) = judge(place, bytes) {
            return (found.clone(), FactValue::Text(found));
        }
    }
    for path in in_image(root) {
        let bytes = read_tree_text_large(root, &path)
            .and_then(|text| text.ok_or_else(|| "cannot be read".to_owned()))
            .map(String::into_bytes);
        if let Some(found) = judge(path, bytes) {
            return (found.clone(), FactValue::Text(found));
        }
    }
    let source = if refused.is_empty() {
        "cosign .sbom tags, referrers, SBOM files in the image: none found".to_owned()
    } else {
        format!("no valid SBOM: {}", refused.join("; "))
    };
    (source, FactValue::Absent)
}

/// Whether a media type names an SBOM format.
fn is_sbom_type(media_type: &str) -> bool {
    let lower = media_type.to_ascii_lowercase();
    lower.contains("spdx") || lower.contains("cyclonedx")
}

/// SBOM documents attached to the image in its layout: the layers of a cosign `.sbom` tag, and
/// of referrers whose artifact type (or config media type) is an SBOM's. A referrer whose
/// subject is not this image's manifest is refused with both digests named.
fn attached(image: &Image) -> Vec<(String, Result<Vec<u8>, String>)> {
    let mut found = Vec::new();
    let Some(digest) = &image.manifest_digest else {
        return found;
    };
    let tag = format!("{}.sbom", digest.replacen(':', "-", 1));
    for (name, entry) in &image.index_entries {
        let cosign = name.as_deref() == Some(tag.as_str());
        let entry_type = entry
            .get("artifactType")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !cosign && !is_sbom_type(entry_type) && entry.get("mediaType").is_none() {
            continue;
        }
        let entry_digest = entry
            .get("digest")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        if Some(entry_digest.as_str()) == image.manifest_digest.as_deref() {
            continue;
        }
        let Some(manifest) = image.read_json(entry) else {
            if cosign || is_sbom_type(entry_type) {
                found.push((
                    format!("SBOM manifest {entry_digest}"),
                    Err("the manifest is missing, damaged or not JSON".to_owned()),
                ));
            }
            continue;
        };
        let artifact = manifest
            .get("artifactType")
            .and_then(Value::as_str)
            .or_else(|| {
                manifest
                    .pointer("/config/mediaType")
                    .and_then(Value::as_str)
            })
            .unwrap_or("");
        let subject = manifest.pointer("/subject/digest").and_then(Value::as_str);
        let referrer = subject.is_some() && (is_sbom_type(artifact) || is_sbom_type(entry_type));
        if !cosign && !referrer {
            continue;
        }
        let place = if cosign {
            format!("cosign tag {tag}")
        } else {
            format!("referrer {entry_digest}")
        };
        if let Some(subject) = subject {
            if subject != digest {
                found.push((
                    place,
                    Err(format!(
                        "its subject is {}, not this image's manifest {digest}",
                        shorten(subject)
                    )),
                ));
                continue;
            }
        }
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if layers.is_empty() {
            found.push((
                place.clone(),
                Err("the manifest holds no document".to_owned()),
            ));
        }
        for layer in layers {
            let layer_digest = layer
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let bytes = match Descriptor::parse(&layer) {
                Ok(_) => image
                    .read_blob(&layer)
                    .ok_or_else(|| "the blob is missing or does not match its digest".to_owned()),
                Err(e) => Err(format!("its descriptor is invalid: {e}")),
            };
            found.push((format!("{place} blob {layer_digest}"), bytes));
        }
    }
    found
}

/// The paths of SPDX and CycloneDX files in the image, by name, sorted.
fn in_image(root: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    for dir in SBOM_DIRS {
        let Ok(Some(resolved)) = resolve_in_tree(root, dir) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&resolved) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .take(10_000)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                let lower = n.to_ascii_lowercase();
                lower.ends_with(".spdx.json")
                    || lower.ends_with(".spdx")
                    || lower.ends_with(".cdx.json")
                    || lower.ends_with(".cyclonedx.json")
                    || lower == "bom.json"
                    || lower == "sbom.json"
            })
            .collect();
        names.sort();
        for name in names {
            paths.push(format!("{}/{name}", dir.trim_end_matches('/')));
        }
    }
    paths.truncate(MAX_CANDIDATES);
    paths
}

/// Validates an SBOM document; `Ok` is a summary (`SPDX-2.3 JSON, 12 packages`).
pub(super) fn validate(bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Err("the file is empty".to_owned());
    }
    if trimmed.starts_with('{') {
        let document =
            json::parse(trimmed.as_bytes()).map_err(|e| format!("not valid JSON: {e}"))?;
        if document.get("spdxVersion").is_some() {
            return spdx(&document, "JSON");
        }
        if document.get("bomFormat").is_some() {
            return cyclonedx(&document);
        }
        return Err(
            "JSON that is neither an SPDX document (no spdxVersion) nor a CycloneDX BOM (no bomFormat)"
                .to_owned(),
        );
    }
    if trimmed.starts_with("SPDXVersion:") || trimmed.starts_with('#') {
        return spdx(&tag_value(trimmed)?, "tag-value");
    }
    Err("not an SPDX or CycloneDX document".to_owned())
}

fn non_empty_str<'a>(value: &'a Value, key: &str) -> Result<&'a str, String> {
    match value.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(format!("{key} is empty")),
        Some(other) => Err(format!("{key} is {}, not a string", kind(other))),
        None => Err(format!("it has no {key}")),
    }
}

fn valid_spdx_id(id: &str) -> bool {
    id.strip_prefix("SPDXRef-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    })
}

/// An absolute URI with a scheme and no fragment, as SPDX's documentNamespace must be.
fn valid_namespace(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !uri.contains('#')
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `YYYY-MM-DDThh:mm:ssZ`.
fn valid_created(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// Validates an SPDX 2.2/2.3 document, read from JSON or converted from tag-value.
fn spdx(document: &Value, form: &str) -> Result<String, String> {
    let fail = |reason: String| Err(format!("not a valid SPDX document: {reason}"));
    let version = match document.get("spdxVersion").and_then(Value::as_str) {
        Some(v @ ("SPDX-2.2" | "SPDX-2.3")) => v,
        Some(other) => {
            return fail(format!(
                "spdxVersion `{}` is not SPDX-2.2 or SPDX-2.3",
                shorten(other)
            ))
        }
        None => return fail("spdxVersion is not a string".to_owned()),
    };
    let mut problems = Vec::new();
    match document.get("SPDXID").and_then(Value::as_str) {
        Some("SPDXRef-DOCUMENT") => {}
        other => problems.push(format!("SPDXID is {other:?}, not SPDXRef-DOCUMENT")),
    }
    match document.get("dataLicense").and_then(Value::as_str) {
        Some("CC0-1.0") => {}
        other => problems.push(format!("dataLicense is {other:?}, not CC0-1.0")),
    }
    if let Err(e) = non_empty_str(document, "name") {
        problems.push(e);
    }
    match non_empty_str(document, "documentNamespace") {
        Ok(uri) if valid_namespace(uri) => {}
        Ok(uri) => problems.push(format!(
            "documentNamespace `{}` is not an absolute URI without a fragment",
            shorten(uri)
        )),
        Err(e) => problems.push(e),
    }
    match document.get("creationInfo") {
        Some(info) if info.is_object() => {
            match non_empty_str(info, "created") {
                Ok(created) if valid_created(created) => {}
                Ok(created) => problems.push(format!(
                    "creationInfo.created `{}` is not YYYY-MM-DDThh:mm:ssZ",
                    shorten(created)
                )),
                Err(e) => problems.push(format!("creationInfo: {e}")),
            }
            if let Some(version) = info.get("licenseListVersion") {
                let valid = version.as_str().is_some_and(|v| {
                    v.split_once('.').is_some_and(|(major, minor)| {
                        [major, minor]
                            .iter()
                            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    })
                });
                if !valid {
                    problems.push(format!(
                        "creationInfo.licenseListVersion {version} is not MAJOR.MINOR"
                    ));
                }
            }
            match info.get("creators").and_then(Value::as_array) {
                Some(creators) if !creators.is_empty() => {
                    for creator in creators {
                        let valid = creator.as_str().is_some_and(|c| {
                            ["Person:", "Organization:", "Tool:"]
                                .iter()
                                .any(|p| c.strip_prefix(p).is_some_and(|r| !r.trim().is_empty()))
                        });
                        if !valid {
                            problems.push(format!(
                                "creator {} is not Person:, Organization: or Tool: NAME",
                                shorten(&creator.to_string())
                            ));
                        }
                    }
                }
                _ => problems.push("creationInfo.creators is not a non-empty list".to_owned()),
            }
        }
        Some(other) => problems.push(format!("creationInfo is {}", kind(other))),
        None => problems.push("it has no creationInfo".to_owned()),
    }
    let mut ids: Vec<String> = vec!["SPDXRef-DOCUMENT".to_owned()];
    let packages = match document.get("packages") {
        Some(Value::Array(packages)) if !packages.is_empty() => packages.as_slice(),
        Some(Value::Array(_)) | None => {
            problems.push("it lists no package".to_owned());
            &[]
        }
        Some(other) => {
            problems.push(format!("packages is {}, not a list", kind(other)));
            &[]
        }
    };
    for (index, package) in packages.iter().enumerate() {
        let mut found = Vec::new();
        match package.get("SPDXID").and_then(Value::as_str) {
            Some(id) if valid_spdx_id(id) => ids.push(id.to_owned()),
            Some(id) => found.push(format!(
                "SPDXID `{}` is not SPDXRef-[A-Za-z0-9.-]+",
                shorten(id)
            )),
            None => found.push("it has no SPDXID".to_owned()),
        }
        for key in ["name", "downloadLocation"] {
            if let Err(e) = non_empty_str(package, key) {
                found.push(e);
            }
        }
        if version == "SPDX-2.2" {
            for key in ["licenseConcluded", "licenseDeclared", "copyrightText"] {
                if package.get(key).is_none() {
                    found.push(format!("{key} is mandatory in SPDX-2.2"));
                }
            }
            for key in [
                "primaryPackagePurpose",
                "builtDate",
                "releaseDate",
                "validUntilDate",
            ] {
                if package.get(key).is_some() {
                    found.push(format!("{key} is not supported in SPDX-2.2"));
                }
            }
        }
        if let Some(analyzed) = package.get("filesAnalyzed") {
            if !analyzed.is_boolean() {
                found.push("filesAnalyzed is not a boolean".to_owned());
            }
        }
        if !found.is_empty() {
            problems.push(format!("packages[{index}]: {}", found.join(", ")));
        }
    }
    for (key, name_key) in [("files", "fileName"), ("snippets", "snippetFromFile")] {
        match document.get(key) {
            None => {}
            Some(Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    match item.get("SPDXID").and_then(Value::as_str) {
                        Some(id) if valid_spdx_id(id) => ids.push(id.to_owned()),
                        _ => problems.push(format!("{key}[{index}] has no valid SPDXID")),
                    }
                    if item.get(name_key).is_none() {
                        problems.push(format!("{key}[{index}] has no {name_key}"));
                    }
                }
            }
            Some(other) => problems.push(format!("{key} is {}, not a list", kind(other))),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let duplicates: Vec<&String> = ids.iter().filter(|id| !seen.insert(*id)).collect();
    if !duplicates.is_empty() {
        problems.push(format!("SPDX ids appear twice: {duplicates:?}"));
    }
    let known = |id: &str| ids.iter().any(|k| k == id) || id.starts_with("DocumentRef-");
    let mut describes = document
        .get("documentDescribes")
        .and_then(Value::as_array)
        .is_some_and(|list| !list.is_empty());
    if let Some(list) = document.get("documentDescribes").and_then(Value::as_array) {
        for id in list {
            if !id.as_str().is_some_and(known) {
                problems.push(format!(
                    "documentDescribes names {id}, which the document does not hold"
                ));
            }
        }
    }
    match document.get("relationships") {
        None => {}
        Some(Value::Array(relationships)) => {
            for (index, relationship) in relationships.iter().enumerate() {
                let element = relationship.get("spdxElementId").and_then(Value::as_str);
                let related = relationship
                    .get("relatedSpdxElement")
                    .and_then(Value::as_str);
                let kind = relationship.get("relationshipType").and_then(Value::as_str);
                let (Some(element), Some(related), Some(kind)) = (element, related, kind) else {
                    problems.push(format!(
                        "relationships[{index}] needs spdxElementId, relatedSpdxElement and relationshipType"
                    ));
                    continue;
                };
                if !known(element) {
                    problems.push(format!(
                        "relationships[{index}]: `{}` is not an element of the document",
                        shorten(element)
                    ));
                }
                if !known(related) && related != "NONE" && related != "NOASSERTION" {
                    problems.push(format!(
                        "relationships[{index}]: `{}` is not an element of the document",
                        shorten(related)
                    ));
                }
                describes |= (kind == "DESCRIBES" && element == "SPDXRef-DOCUMENT")
                    || (kind == "DESCRIBED_BY" && related == "SPDXRef-DOCUMENT");
            }
        }
        Some(other) => problems.push(format!("relationships is {}, not a list", kind(other))),
    }
    let single = packages.len() == 1
        && document
            .get("files")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        && document
            .get("snippets")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
    if !single && !describes {
        problems.push(
            "no relationship says what it describes (SPDXRef-DOCUMENT DESCRIBES ...)".to_owned(),
        );
    }
    if problems.is_empty() {
        Ok(format!(
            "{version} {form} document, {} packages",
            packages.len()
        ))
    } else {
        fail(problems.join(", "))
    }
}

/// Reads an SPDX tag-value document into the JSON form [`spdx`] checks: the document's tags,
/// then one package per `PackageName`, file per `FileName`, and `Relationship` lines.
fn tag_value(text: &str) -> Result<Value, String> {
    let mut document = serde_json::Map::new();
    let mut creators = Vec::new();
    let mut created = None;
    let mut license_list = None;
    let mut packages: Vec<serde_json::Map<String, Value>> = Vec::new();
    let mut files: Vec<serde_json::Map<String, Value>> = Vec::new();
    let mut relationships = Vec::new();
    // Where SPDXID and the element's tags go: the document, the last package or the last file.
    let mut current = 0u8;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((tag, value)) = line.split_once(':') else {
            return Err(format!(
                "not a valid SPDX tag-value document: `{}` is not TAG: VALUE",
                shorten(line)
            ));
        };
        let mut value = value.trim().to_owned();
        if let Some(rest) = value.strip_prefix("<text>") {
            let mut collected = rest.to_owned();
            while !collected.contains("</text>") {
                let Some(next) = lines.next() else {
                    return Err(format!(
                        "not a valid SPDX tag-value document: {tag}'s <text> is never closed"
                    ));
                };
                collected.push('\n');
                collected.push_str(next);
            }
            value = collected.split("</text>").next().unwrap_or("").to_owned();
        }
        let value = Value::String(value);
        let slot = match current {
            1 => packages.last_mut(),
            2 => files.last_mut(),
            _ => None,
        };
        let element_key = match tag.trim() {
            "SPDXID" => Some("SPDXID"),
            "PackageDownloadLocation" => Some("downloadLocation"),
            "PackageLicenseConcluded" => Some("licenseConcluded"),
            "PackageLicenseDeclared" => Some("licenseDeclared"),
            "PackageCopyrightText" => Some("copyrightText"),
            _ => None,
        };
        if let Some(key) = element_key {
            match slot {
                Some(element) => element.insert(key.to_owned(), value),
                None => document.insert(key.to_owned(), value),
            };
            continue;
        }
        match tag.trim() {
            "SPDXVersion" => drop(document.insert("spdxVersion".into(), value)),
            "DataLicense" => drop(document.insert("dataLicense".into(), value)),
            "DocumentName" => drop(document.insert("name".into(), value)),
            "DocumentNamespace" => drop(document.insert("documentNamespace".into(), value)),
            "Creator" => creators.push(value),
            "Created" => created = Some(value),
            "LicenseListVersion" => license_list = Some(value),
            "PackageName" => {
                current = 1;
                packages.push(serde_json::Map::from_iter([("name".to_owned(), value)]));
            }
            "FileName" => {
                current = 2;
                files.push(serde_json::Map::from_iter([("fileName".to_owned(), value)]));
            }
            "Relationship" => {
                let text = value.as_str().unwrap_or("").to_owned();
                let parts: Vec<&str> = text.split_whitespace().collect();
                let [element, kind, related] = parts.as_slice() else {
                    return Err(format!(
                        "not a valid SPDX tag-value document: Relationship `{}` is not ELEMENT TYPE ELEMENT",
                        shorten(&text)
                    ));
                };
                relationships.push(serde_json::json!({
                    "spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related
                }));
            }
            _ => {}
        }
    }
    let mut info = serde_json::Map::new();
    if !creators.is_empty() {
        info.insert("creators".into(), Value::Array(creators));
    }
    if let Some(created) = created {
        info.insert("created".into(), created);
    }
    if let Some(version) = license_list {
        info.insert("licenseListVersion".into(), version);
    }
    document.insert("creationInfo".into(), Value::Object(info));
    document.insert(
        "packages".into(),
        Value::Array(packages.into_iter().map(Value::Object).collect()),
    );
    if !files.is_empty() {
        document.insert(
            "files".into(),
            Value::Array(files.into_iter().map(Value::Object).collect()),
        );
    }
    document.insert("relationships".into(), Value::Array(relationships));
    Ok(Value::Object(document))
}

/// The top-level keys each CycloneDX version's JSON schema defines (it allows no other).
fn cyclonedx_keys(version: &str) -> &'static [&'static str] {
    const V14: &[&str] = &[
        "$schema",
        "bomFormat",
        "specVersion",
        "serialNumber",
        "version",
        "metadata",
        "components",
        "services",
        "externalReferences",
        "dependencies",
        "compositions",
        "vulnerabilities",
        "signature",
    ];
    const V15: &[&str] = &[
        "$schema",
        "bomFormat",
        "specVersion",
        "serialNumber",
        "version",
        "metadata",
        "components",
        "services",
        "externalReferences",
        "dependencies",
        "compositions",
        "vulnerabilities",
        "signature",
        "annotations",
        "formulation",
        "properties",
    ];
    const V16: &[&str] = &[
        "$schema",
        "bomFormat",
        "specVersion",
        "serialNumber",
        "version",
        "metadata",
        "components",
        "services",
        "externalReferences",
        "dependencies",
        "compositions",
        "vulnerabilities",
        "signature",
        "annotations",
        "formulation",
        "properties",
        "declarations",
        "definitions",
    ];
    match version {
        "1.4" => V14,
        "1.5" => V15,
        _ => V16,
    }
}

/// The keys each CycloneDX version's schema allows in `metadata` and in a component.
fn cyclonedx_object_keys(version: &str, object: &str) -> &'static [&'static str] {
    const METADATA_14: &[&str] = &[
        "authors",
        "component",
        "licenses",
        "manufacture",
        "properties",
        "supplier",
        "timestamp",
        "tools",
    ];
    const METADATA_15: &[&str] = &[
        "authors",
        "component",
        "licenses",
        "lifecycles",
        "manufacture",
        "properties",
        "supplier",
        "timestamp",
        "tools",
    ];
    const METADATA_16: &[&str] = &[
        "authors",
        "component",
        "licenses",
        "lifecycles",
        "manufacture",
        "manufacturer",
        "properties",
        "supplier",
        "timestamp",
        "tools",
    ];
    const COMPONENT_14: &[&str] = &[
        "author",
        "bom-ref",
        "components",
        "copyright",
        "cpe",
        "description",
        "evidence",
        "externalReferences",
        "group",
        "hashes",
        "licenses",
        "mime-type",
        "modified",
        "name",
        "pedigree",
        "properties",
        "publisher",
        "purl",
        "releaseNotes",
        "scope",
        "signature",
        "supplier",
        "swid",
        "type",
        "version",
    ];
    const COMPONENT_15: &[&str] = &[
        "author",
        "bom-ref",
        "components",
        "copyright",
        "cpe",
        "data",
        "description",
        "evidence",
        "externalReferences",
        "group",
        "hashes",
        "licenses",
        "mime-type",
        "modelCard",
        "modified",
        "name",
        "pedigree",
        "properties",
        "publisher",
        "purl",
        "releaseNotes",
        "scope",
        "signature",
        "supplier",
        "swid",
        "type",
        "version",
    ];
    const COMPONENT_16: &[&str] = &[
        "author",
        "authors",
        "bom-ref",
        "components",
        "copyright",
        "cpe",
        "cryptoProperties",
        "data",
        "description",
        "evidence",
        "externalReferences",
        "group",
        "hashes",
        "licenses",
        "manufacturer",
        "mime-type",
        "modelCard",
        "modified",
        "name",
        "omniborId",
        "pedigree",
        "properties",
        "publisher",
        "purl",
        "releaseNotes",
        "scope",
        "signature",
        "supplier",
        "swhid",
        "swid",
        "tags",
        "type",
        "version",
    ];
    match (object, version) {
        ("metadata", "1.4") => METADATA_14,
        ("metadata", "1.5") => METADATA_15,
        ("metadata", _) => METADATA_16,
        (_, "1.4") => COMPONENT_14,
        (_, "1.5") => COMPONENT_15,
        _ => COMPONENT_16,
    }
}

/// The first key of `object` the version's schema does not allow there.
fn unknown_key<'a>(
    object: &'a serde_json::Map<String, Value>,
    allowed: &[&str],
) -> Option<&'a str> {
    object
        .keys()
        .map(String::as_str)
        .find(|k| !allowed.contains(k))
}

/// The component types each CycloneDX version allows.
fn component_types(version: &str) -> &'static [&'static str] {
    const V14: &[&str] = &[
        "application",
        "framework",
        "library",
        "container",
        "operating-system",
        "device",
        "firmware",
        "file",
    ];
    const V15: &[&str] = &[
        "application",
        "framework",
        "library",
        "container",
        "platform",
        "operating-system",
        "device",
        "device-driver",
        "firmware",
        "file",
        "machine-learning-model",
        "data",
    ];
    const V16: &[&str] = &[
        "application",
        "framework",
        "library",
        "container",
        "platform",
        "operating-system",
        "device",
        "device-driver",
        "firmware",
        "file",
        "machine-learning-model",
        "data",
        "cryptographic-asset",
    ];
    match version {
        "1.4" => V14,
        "1.5" => V15,
        _ => V16,
    }
}

fn check_component(component: &Value, version: &str) -> Result<(), String> {
    let Some(object) = component.as_object() else {
        return Err(format!("is {}, not an object", kind(component)));
    };
    if let Some(key) = unknown_key(object, cyclonedx_object_keys(version, "component")) {
        return Err(format!(
            "has `{}`, which is not a CycloneDX {version} component field",
            shorten(key)
        ));
    }
    match object.get("type").and_then(Value::as_str) {
        Some(t) if component_types(version).contains(&t) => {}
        Some(t) => {
            return Err(format!(
                "type `{}` is not a CycloneDX {version} component type",
                shorten(t)
            ))
        }
        None => return Err("has no type".to_owned()),
    }
    match object.get("name") {
        Some(Value::String(_)) => {}
        _ => return Err("has no name".to_owned()),
    }
    if let Some(nested) = object.get("components") {
        let list = nested.as_array().ok_or("components is not a list")?;
        for child in list {
            check_component(child, version)?;
        }
    }
    Ok(())
}

/// Validates a CycloneDX 1.4-1.6 JSON BOM.
fn cyclonedx(bom: &Value) -> Result<String, String> {
    let fail = |reason: String| Err(format!("not a valid CycloneDX BOM: {reason}"));
    match bom.get("bomFormat").and_then(Value::as_str) {
        Some("CycloneDX") => {}
        other => return fail(format!("bomFormat is {other:?}, not CycloneDX")),
    }
    let version = match bom.get("specVersion").and_then(Value::as_str) {
        Some(v @ ("1.4" | "1.5" | "1.6")) => v,
        Some(other) => {
            return fail(format!(
                "specVersion `{}` is not 1.4, 1.5 or 1.6",
                shorten(other)
            ))
        }
        None => return fail("specVersion is not a string".to_owned()),
    };
    let mut problems = Vec::new();
    if let Some(object) = bom.as_object() {
        for key in object.keys() {
            if !cyclonedx_keys(version).contains(&key.as_str()) {
                problems.push(format!(
                    "`{}` is not a CycloneDX {version} field",
                    shorten(key)
                ));
            }
        }
    }
    if let Some(number) = bom.get("version") {
        match number.as_i64() {
            Some(n) if n >= 1 || (version == "1.4" && number.is_i64()) => {}
            _ => problems.push(format!("version {number} is not an integer of at least 1")),
        }
    }
    if let Some(serial) = bom.get("serialNumber") {
        let valid = serial.as_str().is_some_and(|s| {
            s.strip_prefix("urn:uuid:").is_some_and(|uuid| {
                uuid.len() == 36
                    && uuid.bytes().enumerate().all(|(i, b)| match i {
                        8 | 13 | 18 | 23 => b == b'-',
                        _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
                    })
            })
        });
        if !valid {
            problems.push(format!(
                "serialNumber {serial} is not urn:uuid:<lowercase uuid>"
            ));
        }
    }
    match bom.get("metadata") {
        None => {}
        Some(Value::Object(metadata)) => {
            if let Some(key) = unknown_key(metadata, cyclonedx_object_keys(version, "metadata")) {
                problems.push(format!(
                    "metadata has `{}`, which is not a CycloneDX {version} metadata field",
                    shorten(key)
                ));
            }
            if let Some(component) = metadata.get("component") {
                if let Err(e) = check_component(component, version) {
                    problems.push(format!("metadata.component {e}"));
                }
            }
        }
        Some(other) => problems.push(format!("metadata is {}", kind(other))),
    }
    let components = match bom.get("components") {
        None => 0,
        Some(Value::Array(list)) => {
            for (index, component) in list.iter().enumerate() {
                if let Err(e) = check_component(component, version) {
                    problems.push(format!("components[{index}] {e}"));
                }
            }
            list.len()
        }
        Some(other) => {
            problems.push(format!("components is {}, not a list", kind(other)));
            0
        }
    };
    if components == 0 {
        problems.push("it lists no component".to_owned());
    }
    if problems.is_empty() {
        Ok(format!(
            "CycloneDX {version} JSON BOM, {components} components"
        ))
    } else {
        fail(problems.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spdx_doc() -> Value {
        json!({
            "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": "img", "documentNamespace": "https://example.invalid/img-1",
            "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: test"]},
            "packages": [{"SPDXID": "SPDXRef-busybox", "name": "busybox", "downloadLocation": "NOASSERTION"}]
        })
    }

    #[test]
    fn spdx_documents_need_their_required_fields() {
        assert!(validate(spdx_doc().to_string().as_bytes()).is_ok());
        for (key, value, reason) in [
            (
                "spdxVersion",
                json!("SPDX-2.1"),
                "is not SPDX-2.2 or SPDX-2.3",
            ),
            ("SPDXID", json!("SPDXRef-X"), "not SPDXRef-DOCUMENT"),
            ("dataLicense", json!("MIT"), "not CC0-1.0"),
            (
                "documentNamespace",
                json!("no-scheme"),
                "not an absolute URI",
            ),
            (
                "documentNamespace",
                json!("https://x.invalid/a#b"),
                "not an absolute URI",
            ),
            ("packages", json!([]), "it lists no package"),
            (
                "packages",
                json!([{"SPDXID": "SPDXRef-a", "name": "a"}]),
                "it has no downloadLocation",
            ),
            (
                "creationInfo",
                json!({"created": "2024-01-01", "creators": ["Tool: t"]}),
                "not YYYY-MM-DDThh:mm:ssZ",
            ),
            (
                "creationInfo",
                json!({"created": "2024-01-01T00:00:00Z", "creators": []}),
                "creators",
            ),
        ] {
            let mut doc = spdx_doc();
            doc[key] = value;
            let err = validate(doc.to_string().as_bytes()).unwrap_err();
            assert!(err.contains(reason), "{key}: {err}");
        }
        let mut doc = spdx_doc();
        doc["spdxVersion"] = json!("SPDX-2.2");
        assert!(validate(doc.to_string().as_bytes())
            .unwrap_err()
            .contains("licenseConcluded is mandatory in SPDX-2.2"));
        assert!(validate(b"").unwrap_err().contains("empty"));
        assert!(validate(b"{\"a\": 1}").unwrap_err().contains("neither"));
        assert!(
            validate(b"{\"spdxVersion\": \"SPDX-2.3\", \"spdxVersion\": \"SPDX-2.3\"}")
                .unwrap_err()
                .contains("duplicate key")
        );
    }

    #[test]
    fn tag_value_documents_are_read() {
        let text = "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\nDocumentName: img\nDocumentNamespace: https://example.invalid/x\nCreator: Tool: t\nCreated: 2024-01-01T00:00:00Z\n\nPackageName: busybox\nSPDXID: SPDXRef-busybox\nPackageDownloadLocation: NOASSERTION\nPackageCopyrightText: <text>line one\nline two</text>\nRelationship: SPDXRef-DOCUMENT DESCRIBES SPDXRef-busybox\n";
        assert_eq!(
            validate(text.as_bytes()).unwrap(),
            "SPDX-2.3 tag-value document, 1 packages"
        );
        let broken = text.replace("PackageDownloadLocation: NOASSERTION\n", "");
        assert!(validate(broken.as_bytes())
            .unwrap_err()
            .contains("downloadLocation"));
    }

    #[test]
    fn cyclonedx_boms_need_their_required_fields() {
        let bom = json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
            "components": [{"type": "library", "name": "busybox"}]});
        assert!(validate(bom.to_string().as_bytes()).is_ok());
        for (key, value, reason) in [
            ("bomFormat", json!("SPDX"), "not CycloneDX"),
            ("specVersion", json!("1.3"), "is not 1.4, 1.5 or 1.6"),
            ("version", json!(0), "at least 1"),
            ("version", json!("1"), "at least 1"),
            ("serialNumber", json!("urn:uuid:nope"), "serialNumber"),
            ("components", json!([]), "it lists no component"),
            (
                "components",
                json!([{"type": "gadget", "name": "x"}]),
                "not a CycloneDX 1.5 component type",
            ),
            ("components", json!([{"type": "library"}]), "has no name"),
            ("extra", json!(1), "`extra` is not a CycloneDX 1.5 field"),
        ] {
            let mut doc = bom.clone();
            doc[key] = value;
            let err = validate(doc.to_string().as_bytes()).unwrap_err();
            assert!(err.contains(reason), "{key}: {err}");
        }
    }
}
