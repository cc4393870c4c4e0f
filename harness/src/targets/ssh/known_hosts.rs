//! known_hosts as OpenSSH reads and writes it (`hostfile.c`, `match.c` and `check_host_key` in
//! `sshconnect.c` of OpenSSH 9.2), so that hostcert trusts a host exactly when
//! `ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=FILE` would:
//!
//! - a line is `[@marker] hosts keytype base64 [comment]`; blank lines and `#` comments are
//!   skipped, and so is every line OpenSSH cannot parse (an unknown marker, a bad hash, a key
//!   whose type or encoding is wrong);
//! - `hosts` is a hashed name (`|1|salt|hmac-sha1`, one name) or a comma-separated list of
//!   patterns with `*` and `?`, compared in lower case, where a matching `!pattern` excludes the
//!   host whatever else matches;
//! - the name looked up is `host`, or `[host]:port` when the port is not 22; when nothing at all
//!   is known for `[host]:port`, a key listed for the bare `host` is trusted too;
//! - a key listed under `@revoked` for the host is refused, even when another line lists it;
//! - `@cert-authority` lines name certificate authorities, not host keys: a key listed only
//!   there is not trusted. hostcert negotiates plain host keys only and does not verify host
//!   certificates, so such a host is refused with a message saying so.
//!
//! The host key algorithm is negotiated as `ssh` does (`order_hostkeyalgs`): the algorithms of
//! the keys known for the host first, so that a host with several keys offers the one listed.
//! New keys are appended as `ssh -o StrictHostKeyChecking=accept-new` appends them: one line at
//! the end of the file, the bytes before it untouched.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use base64::Engine;
use hmac::Mac;

/// The largest known_hosts file hostcert reads.
pub const MAX_KNOWN_HOSTS_BYTES: u64 = 64 << 20;

/// The host key algorithms hostcert offers, in OpenSSH's default order (`HostKeyAlgorithms`
/// without certificates, security keys and SHA-1 `ssh-rsa`, which OpenSSH no longer offers).
const ALGORITHMS: [(&str, Base); 6] = [
    ("ssh-ed25519", Base::Ed25519),
    ("ecdsa-sha2-nistp256", Base::Ecdsa(Curve::P256)),
    ("ecdsa-sha2-nistp384", Base::Ecdsa(Curve::P384)),
    ("ecdsa-sha2-nistp521", Base::Ecdsa(Curve::P521)),
    ("rsa-sha2-512", Base::Rsa),
    ("rsa-sha2-256", Base::Rsa),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    CertAuthority,
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn name(self) -> &'static [u8] {
        match self {
            Curve::P256 => b"nistp256",
            Curve::P384 => b"nistp384",
            Curve::P521 => b"nistp521",
        }
    }

    /// The length of an uncompressed point.
    fn point_len(self) -> usize {
        match self {
            Curve::P256 => 65,
            Curve::P384 => 97,
            Curve::P521 => 133,
        }
    }
}

/// A key's type without its certificate-ness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Ed25519,
    Ed25519Sk,
    Ecdsa(Curve),
    EcdsaSk,
    Rsa,
    Dsa,
}

/// A key type as OpenSSH names it (`sshkey.c`'s `keyimpls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyType {
    base: Base,
    cert: bool,
}

impl KeyType {
    /// `sshkey_type_from_name`: full names, and the short names of plain types in any case.
    fn from_name(name: &[u8]) -> Option<KeyType> {
        let plain = |base| Some(KeyType { base, cert: false });
        KeyType::from_full_name(name).or_else(|| match name.to_ascii_uppercase().as_slice() {
            b"ED25519" => plain(Base::Ed25519),
            b"ED25519-SK" => plain(Base::Ed25519Sk),
            b"ECDSA-SK" => plain(Base::EcdsaSk),
            b"RSA" => plain(Base::Rsa),
            b"DSA" => plain(Base::Dsa),
            _ => None,
        })
    }

