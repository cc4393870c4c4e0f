//! Streaming digests of layer blobs: each layer is read once, in parallel across layers, in
//! fixed-size chunks (256 KiB); its compressed sha256 and size and its uncompressed sha256 (the diff_id)
//! are computed in the same pass. No layer is ever held in memory.

use std::io::Read;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::layout::{hex, Compression, Layer};

/// The chunk size reads use. Layers are read in parallel on the gather's pool (up to `--jobs`
/// threads), so two chunks per layer in flight must stay small.
const CHUNK: usize = 256 << 10;
/// Uncompressed bytes a layer may hold beyond [`MAX_RATIO`] times its compressed size.
const BOMB_SLACK: u64 = 64 << 20;
/// The largest ratio of uncompressed to compressed bytes a layer may have: more is a bomb.
pub(super) const MAX_RATIO: u64 = 200;
/// The most uncompressed bytes any layer may hold.
pub(super) const MAX_LAYER_BYTES: u64 = 64 << 30;

/// What reading one layer found.
#[derive(Debug, Clone, Default)]
pub(super) struct LayerCheck {
    /// Problems with the blob itself: missing, wrong size or sha256.
    pub blob: Vec<String>,
    /// Problems with its uncompressed content: diff_id, decompression.
    pub diff_id: Vec<String>,
}

/// The uncompressed bytes a layer may have, given its compressed size.
pub(super) fn decompressed_limit(compressed: u64) -> u64 {
    compressed
        .saturating_mul(MAX_RATIO)
        .saturating_add(BOMB_SLACK)
        .min(MAX_LAYER_BYTES)
}

/// Verifies every layer in parallel.
pub(super) fn verify_layers(layers: &[Layer]) -> Vec<LayerCheck> {
    layers.par_iter().map(verify_layer).collect()
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    /// The first error the inner reader gave.
    error: Option<String>,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
            error: None,
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(error) => {
                if error.kind() != std::io::ErrorKind::Interrupted && self.error.is_none() {
                    self.error = Some(error.to_string());
                }
                return Err(error);
            }
        };
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

fn verify_layer(layer: &Layer) -> LayerCheck {
    let file = match std::fs::File::open(&layer.path) {
        Ok(file) if file.metadata().map(|m| m.is_file()).unwrap_or(false) => file,
        Ok(_) => return LayerCheck::blob(format!("layer {}: not a regular file", layer.name)),
        Err(error) => {
            return LayerCheck::blob(format!("layer {}: missing blob ({error})", layer.name))
        }
    };
    let compressed_size = file.metadata().map(|m| m.len()).unwrap_or(0);
    judge(layer, &measure(file, layer.compression, compressed_size))
}

impl LayerCheck {
    /// A check that found one problem with the blob itself.
    pub(super) fn blob(problem: String) -> LayerCheck {
        LayerCheck {
            blob: vec![problem],
            diff_id: Vec::new(),
        }
    }
}

/// A reader that writes everything it reads into a sink: a blob measured on its way into a
/// file (a registry's layer into the cache, a store's reassembled layer into the run's folder).
pub(super) struct Tee<R: Read, W: std::io::Write> {
    pub source: R,
    pub sink: W,
}

impl<R: Read, W: std::io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.source.read(buf)?;
        self.sink
            .write_all(&buf[..n])
            .map_err(|e| std::io::Error::other(format!("cannot write the blob: {e}")))?;
        Ok(n)
    }
}

/// What one pass over a layer blob measured.
#[derive(Debug, Clone)]
pub(super) struct Measured {
    /// The blob's bytes and their sha256 (`sha256:<hex>`).
    pub size: u64,
    pub digest: String,
    /// Why reading the source stopped early, if it did (the bytes measured are then a prefix).
    pub source_error: Option<String>,
    /// The sha256 of its uncompressed content (`None` for an uncompressed layer, whose content
    /// is the blob), or why it could not be decompressed.
    pub uncompressed: Result<Option<String>, String>,
}

/// Reads a layer blob once, in [`CHUNK`]-sized reads, through a hashing reader and a bounded
/// decoder: its size and sha256, and the sha256 of its content. `compressed_size` bounds the
/// decompression (see [`decompressed_limit`]). Any source works: a blob file, or a registry's
/// response body on its way into the cache.
pub(super) fn measure<R: Read>(
    source: R,
    compression: Compression,
    compressed_size: u64,
) -> Measured {
    measure_in(source, compression, compressed_size, CHUNK)
}

