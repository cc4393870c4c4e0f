//! Entry points of the fuzz targets (`harness/fuzz`) into the readers [`crate::targets`] keeps
//! private. Built only with the `fuzzing` feature; [`crate::fuzz`] is what the targets call.

use crate::model::Probe;

use super::elf;
use super::kconfig::{symbol_fact, KernelConfig};

/// A kernel config's bytes (plain or gzip) read as every target reads one, then every question
/// a run asks of it.
pub(crate) fn kernel_config(data: &[u8]) {
    let config = KernelConfig::from_bytes(data, "fuzz.config");
    if let Ok(config) = &config {
        let _ = config.ensure_full();
        let _ = config.header_version();
        let _ = config.architecture();
    }
    for symbol in ["NET_NS", "X86_64", "CMDLINE", "LOCALVERSION"] {
        let probe = Probe::KernelConfig(symbol.to_owned());
        let _ = symbol_fact(&config, &probe, symbol);
    }
}

/// A file's bytes read as the `elf`, `libc-versions` and `openssh-version` probes read them.
pub(crate) fn elf(data: &[u8]) {
    if let Ok(info) = elf::parse(data) {
        let candidates = elf::libc_candidates(&info);
        let _ = info.record(Some(!candidates.is_empty()), candidates.first().cloned());
        let _ = info.libc_record();
        let _ = info.is_static();
    }
    let _ = elf::openssh_version(data);
}
