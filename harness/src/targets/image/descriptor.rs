//! OCI descriptors and platforms, read as the image-spec defines them
//! (<https://github.com/opencontainers/image-spec/blob/v1.1.1/descriptor.md>): `mediaType` (an
//! RFC 6838 media type), `digest` (the digest grammar; sha256 is the algorithm hostcert
//! verifies) and `size` (an int64, so neither missing, negative, a string nor a float) are
//! required; `urls`, `annotations`, `data`, `artifactType` and `platform` are checked when
//! present. A descriptor that breaks a rule is refused with the rule named, never read as if it
//! held.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use sha2::{Digest as _, Sha256};

/// A descriptor that keeps the spec's rules.
#[derive(Debug, Clone)]
pub(super) struct Descriptor {
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
}

impl Descriptor {
    /// Parses the descriptor `value`; the error lists every rule it breaks.
    pub(super) fn parse(value: &Value) -> Result<Descriptor, String> {
        let Some(object) = value.as_object() else {
            return Err("the descriptor is not a JSON object".to_owned());
        };
        let mut problems = Vec::new();
        let media_type = match object.get("mediaType") {
            None => {
                problems.push("it has no mediaType".to_owned());
                None
            }
            Some(Value::String(text)) => match check_media_type(text) {
                Ok(()) => Some(text.clone()),
                Err(e) => {
                    problems.push(format!("mediaType {e}"));
                    None
                }
            },
            Some(other) => {
                problems.push(format!("mediaType is {}, not a string", kind(other)));
                None
            }
        };
        let digest = match object.get("digest") {
            None => {
                problems.push("it has no digest".to_owned());
                None
            }
            Some(Value::String(text)) => match Sha256Digest::parse(text) {
                Ok(digest) => Some(digest),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
            Some(other) => {
                problems.push(format!("digest is {}, not a string", kind(other)));
                None
            }
        };
        let size = match object.get("size") {
            None => {
                problems.push("it has no size (an int64 the image-spec requires)".to_owned());
                None
            }
            Some(value) => match size_of(value) {
                Ok(size) => Some(size),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        };
        if let Some(urls) = object.get("urls") {
            if !urls
                .as_array()
                .is_some_and(|list| list.iter().all(Value::is_string))
            {
                problems.push("urls is not a list of strings".to_owned());
            }
        }
        if object
            .get("annotations")
            .is_some_and(|a| string_map(a).is_none())
        {
            problems.push("annotations is not a map of strings".to_owned());
        }
        if let Some(artifact) = object.get("artifactType") {
            match artifact.as_str().map(check_media_type) {
                Some(Ok(())) => {}
                Some(Err(e)) => problems.push(format!("artifactType {e}")),
                None => problems.push("artifactType is not a string".to_owned()),
            }
        }
        if let Some(Err(e)) = object.get("platform").map(Platform::from_json) {
            problems.push(format!("platform: {e}"));
        }
        let data = match object.get("data") {
            None => None,
            Some(Value::String(text)) => {
                match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        problems.push(format!("data is not base64: {e}"));
                        None
                    }
                }
            }
            Some(other) => {
                problems.push(format!("data is {}, not a string", kind(other)));
                None
            }
        };
        if let (Some(data), Some(digest), Some(size)) = (&data, &digest, size) {
            if data.len() as u64 != size || Sha256Digest::of(data) != *digest {
                problems.push("its data does not match its digest and size".to_owned());
            }
        }
        match (media_type, digest, size) {
            (Some(media_type), Some(digest), Some(size)) if problems.is_empty() => Ok(Descriptor {
                media_type,
                digest,
                size,
            }),
            _ => Err(problems.join(", ")),
        }
    }
}

/// What kind of JSON value this is, for messages.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A descriptor's `size`: a JSON integer in int64's range, not negative.
fn size_of(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => {
            if let Some(size) = n.as_u64() {
                if size > i64::MAX as u64 {
                    return Err(format!("size {size} is beyond int64"));
                }
                Ok(size)
            } else if let Some(size) = n.as_i64() {
                Err(format!("size {size} is negative"))
            } else {
                Err(format!("size {n} is a float, not an int64"))
            }
        }
        other => Err(format!("size is {}, not an int64", kind(other))),
    }
}

/// A map of strings (annotations, labels), or `None` when the value is not one.
pub(super) fn string_map(value: &Value) -> Option<BTreeMap<String, String>> {
    value
        .as_object()?
        .iter()
        .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect()
}

/// Checks a media type against RFC 6838's grammar (`type/subtype`, restricted names, no
/// parameters), as the image-spec requires.
pub(super) fn check_media_type(text: &str) -> Result<(), String> {
    let restricted = |name: &str| {
        let bytes = name.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= 127
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(b))
    };
    match text.split_once('/') {
        Some((kind, subtype)) if restricted(kind) && restricted(subtype) => Ok(()),
        _ => Err(format!(
            "`{}` is not a media type (RFC 6838 type/subtype)",
            shorten(text)
        )),
    }
}