/// [`measure`] in `chunk`-sized reads: smaller for a stream that is also written to a file, so
/// that each chunk is hashed, decompressed and written while it is still in the CPU's cache.
pub(super) fn measure_in<R: Read>(
    source: R,
    compression: Compression,
    compressed_size: u64,
    chunk: usize,
) -> Measured {
    let mut raw = Hashing::new(std::io::BufReader::with_capacity(
        chunk,
        crate::interrupt::Stopping(source),
    ));
    let mut buffer = vec![0u8; chunk];
    let limit = decompressed_limit(compressed_size);
    let uncompressed = match compression {
        Compression::None => drain(&mut raw, &mut buffer, u64::MAX).map(|_| None),
        Compression::Gzip => {
            let mut decoder = Hashing::new(flate2::read::MultiGzDecoder::new(&mut raw));
            drain(&mut decoder, &mut buffer, limit)
                .map(|()| Some(format!("sha256:{}", hex(&decoder.hasher.finalize()))))
        }
        Compression::Zstd => {
            let mut decoder = Hashing::new(ZstdFrames::new(std::io::BufReader::with_capacity(
                chunk, &mut raw,
            )));
            drain(&mut decoder, &mut buffer, limit)
                .map(|()| Some(format!("sha256:{}", hex(&decoder.hasher.finalize()))))
        }
    };
    // The blob's own digest needs the rest of the bytes (after the compressed stream, or after
    // decompression failed).
    let rest = drain(&mut raw, &mut buffer, u64::MAX);
    let uncompressed = match (uncompressed, rest) {
        (Ok(_), Err(reason)) if compression != Compression::None => Err(reason),
        (result, _) => result,
    };
    Measured {
        size: raw.count,
        source_error: raw.error.take(),
        digest: format!("sha256:{}", hex(&raw.hasher.finalize())),
        uncompressed,
    }
}

/// Judges what was measured against the layer's descriptor (size, digest) and the config's
/// diff_id.
pub(super) fn judge(layer: &Layer, measured: &Measured) -> LayerCheck {
    let mut check = LayerCheck::default();
    if let Err(reason) = &measured.uncompressed {
        check
            .diff_id
            .push(format!("layer {}: {reason}", layer.name));
    }
    if let Some(size) = layer.size {
        if size != measured.size {
            check.blob.push(format!(
                "layer {}: {} bytes, the descriptor says {size}",
                layer.name, measured.size
            ));
        }
    }
    if let Some(expected) = &layer.digest {
        if expected.to_string() != measured.digest {
            check.blob.push(format!(
                "layer {}: its sha256 is {}",
                layer.name, measured.digest
            ));
        }
    }
    let content = match (layer.compression, &measured.uncompressed) {
        (Compression::None, _) => Some(measured.digest.clone()),
        (_, Ok(content)) => content.clone(),
        (_, Err(_)) => None,
    };
    match (&layer.diff_id, content) {
        (None, _) => check.diff_id.push(format!(
            "layer {}: the config has no diff_id for it",
            layer.name
        )),
        (Some(diff_id), Some(content)) if *diff_id != content => check.diff_id.push(format!(
            "layer {}: its uncompressed sha256 is {content}, the config's diff_id is {}",
            layer.name,
            super::layout::shorten(diff_id)
        )),
        _ => {}
    }
    check
}

/// The largest zstd window accepted: the decoder keeps a window in memory.
const MAX_ZSTD_WINDOW: u64 = 32 << 20;

/// A zstd stream of one or more frames, decoded with the pure-Rust `ruzstd`; a frame whose
/// window is larger than [`MAX_ZSTD_WINDOW`] is refused before anything is allocated for it.
pub(super) struct ZstdFrames<R: std::io::BufRead> {
    decoder: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
    source: Option<R>,
}

impl<R: std::io::BufRead> ZstdFrames<R> {
    pub(super) fn new(source: R) -> ZstdFrames<R> {
        ZstdFrames {
            decoder: None,
            source: Some(source),
        }
    }
}

/// The window a zstd frame header asks for, when the header is in `bytes`.
fn zstd_window(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < 6 || bytes[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return None;
    }
    let descriptor = bytes[4];
    if descriptor & 0x20 != 0 {
        // Single segment: the window is the content size, which follows.
        let size_bytes = match descriptor >> 6 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let dictionary_bytes = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
        let start = 5 + dictionary_bytes;
        let field = bytes.get(start..start + size_bytes)?;
        let mut size: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            size |= u64::from(*b) << (8 * i);
        }
        return Some(if size_bytes == 2 { size + 256 } else { size });
    }
    let window = bytes[5];
    let log = 10 + u64::from(window >> 3);
    let base = 1u64 << log.min(62);
    Some(base + (base / 8) * u64::from(window & 7))
}

impl<R: std::io::BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(decoder) = &mut self.decoder {
                let n = decoder.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let decoder = self.decoder.take().expect("a decoder");
                self.source = Some(decoder.into_inner());
            }
            let Some(mut source) = self.source.take() else {
                return Ok(0);
            };
            let head = source.fill_buf()?;
            if head.is_empty() {
                return Ok(0);
            }
            if let Some(window) = zstd_window(head) {
                if window > MAX_ZSTD_WINDOW {
                    return Err(std::io::Error::other(format!(
                        "a zstd frame asks for a {} MiB window, more than the {} MiB hostcert allows",
                        window >> 20,
                        MAX_ZSTD_WINDOW >> 20
                    )));
                }
            }
            let decoder = ruzstd::decoding::StreamingDecoder::new(source)
                .map_err(|e| std::io::Error::other(format!("not zstd: {e}")))?;
            self.decoder = Some(decoder);
        }
    }
}

/// Reads to the end in chunks, refusing more than `limit` bytes.
fn drain<R: Read>(reader: &mut R, buffer: &mut [u8], limit: u64) -> Result<(), String> {
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("cannot decompress: {error}")),
        };
        total += n as u64;
        if total > limit {
            return Err(format!(
                "decompresses to more than {limit} bytes (over {MAX_RATIO} times its size): refused as a decompression bomb"
            ));
        }
    }
}
