//! The `based-on-ubi` fact: what an image's own files and config say about its base being Red
//! Hat's Universal Base Image, read offline.
//!
//! Red Hat's preflight (`BasedOnUbi`, internal/policy/container/base_on_ubi.go) asks Red Hat's
//! catalogue (Pyxis) whether a certified image has one of this image's uncompressed layers
//! (`rootfs.diff_ids`) among its own; hostcert does not reach the catalogue. What it reads
//! instead, each in its own field of the record:
//!
//! - `release-package`, `release-vendor`, `release-key-id`: the `redhat-release` package of the
//!   rpm database (`redhat-release-server` and the like on UBI 7), its NEVRA, vendor and the key
//!   id of its header signature;
//! - `os-id`: os-release's `ID` (`rhel` on UBI);
//! - `ubi-labels`: the config labels UBI images set that name UBI (`com.redhat.component`
//!   `ubi9-container`, `name` `ubi9`, `url` of a `ubiN` image, a display name, summary or
//!   description saying "Universal Base Image", license terms `#UBI`), as `key=value` items;
//! - `content-sets`: the content sets (Red Hat's repositories) of the content manifests Red Hat's
//!   build system writes into `/root/buildinfo/content_manifests/*.json`;
//! - `online`: what the catalogue would add, with the layers it would be asked about.
//!
//! A field of something not found is absent. A package database that cannot be read, and a content
//! manifest that is not JSON, are errors.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::facts::FactValue;
use crate::targets::host::{parse_os_release, HostFs};
use crate::targets::package_list::rpm_database;

/// Where Red Hat's build system leaves the content manifests.
const CONTENT_MANIFESTS: &str = "/root/buildinfo/content_manifests";

/// The labels that say UBI, and how each is recognised.
fn ubi_label(key: &str, value: &str) -> bool {
    let ubi_name = |text: &str| {
        text.strip_prefix("ubi").is_some_and(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && matches!(rest.as_bytes().get(digits), None | Some(b'/' | b'-'))
        })
    };
    match key {
        "com.redhat.component" => {
            value.ends_with("-container") && ubi_name(value.trim_end_matches("-container"))
        }
        "name" => ubi_name(value),
        "url" => value.split('/').any(ubi_name),
        "io.k8s.display-name" | "summary" | "description" => value.contains("Universal Base Image"),
        "com.redhat.license_terms" => value.contains("#UBI"),
        _ => false,
    }
}

/// The `based-on-ubi` record and its source.
pub(super) fn based_on_ubi(
    root: &Path,
    labels: &BTreeMap<String, String>,
    diff_ids: &[String],
) -> Result<(String, FactValue), String> {
    let mut record: BTreeMap<String, FactValue> = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        record.insert(key.to_owned(), FactValue::Text(value));
    };
    let files = HostFs::tree(root.to_owned(), None);
    // Every package database must read: one that does not is an error, never a guess.
    crate::targets::package_list::PackageList::read(&files)?;
    let mut sources = vec!["config labels".to_owned()];
    if let Some(database) = rpm_database(&files)? {
        sources.push(format!(
            "rpm database {} ({})",
            database.location.file, database.location.backend
        ));
        let packages = &database.packages;
        let release = packages
            .iter()
            .find(|p| p.name == "redhat-release")
            .or_else(|| {
                packages.iter().find(|p| {
                    p.name.starts_with("redhat-release-")
                        && !p.name.ends_with("-eula")
                        && !p.name.ends_with("-notes")
                })
            });
        if let Some(release) = release {
            put("release-package", release.nevra());
            if let Some(vendor) = &release.vendor {
                put("release-vendor", vendor.clone());
            }
            if let Some(key) = release.signature_key_id() {
                put("release-key-id", key.to_owned());
            }
        }
    }
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Some(text) = super::read_tree_text(root, path)? {
            sources.push(path.to_owned());
            if let Some(id) = parse_os_release(&text).remove("ID") {
                put("os-id", id);
            }
            break;
        }
    }
    let found: Vec<String> = labels
        .iter()
        .filter(|(key, value)| ubi_label(key, value))
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if !found.is_empty() {
        put("ubi-labels", found.join("; "));
    }
    let content_sets = content_sets(root)?;
    if !content_sets.is_empty() {
        sources.push(format!("{CONTENT_MANIFESTS}/*.json"));
        put("content-sets", content_sets.join(" "));
    }
    for key in [
        "release-package",
        "release-vendor",
        "release-key-id",
        "os-id",
        "ubi-labels",
        "content-sets",
    ] {
        record.entry(key.to_owned()).or_insert(FactValue::Absent);
    }
    record.insert(
        "online".to_owned(),
        FactValue::Text(
        format!(
            "not asked: Red Hat's catalogue (Pyxis), which preflight's BasedOnUbi queries, would say whether a certified UBI image has one of this image's {} layers ({}) as its own, which proves the base; the package, os-release and labels read here can be set by anyone building an image",
            diff_ids.len(),
            diff_ids.last().map_or("none", String::as_str)
        )),
    );
    Ok((sources.join(", "), FactValue::Record(record)))
}

/// The content sets the content manifests list, sorted and without repeats.
fn content_sets(root: &Path) -> Result<Vec<String>, String> {
    let Some(folder) =
        crate::targets::host::resolve_in_tree(root, CONTENT_MANIFESTS)?.filter(|p| p.is_dir())
    else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .map_err(|e| format!("{CONTENT_MANIFESTS}: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .take(1000)
        .collect();
    names.sort();
    let mut sets = Vec::new();
    for name in names {
        let path = format!("{CONTENT_MANIFESTS}/{name}");
        let Some(text) = super::read_tree_text(root, &path)? else {
            continue;
        };
        let document = super::json::parse(text.as_bytes()).map_err(|e| format!("{path}: {e}"))?;
        if let Some(list) = document.get("content_sets").and_then(Value::as_array) {
            sets.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    }
    sets.sort();
    sets.dedup();
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ubi_labels_are_recognised() {
        for (key, value) in [
            ("com.redhat.component", "ubi9-container"),
            ("com.redhat.component", "ubi8-minimal-container"),
            ("name", "ubi9"),
            ("name", "ubi9/ubi-minimal"),
            ("name", "ubi8-micro"),
            (
                "url",
                "https://access.redhat.com/containers/#/registry.access.redhat.com/ubi9/images/9.4-1123",
            ),
            ("io.k8s.display-name", "Red Hat Universal Base Image 9"),
            (
                "com.redhat.license_terms",
                "https://www.redhat.com/en/about/red-hat-end-user-license-agreements#UBI",
            ),
        ] {
            assert!(ubi_label(key, value), "{key}={value}");
        }
        for (key, value) in [
            ("com.redhat.component", "myapp-container"),
            ("name", "ubiquitous"),
            ("name", "my/ubi9"),
            ("url", "https://example.com/ubiquity"),
            ("vendor", "Red Hat, Inc."),
        ] {
            assert!(!ubi_label(key, value), "{key}={value}");
        }
    }
}