    /// `peek_type_nid`: the full names only, as a known_hosts line must spell them.
    fn from_full_name(name: &[u8]) -> Option<KeyType> {
        let plain = |base| Some(KeyType { base, cert: false });
        let cert = |base| Some(KeyType { base, cert: true });
        match name {
            b"ssh-ed25519" => plain(Base::Ed25519),
            b"ssh-ed25519-cert-v01@openssh.com" => cert(Base::Ed25519),
            b"sk-ssh-ed25519@openssh.com" => plain(Base::Ed25519Sk),
            b"sk-ssh-ed25519-cert-v01@openssh.com" => cert(Base::Ed25519Sk),
            b"ecdsa-sha2-nistp256" => plain(Base::Ecdsa(Curve::P256)),
            b"ecdsa-sha2-nistp384" => plain(Base::Ecdsa(Curve::P384)),
            b"ecdsa-sha2-nistp521" => plain(Base::Ecdsa(Curve::P521)),
            b"ecdsa-sha2-nistp256-cert-v01@openssh.com" => cert(Base::Ecdsa(Curve::P256)),
            b"ecdsa-sha2-nistp384-cert-v01@openssh.com" => cert(Base::Ecdsa(Curve::P384)),
            b"ecdsa-sha2-nistp521-cert-v01@openssh.com" => cert(Base::Ecdsa(Curve::P521)),
            b"sk-ecdsa-sha2-nistp256@openssh.com"
            | b"webauthn-sk-ecdsa-sha2-nistp256@openssh.com" => plain(Base::EcdsaSk),
            b"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com" => cert(Base::EcdsaSk),
            b"ssh-dss" => plain(Base::Dsa),
            b"ssh-dss-cert-v01@openssh.com" => cert(Base::Dsa),
            b"ssh-rsa" | b"rsa-sha2-256" | b"rsa-sha2-512" => plain(Base::Rsa),
            b"ssh-rsa-cert-v01@openssh.com"
            | b"rsa-sha2-256-cert-v01@openssh.com"
            | b"rsa-sha2-512-cert-v01@openssh.com" => cert(Base::Rsa),
            _ => None,
        }
    }
}

/// A public key: its type and its key material in a canonical form (integers without leading
/// zeros), so that two encodings of one key compare equal, as `sshkey_equal_public` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_type: KeyType,
    material: Vec<u8>,
}

impl PublicKey {
    /// Parses a key blob (the SSH wire encoding) as `sshkey_from_blob` does; `None` when
    /// OpenSSH would refuse it.
    pub fn from_blob(blob: &[u8]) -> Option<PublicKey> {
        let mut reader = Reader(blob);
        let key_type = KeyType::from_name(reader.string()?)?;
        if key_type.cert {
            reader.string()?; // the nonce
        }
        let mut material = Vec::new();
        let mut put = |bytes: &[u8]| {
            material.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            material.extend_from_slice(bytes);
        };
        match key_type.base {
            Base::Ed25519 | Base::Ed25519Sk => {
                let key = reader.string()?;
                if key.len() != 32 {
                    return None;
                }
                put(key);
            }
            Base::Ecdsa(curve) => {
                if reader.string()? != curve.name() {
                    return None;
                }
                let point = reader.string()?;
                if !valid_point(curve, point) {
                    return None;
                }
                put(point);
            }
            Base::EcdsaSk => {
                if reader.string()? != Curve::P256.name() {
                    return None;
                }
                let point = reader.string()?;
                if !valid_point(Curve::P256, point) {
                    return None;
                }
                put(point);
            }
            Base::Rsa => {
                let e = reader.mpint()?;
                let n = reader.mpint()?;
                // Leading zeros are dropped: the first byte is non-zero, or there is none.
                let bits = n
                    .first()
                    .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
                if !(1024..=16384).contains(&bits) {
                    return None;
                }
                put(e);
                put(n);
            }
            Base::Dsa => {
                for _ in 0..4 {
                    put(reader.mpint()?);
                }
            }
        }
        if key_type.base == Base::Ed25519Sk || key_type.base == Base::EcdsaSk {
            put(reader.string()?); // the application
        }
        // A certificate's remaining fields are not read: a certificate line is never a plain
        // host key, and only its public key matters to `@revoked`.
        if !key_type.cert && !reader.0.is_empty() {
            return None;
        }
        Some(PublicKey { key_type, material })
    }

