//! Layer contents as containers/storage gives them back: the layer's tar stream reassembled
//! from its tar-split record (`LAYER.tar-split.gz`, vbatts/tar-split's JSON entries: raw
//! segments, headers and padding, and file entries whose bytes come from the layer's folder)
//! and the files of the layer's folder (`vfs/dir/ID`, `overlay/ID/diff`). Reassembled, the
//! stream is what the layer's diff_id names, so it is measured like any layer blob.
//!
//! Read-only and bounded: every file is opened below the layer's folder one component at a
//! time without following a symbolic link, exactly the recorded number of bytes is read from
//! it (a file of another size is an error naming it), each JSON entry is at most 16 MiB and
//! the record as a whole is bounded by the layer's size. A file whose CRC-64 differs from the
//! one tar-split recorded is named (its bytes still go into the stream, so the diff_id check
//! fails as it would for any changed layer).

use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use base64::Engine as _;
use rustix::fs::{Mode, OFlags};
use serde::Deserialize;

use super::super::layout::shorten;

/// The largest JSON entry of a tar-split record.
const MAX_ENTRY: u64 = 16 << 20;

/// tar-split's CRC-64 (Go's `hash/crc64` with the ISO table).
const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO);

/// One tar-split entry.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    payload: Option<String>,
}

/// What the reader is in the middle of.
enum Current {
    None,
    Segment(Vec<u8>, usize),
    File {
        file: std::fs::File,
        name: String,
        remaining: u64,
        crc: crc::Digest<'static, u64>,
        expected: Option<u64>,
    },
}

/// The reassembled tar stream of one layer, as a reader.
pub(super) struct Assembler {
    entries: Box<dyn BufRead + Send>,
    root: OwnedFd,
    current: Current,
    /// JSON bytes still allowed.
    budget: u64,
    /// Files whose bytes are not those tar-split recorded (by CRC-64).
    pub changed: Vec<String>,
    line: Vec<u8>,
}

