//! The cloud-init NoCloud seed: a FAT volume labelled `CIDATA` with `user-data` (cloud-config)
//! and `meta-data`, made in Rust (the `fatfs` crate), so no genisoimage or mtools is needed at
//! run time. cloud-init's ds-identify finds it by its label.
//!
//! The cloud-config authorizes the run's key for the user hostcert logs in as, and gives the
//! guest the host key generated for the run (`ssh_keys`, after `ssh_deletekeys` removed any the
//! image holds, and no other type generated): the key hostcert then pins is exactly that one.
//! It is written as JSON, which YAML reads as it is, so no value needs YAML quoting.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::keys::RunKeys;

/// The volume's size: cloud-config and meta-data are a few KiB.
const SEED_BYTES: u64 = 2 << 20;

/// The `user-data` for the run: a `#cloud-config` document.
pub(super) fn user_data(user: &str, keys: &RunKeys) -> String {
    let mut config = json!({
        "disable_root": false,
        "ssh_pwauth": false,
        "ssh_authorized_keys": [keys.client_public],
        "ssh_deletekeys": true,
        "ssh_genkeytypes": ["ed25519"],
        "ssh_keys": {
            "ed25519_private": keys.host_private.as_str(),
            "ed25519_public": keys.host_public,
        },
    });
    if user != "root" {
        config["users"] = json!([{
            "name": user,
            "lock_passwd": true,
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "ssh_authorized_keys": [keys.client_public],
        }]);
    }
    format!("#cloud-config\n{config:#}\n")
}

/// The `meta-data`: a fresh instance id, so that cloud-init runs its first-boot modules.
pub(super) fn meta_data(instance_id: &str, hostname: &str) -> String {
    format!(
        "{:#}\n",
        json!({"instance-id": instance_id, "local-hostname": hostname})
    )
}

/// Writes the seed volume at `path` (created, never overwritten).
pub(super) fn write(path: &Path, user_data: &str, meta_data: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot make the NoCloud seed {}: {e}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(fail)?;
    file.set_len(SEED_BYTES).map_err(fail)?;
    fatfs::format_volume(
        &file,
        fatfs::FormatVolumeOptions::new().volume_label(*b"CIDATA     "),
    )
    .map_err(fail)?;
    let fs = fatfs::FileSystem::new(&file, fatfs::FsOptions::new()).map_err(fail)?;
    {
        let root = fs.root_dir();
        for (name, text) in [("user-data", user_data), ("meta-data", meta_data)] {
            let mut out = root.create_file(name).map_err(fail)?;
            out.truncate().map_err(fail)?;
            out.write_all(text.as_bytes()).map_err(fail)?;
            out.flush().map_err(fail)?;
        }
    }
    fs.unmount().map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_a_cidata_fat_volume_with_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.img");
        let keys = RunKeys::generate().unwrap();
        let user_data = user_data("root", &keys);
        write(&path, &user_data, &meta_data("i-1", "vm")).unwrap();
        // Read back through the same crate: the label and both files.
        let file = std::fs::File::open(&path).unwrap();
        let fs = fatfs::FileSystem::new(&file, fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.volume_label().trim_end(), "CIDATA");
        let mut text = String::new();
        use std::io::Read;
        fs.root_dir()
            .open_file("user-data")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, user_data);
        assert!(text.starts_with("#cloud-config\n"));
        let config: serde_json::Value =
            serde_json::from_str(text.trim_start_matches("#cloud-config\n")).unwrap();
        assert_eq!(
            config["ssh_authorized_keys"][0],
            keys.client_public.as_str()
        );
        assert_eq!(
            config["ssh_keys"]["ed25519_public"],
            keys.host_public.as_str()
        );
        assert!(config.get("users").is_none());
        // Never written over an existing file.
        assert!(write(&path, "", "").is_err());
        let other: serde_json::Value =
            serde_json::from_str(user_data_of("core", &keys).trim_start_matches("#cloud-config\n"))
                .unwrap();
        assert_eq!(other["users"][0]["name"], "core");
    }

    fn user_data_of(user: &str, keys: &RunKeys) -> String {
        user_data(user, keys)
    }
}