    /// `sshkey_equal`: the same type (a certificate never equals a plain key) and key.
    fn equal(&self, other: &PublicKey) -> bool {
        self.key_type == other.key_type && self.material == other.material
    }

    /// `sshkey_equal_public`: the same key, certificate or not.
    fn equal_public(&self, other: &PublicKey) -> bool {
        self.key_type.base == other.key_type.base && self.material == other.material
    }
}

/// An uncompressed point of the right length; on P-256 also on the curve (OpenSSH validates
/// every curve; a key that fails is a line it skips).
fn valid_point(curve: Curve, point: &[u8]) -> bool {
    if point.len() != curve.point_len() || point[0] != 4 {
        return false;
    }
    curve != Curve::P256 || p256::PublicKey::from_sec1_bytes(point).is_ok()
}

/// Reads SSH wire types.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        let length = u32::from_be_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        let value = self.0.get(4..4 + length)?;
        self.0 = &self.0[4 + length..];
        Some(value)
    }

    /// An mpint as `sshbuf_get_bignum2`: not negative, at most 16384 bits, leading zeros
    /// dropped.
    fn mpint(&mut self) -> Option<&'a [u8]> {
        let mut value = self.string()?;
        if value.first().is_some_and(|b| b & 0x80 != 0) {
            return None;
        }
        if value.len() > 2049 || (value.len() == 2049 && value[0] != 0) {
            return None;
        }
        while let [0, rest @ ..] = value {
            value = rest;
        }
        Some(value)
    }
}

/// One line of known_hosts that names the host looked up.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    marker: Marker,
    key: PublicKey,
}

/// The lines of one known_hosts file that name one host (`load_hostkeys`).
#[derive(Debug, Clone, Default)]
pub struct HostKeys {
    entries: Vec<Entry>,
}

/// What known_hosts says about a host's key (`HostStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The key is listed for the host (at this line).
    Trusted(usize),
    /// No key is listed for the host; `ca_line` is a `@cert-authority` line for it, if any.
    Unknown { ca_line: Option<usize> },
    /// Another key is listed for the host (at this line).
    Changed(usize),
    /// The key is listed under `@revoked` (at this line).
    Revoked(usize),
}

impl HostKeys {
    /// `check_hostkeys_by_key_or_type` for a plain key.
    fn check(&self, key: &PublicKey) -> Status {
        let mut status = Status::Unknown { ca_line: None };
        for entry in self.entries.iter().filter(|e| e.marker == Marker::None) {
            if entry.key.equal(key) {
                status = Status::Trusted(entry.line);
                break;
            }
            status = Status::Changed(entry.line);
        }
        if let Some(revoked) = self
            .entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key.equal_public(key))
        {
            return Status::Revoked(revoked.line);
        }
        if let Status::Unknown { .. } = status {
            let ca_line = self
                .entries
                .iter()
                .find(|e| e.marker == Marker::CertAuthority)
                .map(|e| e.line);
            return Status::Unknown { ca_line };
        }
        status
    }

    /// `lookup_key_in_hostkeys_by_type`: a plain key of this type is listed.
    fn lists_type(&self, base: Base) -> bool {
        self.entries.iter().any(|e| {
            e.marker == Marker::None && !e.key.key_type.cert && e.key.key_type.base == base
        })
    }

    /// The host key algorithms to offer, best first, as `order_hostkeyalgs` orders them:
    /// OpenSSH's order when a key of its first algorithm's type is known, else the algorithms of
    /// the known keys first.
    pub fn algorithms(&self) -> String {
        let names = if self.lists_type(ALGORITHMS[0].1) {
            ALGORITHMS.iter().map(|(name, _)| *name).collect::<Vec<_>>()
        } else {
            let (known, rest): (Vec<_>, Vec<_>) = ALGORITHMS
                .iter()
                .partition(|(_, base)| self.lists_type(*base));
            known.iter().chain(&rest).map(|(name, _)| *name).collect()
        };
        names.join(",")
    }
}

