//! Docker references as the `docker://` transport names them (`docker://HOST[:PORT]/REPO[:TAG]`
//! or `…@sha256:HEX`), normalised as containers/image normalises them: a name without a
//! registry is on docker.io, and a one-component name there is under `library/`.

use super::super::layout::{shorten, Sha256Digest};

/// The registry docker.io's API is served from.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed `docker://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DockerReference {
    /// The registry's host and port as named (`127.0.0.1:5000`, `docker.io`).
    pub registry: String,
    /// The repository path inside the registry (`hcc/busybox`, `library/busybox`).
    pub repository: String,
    /// The tag, when the reference names one (`latest` when it names neither a tag nor a digest).
    pub tag: Option<String>,
    /// The digest, when the reference names one.
    pub digest: Option<Sha256Digest>,
}

impl DockerReference {
    /// Parses what follows `docker://`.
    pub(crate) fn parse(text: &str) -> Result<DockerReference, String> {
        let invalid = |why: &str| {
            Err(format!(
                "`{}` is not a Docker reference: {why}",
                shorten(text)
            ))
        };
        if text.is_empty() || text.len() > 4096 {
            return invalid("empty or too long");
        }
        if text.starts_with("//") || text.contains("://") {
            return invalid("a URL, not HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]");
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(Sha256Digest::parse(digest)?)),
            None => (text, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag.to_owned())),
            _ => (rest, None),
        };
        if tag.is_some() && digest.is_some() {
            return invalid(
                "it names both a tag and a digest (containers/image refuses such references)",
            );
        }
        if let Some(tag) = &tag {
            let valid = tag.len() <= 128
                && tag
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !valid {
                return invalid("the tag is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ if name.contains('/') => ("docker.io".to_owned(), name.to_owned()),
            _ => ("docker.io".to_owned(), format!("library/{name}")),
        };
        if !valid_host(&registry) {
            return invalid("the registry is not HOST[:PORT]");
        }
        if !repository.split('/').all(valid_component) {
            return invalid(
                "the repository is not lowercase components of [a-z0-9] separated by `.`, `_`, `__` or `-`",
            );
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            _ => tag,
        };
        Ok(DockerReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `HOST[:PORT]/REPO`, the name containers/image gives the repository.
    pub(crate) fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The full reference: `HOST/REPO:TAG` or `HOST/REPO@sha256:HEX` (containers/image's
    /// policy identity).
    pub(crate) fn identity(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("{}@{digest}", self.name()),
            (None, Some(tag)) => format!("{}:{tag}", self.name()),
            (None, None) => self.name(),
        }
    }

    /// The tag or digest the registry's manifest endpoint is asked for.
    pub(crate) fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The host (and port) the registry's API is reached at.
    pub(crate) fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The scopes a containers-policy.json (and registries.d) looks this reference up by, most
    /// specific first, as containers/image's docker transport lists them: the identity, the
    /// repository, each parent namespace up to the registry, then `*.domain` wildcards.
    pub(crate) fn policy_scopes(&self) -> Vec<String> {
        let mut scopes = vec![self.identity()];
        let mut name = self.name();
        loop {
            scopes.push(name.clone());
            match name.rfind('/') {
                Some(slash) => name.truncate(slash),
                None => break,
            }
        }
        let mut host = name.split(':').next().unwrap_or("").to_owned();
        while let Some(dot) = host.find('.') {
            host = host[dot + 1..].to_owned();
            scopes.push(format!("*.{host}"));
        }
        scopes
    }
}

impl std::fmt::Display for DockerReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "docker://{}", self.identity())
    }
}

/// `host[:port]`: DNS labels or an IPv4 address, an optional numeric port; or a bracketed IPv6
/// address.
fn valid_host(text: &str) -> bool {
    if let Some(rest) = text.strip_prefix('[') {
        let Some((address, port)) = rest.split_once(']') else {
            return false;
        };
        return address.parse::<std::net::Ipv6Addr>().is_ok()
            && (port.is_empty()
                || port
                    .strip_prefix(':')
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !host.is_empty()
        && host.split('.').all(label)
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A repository path component: `[a-z0-9]+` separated by `.`, `_`, `__` or `-`s.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|s| s == b'-')
            {
                return false;
            }
            separator.clear();
        } else if b"._-".contains(&b) {
            separator.push(b as char);
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_as_containers_image_does() {
        let r = DockerReference::parse("127.0.0.1:5000/hcc/busybox:1.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "hcc/busybox");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.identity(), "127.0.0.1:5000/hcc/busybox:1.0");
        let r = DockerReference::parse("busybox").unwrap();
        assert_eq!(r.identity(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let hex = "a".repeat(64);
        let r = DockerReference::parse(&format!("localhost/app@sha256:{hex}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
        for bad in [
            "",
            "Host.example/UPPER",
            "registry.example/app:1.0@sha256:0",
            &format!("registry.example/app:1.0@sha256:{hex}"),
            "registry.example/app:bad tag",
            "registry.example//app",
            "https://registry.example/app",
            "registry.example:port/app",
        ] {
            assert!(DockerReference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_scopes_go_from_the_identity_to_domain_wildcards() {
        let r = DockerReference::parse("registry.example.com:5000/ns/app:1.0").unwrap();
        assert_eq!(
            r.policy_scopes(),
            [
                "registry.example.com:5000/ns/app:1.0",
                "registry.example.com:5000/ns/app",
                "registry.example.com:5000/ns",
                "registry.example.com:5000",
                "*.example.com",
                "*.com",
            ]
        );
    }
}
