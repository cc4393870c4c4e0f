//! Registry credentials, found as containers/image finds them (containers-auth.json(5)): the
//! `--authfile` (or `REGISTRY_AUTH_FILE`) alone when given, otherwise
//! `$XDG_RUNTIME_DIR/containers/auth.json` (or `/run/containers/UID/auth.json`), then
//! `$XDG_CONFIG_HOME/containers/auth.json`, `$DOCKER_CONFIG/config.json` (or
//! `~/.docker/config.json`) and the legacy `~/.dockercfg`. In each file the most specific key
//! wins (`host/ns/repo`, `host/ns`, `host`), then keys written as URLs (`https://host/v1/`).
//!
//! A credential never leaves this module's types but in an `Authorization` header: their
//! `Debug` prints no secret, and no error quotes one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::super::layout::{read_bounded, shorten};
use super::reference::DockerReference;

/// What the registry is authenticated with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// A user name and password (`auth`: base64 of `user:password`).
    Basic { user: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token service.
    IdentityToken { token: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, password hidden)"),
            Credentials::IdentityToken { .. } => write!(f, "IdentityToken(hidden)"),
        }
    }
}

impl Credentials {
    /// The `Authorization` header value of basic authentication.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            Credentials::IdentityToken { .. } => None,
        }
    }
}

/// Where credentials were found: the file, for messages (never the credential).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub credentials: Credentials,
    pub file: PathBuf,
}

/// One auth file to look in, and whether it is the legacy `.dockercfg` format (a bare map).
struct AuthPath {
    path: PathBuf,
    legacy: bool,
}

/// The auth files containers/image reads, in order.
fn auth_paths(authfile: Option<&Path>) -> Vec<AuthPath> {
    let given = authfile.map(Path::to_owned).or_else(|| {
        std::env::var_os("REGISTRY_AUTH_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = given {
        return vec![AuthPath {
            path,
            legacy: false,
        }];
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut paths = Vec::new();
    let runtime = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("containers/auth.json"),
        None => PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            rustix::process::getuid().as_raw()
        )),
    };
    paths.push(runtime);
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    paths.push(config.join("containers/auth.json"));
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => paths.push(PathBuf::from(dir).join("config.json")),
        None => paths.push(home.join(".docker/config.json")),
    }
    let mut out: Vec<AuthPath> = paths
        .into_iter()
        .map(|path| AuthPath {
            path,
            legacy: false,
        })
        .collect();
    out.push(AuthPath {
        path: home.join(".dockercfg"),
        legacy: true,
    });
    out
}

/// The credentials for a reference, or `None` (anonymous access). A file that exists but
/// cannot be read or parsed is an error naming it.
pub(crate) fn find(
    reference: &DockerReference,
    authfile: Option<&Path>,
) -> Result<Option<Found>, String> {
    let key = reference.name();
    let registry = reference.registry.clone();
    for auth_path in auth_paths(authfile) {
        let path = &auth_path.path;
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("auth file {}: {e}", path.display())),
            Ok(_) => {}
        }
        let bytes = read_bounded(path, &format!("auth file {}", path.display()))?;
        let document: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("auth file {}: not valid JSON: {e}", path.display()))?;
        let entries = if auth_path.legacy {
            document.as_object()
        } else {
            document.get("auths").and_then(Value::as_object)
        };
        if let Some(helper) = document
            .pointer(&format!(
                "/credHelpers/{}",
                registry.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_str)
        {
            return Err(format!(
                "auth file {}: credentials for {registry} are in the credential helper `{}`, which hostcert does not run; give an --authfile with the credentials",
                path.display(),
                shorten(helper)
            ));
        }
        let Some(entries) = entries else {
            continue;
        };
        let entries: BTreeMap<&String, &Value> = entries.iter().collect();
        let mut candidates: Vec<String> = Vec::new();
        if auth_path.legacy {
            candidates.push(registry.clone());
        } else {
            let mut name = key.clone();
            loop {
                candidates.push(name.clone());
                match name.rfind('/') {
                    Some(slash) => name.truncate(slash),
                    None => break,
                }
            }
        }
        let exact = candidates
            .iter()
            .find_map(|c| entries.get(c).map(|v| (c.clone(), *v)));
        let normalized = || {
            let wanted = normalize_registry(&registry);
            entries
                .iter()
                .find(|(k, _)| normalize_key(k, auth_path.legacy) == wanted)
                .map(|(k, v)| ((*k).clone(), *v))
        };
        if let Some((entry_key, entry)) = exact.or_else(normalized) {
            if let Some(credentials) = decode(entry, path, &entry_key)? {
                return Ok(Some(Found {
                    credentials,
                    file: path.clone(),
                }));
            }
        }
    }
    Ok(None)
}

