//! The keys a VM run makes for itself (Ed25519, with the `ssh-key` crate): the key hostcert logs
//! in with, and the host key the guest is given, which hostcert then pins. Both live only in
//! the run's temporary folder.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use secret::Secret;
use ssh_key::{rand_core::OsRng, Algorithm, HashAlg, LineEnding, PrivateKey};

/// The run's client key and the guest's host key, in OpenSSH formats.
pub(super) struct RunKeys {
    /// The private key hostcert logs in with (OpenSSH format).
    pub client_private: Secret,
    /// `ssh-ed25519 AAAA...`, for authorized_keys.
    pub client_public: String,
    /// The guest's host key (OpenSSH format).
    pub host_private: Secret,
    /// `ssh-ed25519 AAAA...`, the key known_hosts pins.
    pub host_public: String,
    /// `SHA256:...` of the host key, as ssh prints it.
    pub host_fingerprint: String,
}

impl RunKeys {
    /// Two fresh Ed25519 keys from the operating system's random source.
    pub(super) fn generate() -> Result<RunKeys, String> {
        let make = || -> Result<(Secret, String, String), String> {
            let key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519)
                .map_err(|e| format!("cannot make an SSH key: {e}"))?;
            let private = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| format!("cannot encode an SSH key: {e}"))?;
            let public = key
                .public_key()
                .to_openssh()
                .map_err(|e| format!("cannot encode an SSH key: {e}"))?;
            let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
            Ok((Secret(private.to_string()), public, fingerprint))
        };
        let (client_private, client_public, _) = make()?;
        let (host_private, host_public, host_fingerprint) = make()?;
        Ok(RunKeys {
            client_private,
            client_public,
            host_private,
            host_public,
            host_fingerprint,
        })
    }
}

/// Writes a private key file, mode 0600, created exclusively.
pub(super) fn write_private(path: &Path, key: &Secret) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(key.as_str().as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Key text that is not printed by `Debug`.
mod secret {
    /// A secret string; `Debug` shows only that it is one.
    pub struct Secret(pub String);

    impl Secret {
        pub fn as_str(&self) -> &str {
            &self.0
        }
    }

    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Secret(..)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_ed25519_pairs_that_openssh_formats_read() {
        let a = RunKeys::generate().unwrap();
        let b = RunKeys::generate().unwrap();
        assert_ne!(a.client_public, b.client_public);
        assert_ne!(a.client_public, a.host_public);
        assert!(a.host_public.starts_with("ssh-ed25519 AAAA"));
        assert!(a.host_fingerprint.starts_with("SHA256:"));
        assert!(a
            .host_private
            .as_str()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        // The private key reads back and gives the same public key.
        let back = PrivateKey::from_openssh(a.client_private.as_str()).unwrap();
        assert_eq!(back.public_key().to_openssh().unwrap(), a.client_public);
        assert_eq!(format!("{:?}", a.client_private), "Secret(..)");
    }
}