/// The name known_hosts lists a host under (`put_host_port`): `host`, or `[host]:port` when the
/// port is not 22, in lower case.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The lines of known_hosts that name the host, read for `host:port` and, when the port is not
/// 22, for the bare `host` too.
#[derive(Debug, Clone, Default)]
pub struct Known {
    with_port: HostKeys,
    bare: Option<HostKeys>,
}

impl Known {
    /// Reads `path` (a missing file knows nothing) for `host` and `port`.
    pub fn read(path: &Path, host: &str, port: u16) -> Result<Known, String> {
        let mut collector = Collector::new(host, port);
        let Some(file) = open_regular(path)? else {
            return Ok(collector.finish());
        };
        let mut reader = BufReader::new(file.take(MAX_KNOWN_HOSTS_BYTES));
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("cannot read known_hosts {}: {e}", path.display()))?;
            if read == 0 {
                break;
            }
            collector.line(&line);
        }
        Ok(collector.finish())
    }

    /// Reads known_hosts text for `host` and `port`.
    #[cfg(test)]
    fn parse(text: &[u8], host: &str, port: u16) -> Known {
        let mut collector = Collector::new(host, port);
        for line in text.split_inclusive(|b| *b == b'\n') {
            collector.line(line);
        }
        collector.finish()
    }

    /// The host key algorithms to offer this host, best first.
    pub fn algorithms(&self) -> String {
        self.with_port.algorithms()
    }

    /// Whether the key `blob` is trusted for the host (`check_host_key`): a key unknown under
    /// `[host]:port` is looked up under `host` too, and trusted if listed there.
    pub fn check(&self, blob: &[u8]) -> Status {
        let Some(key) = PublicKey::from_blob(blob) else {
            return Status::Unknown { ca_line: None };
        };
        let status = self.with_port.check(&key);
        if let (Status::Unknown { .. }, Some(bare)) = (&status, &self.bare) {
            if let Status::Trusted(line) = bare.check(&key) {
                return Status::Trusted(line);
            }
        }
        status
    }
}

/// Collects, line by line, the entries for the names a host is looked up under.
struct Collector {
    names: Vec<String>,
    found: Vec<HostKeys>,
    number: usize,
}

impl Collector {
    fn new(host: &str, port: u16) -> Collector {
        let mut names = vec![lookup_name(host, port)];
        if port != 22 {
            names.push(lookup_name(host, 22));
        }
        Collector {
            found: vec![HostKeys::default(); names.len()],
            names,
            number: 0,
        }
    }

    fn line(&mut self, line: &[u8]) {
        self.number += 1;
        for (name, keys) in self.names.iter().zip(self.found.iter_mut()) {
            if let Some(entry) = parse_line(line, name.as_bytes(), self.number) {
                keys.entries.push(entry);
            }
        }
    }

    fn finish(self) -> Known {
        let mut found = self.found.into_iter();
        Known {
            with_port: found.next().unwrap_or_default(),
            bare: found.next(),
        }
    }
}

/// Opens a file to read only if it is a regular file (following links, as `ssh` does); `None`
/// when it does not exist. Opening does not block on a FIFO.
fn open_regular(path: &Path) -> Result<Option<File>, String> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(format!(
                "cannot read known_hosts {}: {error}",
                path.display()
            ))
        }
    };
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot read known_hosts {}: {e}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!(
            "known_hosts {} is not a regular file",
            path.display()
        ));
    }
    if metadata.len() > MAX_KNOWN_HOSTS_BYTES {
        return Err(format!(
            "known_hosts {} is {} bytes, more than the {} MiB hostcert reads",
            path.display(),
            metadata.len(),
            MAX_KNOWN_HOSTS_BYTES >> 20
        ));
    }
    Ok(Some(file))
}

