//! The machine hostcert runs on, and (`host-root:DIR`) the host whose root is mounted at `DIR`
//! of the container hostcert runs in: the node-local mode of a Kubernetes Job or DaemonSet.

use super::host::HostFs;
use std::path::Path;

use super::{Gathered, Target, TargetError};
use crate::facts::ProbeSet;
use crate::model::TargetKind;

/// This machine, read through its own filesystem, `/proc`, `/sys` and commands.
#[derive(Debug)]
pub struct LocalTarget {
    host: HostFs,
    name: String,
    address: String,
}

impl Default for LocalTarget {
    fn default() -> Self {
        LocalTarget::new()
    }
}

impl LocalTarget {
    /// The local machine.
    pub fn new() -> LocalTarget {
        LocalTarget {
            host: HostFs::live_root(),
            name: "local".to_owned(),
            address: "local".to_owned(),
        }
    }

    /// The running host whose root folder is mounted at `dir` (`host-root:/host`): its files are
    /// read inside `dir` (every link resolved inside it, as in an OS tree), its kernel's facts
    /// from this process's /proc and /sys, which are the host's when the pod shares the host's
    /// PID and network namespaces (hostPID, hostNetwork), its mount table from /proc/1/mountinfo.
    /// Nothing is run on the host; `command` probes fail. The target is named `host-root` and
    /// judged as a `local` target.
    pub fn host_root(dir: &Path) -> Result<LocalTarget, TargetError> {
        let address = format!("host-root:{}", dir.display());
        let metadata = std::fs::metadata(dir).map_err(|e| TargetError {
            target: address.clone(),
            reason: format!("cannot read the host's root folder: {e}"),
        })?;
        if !metadata.is_dir() {
            return Err(TargetError {
                target: address,
                reason: "not a folder (mount the host's / there: hostPath /, mountPath /host)"
                    .to_owned(),
            });
        }
        Ok(LocalTarget {
            host: HostFs::host_root(dir.to_owned()),
            name: "host-root".to_owned(),
            address,
        })
    }
}

impl Target for LocalTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TargetKind {
        TargetKind::Local
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        Ok(self.host.gather(probes))
    }
}
