//! Pairs: an image (or OS tree) on a host. `hostcert run --image rootfs:DIR --target local`
//! wraps each target in a [`PairTarget`]: `image` probes (`{image: {elf: /usr/sbin/sshd}}`) are
//! read from the image's target, every other probe from the host, and the pair is named
//! `<image>@<host>` so that every trial and report names both.
//!
//! The image is any target whose kind serves files: an OS tree today (`rootfs:DIR`), images
//! (`oci:DIR:TAG`, unpacked into a tree) when they exist. The pair also answers
//! `seccomp-profile` probes from the runtime seccomp profile given with
//! `--param seccomp-profile=FILE`, a file on the machine hostcert runs on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Gathered, Target, TargetError};
use crate::facts::{Fact, FactValue, ProbeSet, NO_IMAGE, NO_SECCOMP_PROFILE};
use crate::model::{Probe, TargetKind};

/// The image of a pair, shared by every host it is paired with.
pub type SharedImage = Arc<dyn Target>;

/// A target, optionally with an image and a runtime seccomp profile.
pub struct PairTarget {
    name: String,
    address: String,
    image: Option<SharedImage>,
    host: Box<dyn Target>,
    seccomp_profile: Option<PathBuf>,
}

impl PairTarget {
    /// Pairs `host` with `image` (when given) and a seccomp profile (when given).
    pub fn new(
        image: Option<SharedImage>,
        host: Box<dyn Target>,
        seccomp_profile: Option<PathBuf>,
    ) -> PairTarget {
        let (name, address) = match &image {
            Some(image) => (
                format!("{}@{}", image.name(), host.name()),
                format!("{} on {}", image.address(), host.address()),
            ),
            None => (host.name().to_owned(), host.address().to_owned()),
        };
        PairTarget {
            name,
            address,
            image,
            host,
            seccomp_profile,
        }
    }
}

/// Opens `--image ADDRESS`: a target whose kind serves files. An OS tree with several kernels
/// gives several targets; their files are the same, so the first is used. An image index of
/// several platforms is refused: `--platform` picks one.
pub fn open_image(
    address: &str,
    options: &super::TargetOptions,
) -> Result<SharedImage, TargetError> {
    let mut opened = super::open(address, options)?;
    if opened.is_empty() {
        return Err(TargetError {
            target: address.to_owned(),
            reason: "names no target".to_owned(),
        });
    }
    if opened.len() > 1 && opened[0].kind() == TargetKind::Image {
        let names: Vec<&str> = opened.iter().map(|t| t.name()).collect();
        return Err(TargetError {
            target: address.to_owned(),
            reason: format!(
                "is an index of {} platforms ({}); pick the one to pair with --platform",
                names.len(),
                names.join(", ")
            ),
        });
    }
    let image = opened.remove(0);
    if !matches!(image.kind(), TargetKind::OsTree | TargetKind::Image) {
        return Err(TargetError {
            target: address.to_owned(),
            reason: format!(
                "--image needs a target that serves files (rootfs:DIR), not a {} target",
                image.kind().as_str()
            ),
        });
    }
    Ok(Arc::from(image))
}

impl PairTarget {
    /// The real run of the image on this machine, or why it is skipped.
    fn live_run(&self) -> Fact {
        let probe = Probe::LiveRun;
        let Some(image) = &self.image else {
            return Fact::not_given(probe, "--image", NO_IMAGE);
        };
        let source = format!("real run of {} on {}", image.address(), self.host.address());
        if self.host.kind() != TargetKind::Local {
            return Fact::not_given(
                probe,
                source,
                "a real run needs the local machine as the host; SSH hosts get the static checks and the probe program",
            );
        }
        let Some(tree) = image.tree() else {
            return Fact::not_given(probe, source, "the image is not a tree on this machine");
        };
        if let Some(reason) = super::live_run::cannot_run_here() {
            return Fact::not_given(probe, source, &reason);
        }
        match super::live_run::run(tree) {
            Ok(value) => Fact::read(probe, source, value),
            Err(reason) => Fact::failed(probe, source, reason),
        }
    }
}

