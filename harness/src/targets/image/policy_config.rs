//! containers-policy.json read as containers/image reads it (`signature/policy_config.go`, its
//! "paranoid" JSON decoding): no key twice and no key a section does not define, at every
//! level; `default` required; every requirement list non-empty; requirement and identity types
//! known, each with exactly the fields its type takes; scopes valid for their transport (an
//! absolute, clean path other than `/` for `dir`, `oci`, `oci-archive` and `sif`; only the
//! default scope `""` for `docker-archive` and `tarball`; ...). A policy containers/image
//! refuses to load is refused here, with the path of the offending value, before any image is
//! judged by it. Evaluation (`policy.rs`) then reads the checked document.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::descriptor::kind;
use super::layout::shorten;

/// Checks a parsed containers-policy.json (duplicate keys were refused when it was parsed).
pub(super) fn check(policy: &Value) -> Result<(), String> {
    let object = fields(policy, "the policy", &["default", "transports"])?;
    let default = object
        .get("default")
        .ok_or("the default policy is missing (`default`)")?;
    requirements(default, "default")?;
    if let Some(transports) = object.get("transports") {
        let Some(transports) = transports.as_object() else {
            return Err(format!("transports is {}, not an object", kind(transports)));
        };
        for (transport, scopes) in transports {
            let Some(scopes) = scopes.as_object() else {
                return Err(format!(
                    "transports.{transport} is {}, not an object",
                    kind(scopes)
                ));
            };
            for (scope, list) in scopes {
                if !scope.is_empty() {
                    if let Err(reason) = check_scope(transport, scope) {
                        return Err(format!(
                            "transports.{transport}: scope `{}` is invalid: {reason}",
                            shorten(scope)
                        ));
                    }
                }
                requirements(list, &format!("transports.{transport}[\"{scope}\"]"))?;
            }
        }
    }
    Ok(())
}

/// An object whose keys are all in `allowed`.
fn fields<'a>(
    value: &'a Value,
    what: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, String> {
    let Some(object) = value.as_object() else {
        return Err(format!("{what} is {}, not a JSON object", kind(value)));
    };
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("{what}: unknown key `{}`", shorten(unknown)));
    }
    Ok(object)
}

/// An object with exactly the keys `exact`.
fn exact<'a>(
    value: &'a Value,
    what: &str,
    exact: &[&str],
) -> Result<&'a Map<String, Value>, String> {
    let object = fields(value, what, exact)?;
    if let Some(missing) = exact.iter().find(|k| !object.contains_key(**k)) {
        return Err(format!("{what}: key `{missing}` missing"));
    }
    Ok(object)
}

fn string<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<&'a str>, String> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{what}: {key} is {}, not a string", kind(other))),
    }
}

fn strings(object: &Map<String, Value>, key: &str, what: &str) -> Result<Option<usize>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(Some(items.len())),
        Some(other) => Err(format!(
            "{what}: {key} is {}, not a list of strings",
            kind(other)
        )),
    }
}

/// Go decodes `[]byte` from standard base64; `null` leaves it nil.
fn bytes(object: &Map<String, Value>, key: &str, what: &str) -> Result<Option<Vec<u8>>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s.replace(['\r', '\n'], ""))
            .map(Some)
            .map_err(|e| format!("{what}: {key} is not base64: {e}")),
        Some(other) => Err(format!("{what}: {key} is {}, not base64 text", kind(other))),
    }
}

/// A non-empty list of requirements.
fn requirements(value: &Value, what: &str) -> Result<(), String> {
    let Some(list) = value.as_array() else {
        return Err(format!(
            "{what} is {}, not a list of requirements",
            kind(value)
        ));
    };
    if list.is_empty() {
        return Err(format!(
            "{what}: the list of requirements must not be empty"
        ));
    }
    for (index, requirement) in list.iter().enumerate() {
        check_requirement(requirement, &format!("{what}[{index}]"))?;
    }
    Ok(())
}

