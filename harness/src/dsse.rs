//! DSSE envelopes (Dead Simple Signing Envelope, v1) and the keys that sign them.
//!
//! A signature covers the pre-authentication encoding of the payload type and the payload,
//! exactly as the DSSE protocol defines it ([`pae`]):
//!
//! ```text
//! "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//! ```
//!
//! where `LEN` is the byte length as ASCII decimal without leading zeros. The envelope is JSON
//! with standard, padded base64: `{"payload", "payloadType", "signatures": [{"keyid", "sig"}]}`.
//!
//! Keys are PEM files as OpenSSL writes them: private keys in PKCS#8 (`openssl genpkey
//! -algorithm ed25519`, `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`),
//! public keys as SubjectPublicKeyInfo (`openssl pkey -in KEY -pubout`). Ed25519 signs the
//! encoding itself (64 bytes); ECDSA P-256 signs its SHA-256, DER-encoded as OpenSSL and cosign
//! write it, so `openssl dgst -sha256 -verify PUB -signature SIG` checks it. A signature's
//! `keyid` is the sha256 of the public key's DER, in hex; it is a hint, never trusted.
//!
//! Private keys are read here and used to sign; nothing in this module writes one anywhere.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct KeyError {
    /// The key file.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why an envelope does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DsseError {
    /// The envelope is not DSSE JSON.
    #[error("not a DSSE envelope: {0}")]
    Malformed(String),
    /// The payload type is not the expected one.
    #[error("the payload type is `{found}`, expected `{expected}`")]
    PayloadType {
        /// The type found.
        found: String,
        /// The type expected.
        expected: String,
    },
    /// No signature verifies with the key.
    #[error("no signature in the envelope verifies with this key ({0})")]
    BadSignature(String),
}

/// The key algorithms hostcert signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256.
    EcdsaP256,
}

impl Algorithm {
    /// The name people read: `ed25519` or `ecdsa-p256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
        }
    }
}

/// A private key that signs.
pub enum SigningKey {
    /// An Ed25519 key.
    Ed25519(ed25519_dalek::SigningKey),
    /// An ECDSA P-256 key.
    EcdsaP256(p256::ecdsa::SigningKey),
}

// Never print key material, not even in debug output.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.algorithm().as_str())
    }
}

/// A public key that verifies.
#[derive(Debug, Clone)]
pub enum VerifyingKey {
    /// An Ed25519 key.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// An ECDSA P-256 key.
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

/// A PEM file's text: a regular file of at most [`crate::fsio::cap::KEY`].
fn read_pem(path: &Path) -> Result<String, KeyError> {
    crate::fsio::read_regular_text(path, crate::fsio::cap::KEY, "key").map_err(|e| KeyError {
        path: e.path,
        reason: e.reason,
    })
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key (Ed25519 or ECDSA P-256).
    pub fn read(path: &Path) -> Result<SigningKey, KeyError> {
        let pem = read_pem(path)?;
        SigningKey::from_pem(&pem).map_err(|reason| KeyError {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses a PKCS#8 PEM private key (Ed25519 or ECDSA P-256).
    pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
        let label = pem_label(pem)?;
        match label.as_str() {
            "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => {
                return Err("the key is encrypted; give an unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt)".to_owned())
            }
            "EC PRIVATE KEY" => {
                return Err("the key is in SEC1 form; convert it to PKCS#8 with openssl pkcs8 -topk8 -nocrypt".to_owned())
            }
            "PUBLIC KEY" => {
                return Err("this is a public key; signing needs the private key".to_owned())
            }
            other => return Err(format!("a PEM `{other}` is not a PKCS#8 private key")),
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Ed25519(key));
        }
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::EcdsaP256(key));
        }
        Err("not an Ed25519 or ECDSA P-256 PKCS#8 private key".to_owned())
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Ed25519(_) => Algorithm::Ed25519,
            SigningKey::EcdsaP256(_) => Algorithm::EcdsaP256,
        }
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::Ed25519(key) => VerifyingKey::Ed25519(key.verifying_key()),
            SigningKey::EcdsaP256(key) => VerifyingKey::EcdsaP256(*key.verifying_key()),
        }
    }

    /// Signs `message`: Ed25519 over the message, ECDSA P-256 over its SHA-256 (DER-encoded).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match self {
            SigningKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            SigningKey::EcdsaP256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl VerifyingKey {
    /// Reads a SubjectPublicKeyInfo PEM public key (Ed25519 or ECDSA P-256).
    pub fn read(path: &Path) -> Result<VerifyingKey, KeyError> {
        let pem = read_pem(path)?;
        VerifyingKey::from_pem(&pem).map_err(|reason| KeyError {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses a SubjectPublicKeyInfo PEM public key (Ed25519 or ECDSA P-256).
    pub fn from_pem(pem: &str) -> Result<VerifyingKey, String> {
        let label = pem_label(pem)?;
        if label.contains("PRIVATE KEY") {
            return Err(
                "this is a private key; verifying needs the public key (openssl pkey -in KEY -pubout)"
                    .to_owned(),
            );
        }
        if label != "PUBLIC KEY" {
            return Err(format!(
                "a PEM `{label}` is not a SubjectPublicKeyInfo public key"
            ));
        }
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(VerifyingKey::Ed25519(key));
        }
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(VerifyingKey::EcdsaP256(key));
        }
        Err("not an Ed25519 or ECDSA P-256 public key".to_owned())
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            VerifyingKey::Ed25519(_) => Algorithm::Ed25519,
            VerifyingKey::EcdsaP256(_) => Algorithm::EcdsaP256,
        }
    }

    /// The key id: the sha256 of the public key's SubjectPublicKeyInfo DER, in hex.
    pub fn key_id(&self) -> String {
        let der = match self {
            VerifyingKey::Ed25519(key) => key.to_public_key_der(),
            VerifyingKey::EcdsaP256(key) => key.to_public_key_der(),
        };
        let bytes = der.map(|d| d.as_bytes().to_vec()).unwrap_or_default();
        hex(&Sha256::digest(bytes))
    }

    /// Whether `signature` is this key's signature of `message`. ECDSA signatures are accepted
    /// DER-encoded or as the 64-byte `r || s`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ed25519_dalek::Verifier as _;
        match self {
            VerifyingKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_strict(message, &s).is_ok()),
            VerifyingKey::EcdsaP256(key) => p256::ecdsa::Signature::from_der(signature)
                .or_else(|_| p256::ecdsa::Signature::from_slice(signature))
                .is_ok_and(|s| key.verify(message, &s).is_ok()),
        }
    }
}