impl Target for PairTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TargetKind {
        self.host.kind()
    }

    fn image_kind(&self) -> Option<TargetKind> {
        self.image.as_ref().map(|image| image.kind())
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn facts_from(&self) -> String {
        self.host.facts_from()
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        let mut host_probes = ProbeSet::new();
        let mut image_probes = ProbeSet::new();
        let mut own = Vec::new();
        for probe in probes {
            match probe {
                Probe::Image(inner) => {
                    image_probes.insert((**inner).clone());
                }
                Probe::SeccompProfile(_) | Probe::LiveRun => own.push(probe.clone()),
                // An image target's own facts (integrity, signatures, labels) are the image's.
                other if other.is_image() => {
                    image_probes.insert(other.clone());
                }
                other => {
                    host_probes.insert(other.clone());
                }
            }
        }
        // An image's digests identify what the pair certified: always asked of an image.
        if self
            .image
            .as_ref()
            .is_some_and(|image| image.kind() == TargetKind::Image)
        {
            image_probes.extend(crate::facts::image_digest_probes());
        }
        let mut gathered = self.host.gather(&host_probes)?;
        if !image_probes.is_empty() {
            let image_facts = self
                .image
                .as_ref()
                .map(|image| (image.address().to_owned(), image.gather(&image_probes)));
            for inner in &image_probes {
                let probe = if inner.is_image() {
                    inner.clone()
                } else {
                    Probe::Image(Box::new(inner.clone()))
                };
                let fact = match &image_facts {
                    None => Fact::not_given(probe, "--image", NO_IMAGE),
                    Some((address, Err(error))) => {
                        Fact::failed(probe, address.clone(), error.reason.clone())
                    }
                    Some((address, Ok(image))) => match image.facts.get(inner) {
                        Some(fact) => Fact {
                            probe,
                            source: format!("{address}:{}", fact.source),
                            value: fact.value.clone(),
                            error: fact.error.clone(),
                        },
                        None => Fact::failed(probe, address.clone(), "the image did not answer"),
                    },
                };
                gathered.facts.insert(fact);
            }
            // An image that could not be read, or not in full, leaves the pair not fully read.
            let stopped = match &image_facts {
                Some((address, Err(error))) => Some(format!("image {address}: {}", error.reason)),
                Some((address, Ok(image))) => image
                    .gather_error
                    .as_ref()
                    .map(|reason| format!("image {address}: {reason}")),
                None => None,
            };
            if let Some(stopped) = stopped {
                gathered.gather_error = Some(match gathered.gather_error.take() {
                    Some(host) => format!("{host}; {stopped}"),
                    None => stopped,
                });
            }
        }
        if !own.is_empty() {
            let profile = self.seccomp_profile.as_deref().map(SeccompProfile::read);
            for probe in own {
                if probe == Probe::LiveRun {
                    gathered.facts.insert(self.live_run());
                    continue;
                }
                let Probe::SeccompProfile(syscall) = &probe else {
                    continue;
                };
                let fact = match &profile {
                    None => Fact::not_given(
                        probe.clone(),
                        "--param seccomp-profile",
                        NO_SECCOMP_PROFILE,
                    ),
                    Some(Err((source, reason))) => {
                        Fact::failed(probe.clone(), source.clone(), reason.clone())
                    }
                    Some(Ok(profile)) => Fact::read(
                        probe.clone(),
                        profile.source.clone(),
                        FactValue::Text(profile.action_for(syscall)),
                    ),
                };
                gathered.facts.insert(fact);
            }
        }
        Ok(gathered)
    }
}

/// A runtime seccomp profile in the JSON format of Docker, Podman and containerd.
#[derive(Debug, Clone)]
pub struct SeccompProfile {
    source: String,
    json: serde_json::Value,
}

