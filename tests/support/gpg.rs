//! A throwaway GnuPG home for the tests that sign: its keys sign images (skopeo's simple
//! signing, tests/images.rs) and packages (rpmsign, tests/rpmdb.rs). Its agent is stopped when
//! it is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{require, run_ok};

pub struct Gpg {
    home: PathBuf,
}

impl Gpg {
    /// A GnuPG home in `FOLDER/gnupg`.
    pub fn new(folder: &Path) -> Gpg {
        require("gpg", "gpg");
        let home = folder.join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        Gpg { home }
    }

    /// A command that uses this home (`GNUPGHOME`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("GNUPGHOME", &self.home);
        command
    }

    /// Makes a signing key for `Hostcert Test <EMAIL>` without a passphrase, valid for a day;
    /// `algorithm` is gpg's name (`rsa2048`, `ed25519`, `dsa2048`).
    pub fn generate(&self, email: &str, algorithm: &str) {
        run_ok(
            self.command("gpg")
                .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(["--quick-gen-key", &format!("Hostcert Test <{email}>")])
                .args([algorithm, "sign", "1d"]),
        );
    }

    /// A field of the key's listing (`gpg --list-keys --with-colons`): the first record of
    /// `kind` (`pub`, `fpr`), its field `index` (counting from 0 after the kind).
    fn listed(&self, email: &str, kind: &str, index: usize) -> String {
        let listing = run_ok(
            self.command("gpg")
                .args(["--list-keys", "--with-colons", email]),
        );
        listing
            .lines()
            .find_map(|line| line.strip_prefix(kind)?.strip_prefix(':'))
            .and_then(|rest| rest.split(':').nth(index))
            .unwrap_or_else(|| panic!("no {kind} record for {email} in:\n{listing}"))
            .to_owned()
    }

    /// The key's fingerprint, upper-case hex as gpg lists it.
    pub fn fingerprint(&self, email: &str) -> String {
        self.listed(email, "fpr", 8)
    }

    /// The key's id, 16 upper-case hex digits as gpg lists it.
    pub fn key_id(&self, email: &str) -> String {
        self.listed(email, "pub", 3)
    }

    /// Writes the public key, binary or ASCII-armored.
    pub fn export(&self, email: &str, file: &Path, armor: bool) {
        let mut command = self.command("gpg");
        command.arg("--export");
        if armor {
            command.arg("--armor");
        }
        let output = command.arg(email).output().expect("gpg --export runs");
        assert!(output.status.success(), "gpg --export {email} failed");
        std::fs::write(file, &output.stdout).unwrap();
    }

    /// Makes an RSA key for `email`, exports its public key (binary) to `file`, and returns its
    /// fingerprint.
    pub fn key(&self, email: &str, file: &Path) -> String {
        self.generate(email, "rsa2048");
        self.export(email, file, false);
        self.fingerprint(email)
    }

    /// Runs skopeo in `at` with this home (skopeo signs and verifies through gpgme).
    pub fn skopeo(&self, at: &Path, args: &[&str]) -> Output {
        self.command("skopeo")
            .args(args)
            .current_dir(at)
            .output()
            .unwrap()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = self.command("gpgconf").args(["--kill", "all"]).output();
    }
}
