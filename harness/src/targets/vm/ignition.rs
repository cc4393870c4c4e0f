//! The Ignition config (spec v3.3.0) for Fedora CoreOS, RHEL CoreOS and Flatcar, given to the
//! guest through QEMU's firmware configuration device as `opt/com.coreos/config`, where
//! Ignition's `qemu` platform reads it on first boot.
//!
//! It authorizes the run's key for the user hostcert logs in as and writes the host key made for
//! the run, with an sshd drop-in that makes it sshd's only host key: the key hostcert pins is
//! then exactly the one the guest offers. Files are `data:` URLs (RFC 2397), base64.

use base64::Engine;
use serde_json::{json, Value};

use super::keys::RunKeys;

/// The spec version written; Fedora CoreOS and Flatcar read it.
pub(super) const SPEC_VERSION: &str = "3.3.0";

/// The fw_cfg name Ignition's `qemu` platform reads.
pub(super) const FW_CFG_NAME: &str = "opt/com.coreos/config";

/// The sshd drop-in that limits sshd to the pinned host key.
const SSHD_DROP_IN: &str = "/etc/ssh/sshd_config.d/40-hostcert-host-key.conf";

/// The config for the run.
pub(super) fn config(user: &str, keys: &RunKeys) -> Value {
    let file = |path: &str, mode: u32, contents: &str| {
        json!({
            "path": path,
            "mode": mode,
            "overwrite": true,
            "contents": {
                "source": format!(
                    "data:;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(contents)
                ),
            },
        })
    };
    json!({
        "ignition": {"version": SPEC_VERSION},
        "passwd": {
            "users": [{"name": user, "sshAuthorizedKeys": [keys.client_public]}],
        },
        "storage": {
            "files": [
                file("/etc/ssh/ssh_host_ed25519_key", 0o600, keys.host_private.as_str()),
                file("/etc/ssh/ssh_host_ed25519_key.pub", 0o644, &format!("{}\n", keys.host_public)),
                file(SSHD_DROP_IN, 0o644, "HostKey /etc/ssh/ssh_host_ed25519_key\n"),
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_carries_the_keys_as_data_urls() {
        let keys = RunKeys::generate().unwrap();
        let config = config("core", &keys);
        assert_eq!(config["ignition"]["version"], "3.3.0");
        assert_eq!(config["passwd"]["users"][0]["name"], "core");
        assert_eq!(
            config["passwd"]["users"][0]["sshAuthorizedKeys"][0],
            keys.client_public.as_str()
        );
        let files = config["storage"]["files"].as_array().unwrap();
        assert_eq!(files[0]["mode"], 384);
        let source = files[0]["contents"]["source"].as_str().unwrap();
        let data = base64::engine::general_purpose::STANDARD
            .decode(source.strip_prefix("data:;base64,").unwrap())
            .unwrap();
        assert_eq!(data, keys.host_private.as_str().as_bytes());
    }
}