/// One line as `hostkeys_foreach_file` reads it for `host`: the entry when the line names the
/// host and parses, `None` for comments, blank lines, other hosts and lines OpenSSH skips.
fn parse_line(line: &[u8], host: &[u8], number: usize) -> Option<Entry> {
    // getline's buffer with its terminating NUL; OpenSSH ends the line at its first newline or
    // NUL, then reads it as C strings: a NUL ends the host names like a blank, and the key is
    // read up to the next NUL.
    let mut buffer = line.to_vec();
    buffer.push(0);
    let cut = buffer.iter().position(|b| *b == b'\n' || *b == 0)?;
    buffer[cut] = 0;
    let c_string = |from: usize| -> &[u8] {
        let rest = buffer.get(from..).unwrap_or_default();
        &rest[..rest.iter().position(|b| *b == 0).unwrap_or(rest.len())]
    };
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = buffer.iter().position(|b| !blank(b))?;
    if buffer[start] == 0 || buffer[start] == b'#' {
        return None;
    }
    let mut rest = c_string(start);
    let marker = markers(&mut rest)?;
    let hosts_start = start + (c_string(start).len() - rest.len());
    let hosts_end = hosts_start
        + buffer[hosts_start..]
            .iter()
            .position(|b| *b == 0 || blank(b))?;
    if !matches_maybe_hashed(host, &buffer[hosts_start..hosts_end]) {
        return None;
    }
    // The byte after the names is skipped whatever it was (a blank, or the NUL that ended the
    // line: then what follows is not the line's, and the line is truncated).
    if hosts_end + 1 >= buffer.len() {
        return None;
    }
    let key_text = skip(c_string(hosts_end + 1), blank);
    if key_text.is_empty() || key_text[0] == b'#' {
        return None;
    }
    let key = read_key(key_text)?;
    Some(Entry {
        line: number,
        marker,
        key,
    })
}

fn skip(bytes: &[u8], what: impl Fn(&u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|b| !what(b)).unwrap_or(bytes.len());
    &bytes[start..]
}

/// `check_markers`: at most one `@cert-authority` or `@revoked`; anything else starting with
/// `@` makes the line invalid.
fn markers(rest: &mut &[u8]) -> Option<Marker> {
    let mut marker = Marker::None;
    while rest.first() == Some(&b'@') {
        if marker != Marker::None {
            return None;
        }
        // The marker ends at the first space of the line, else at its first tab.
        let end = rest
            .iter()
            .position(|b| *b == b' ')
            .or_else(|| rest.iter().position(|b| *b == b'\t'))?;
        if end <= 1 || end >= 32 {
            return None;
        }
        marker = match &rest[..end] {
            b"@cert-authority" => Marker::CertAuthority,
            b"@revoked" => Marker::Revoked,
            _ => return None,
        };
        *rest = skip(&rest[end..], |b| *b == b' ' || *b == b'\t');
    }
    Some(marker)
}

/// `match_maybe_hashed`: a hashed name (`|1|salt|hash`) is one host; anything else is a
/// pattern list.
fn matches_maybe_hashed(host: &[u8], names: &[u8]) -> bool {
    if names.first() == Some(&b'|') {
        return hashed_name(host, names).is_some_and(|hashed| hashed.as_bytes() == names);
    }
    match_pattern_list(&host.to_ascii_lowercase(), names) == 1
}

/// `host_hash` with the salt of `names` (`|1|base64(salt)|base64(hmac)`); `None` when the salt
/// is not 20 bytes of base64.
fn hashed_name(host: &[u8], names: &[u8]) -> Option<String> {
    let rest = names.strip_prefix(b"|1|")?;
    let end = rest.iter().position(|b| *b == b'|')?;
    if end == 0 || end > 1024 {
        return None;
    }
    let salt = decode_base64(&rest[..end])?;
    if salt.len() != 20 {
        return None;
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).ok()?;
    mac.update(host);
    let engine = &base64::engine::general_purpose::STANDARD;
    Some(format!(
        "|1|{}|{}",
        engine.encode(&salt),
        engine.encode(mac.finalize().into_bytes())
    ))
}