fn check_requirement(value: &Value, what: &str) -> Result<(), String> {
    let kind_of = value
        .as_object()
        .and_then(|o| o.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match kind_of {
        "insecureAcceptAnything" | "reject" => exact(value, what, &["type"]).map(drop),
        "signedBaseLayer" => {
            let object = exact(value, what, &["type", "baseLayerIdentity"])?;
            identity(
                &object["baseLayerIdentity"],
                &format!("{what}.baseLayerIdentity"),
            )
        }
        "signedBy" => {
            let object = fields(
                value,
                what,
                &[
                    "type",
                    "keyType",
                    "keyPath",
                    "keyPaths",
                    "keyData",
                    "signedIdentity",
                ],
            )?;
            match string(object, "keyType", what)? {
                Some("GPGKeys" | "signedByGPGKeys" | "X509Certificates" | "signedByX509CAs") => {}
                Some(other) => {
                    return Err(format!("{what}: unrecognized keyType `{}`", shorten(other)))
                }
                None => return Err(format!("{what}: invalid keyType \"\"")),
            }
            let given: Vec<&str> = ["keyPath", "keyPaths", "keyData"]
                .into_iter()
                .filter(|k| object.contains_key(*k))
                .collect();
            if given.len() != 1 {
                return Err(format!(
                    "{what}: exactly one of keyPath, keyPaths and keyData must be specified ({})",
                    if given.is_empty() {
                        "none present".to_owned()
                    } else {
                        given.join(", ")
                    }
                ));
            }
            let present = match given[0] {
                "keyPath" => string(object, "keyPath", what)?.is_some_and(|p| !p.is_empty()),
                "keyPaths" => strings(object, "keyPaths", what)?.is_some(),
                _ => bytes(object, "keyData", what)?.is_some(),
            };
            if !present {
                return Err(format!(
                    "{what}: exactly one of keyPath, keyPaths and keyData must be specified ({} is empty)",
                    given[0]
                ));
            }
            optional_identity(object, what)
        }
        "sigstoreSigned" => {
            let object = fields(
                value,
                what,
                &[
                    "type",
                    "keyPath",
                    "keyPaths",
                    "keyData",
                    "keyDatas",
                    "fulcio",
                    "rekorPublicKeyPath",
                    "rekorPublicKeyPaths",
                    "rekorPublicKeyData",
                    "rekorPublicKeyDatas",
                    "pki",
                    "signedIdentity",
                ],
            )?;
            string(object, "keyPath", what)?;
            strings(object, "keyPaths", what)?;
            bytes(object, "keyData", what)?;
            let trust: Vec<&str> = [
                "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
            ]
            .into_iter()
            .filter(|k| object.contains_key(*k))
            .collect();
            match trust.as_slice() {
                [] => Err(format!(
                    "{what}: one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be specified"
                )),
                [_] => optional_identity(object, what),
                _ => Err(format!(
                    "{what}: {} cannot be used together",
                    trust.join(" and ")
                )),
            }
        }
        other => Err(format!(
            "{what}: unknown policy requirement type `{}`",
            shorten(other)
        )),
    }
}

fn optional_identity(object: &Map<String, Value>, what: &str) -> Result<(), String> {
    match object.get("signedIdentity") {
        None => Ok(()),
        Some(rule) => identity(rule, &format!("{what}.signedIdentity")),
    }
}

/// A `signedIdentity` (or `baseLayerIdentity`) rule.
fn identity(value: &Value, what: &str) -> Result<(), String> {
    let kind_of = value
        .as_object()
        .and_then(|o| o.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let reference = |object: &Map<String, Value>, key: &str, tagged: bool| -> Result<(), String> {
        let text = string(object, key, what)?.unwrap_or("");
        let parsed = Reference::parse(text)
            .ok_or_else(|| format!("{what}: invalid format of {key} `{}`", shorten(text)))?;
        if tagged && !parsed.is_tagged_or_digested() {
            return Err(format!(
                "{what}: {key} `{}` contains neither a tag nor digest",
                shorten(text)
            ));
        }
        Ok(())
    };
    match kind_of {
        "matchExact" | "matchRepoDigestOrExact" | "matchRepository" => {
            exact(value, what, &["type"]).map(drop)
        }
        "exactReference" => {
            let object = exact(value, what, &["type", "dockerReference"])?;
            reference(object, "dockerReference", true)
        }
        "exactRepository" => {
            let object = exact(value, what, &["type", "dockerRepository"])?;
            reference(object, "dockerRepository", false)
        }
        "remapIdentity" => {
            let object = exact(value, what, &["type", "prefix", "signedPrefix"])?;
            for key in ["prefix", "signedPrefix"] {
                let prefix = string(object, key, what)?.unwrap_or("");
                if !valid_prefix(prefix) {
                    return Err(format!("{what}: {key} `{}` is not valid", shorten(prefix)));
                }
            }
            Ok(())
        }
        other => Err(format!(
            "{what}: unknown policy reference match type `{}`",
            shorten(other)
        )),
    }
}

/// A registry host name with an optional port, as the Docker reference grammar has it.
fn valid_domain(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !host.is_empty()
        && host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A remapIdentity prefix: a domain (`host[:port]`), or a repository name that starts with one.
fn valid_prefix(text: &str) -> bool {
    if valid_domain(text) {
        return true;
    }
    let Some((domain, path)) = text.split_once('/') else {
        return false;
    };
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    valid_domain(domain) && path.split('/').all(component)
}

/// Go's `filepath.Clean(p) == p` for an absolute path: no empty, `.` or `..` components and no
/// trailing slash.
fn is_clean_absolute(path: &str) -> bool {
    path.starts_with('/')
        && path != "/"
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A digest as `go-digest` parses it: a registered algorithm and its hex length.
fn is_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Each transport's `ValidatePolicyConfigurationScope`, for the transports skopeo knows;
/// scopes of other transports are not checked (containers/image does not either).
fn check_scope(transport: &str, scope: &str) -> Result<(), String> {
    match transport {
        "dir" | "oci" | "oci-archive" | "sif" => {
            if !scope.starts_with('/') {
                Err("it must be an absolute path".to_owned())
            } else if scope == "/" {
                Err("use the default scope \"\" instead of \"/\"".to_owned())
            } else if !is_clean_absolute(scope) {
                Err("it is not a canonical path".to_owned())
            } else {
                Ok(())
            }
        }
        "docker-archive" | "tarball" => Err(format!(
            "{transport}: does not support any scopes except the default \"\" one"
        )),
        "docker-daemon" if is_digest(scope) => {
            Err("docker-daemon: can not use algo:digest value as a namespace".to_owned())
        }
        "atomic" => {
            // ^[^/]*(/[^:/]*(/[^:/]*(:[^:/]*)?)?)?$
            let mut parts = scope.splitn(3, '/');
            parts.next();
            let namespace = parts.next();
            let rest = parts.next();
            let ok = namespace.is_none_or(|n| !n.contains(':'))
                && rest.is_none_or(|r| !r.contains('/') && r.split(':').count() <= 2);
            if ok {
                Ok(())
            } else {
                Err("invalid scope name".to_owned())
            }
        }
        "containers-storage" => check_storage_scope(scope),
        _ => Ok(()),
    }
}

/// containers-storage scopes: `[GRAPHROOT]` or `[DRIVER@GRAPHROOT]` (an absolute path), then an
/// optional image name with `@digest` and/or `@ID`.
fn check_storage_scope(scope: &str) -> Result<(), String> {
    let invalid = || Err("not a containers-storage scope ([DRIVER@/GRAPHROOT]NAME)".to_owned());
    let Some(rest) = scope.strip_prefix('[') else {
        return invalid();
    };
    let Some((store, image)) = rest.split_once(']') else {
        return invalid();
    };
    let root = match store.split_once('@') {
        None if !store.is_empty() => store,
        Some((driver, root)) if !driver.is_empty() && !root.is_empty() => root,
        _ => return invalid(),
    };
    if !root.starts_with('/') {
        return Err("the graph root is not an absolute path".to_owned());
    }
    let id = |t: &str| {
        t.len() == 64
            && t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let fields: Vec<&str> = image.splitn(3, '@').collect();
    match fields.as_slice() {
        [_] => Ok(()),
        [_, second] if id(second) || is_digest(second) => Ok(()),
        [_, digest, image_id] if is_digest(digest) && id(image_id) => Ok(()),
        _ => Err("its @digest or @ID is not valid".to_owned()),
    }
}

/// A Docker reference, normalised as containers/image normalises them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reference {
    /// The repository, with its registry: `docker.io/library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Whether it names a tag or a digest, not only a repository.
    pub(super) fn is_tagged_or_digested(&self) -> bool {
        self.tag.is_some() || self.digest.is_some()
    }

    pub(super) fn parse(text: &str) -> Option<Reference> {
        if text.is_empty()
            || text.len() > 512
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return None;
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (text, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag.to_owned())),
            _ => (rest, None),
        };
        if name.is_empty() || name.ends_with('/') || name.starts_with('/') {
            return None;
        }
        let first = name.split('/').next().unwrap_or("");
        let has_registry = name.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let repository = if has_registry {
            name.to_owned()
        } else if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        };
        Some(Reference {
            repository,
            tag,
            digest,
        })
    }

    /// The reference as containers/image prints it, normalised.
    pub(super) fn text(&self) -> String {
        let mut out = self.repository.clone();
        if let Some(tag) = &self.tag {
            out = format!("{out}:{tag}");
        }
        if let Some(digest) = &self.digest {
            out = format!("{out}@{digest}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_containers_image_refuses_are_refused() {
        let accept = json!({"type": "insecureAcceptAnything"});
        assert!(check(&json!({"default": [accept]})).is_ok());
        for (policy, reason) in [
            (json!({}), "default policy is missing"),
            (json!({"default": []}), "must not be empty"),
            (
                json!({"default": [accept], "extra": 1}),
                "unknown key `extra`",
            ),
            (
                json!({"default": [{"type": "reject", "x": 1}]}),
                "unknown key `x`",
            ),
            (
                json!({"default": [{"type": "nope"}]}),
                "unknown policy requirement type",
            ),
            (
                json!({"default": [accept], "transports": {"oci": {"": []}}}),
                "must not be empty",
            ),
            (
                json!({"default": [accept], "transports": {"oci": {"rel": [accept]}}}),
                "absolute path",
            ),
            (
                json!({"default": [accept], "transports": {"oci": {"/a/../b": [accept]}}}),
                "canonical",
            ),
            (
                json!({"default": [accept], "transports": {"docker-archive": {"/a": [accept]}}}),
                "default \"\" one",
            ),
            (
                json!({"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}),
                "none present",
            ),
            (
                json!({"default": [{"type": "signedBy", "keyType": "PGP", "keyPath": "/k"}]}),
                "unrecognized keyType",
            ),
            (
                json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k", "keyData": "eA=="}]}),
                "exactly one",
            ),
            (
                json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k", "signedIdentity": {"type": "exactReference", "dockerReference": "busybox"}}]}),
                "neither a tag nor digest",
            ),
            (
                json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k", "signedIdentity": {"type": "matchExact", "x": 1}}]}),
                "unknown key `x`",
            ),
            (
                json!({"default": [{"type": "sigstoreSigned"}]}),
                "must be specified",
            ),
        ] {
            let err = check(&policy).unwrap_err();
            assert!(err.contains(reason), "{policy}: {err}");
        }
    }
}