/// An entry's credentials: `auth` (base64 `user:password`) and `identitytoken`. An entry with
/// neither (Docker's marker for a credential helper) gives none.
fn decode(entry: &Value, path: &Path, key: &str) -> Result<Option<Credentials>, String> {
    let auth = entry.get("auth").and_then(Value::as_str).unwrap_or("");
    let token = entry
        .get("identitytoken")
        .and_then(Value::as_str)
        .unwrap_or("");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .map_err(|_| {
            format!(
                "auth file {}: the `auth` of `{}` is not base64",
                path.display(),
                shorten(key)
            )
        })?;
    if !token.is_empty() {
        return Ok(Some(Credentials::IdentityToken {
            token: token.to_owned(),
        }));
    }
    let text = String::from_utf8_lossy(&decoded);
    let Some((user, password)) = text.split_once(':') else {
        return Ok(None);
    };
    Ok(Some(Credentials::Basic {
        user: user.to_owned(),
        password: password.trim_matches('\0').to_owned(),
    }))
}

fn normalize_key(key: &str, legacy: bool) -> String {
    let stripped = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"));
    let host = match stripped {
        Some(rest) => rest.split('/').next().unwrap_or(""),
        None if legacy => key.split('/').next().unwrap_or(""),
        None => key,
    };
    normalize_registry(host)
}

fn normalize_registry(registry: &str) -> String {
    match registry {
        "registry-1.docker.io" | "docker.io" => "index.docker.io".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("auth.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_most_specific_key_wins_and_urls_are_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let path = file(
            dir.path(),
            &serde_json::json!({"auths": {
                "registry.example:5000": {"auth": b64("host:one")},
                "registry.example:5000/ns": {"auth": b64("ns:two")},
                "https://other.example/v1/": {"auth": b64("url:three")},
                "token.example": {"auth": "", "identitytoken": "refresh"},
            }})
            .to_string(),
        );
        let find_user = |r: &str| {
            let r = DockerReference::parse(r).unwrap();
            find(&r, Some(&path)).unwrap().map(|f| f.credentials)
        };
        assert_eq!(
            find_user("registry.example:5000/ns/app:1"),
            Some(Credentials::Basic {
                user: "ns".into(),
                password: "two".into()
            })
        );
        assert_eq!(
            find_user("registry.example:5000/other/app:1"),
            Some(Credentials::Basic {
                user: "host".into(),
                password: "one".into()
            })
        );
        assert_eq!(
            find_user("other.example/app"),
            Some(Credentials::Basic {
                user: "url".into(),
                password: "three".into()
            })
        );
        assert_eq!(
            find_user("token.example/app"),
            Some(Credentials::IdentityToken {
                token: "refresh".into()
            })
        );
        assert_eq!(find_user("unknown.example/app"), None);
        let shown = format!("{:?}", find_user("registry.example:5000/ns/app:1").unwrap());
        assert!(!shown.contains("two"), "{shown}");
    }

    #[test]
    fn a_broken_auth_file_is_named_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            dir.path(),
            "{\"auths\": {\"r.example\": {\"auth\": \"s3cr3t!!\"}}}",
        );
        let r = DockerReference::parse("r.example/app").unwrap();
        let err = find(&r, Some(&path)).unwrap_err();
        assert!(
            err.contains("not base64") && !err.contains("s3cr3t"),
            "{err}"
        );
    }
}