/// Base64 as `b64_pton` reads it: whitespace anywhere is ignored, padding is required.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != 0x0b)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// `match_pattern_list` with lower-cased patterns: 1 when a pattern matches, -1 when a negated
/// one does (which wins), 0 otherwise. A pattern of 1023 bytes or more fails the whole list.
fn match_pattern_list(host: &[u8], patterns: &[u8]) -> i32 {
    let mut positive = 0;
    let mut at = 0;
    while at < patterns.len() {
        let negated = patterns[at] == b'!';
        if negated {
            at += 1;
        }
        let end = patterns[at..]
            .iter()
            .position(|b| *b == b',')
            .map_or(patterns.len(), |p| at + p);
        let pattern = patterns[at..end].to_ascii_lowercase();
        if pattern.len() >= 1023 {
            return 0;
        }
        at = if end < patterns.len() { end + 1 } else { end };
        if match_pattern(host, &pattern) {
            if negated {
                return -1;
            }
            positive = 1;
        }
    }
    positive
}

/// `match_pattern`: `*` matches any run of bytes, `?` one byte (iteratively, so that no
/// pattern makes it slow).
fn match_pattern(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// `sshkey_read`: `type base64 [comment]`, the blob's type equal to the named one.
fn read_key(text: &[u8]) -> Option<PublicKey> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let end = text.iter().position(blank)?;
    let named = KeyType::from_full_name(&text[..end])?;
    let rest = skip(&text[end..], blank);
    if rest.is_empty() {
        return None;
    }
    let end = rest.iter().position(blank).unwrap_or(rest.len());
    let key = PublicKey::from_blob(&decode_base64(&rest[..end])?)?;
    if key.key_type != named {
        return None;
    }
    Some(key)
}

