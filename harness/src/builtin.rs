//! The suites and profiles compiled into the binary: `hostcert run` with no arguments needs no
//! files beside it.

/// A data file compiled in, with its path in the repository.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinFile {
    /// The path relative to the repository root (`suites/kernel-features/v1.yaml`).
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

/// The built-in suites.
pub const SUITES: &[BuiltinFile] = &[
    BuiltinFile {
        path: "suites/kernel-features/v1.yaml",
        text: include_str!("../../suites/kernel-features/v1.yaml"),
    },
    BuiltinFile {
        path: "suites/kernel-features/v1.1.yaml",
        text: include_str!("../../suites/kernel-features/v1.1.yaml"),
    },
    BuiltinFile {
        path: "suites/kernel-features/v1.2.yaml",
        text: include_str!("../../suites/kernel-features/v1.2.yaml"),
    },
    BuiltinFile {
        path: "suites/ssh-dhcp-abi/v1.yaml",
        text: include_str!("../../suites/ssh-dhcp-abi/v1.yaml"),
    },
    BuiltinFile {
        path: "suites/image-provenance/v1.yaml",
        text: include_str!("../../suites/image-provenance/v1.yaml"),
    },
    BuiltinFile {
        path: "suites/image-provenance/v1.0.1.yaml",
        text: include_str!("../../suites/image-provenance/v1.0.1.yaml"),
    },
    BuiltinFile {
        path: "suites/image-provenance/v1.1.0.yaml",
        text: include_str!("../../suites/image-provenance/v1.1.0.yaml"),
    },
    BuiltinFile {
        path: "suites/kubernetes-node/v1.yaml",
        text: include_str!("../../suites/kubernetes-node/v1.yaml"),
    },
    BuiltinFile {
        path: "suites/container-runtimes/v1.yaml",
        text: include_str!("../../suites/container-runtimes/v1.yaml"),
    },
    BuiltinFile {
        path: "suites/rootless-podman/v1.yaml",
        text: include_str!("../../suites/rootless-podman/v1.yaml"),
    },
    BuiltinFile {
        path: "suites/os-build/v1.yaml",
        text: include_str!("../../suites/os-build/v1.yaml"),
    },
];

/// The built-in profiles.
pub const PROFILES: &[BuiltinFile] = &[
    BuiltinFile {
        path: "profiles/container-host.yaml",
        text: include_str!("../../profiles/container-host.yaml"),
    },
    BuiltinFile {
        path: "profiles/container-host-strict.yaml",
        text: include_str!("../../profiles/container-host-strict.yaml"),
    },
    BuiltinFile {
        path: "profiles/docker.yaml",
        text: include_str!("../../profiles/docker.yaml"),
    },
    BuiltinFile {
        path: "profiles/podman.yaml",
        text: include_str!("../../profiles/podman.yaml"),
    },
    BuiltinFile {
        path: "profiles/kubernetes-node.yaml",
        text: include_str!("../../profiles/kubernetes-node.yaml"),
    },
    BuiltinFile {
        path: "profiles/isv-container.yaml",
        text: include_str!("../../profiles/isv-container.yaml"),
    },
    BuiltinFile {
        path: "profiles/os-build.yaml",
        text: include_str!("../../profiles/os-build.yaml"),
    },
    BuiltinFile {
        path: "profiles/isv-image.yaml",
        text: include_str!("../../profiles/isv-image.yaml"),
    },
    BuiltinFile {
        path: "profiles/container-runtimes.yaml",
        text: include_str!("../../profiles/container-runtimes.yaml"),
    },
    BuiltinFile {
        path: "profiles/rootless-podman.yaml",
        text: include_str!("../../profiles/rootless-podman.yaml"),
    },
];

/// The profile `hostcert run` uses when none is named.
pub const DEFAULT_PROFILE: &str = "container-host";

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Guards that a suite or profile added under `suites/` or `profiles/` is compiled in.
    #[test]
    fn every_data_file_in_the_repository_is_built_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (dir, builtins) in [("suites", super::SUITES), ("profiles", super::PROFILES)] {
            let mut stack = vec![root.join(dir)];
            while let Some(path) = stack.pop() {
                for entry in std::fs::read_dir(&path).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| e == "yaml") {
                        let relative = path
                            .strip_prefix(&root)
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .to_owned();
                        assert!(
                            builtins.iter().any(|b| b.path == relative),
                            "{relative} is not listed in harness/src/builtin.rs"
                        );
                    }
                }
            }
        }
    }
}
