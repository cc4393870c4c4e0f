//! Pairs: an image (or OS tree) on a host. `hostcert run --image oci:DIR:TAG --target h1` makes
//! each target the pair `<image>@<host>`: `image` probes (`{image: {elf: /usr/sbin/sshd}}`) and
//! an image target's own probes (integrity, config, labels, signatures) are the image's, every
//! other probe the host's, so every trial and report names both.
//!
//! A run gathers each image and each host once, whatever the number of pairs
//! ([`crate::engine::gather`]), and makes each pair's facts from the two in memory
//! ([`compose`]); only the pair's own facts are read per pair: the `seccomp-profile` probes,
//! from the runtime seccomp profile given with `--param seccomp-profile=FILE` (read once per
//! run), and the `live-run` probe, the real run of the image's files ([`Tree`], kept from the
//! image's gather for it) on this machine.
//!
//! The image is any target whose kind serves files: an OS tree (`rootfs:DIR`) or an image
//! (`oci:`, `oci-archive:`, `docker-archive:`), unpacked once for the run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{Gathered, Target, TargetError, Tree};
use crate::facts::{Fact, FactSet, FactValue, ProbeSet, NO_IMAGE, NO_SECCOMP_PROFILE};
use crate::model::{Probe, ProbeClass, TargetKind};

/// Who answers a probe of a pair.
enum Side<'p> {
    /// The host.
    Host,
    /// The image: the probe it is asked (an `image` probe's inner probe, or an image target's
    /// own probe as it is).
    Image(&'p Probe),
    /// The pair itself: the runtime seccomp profile's action for a system call.
    Seccomp(&'p str),
    /// The pair itself: the real run.
    LiveRun,
}

fn side(probe: &Probe) -> Side<'_> {
    match probe.class() {
        ProbeClass::PairImage(inner) => Side::Image(inner),
        ProbeClass::ImageMetadata(_) => Side::Image(probe),
        ProbeClass::SeccompProfile(syscall) => Side::Seccomp(syscall),
        ProbeClass::LiveRun => Side::LiveRun,
        ProbeClass::KernelConfig(_)
        | ProbeClass::KernelRelease
        | ProbeClass::Architecture
        | ProbeClass::OsRelease(_)
        | ProbeClass::Files
        | ProbeClass::Boot => Side::Host,
    }
}

/// The probes of a pair its host answers, and those its image answers (as the image is asked
/// them).
pub fn split(probes: &ProbeSet) -> (ProbeSet, ProbeSet) {
    let mut host = ProbeSet::new();
    let mut image = ProbeSet::new();
    for probe in probes {
        match side(probe) {
            Side::Host => {
                host.insert(probe.clone());
            }
            Side::Image(inner) => {
                image.insert(inner.clone());
            }
            Side::Seccomp(_) | Side::LiveRun => {}
        }
    }
    (host, image)
}

/// The image of a pair as the run gathered it, once for every host it is paired with.
pub struct ImageSide<'a> {
    /// The image target.
    pub target: &'a dyn Target,
    /// What its gather gave, or why it could not be read; `None` when no pair asked it
    /// anything.
    pub gathered: Option<&'a Result<Gathered, String>>,
    /// Its files on this machine, kept for the real runs, or why there are none.
    pub tree: &'a Result<Tree, String>,
}

/// What every pair of a run shares besides its image: the runtime seccomp profile, read once.
#[derive(Debug, Default)]
pub struct PairInputs {
    seccomp_profile: Option<PathBuf>,
    read: OnceLock<Result<SeccompProfile, (String, String)>>,
}

impl PairInputs {
    /// With the seccomp profile of `--param seccomp-profile=FILE`, read when a pair first asks.
    pub fn new(seccomp_profile: Option<PathBuf>) -> PairInputs {
        PairInputs {
            seccomp_profile,
            read: OnceLock::new(),
        }
    }

    fn seccomp_profile(&self) -> Option<&Result<SeccompProfile, (String, String)>> {
        let path = self.seccomp_profile.as_deref()?;
        Some(self.read.get_or_init(|| SeccompProfile::read(path)))
    }
}

