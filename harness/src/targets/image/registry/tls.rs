//! TLS for a registry as containers tools set it up (containers-certs.d(5)): the system's CA
//! bundle plus the `*.crt` files of the registry's certs.d folder, and a client certificate
//! from a `*.cert` file with its `*.key`. The folder is `--cert-dir` when given, otherwise the
//! first of `$HOME/.config/containers/certs.d/HOST:PORT`, `/etc/containers/certs.d/HOST:PORT`
//! and `/etc/docker/certs.d/HOST:PORT` that exists. `--tls-verify=false` turns verification
//! off (and allows plain HTTP); nothing else does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::super::layout::read_bounded;

/// The system CA bundles, as Go's crypto/x509 looks for them on Linux.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The folder with the registry's certificates, if there is one.
pub(crate) fn cert_dir(host: &str, given: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = given {
        return Some(dir.to_owned());
    }
    let mut roots = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(home).join(".config/containers/certs.d"));
    }
    roots.push(PathBuf::from("/etc/containers/certs.d"));
    roots.push(PathBuf::from("/etc/docker/certs.d"));
    roots
        .into_iter()
        .map(|root| root.join(host))
        .find(|dir| dir.is_dir())
}

/// The certificates of the system's CA bundle (read once per run); `SSL_CERT_FILE` first, as
/// Go reads it.
fn system_roots() -> Arc<Vec<Certificate<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut files: Vec<PathBuf> = std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .into_iter()
                .collect();
            files.extend(SYSTEM_BUNDLES.iter().map(PathBuf::from));
            for file in files {
                let Ok(bytes) = crate::fsio::read_regular(&file, 16 << 20, "CA bundle") else {
                    continue;
                };
                let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&bytes)
                    .filter_map(Result::ok)
                    .filter_map(|item| match item {
                        PemItem::Certificate(cert) => Some(cert),
                        _ => None,
                    })
                    .collect();
                if !certs.is_empty() {
                    return Arc::new(certs);
                }
            }
            Arc::new(Vec::new())
        })
        .clone()
}

/// The PEM items of a file of the certs.d folder.
fn pem_items(path: &Path) -> Result<Vec<PemItem<'static>>, String> {
    let what = format!("{}", path.display());
    let bytes = read_bounded(path, &what)?;
    let items: Vec<PemItem<'static>> = ureq::tls::parse_pem(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: not PEM: {e}"))?;
    if items.is_empty() {
        return Err(format!("{what}: holds no PEM item"));
    }
    Ok(items)
}

/// The TLS configuration for one registry host.
pub(crate) fn config(
    host: &str,
    cert_dir_given: Option<&Path>,
    verify: bool,
) -> Result<TlsConfig, String> {
    let builder = TlsConfig::builder();
    if !verify {
        return Ok(builder.disable_verification(true).build());
    }
    let mut roots: Vec<Certificate<'static>> = system_roots().as_ref().clone();
    let mut client = None;
    if let Some(dir) = cert_dir(host, cert_dir_given) {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("certificates folder {}: {e}", dir.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in &names {
            let path = dir.join(name);
            if name.ends_with(".crt") {
                for item in pem_items(&path)? {
                    if let PemItem::Certificate(cert) = item {
                        roots.push(cert);
                    }
                }
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key_name = format!("{stem}.key");
                if !names.contains(&key_name) {
                    return Err(format!(
                        "certificates folder {}: {name} has no matching {key_name}",
                        dir.display()
                    ));
                }
                let chain: Vec<Certificate<'static>> = pem_items(&path)?
                    .into_iter()
                    .filter_map(|i| match i {
                        PemItem::Certificate(c) => Some(c),
                        _ => None,
                    })
                    .collect();
                let key_path = dir.join(&key_name);
                let key: PrivateKey<'static> = pem_items(&key_path)?
                    .into_iter()
                    .find_map(|i| match i {
                        PemItem::PrivateKey(k) => Some(k),
                        _ => None,
                    })
                    .ok_or_else(|| format!("{}: holds no private key", key_path.display()))?;
                if chain.is_empty() {
                    return Err(format!("{}: holds no certificate", path.display()));
                }
                client = Some(ClientCert::new_with_certs(&chain, key));
            } else if let Some(stem) = name.strip_suffix(".key") {
                if !names.contains(&format!("{stem}.cert")) {
                    return Err(format!(
                        "certificates folder {}: {name} has no matching {stem}.cert",
                        dir.display()
                    ));
                }
            }
        }
    }
    let roots = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::new_with_certs(&roots)
    };
    Ok(builder.root_certs(roots).client_cert(client).build())
}
