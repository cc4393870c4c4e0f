//! Leftovers of hostcert runs that were killed (SIGKILL, the OOM killer, a machine's
//! shutdown): the folders under `TMPDIR`, and a real run's network namespaces and veth
//! interfaces, named for the process that made them ([`crate::temp`]). `hostcert clean`
//! removes them, and so does the start of every `run` and `gather` (the network objects only
//! when it may make a real run: with `--image`, as root); an object whose owner is still alive
//! is never touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::live_run::LINK_PREFIX;
use crate::temp;

/// Where `ip netns` keeps the names of network namespaces.
const NETNS_DIR: &str = "/run/netns";
/// The host's network interfaces.
const LINKS_DIR: &str = "/sys/class/net";

/// What a killed run left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// A folder under `TMPDIR`.
    Folder(PathBuf),
    /// A network namespace of a real run.
    Namespace(String),
    /// A veth interface of a real run, in this machine's namespace.
    Link(String),
}

/// One object whose owner is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The object.
    pub object: Object,
    /// The pid of the hostcert process that made it.
    pub owner: u32,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.object {
            Object::Folder(path) => write!(f, "folder {}", path.display()),
            Object::Namespace(name) => write!(f, "network namespace {name}"),
            Object::Link(name) => write!(f, "network interface {name}"),
        }?;
        write!(f, " (hostcert {} is gone)", self.owner)
    }
}

/// A namespace name of a real run, `hostcert-<pid>-<n>-srv` or `-img`: its owner.
fn namespace_owner(name: &str) -> Option<u32> {
    let owner = temp::owner(name)?;
    let rest = name.strip_prefix(&format!("{}{owner}-", temp::PREFIX))?;
    let (run, side) = rest.split_once('-')?;
    (is_number(run) && (side == "srv" || side == "img")).then_some(owner)
}

/// A veth name of a real run, `hc<pid>s` or `c`, then the run's number past the first: its
/// owner.
fn link_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(LINK_PREFIX)?;
    let (pid, side) = rest.split_at(rest.find(['s', 'c'])?);
    let run = &side[1..];
    let valid = is_number(pid) && !pid.starts_with('0') && (run.is_empty() || is_number(run));
    valid.then(|| pid.parse().ok()).flatten()
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn names_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Every object named for a hostcert process that is gone: this user's folders under
/// `TMPDIR`, and (when `network`) network namespaces and veth interfaces.
pub fn find(network: bool) -> Vec<Leftover> {
    let mut found = Vec::new();
    if network {
        for name in names_in(NETNS_DIR) {
            if let Some(owner) = namespace_owner(&name).filter(|o| temp::is_stale(*o)) {
                found.push(Leftover {
                    object: Object::Namespace(name),
                    owner,
                });
            }
        }
        for name in names_in(LINKS_DIR) {
            if let Some(owner) = link_owner(&name).filter(|o| temp::is_stale(*o)) {
                found.push(Leftover {
                    object: Object::Link(name),
                    owner,
                });
            }
        }
    }
    for (path, owner) in temp::folders() {
        if temp::is_stale(owner) {
            found.push(Leftover {
                object: Object::Folder(path),
                owner,
            });
        }
    }
    found
}

fn ip(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip (apt-get install iproute2): {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Success when `path` is gone (another hostcert removed it first), else the error.
fn gone_or(path: &Path, error: String) -> Result<String, String> {
    if path.exists() {
        Err(error)
    } else {
        Ok(String::new())
    }
}

/// Removes one leftover: a namespace's processes are killed (they are the dead run's dnsmasq,
/// DHCP client and sshd) before the namespace is deleted.
pub fn remove(leftover: &Leftover) -> Result<(), String> {
    match &leftover.object {
        Object::Folder(path) => temp::remove_folder(path),
        Object::Namespace(name) => {
            if !Path::new(NETNS_DIR).join(name).exists() {
                return Ok(());
            }
            let path = Path::new(NETNS_DIR).join(name);
            let pids = ip(&["netns", "pids", name]).or_else(|e| gone_or(&path, e))?;
            for pid in pids.split_whitespace() {
                if let Ok(pid) = pid.parse() {
                    crate::interrupt::send(pid, rustix::process::Signal::KILL, false);
                }
            }
            ip(&["netns", "delete", name])
                .map(drop)
                .or_else(|e| gone_or(&path, e).map(drop))
        }
        Object::Link(name) => {
            // Deleting a namespace takes its end of the pair, and the other end with it.
            let path = Path::new(LINKS_DIR).join(name);
            if !path.exists() {
                return Ok(());
            }
            ip(&["link", "delete", name])
                .map(drop)
                .or_else(|e| gone_or(&path, e).map(drop))
        }
    }
}

/// Removes every leftover this user may remove, namespaces first: the folders, and the network
/// objects too when `network` (and hostcert runs as root). Returns what was removed and what
/// could not be, with why.
pub fn remove_stale(network: bool) -> (Vec<Leftover>, Vec<(Leftover, String)>) {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for leftover in find(network && rustix::process::geteuid().is_root()) {
        match remove(&leftover) {
            Ok(()) => removed.push(leftover),
            Err(reason) => failed.push((leftover, reason)),
        }
    }
    (removed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_the_real_run_s_form_are_leftovers() {
        assert_eq!(namespace_owner("hostcert-1234-0-srv"), Some(1234));
        assert_eq!(namespace_owner("hostcert-1234-12-img"), Some(1234));
        assert_eq!(namespace_owner("hostcert-1234-0-other"), None);
        assert_eq!(namespace_owner("hc1234-srv"), None);
        assert_eq!(link_owner("hc1234s"), Some(1234));
        assert_eq!(link_owner("hc1234c3"), Some(1234));
        assert_eq!(link_owner("hc1234x"), None);
        assert_eq!(link_owner("hc1234s-1"), None);
        assert_eq!(link_owner("hcs"), None);
        assert_eq!(link_owner("hc01s"), None);
        assert_eq!(link_owner("vhc1234s"), None);
    }

    #[test]
    fn a_folder_of_a_process_that_is_gone_is_found_and_one_of_a_living_one_is_not() {
        let mut gone = Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        let tmp = std::env::temp_dir();
        let stale = tmp.join(format!(
            "hostcert-{gone_pid}-image-test{}",
            std::process::id()
        ));
        let living = tmp.join(format!("hostcert-1-image-test{}", std::process::id()));
        std::fs::create_dir_all(stale.join("rootfs/etc")).unwrap();
        std::fs::create_dir_all(&living).unwrap();
        let found = find(false);
        std::fs::remove_dir_all(&living).unwrap();
        let ours: Vec<&Leftover> = found
            .iter()
            .filter(|l| matches!(&l.object, Object::Folder(p) if p == &stale || p == &living))
            .collect();
        assert_eq!(ours.len(), 1, "{found:?}");
        assert_eq!(ours[0].owner, gone_pid);
        remove(ours[0]).unwrap();
        assert!(!stale.exists());
    }
}
