//! The report formats: one registry of the files a run writes and `hostcert report` renders
//! again, each a name (the option that names its file, `--json`), a default file name, and a
//! renderer, with one options struct ([`RenderOptions`]) shared by all of them.
//!
//! Every renderer writes to a stream as it reads a [`ReportView`] target by target, so none
//! holds a whole rendering (or the whole report) in memory. A new format is one module with a
//! [`Renderer`] and its [`Format`], listed in [`FORMATS`]: the command line, the default files
//! of `run`, `report` and `report merge`, and the summary's list of files follow.

use std::io::Write;

use crate::{RenderOptions, ReportView};

/// Turns a report into one format, writing as it reads.
pub trait Renderer: Sync {
    /// Writes `view` to `out`.
    fn render(
        &self,
        view: &ReportView<'_>,
        options: &RenderOptions,
        out: &mut dyn Write,
    ) -> std::io::Result<()>;
}

/// One report format.
pub struct Format {
    /// Its name, and the option that names its file (`json`: `--json FILE`).
    pub name: &'static str,
    /// The file `run` writes it to in its report folder.
    pub file: &'static str,
    /// What it is, for help texts: `the JSON report`.
    pub what: &'static str,
    /// Whether `-` (standard output) may be given as its file.
    pub takes_dash: bool,
    /// Its renderer.
    pub renderer: &'static dyn Renderer,
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Format {
    /// Renders `view` into a string (for tests and small reports).
    pub fn render_to_string(&self, view: &ReportView<'_>, options: &RenderOptions) -> String {
        let mut bytes = Vec::new();
        self.renderer
            .render(view, options, &mut bytes)
            .expect("a report in memory renders into memory");
        String::from_utf8(bytes).expect("renderers write UTF-8")
    }
}

/// Every format, in the order a run writes them.
pub static FORMATS: [&Format; 4] = [
    &crate::json::FORMAT,
    &crate::junit::FORMAT,
    &crate::html::FORMAT,
    &crate::markdown::FORMAT,
];

/// The format named `name`.
pub fn by_name(name: &str) -> Option<&'static Format> {
    FORMATS.iter().copied().find(|f| f.name == name)
}

/// A writer that also counts and hashes what goes through it (the JSON report's digest, which
/// a signed bundle names, is taken as it is written).
pub struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> Hashing<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Hashing<W> {
        use sha2::Digest;
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    /// `sha256:<hex>` of everything written.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let digest = self.hasher.clone().finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