/// A platform as an index names it: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// GOARCH names: `amd64`, `arm64`, `arm`, `ppc64le`, `s390x`, ...
    pub architecture: String,
    /// `v7`, `v8`, ...
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` as `--platform` takes it.
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if valid(os) && valid(arch) => {
                let variant = parts.get(2).map(|v| (*v).to_owned());
                if variant.as_deref().is_some_and(|v| !valid(v)) {
                    return Err(format!("`{text}` is not os/arch[/variant]"));
                }
                Ok(Platform {
                    os: (*os).to_owned(),
                    architecture: (*arch).to_owned(),
                    variant,
                })
            }
            _ => Err(format!(
                "`{text}` is not os/arch[/variant] (linux/amd64, linux/arm64/v8)"
            )),
        }
    }

    /// Reads a descriptor's or a config's platform fields: `os` and `architecture` are required
    /// strings; `variant`, `os.version`, `os.features` and `features` are checked when present.
    pub(super) fn from_json(value: &Value) -> Result<Platform, String> {
        let Some(object) = value.as_object() else {
            return Err(format!("{}, not an object", kind(value)));
        };
        let text = |key: &str, required: bool| -> Result<Option<String>, String> {
            match object.get(key) {
                None if required => Err(format!("it has no {key}")),
                None => Ok(None),
                Some(Value::String(s)) if required && s.is_empty() => {
                    Err(format!("{key} is empty"))
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("{key} is {}, not a string", kind(other))),
            }
        };
        for key in ["os.features", "features"] {
            if let Some(list) = object.get(key) {
                if !list
                    .as_array()
                    .is_some_and(|items| items.iter().all(Value::is_string))
                {
                    return Err(format!("{key} is not a list of strings"));
                }
            }
        }
        text("os.version", false)?;
        Ok(Platform {
            os: text("os", true)?.unwrap_or_default(),
            architecture: text("architecture", true)?.unwrap_or_default(),
            variant: text("variant", false)?.filter(|v| !v.is_empty()),
        })
    }

    /// Whether this platform is one `wanted` names: os and architecture equal, and the variant
    /// equal when `wanted` gives one.
    pub fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || wanted.variant == self.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A sha256 digest, validated: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sha256Digest(pub String);

impl Sha256Digest {
    /// Parses `sha256:<hex>`; a value outside the image-spec's digest grammar, another
    /// algorithm, or a malformed sha256 is an error naming it.
    pub(super) fn parse(text: &str) -> Result<Sha256Digest, String> {
        let component = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        let grammar = text.split_once(':').is_some_and(|(algorithm, encoded)| {
            algorithm.split(['+', '.', '_', '-']).all(component)
                && !encoded.is_empty()
                && encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
        });
        let Some((algorithm, encoded)) = text.split_once(':').filter(|_| grammar) else {
            return Err(format!(
                "digest `{}` does not follow the digest grammar (algorithm:encoded)",
                shorten(text)
            ));
        };
        if algorithm != "sha256" {
            return Err(format!(
                "digest `{}` uses the algorithm `{}`; hostcert verifies sha256 digests only",
                shorten(text),
                shorten(algorithm)
            ));
        }
        if encoded.len() != 64
            || !encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "digest `{}` is not sha256:<64 lowercase hex digits>",
                shorten(text)
            ));
        }
        Ok(Sha256Digest(encoded.to_owned()))
    }

    pub(super) fn of(bytes: &[u8]) -> Sha256Digest {
        Sha256Digest(hex(&Sha256::digest(bytes)))
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text from an image cut to 80 characters for messages.
pub(super) fn shorten(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 12
        })
    }

    #[test]
    fn descriptors_keep_the_image_spec_rules() {
        assert_eq!(Descriptor::parse(&good()).unwrap().size, 12);
        let cases: Vec<(&str, Value, &str)> = vec![
            ("size", Value::Null, "it has no size"),
            ("size", json!(-1), "size -1 is negative"),
            ("size", json!("12"), "size is a string, not an int64"),
            ("size", json!(12.0), "size 12.0 is a float"),
            ("size", json!(1.5), "is a float"),
            ("size", json!(u64::MAX), "beyond int64"),
            ("digest", Value::Null, "it has no digest"),
            ("digest", json!(7), "digest is a number"),
            (
                "digest",
                json!("sha256:ABC"),
                "is not sha256:<64 lowercase hex digits>",
            ),
            (
                "digest",
                json!("SHA256:abc"),
                "does not follow the digest grammar",
            ),
            (
                "digest",
                json!("sha256"),
                "does not follow the digest grammar",
            ),
            (
                "digest",
                json!(format!("sha512:{}", "a".repeat(128))),
                "uses the algorithm `sha512`",
            ),
            ("mediaType", Value::Null, "it has no mediaType"),
            ("mediaType", json!("tar"), "is not a media type"),
            ("mediaType", json!("a/b; charset=x"), "is not a media type"),
            (
                "annotations",
                json!({"a": 1}),
                "annotations is not a map of strings",
            ),
            ("urls", json!("http://x"), "urls is not a list of strings"),
            ("data", json!("aGk="), "its data does not match"),
            (
                "platform",
                json!({"os": "linux"}),
                "platform: it has no architecture",
            ),
        ];
        for (key, value, expected) in cases {
            let mut descriptor = good();
            if value.is_null() {
                descriptor.as_object_mut().unwrap().remove(key);
            } else {
                descriptor[key] = value.clone();
            }
            let err = Descriptor::parse(&descriptor).unwrap_err();
            assert!(err.contains(expected), "{key} = {value}: {err}");
        }
    }

    #[test]
    fn platforms_parse_and_match() {
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        assert!(arm.matches(&Platform::parse("linux/arm64").unwrap()));
        assert!(!arm.matches(&Platform::parse("linux/arm64/v9").unwrap()));
        assert!(!arm.matches(&Platform::parse("linux/amd64").unwrap()));
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }
}