/// The label of the first PEM block (`PRIVATE KEY`, `PUBLIC KEY`, …).
fn pem_label(pem: &str) -> Result<String, String> {
    pem.lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("-----BEGIN ")
                .and_then(|rest| rest.strip_suffix("-----"))
                .map(str::to_owned)
        })
        .ok_or_else(|| "not a PEM file (no -----BEGIN line)".to_owned())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The DSSE v1 pre-authentication encoding of a payload type and a payload: what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The payload, base64.
    pub payload: String,
    /// The payload's media type.
    pub payload_type: String,
    /// One or more signatures of the pre-authentication encoding.
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// A hint for which key signed (see [`VerifyingKey::key_id`]).
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64.
    pub sig: String,
}

impl Envelope {
    /// Signs `payload` of `payload_type` with `key`.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
        let signature = key.sign(&pae(payload_type, payload));
        Envelope {
            payload: BASE64.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: vec![Signature {
                keyid: key.verifying_key().key_id(),
                sig: BASE64.encode(signature),
            }],
        }
    }

    /// Parses an envelope from JSON.
    pub fn from_json(text: &str) -> Result<Envelope, DsseError> {
        serde_json::from_str(text).map_err(|e| DsseError::Malformed(e.to_string()))
    }

    /// The envelope as one line of JSON (the `.intoto.jsonl` form), with a final newline.
    pub fn to_json_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("an envelope always serializes");
        line.push('\n');
        line
    }

    /// Checks that the payload type is `payload_type` and that a signature verifies with `key`,
    /// and returns the payload. Every signature is tried whatever its `keyid`.
    pub fn verify(&self, payload_type: &str, key: &VerifyingKey) -> Result<Vec<u8>, DsseError> {
        if self.payload_type != payload_type {
            return Err(DsseError::PayloadType {
                found: self.payload_type.clone(),
                expected: payload_type.to_owned(),
            });
        }
        let payload = BASE64
            .decode(self.payload.as_bytes())
            .map_err(|e| DsseError::Malformed(format!("the payload is not base64: {e}")))?;
        if self.signatures.is_empty() {
            return Err(DsseError::BadSignature("it has no signature".to_owned()));
        }
        let message = pae(&self.payload_type, &payload);
        let mut reasons = Vec::new();
        for signature in &self.signatures {
            match BASE64.decode(signature.sig.as_bytes()) {
                Ok(bytes) if key.verify(&message, &bytes) => return Ok(payload),
                Ok(_) => reasons.push(format!(
                    "an {} key does not verify signature `{}`",
                    key.algorithm().as_str(),
                    short(&signature.keyid)
                )),
                Err(e) => reasons.push(format!("a signature is not base64: {e}")),
            }
        }
        Err(DsseError::BadSignature(reasons.join("; ")))
    }
}

fn short(keyid: &str) -> String {
    if keyid.is_empty() {
        "without keyid".to_owned()
    } else {
        keyid.chars().take(16).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DSSE specification's own test vector for the encoding.
    #[test]
    fn pae_matches_the_dsse_protocol() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn keys_of_the_wrong_kind_are_refused_with_the_reason() {
        assert_eq!(
            SigningKey::from_pem("nothing").unwrap_err(),
            "not a PEM file (no -----BEGIN line)"
        );
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            SigningKey::from_pem(public).unwrap_err(),
            "this is a public key; signing needs the private key"
        );
        let key = VerifyingKey::from_pem(public).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Ed25519);
        assert_eq!(key.key_id().len(), 64);
    }
}