fn other(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

impl Assembler {
    /// Prepares to reassemble the layer recorded in `tar_split` from the files of `diff`;
    /// `size` (the layer's recorded size) bounds how much of the record is read.
    pub(super) fn open(tar_split: &Path, diff: &Path, size: u64) -> Result<Assembler, String> {
        let file = std::fs::File::open(tar_split)
            .map_err(|e| format!("cannot open {}: {e}", tar_split.display()))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(format!("{} is not a regular file", tar_split.display()));
        }
        let root = rustix::fs::open(
            diff,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("cannot open the layer's folder {}: {e}", diff.display()))?;
        Ok(Assembler {
            entries: Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
                BufReader::new(file),
            ))),
            root,
            current: Current::None,
            budget: size.saturating_mul(4).saturating_add(64 << 20),
            changed: Vec::new(),
            line: Vec::new(),
        })
    }

    /// Opens a file of the layer below its folder, one component at a time, following no link.
    fn open_member(&self, name: &str) -> std::io::Result<std::fs::File> {
        let mut parts = Vec::new();
        for component in Path::new(name).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_owned()),
                Component::CurDir | Component::RootDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(other(format!(
                        "tar-split names `{}`, a path leaving the layer",
                        shorten(name)
                    )))
                }
            }
        }
        let Some((last, dirs)) = parts.split_last() else {
            return Err(other(format!(
                "tar-split names `{}`, no file",
                shorten(name)
            )));
        };
        let mut dir: Option<OwnedFd> = None;
        for part in dirs {
            let at = dir.as_ref().unwrap_or(&self.root);
            let next = rustix::fs::openat(
                at,
                part.as_os_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| other(format!("file {}: {e}", shorten(name))))?;
            dir = Some(next);
        }
        let at = dir.as_ref().unwrap_or(&self.root);
        let fd = rustix::fs::openat(
            at,
            last.as_os_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| other(format!("file {}: {e}", shorten(name))))?;
        let file = std::fs::File::from(fd);
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(other(format!(
                "file {} is not a regular file in the layer's folder",
                shorten(name)
            )));
        }
        Ok(file)
    }

    /// Reads the next entry; `false` at the end of the record.
    fn next_entry(&mut self) -> std::io::Result<bool> {
        self.line.clear();
        let limit = MAX_ENTRY.min(self.budget) + 1;
        let read = (&mut self.entries)
            .take(limit)
            .read_until(b'\n', &mut self.line)?;
        if read == 0 {
            return Ok(false);
        }
        if read as u64 >= limit && !self.line.ends_with(b"\n") {
            return Err(other(
                "the tar-split record is larger than the layer allows".to_owned(),
            ));
        }
        self.budget = self.budget.saturating_sub(read as u64);
        let text = self.line.trim_ascii();
        if text.is_empty() {
            return Ok(true);
        }
        let entry: Entry = serde_json::from_slice(text)
            .map_err(|e| other(format!("a tar-split entry is not valid: {e}")))?;
        let decode = |b64: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| other(format!("a tar-split payload is not base64: {e}")))
        };
        match entry.kind {
            2 => {
                let payload = match &entry.payload {
                    Some(p) => decode(p)?,
                    None => Vec::new(),
                };
                self.current = Current::Segment(payload, 0);
            }
            1 => {
                let size = entry.size.unwrap_or(0);
                if size < 0 {
                    return Err(other(
                        "a tar-split file entry has a negative size".to_owned(),
                    ));
                }
                if size == 0 {
                    return Ok(true);
                }
                let name = match (&entry.name_raw, &entry.name) {
                    (Some(raw), _) if !raw.is_empty() => {
                        String::from_utf8_lossy(&decode(raw)?).into_owned()
                    }
                    (_, Some(name)) => name.clone(),
                    _ => return Err(other("a tar-split file entry has no name".to_owned())),
                };
                let file = self.open_member(&name)?;
                let on_disk = file.metadata().map(|m| m.len()).unwrap_or(0);
                if on_disk != size as u64 {
                    return Err(other(format!(
                        "file {} is {on_disk} bytes in the layer's folder, tar-split recorded {size}",
                        shorten(&name)
                    )));
                }
                let expected = match &entry.payload {
                    Some(p) => {
                        let bytes = decode(p)?;
                        <[u8; 8]>::try_from(bytes.as_slice())
                            .ok()
                            .map(u64::from_be_bytes)
                    }
                    None => None,
                };
                self.current = Current::File {
                    file,
                    name,
                    remaining: size as u64,
                    crc: CRC64.digest(),
                    expected,
                };
            }
            other_kind => {
                return Err(other(format!("unknown tar-split entry type {other_kind}")));
            }
        }
        Ok(true)
    }
}

impl Read for Assembler {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.current {
                Current::Segment(bytes, position) => {
                    if *position < bytes.len() {
                        let n = (bytes.len() - *position).min(buf.len());
                        buf[..n].copy_from_slice(&bytes[*position..*position + n]);
                        *position += n;
                        return Ok(n);
                    }
                    self.current = Current::None;
                }
                Current::File {
                    file,
                    name,
                    remaining,
                    crc,
                    expected,
                } => {
                    if *remaining > 0 {
                        let want = (*remaining).min(buf.len() as u64) as usize;
                        let n = file.read(&mut buf[..want])?;
                        if n == 0 {
                            return Err(other(format!(
                                "file {} ended before the bytes tar-split recorded",
                                shorten(name)
                            )));
                        }
                        crc.update(&buf[..n]);
                        *remaining -= n as u64;
                        return Ok(n);
                    }
                    let sum = std::mem::replace(crc, CRC64.digest()).finalize();
                    if expected.is_some_and(|e| e != sum) {
                        self.changed.push(name.clone());
                    }
                    self.current = Current::None;
                }
                Current::None => {
                    if !self.next_entry()? {
                        return Ok(0);
                    }
                }
            }
        }
    }
}
