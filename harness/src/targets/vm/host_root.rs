//! `host-root`: a VM's own userspace as the image of its checks. Without `--image`, a `vm:`
//! target answers `image` probes (`{image: {elf: /usr/sbin/sshd}}`) from the guest's own files,
//! so that `ssh-dhcp-abi`'s static checks judge the build's own sshd and DHCP client against the
//! build's own kernel, as `--image rootfs:/ --target local` (the pair `host-root@local`) does for
//! this machine.
//!
//! The files are copied over SFTP (in the session of one more login, after the batch) into a
//! folder of the run laid out as the guest's paths, with the ELF interpreter and C library each
//! binary names, and read there by the same tree reader as an OS tree: nothing from the guest is
//! run here, and every path is resolved inside that folder.

use std::io::Read;
use std::path::Path;

use crate::facts::{Fact, FactSet, ProbeSet};
use crate::model::Probe;
use crate::targets::elf;
use crate::targets::host::HostFs;

/// The largest file copied: the ELF reader's own limit.
const MAX_COPY: u64 = 256 << 20;

/// The `image` facts of `inner` probes, read from the guest's own files through `session`.
/// `mirror` is an empty folder of the run.
pub(super) fn facts(session: &ssh2::Session, inner: &ProbeSet, mirror: &Path) -> FactSet {
    let mut facts = FactSet::default();
    let sftp = match session.sftp() {
        Ok(sftp) => sftp,
        Err(error) => {
            let reason = format!(
                "cannot start SFTP to read the guest's files: {}",
                error.message()
            );
            for probe in inner {
                facts.insert(Fact::failed(image(probe), "host-root", reason.clone()));
            }
            return facts;
        }
    };
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut fetch = |path: &str| {
        if let Err(reason) = copy(&sftp, path, mirror) {
            problems.push((path.to_owned(), reason));
        }
    };
    let mut supported = ProbeSet::new();
    for probe in inner {
        match probe {
            Probe::Elf(path)
            | Probe::LibcVersions(path)
            | Probe::OpensshVersion(path)
            | Probe::FileContent(path) => {
                fetch(path);
                supported.insert(probe.clone());
            }
            other => facts.insert(Fact::failed(
                image(other),
                "host-root",
                format!("`{}` is not read from a VM's own files", other.kind()),
            )),
        }
    }
    // What the loader needs beside each binary: its interpreter and C library.
    for probe in &supported {
        let Probe::Elf(path) = probe else {
            continue;
        };
        let local = mirror.join(path.trim_start_matches('/'));
        let Ok(bytes) = std::fs::read(&local) else {
            continue;
        };
        let Ok(info) = elf::parse(&bytes) else {
            continue;
        };
        if let Some(interpreter) = info.interpreter.as_deref().filter(|i| i.starts_with('/')) {
            fetch(interpreter);
        }
        for candidate in elf::libc_candidates(&info) {
            fetch(&candidate);
        }
    }
    let tree = HostFs::tree(mirror.to_owned(), None).gather(&supported);
    for probe in &supported {
        let path = match probe {
            Probe::Elf(path)
            | Probe::LibcVersions(path)
            | Probe::OpensshVersion(path)
            | Probe::FileContent(path) => path.as_str(),
            _ => "",
        };
        let fact = match problems.iter().find(|(p, _)| p == path) {
            Some((_, reason)) => Fact::failed(image(probe), format!("host-root:{path}"), reason),
            None => match tree.facts.get(probe) {
                Some(fact) => Fact {
                    probe: image(probe),
                    source: format!("host-root:{}", fact.source),
                    value: fact.value.clone(),
                    error: fact.error.clone(),
                },
                None => Fact::failed(image(probe), "host-root", "not read"),
            },
        };
        facts.insert(fact);
    }
    facts
}

fn image(probe: &Probe) -> Probe {
    Probe::Image(Box::new(probe.clone()))
}

/// Copies the guest's file at `path` (links followed on the guest) to the same path under
/// `mirror`. A path that does not exist on the guest, or is not a regular file, is not copied:
/// the tree reader then finds it absent or says what it is not.
fn copy(sftp: &ssh2::Sftp, path: &str, mirror: &Path) -> Result<(), String> {
    let local = mirror.join(path.trim_start_matches('/'));
    if local.exists() || path.split('/').any(|part| part == "..") {
        return Ok(());
    }
    let Ok(stat) = sftp.stat(Path::new(path)) else {
        return Ok(());
    };
    if !stat.is_file() {
        return Ok(());
    }
    if stat.size.unwrap_or(0) > MAX_COPY {
        return Err(format!("larger than {} MiB, not read", MAX_COPY >> 20));
    }
    let mut file = sftp
        .open(Path::new(path))
        .map_err(|e| format!("cannot open it over SFTP: {}", e.message()))?;
    let mut bytes = Vec::new();
    file.by_ref()
        .take(MAX_COPY + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it over SFTP: {e}"))?;
    if bytes.len() as u64 > MAX_COPY {
        return Err(format!("larger than {} MiB, not read", MAX_COPY >> 20));
    }
    if let Some(parent) = local.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&local, bytes).map_err(|e| format!("{}: {e}", local.display()))
}