/// The facts of the pair of `image` (or none) on `host`, for `probes`: the host's from what it
/// gave (`gathered`, which holds at least them), the image's from what it gave, each with the
/// image's address before its source, and the pair's own, read now. An image that could not
/// be read, or not in full, leaves the pair not fully read.
pub fn compose(
    probes: &ProbeSet,
    host: &dyn Target,
    gathered: &Gathered,
    image: Option<&ImageSide<'_>>,
    inputs: &PairInputs,
) -> Gathered {
    let mut facts = FactSet::default();
    let mut asks_image = false;
    for probe in probes {
        let fact = match side(probe) {
            Side::Host => match gathered.facts.get(probe) {
                Some(fact) => fact.clone(),
                None => Fact::failed(probe.clone(), host.address(), "the host did not answer"),
            },
            Side::Image(inner) => {
                asks_image = true;
                image_fact(probe, inner, image)
            }
            Side::Seccomp(syscall) => seccomp_fact(probe, syscall, inputs),
            Side::LiveRun => live_run(host, image),
        };
        facts.insert(fact);
    }
    // An image's digests identify what the pair certified: an image is always asked them
    // (`engine::gather`).
    if let Some(image) = image.filter(|image| image.target.kind() == TargetKind::Image) {
        asks_image = true;
        for probe in crate::facts::image_digest_probes() {
            if facts.get(&probe).is_none() {
                let fact = image_fact(&probe, &probe, Some(image));
                facts.insert(fact);
            }
        }
    }
    let mut gather_error = gathered.gather_error.clone();
    let stopped = image
        .filter(|_| asks_image)
        .and_then(|image| match image.gathered {
            Some(Err(reason)) => Some(format!("image {}: {reason}", image.target.address())),
            Some(Ok(read)) => read
                .gather_error
                .as_ref()
                .map(|reason| format!("image {}: {reason}", image.target.address())),
            None => None,
        });
    if let Some(stopped) = stopped {
        gather_error = Some(match gather_error.take() {
            Some(host) => format!("{host}; {stopped}"),
            None => stopped,
        });
    }
    Gathered {
        hostname: gathered.hostname.clone(),
        facts,
        gather_error,
    }
}

/// An image's answer to `inner` as the pair's fact `probe`.
fn image_fact(probe: &Probe, inner: &Probe, image: Option<&ImageSide<'_>>) -> Fact {
    let Some(image) = image else {
        return Fact::not_given(probe.clone(), "--image", NO_IMAGE);
    };
    let address = image.target.address();
    match image.gathered {
        None => Fact::failed(probe.clone(), address, "the image was not asked for it"),
        Some(Err(reason)) => Fact::failed(probe.clone(), address, reason.clone()),
        Some(Ok(read)) => match read.facts.get(inner) {
            Some(fact) => Fact {
                probe: probe.clone(),
                source: format!("{address}:{}", fact.source),
                value: fact.value.clone(),
                error: fact.error.clone(),
            },
            None => Fact::failed(probe.clone(), address, "the image did not answer"),
        },
    }
}

/// What the run's seccomp profile does with `syscall`, as the fact `probe`.
fn seccomp_fact(probe: &Probe, syscall: &str, inputs: &PairInputs) -> Fact {
    match inputs.seccomp_profile() {
        None => Fact::not_given(probe.clone(), "--param seccomp-profile", NO_SECCOMP_PROFILE),
        Some(Err((source, reason))) => Fact::failed(probe.clone(), source.clone(), reason.clone()),
        Some(Ok(profile)) => Fact::read(
            probe.clone(),
            profile.source.clone(),
            FactValue::Text(profile.action_for(syscall)),
        ),
    }
}

/// The real run of the image's files on this machine, or why it is skipped.
fn live_run(host: &dyn Target, image: Option<&ImageSide<'_>>) -> Fact {
    let probe = Probe::LiveRun;
    let Some(image) = image else {
        return Fact::not_given(probe, "--image", NO_IMAGE);
    };
    let source = format!(
        "real run of {} on {}",
        image.target.address(),
        host.address()
    );
    if host.kind() != TargetKind::Local {
        return Fact::not_given(
            probe,
            source,
            "a real run needs the local machine as the host; SSH hosts get the static checks and the probe program",
        );
    }
    if let Some(reason) = super::live_run::cannot_run_here() {
        return Fact::not_given(probe, source, &reason);
    }
    let tree = match (image.gathered, image.tree) {
        (Some(Err(reason)), _) => {
            return Fact::failed(
                probe,
                source,
                format!("the image could not be read: {reason}"),
            )
        }
        (_, Err(reason)) => return Fact::failed(probe, source, reason.clone()),
        (_, Ok(tree)) => tree,
    };
    match super::live_run::run(tree.path()) {
        Ok(value) => Fact::read(probe, source, value),
        Err(reason) => Fact::failed(probe, source, reason),
    }
}

/// Opens `--image ADDRESS`: a target whose kind serves files. An OS tree with several kernels
/// gives several targets; their files are the same, so the first is used. An image index of
/// several platforms is refused: `--platform` picks one.
pub fn open_image(
    address: &str,
    options: &super::TargetOptions,
) -> Result<Box<dyn Target>, TargetError> {
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
                "--image needs a target that serves files (rootfs:DIR, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, docker://HOST/REPO[:TAG], containers-storage:NAME[:TAG]), not a {} target",
                image.kind().as_str()
            ),
        });
    }
    Ok(image)
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
