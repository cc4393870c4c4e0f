//! The machine hostcert runs on.

use super::host::HostFs;
use super::{Gathered, Target, TargetError};
use crate::facts::ProbeSet;
use crate::model::TargetKind;

/// This machine, read through its own filesystem, `/proc`, `/sys` and commands.
#[derive(Debug, Default)]
pub struct LocalTarget {
    host: HostFs,
}

impl LocalTarget {
    /// The local machine.
    pub fn new() -> LocalTarget {
        LocalTarget {
            host: HostFs::live_root(),
        }
    }
}

impl Target for LocalTarget {
    fn name(&self) -> &str {
        "local"
    }

    fn kind(&self) -> TargetKind {
        TargetKind::Local
    }

    fn address(&self) -> &str {
        "local"
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        Ok(self.host.gather(probes))
    }
}