impl SeccompProfile {
    /// Reads a profile; on failure, the source and the reason.
    pub fn read(path: &Path) -> Result<SeccompProfile, (String, String)> {
        let source = path.display().to_string();
        let fail = |reason: String| (source.clone(), reason);
        // Only a regular file is opened: a FIFO or a device could block the run.
        let bytes =
            crate::fsio::read_regular(path, crate::fsio::cap::SECCOMP_PROFILE, "seccomp profile")
                .map_err(|e| fail(e.reason))?;
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("not a seccomp profile: {e}")))?;
        if !json.is_object() {
            return Err(fail("not a seccomp profile: not a JSON object".to_owned()));
        }
        Ok(SeccompProfile {
            source: source.clone(),
            json,
        })
    }

    /// What the profile does with one system call: the action of the first rule that names it
    /// without argument conditions (capability and architecture conditions are not evaluated),
    /// else the default action. `allow`, `errno EPERM (1)`, `kill`, `trap`, `log`, `trace`,
    /// `notify`.
    pub fn action_for(&self, syscall: &str) -> String {
        let default_errno = self.json.get("defaultErrnoRet").and_then(|v| v.as_u64());
        let rules = self
            .json
            .get("syscalls")
            .and_then(|v| v.as_array())
            .map(Vec::as_slice)
            .unwrap_or_default();
        for rule in rules {
            let named = rule
                .get("names")
                .and_then(|v| v.as_array())
                .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(syscall)))
                || rule.get("name").and_then(|v| v.as_str()) == Some(syscall);
            let conditional = rule
                .get("args")
                .and_then(|v| v.as_array())
                .is_some_and(|args| !args.is_empty());
            if named && !conditional {
                let action = rule.get("action").and_then(|v| v.as_str()).unwrap_or("");
                let errno = rule.get("errnoRet").and_then(|v| v.as_u64());
                return describe_action(action, errno.or(default_errno));
            }
        }
        let action = self
            .json
            .get("defaultAction")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        describe_action(action, default_errno)
    }
}

fn describe_action(action: &str, errno: Option<u64>) -> String {
    match action {
        "SCMP_ACT_ALLOW" => "allow".to_owned(),
        "SCMP_ACT_ERRNO" => {
            let errno = errno.unwrap_or(1);
            let name = match errno {
                1 => "EPERM",
                38 => "ENOSYS",
                13 => "EACCES",
                22 => "EINVAL",
                _ => "E?",
            };
            format!("errno {name} ({errno})")
        }
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" | "SCMP_ACT_KILL_PROCESS" => "kill".to_owned(),
        "SCMP_ACT_TRAP" => "trap".to_owned(),
        "SCMP_ACT_TRACE" => "trace".to_owned(),
        "SCMP_ACT_LOG" => "log".to_owned(),
        "SCMP_ACT_NOTIFY" => "notify".to_owned(),
        "" => "unknown (no action)".to_owned(),
        other => format!("unknown ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> SeccompProfile {
        SeccompProfile {
            source: "test".to_owned(),
            json: serde_json::from_str(json).unwrap(),
        }
    }

    #[test]
    fn actions_follow_rules_then_the_default() {
        let docker = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[
                {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38,"excludes":{"caps":["CAP_SYS_ADMIN"]}},
                {"names":["read","clone3"],"action":"SCMP_ACT_ALLOW"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert_eq!(docker.action_for("clone3"), "errno ENOSYS (38)");
        assert_eq!(docker.action_for("read"), "allow");
        assert_eq!(docker.action_for("personality"), "errno EPERM (1)");
        let old = profile(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#);
        assert_eq!(old.action_for("clone3"), "errno EPERM (1)");
        assert_eq!(profile("{}").action_for("clone3"), "unknown (no action)");
        let error = SeccompProfile::read(Path::new("/dev/null")).unwrap_err();
        assert_eq!(
            error.1,
            "cannot read the seccomp profile: a character device, not a regular file"
        );
        let dir = std::env::temp_dir().join(format!("hostcert-seccomp-{}", std::process::id()));
        std::fs::write(&dir, "[1, 2]").unwrap();
        let error = SeccompProfile::read(&dir).unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        assert!(error.1.contains("not a JSON object"), "{}", error.1);
    }
}