/// Appends the line `name keytype base64` for a key, as `ssh -o StrictHostKeyChecking=accept-new`
/// does: a newline first when the file does not end with one, the bytes before it untouched,
/// in one write. The file is created when missing; a symbolic link, a FIFO or anything but a
/// regular file is refused, never written through.
pub fn append(path: &Path, host: &str, port: u16, blob: &[u8]) -> Result<(), String> {
    if let Some(bad) = host
        .chars()
        .find(|c| "@?*#[]|'\"\\".contains(*c) || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "will not record the host name `{host}` in known_hosts {}: it contains `{bad}`",
            path.display()
        ));
    }
    let key_type = Reader(blob)
        .string()
        .and_then(|t| std::str::from_utf8(t).ok())
        .ok_or_else(|| "the host key has no type".to_owned())?;
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return Err(format!(
                "known_hosts {} is a symbolic link: hostcert appends host keys only to a regular file, never through a link (give the link's target with --known-hosts)",
                path.display()
            ))
        }
        Ok(metadata) if !metadata.is_file() => {
            return Err(format!(
                "known_hosts {} is not a regular file: hostcert does not write to it",
                path.display()
            ))
        }
        _ => {}
    }
    let flags =
        rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot open known_hosts {} to append: {e}", path.display()))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot append to known_hosts {}: {e}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!(
            "known_hosts {} is not a regular file: hostcert does not write to it",
            path.display()
        ));
    }
    let mut text = Vec::new();
    if metadata.len() > 0 {
        let mut last = [0u8];
        file.read_exact_at(&mut last, metadata.len() - 1)
            .map_err(|e| format!("cannot read known_hosts {}: {e}", path.display()))?;
        if last[0] != b'\n' {
            text.push(b'\n');
        }
    }
    text.extend_from_slice(
        format!(
            "{} {key_type} {}\n",
            lookup_name(host, port),
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
        .as_bytes(),
    );
    file.write_all(&text)
        .map_err(|e| format!("cannot append to known_hosts {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(key_type: &str, fields: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for field in std::iter::once(key_type.as_bytes()).chain(fields.iter().copied()) {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        out
    }

    fn ed25519(byte: u8) -> Vec<u8> {
        blob("ssh-ed25519", &[&[byte; 32]])
    }

    fn line(names: &str, key: &[u8]) -> String {
        format!(
            "{names} ssh-ed25519 {}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    }

    #[test]
    fn patterns_as_match_c() {
        assert!(match_pattern(b"a.example.com", b"*.example.com"));
        assert!(!match_pattern(b"example.com", b"*.example.com"));
        assert!(match_pattern(b"h1", b"h?"));
        assert!(!match_pattern(b"h10", b"h?"));
        assert!(match_pattern(b"", b""));
        assert!(match_pattern(b"", b"**"));
        assert!(match_pattern(b"aaa", b"*a*a*a"));
        assert!(match_pattern(b"a*", b"a*"));
        assert!(!match_pattern(b"a", b"a?"));
        assert!(!match_pattern(b"aa", b"*a*a*a"));
        assert_eq!(
            match_pattern_list(b"bad.example.com", b"*.example.com,!bad.example.com"),
            -1
        );
        assert_eq!(
            match_pattern_list(b"ok.example.com", b"*.example.com,!bad.example.com"),
            1
        );
        assert_eq!(match_pattern_list(b"host", b"HOST"), 1);
        assert_eq!(match_pattern_list(b"host", b"other"), 0);
        assert_eq!(match_pattern_list(b"", b"a,,b"), 1);
        // A long run of stars is still fast.
        let text = vec![b'a'; 4000];
        let pattern = [b"*a".repeat(40), b"b".to_vec()].concat();
        assert!(!match_pattern(&text, &pattern));
    }

    #[test]
    fn revoked_wins_over_a_line_that_trusts_the_key() {
        let key = ed25519(1);
        let text = format!("{}@revoked * ssh-ed25519 {}\n", line("h", &key), b64(&key));
        let known = Known::parse(text.as_bytes(), "h", 22);
        assert_eq!(known.check(&key), Status::Revoked(2));
    }

    /// Found by the `known_hosts` fuzz target: an RSA key whose modulus is empty (zero
    /// length, or only zero bytes) made the bit count underflow, a panic in debug builds.
    /// OpenSSH refuses such a key as too small; so does hostcert, and the line is skipped.
    #[test]
    fn an_rsa_key_with_an_empty_modulus_is_refused_not_a_panic() {
        for modulus in [&[][..], &[0, 0][..]] {
            let key = blob("ssh-rsa", &[&[1, 0, 1], modulus]);
            assert_eq!(PublicKey::from_blob(&key), None);
            let text = format!("h ssh-rsa {}\n", b64(&key));
            let known = Known::parse(text.as_bytes(), "h", 22);
            assert_eq!(known.check(&key), Status::Unknown { ca_line: None });
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn a_key_under_cert_authority_is_not_a_host_key() {
        let key = ed25519(1);
        let text = format!("@cert-authority h ssh-ed25519 {}\n", b64(&key));
        let known = Known::parse(text.as_bytes(), "h", 22);
        assert_eq!(known.check(&key), Status::Unknown { ca_line: Some(1) });
    }

    #[test]
    fn ports_and_the_bare_name() {
        let key = ed25519(1);
        let bare = line("h", &key);
        assert_eq!(
            Known::parse(bare.as_bytes(), "h", 2222).check(&key),
            Status::Trusted(1)
        );
        // Something else known under [h]:2222: no fallback.
        let other = format!("{}{}", line("[h]:2222", &ed25519(2)), bare);
        assert_eq!(
            Known::parse(other.as_bytes(), "h", 2222).check(&key),
            Status::Changed(1)
        );
        // A port-less line does not know [h]:2222's key when revoked there.
        let revoked = format!("@revoked h ssh-ed25519 {}\n", b64(&key));
        assert_eq!(
            Known::parse(revoked.as_bytes(), "h", 2222).check(&key),
            Status::Unknown { ca_line: None }
        );
    }

    #[test]
    fn hashed_names() {
        let key = ed25519(3);
        let salt = [7u8; 20];
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[h]:2222");
        let name = format!("|1|{}|{}", b64(&salt), b64(&mac.finalize().into_bytes()));
        let text = line(&name, &key);
        assert_eq!(
            Known::parse(text.as_bytes(), "H", 2222).check(&key),
            Status::Trusted(1)
        );
        assert_eq!(
            Known::parse(text.as_bytes(), "h", 22).check(&key),
            Status::Unknown { ca_line: None }
        );
        // A hashed name is one name: a list after it never matches.
        let text = line(&format!("{name},h"), &key);
        assert_eq!(
            Known::parse(text.as_bytes(), "h", 22).check(&key),
            Status::Unknown { ca_line: None }
        );
    }

    #[test]
    fn lines_openssh_skips() {
        let key = ed25519(1);
        let b = b64(&key);
        for text in [
            format!("@bogus h ssh-ed25519 {b}\n"),
            format!("@revoked @revoked h ssh-ed25519 {b}\n"),
            format!("h ssh-rsa {b}\n"),
            format!("h ssh-ed25519 {}\n", &b[1..]),
            format!("h ed25519 {b}\n"),
            format!("h ssh-ed25519\0{b}\n"),
            format!("\0h ssh-ed25519 {b}\n"),
            format!("# h ssh-ed25519 {b}\n"),
            format!("h #ssh-ed25519 {b}\n"),
            "h ssh-ed25519\n".to_owned(),
            format!("h ssh-ed25519 {}\n", b64(&blob("ssh-ed25519", &[&[1; 31]]))),
        ] {
            assert_eq!(
                Known::parse(text.as_bytes(), "h", 22).check(&key),
                Status::Unknown { ca_line: None },
                "{text:?}"
            );
        }
        for text in [
            format!("\t h\tssh-ed25519\t{b}\tcomment\r\n"),
            format!("h ssh-ed25519 {b}"),
            format!("@revoked\th ssh-ed25519 {b}\nh ssh-ed25519 {b}\n"),
            // As ssh reads it: the NUL ends the names, and the line goes on after it.
            format!("h\0 ssh-ed25519 {b}\n"),
        ] {
            assert!(
                matches!(
                    Known::parse(text.as_bytes(), "h", 22).check(&key),
                    Status::Trusted(_)
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn algorithms_prefer_the_known_key_types() {
        let n = [&[0u8, 0x80][..], &[1u8; 255][..]].concat();
        let rsa = blob("ssh-rsa", &[&[1, 0, 1], &n]);
        let text = format!("h ssh-rsa {}\n", b64(&rsa));
        let known = Known::parse(text.as_bytes(), "h", 22);
        assert!(known
            .algorithms()
            .starts_with("rsa-sha2-512,rsa-sha2-256,ssh-ed25519"));
        let text = format!("h ssh-rsa {}\n{}", b64(&rsa), line("h", &ed25519(1)));
        assert_eq!(
            Known::parse(text.as_bytes(), "h", 22).algorithms(),
            "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256"
        );
    }

    /// Hostile files (random bytes, and real lines with bytes flipped) never panic and never
    /// trust a key they do not list.
    #[test]
    fn hostile_files_neither_panic_nor_trust() {
        let key = ed25519(9);
        let good = format!(
            "@revoked h {}\n|1|{}|{} {}\n*,!x {}\n",
            line("", &ed25519(1)).trim_start(),
            b64(&[3; 20]),
            b64(&[4; 20]),
            line("", &ed25519(2)).trim_start().trim_end(),
            line("", &ed25519(3)).trim_start().trim_end()
        );
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let mut text = good.clone().into_bytes();
            if round % 3 == 0 {
                text = (0..(next() % 400)).map(|_| next() as u8).collect();
            } else {
                for _ in 0..(next() % 8 + 1) {
                    let at = (next() as usize) % text.len();
                    text[at] = next() as u8;
                }
            }
            let known = Known::parse(&text, "h", 2222);
            assert!(!matches!(known.check(&key), Status::Trusted(_)));
            let _ = known.algorithms();
        }
    }
}
