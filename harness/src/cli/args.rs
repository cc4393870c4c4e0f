//! Command-line arguments (clap derive). Parsing validates what the user typed and touches
//! nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// hostcert: certify that hosts, OS builds and images can run containers.
#[derive(Debug, Parser)]
#[command(name = "hostcert", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Certify targets against a profile (this machine with `container-host` by default).
    ///
    /// Takes libtest's options too: a FILTER, --exact, --skip, --list, --format, --test-threads.
    // libtest-mimic's own usage line and the flags that mean nothing for checks are replaced and
    // hidden; they are still accepted, so test-runner wrappers that pass them keep working.
    #[command(
        help_template = "{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}{after-help}",
        after_help = "Trials are named <target>::<suite>::<check-id>; FILTER, --skip and --exact match those names.",
        mut_arg("include_ignored", |a| a.hide(true)),
        mut_arg("ignored", |a| a.hide(true)),
        mut_arg("test", |a| a.hide(true)),
        mut_arg("bench", |a| a.hide(true)),
        mut_arg("nocapture", |a| a.hide(true)),
        mut_arg("show_output", |a| a.hide(true)),
        mut_arg("logfile", |a| a.hide(true)),
        mut_arg("test_threads", |a| a
            .value_parser(clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS))
            .help(format!("How many threads evaluate trials, 1 to {MAX_THREADS} (1 runs them on the main thread)")))
    )]
    Run(Box<RunArgs>),
    /// List the checks a profile runs, without contacting any target.
    List(ListArgs),
    /// Validate suites and profiles (the built-in ones when no path is given).
    Lint(LintArgs),
    /// Show what a check verifies, why, how to fix it, and which versions exist.
    Explain(ExplainArgs),
    /// Gather a target's facts into a snapshot file, to evaluate later with `run --facts`.
    Gather(Box<GatherArgs>),
    /// Render a saved JSON report again, as JUnit XML, JSON, HTML or Markdown.
    Report(ReportArgs),
    /// Compare two JSON reports: new failures, fixed checks, changed evidence and versions.
    ///
    /// Exits 0 when no gating check newly fails, 1 when one does, 2 when a report cannot be read.
    Diff(DiffArgs),
    /// Sign a saved JSON report: an in-toto Statement in a DSSE envelope.
    Attest(AttestArgs),
    /// Verify a signed bundle against a public key and the report it names, and print the verdict.
    ///
    /// Exits 0 when the signature and the report's digest hold (and, with --require, the bundle
    /// attests that verdict), 1 when they do not (or it attests another verdict), 2 when a file
    /// cannot be read.
    Verify(VerifyArgs),
    /// Remove what killed runs left: folders under TMPDIR, and (as root) the network namespaces
    /// and veth interfaces of real runs, all named `hostcert-<pid>-...` or `hc<pid>...` for
    /// the run that made them; those of a run still going are never touched.
    ///
    /// Exits 0 when nothing is left, 2 when something could not be removed.
    Clean(CleanArgs),
}

/// Where suites and profiles come from, and which profile to use.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// The profile: a built-in or `--profiles` name, or a path to a profile file.
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,
    /// Also load suites from this folder (repeatable); they replace built-in suites of the same
    /// name and version.
    #[arg(long = "suites", value_name = "DIR")]
    pub suite_dirs: Vec<PathBuf>,
    /// Also load profiles from this folder (repeatable).
    #[arg(long = "profiles", value_name = "DIR")]
    pub profile_dirs: Vec<PathBuf>,
    /// Set a parameter (repeatable): a suite parameter such as `min-kernel=5.4`, overriding the
    /// profile, or `kernel-version=X.Y.Z`, the kernel of a kernel config without a header or
    /// the one kernel of an OS tree to judge, or `seccomp-profile=FILE`, the runtime seccomp
    /// profile (Docker's JSON format) that `seccomp-profile` probes read.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

impl CatalogArgs {
    /// The `--param` values meant for suites (all but the target parameters).
    pub fn suite_params(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .filter(|(name, _)| {
                name != KERNEL_VERSION && name != SECCOMP_PROFILE && name != IMAGE_REFERENCE
            })
            .cloned()
            .collect()
    }

    /// Which suites and profile, for the library.
    pub fn selection(&self) -> crate::catalog::Selection {
        crate::catalog::Selection {
            profile: self.profile.clone(),
            suite_dirs: self.suite_dirs.clone(),
            profile_dirs: self.profile_dirs.clone(),
            params: self.suite_params(),
        }
    }

    /// The options targets are opened with.
    pub fn target_options(&self, ssh: &SshArgs) -> crate::targets::TargetOptions {
        crate::targets::TargetOptions {
            kernel_version: self
                .params
                .iter()
                .rev()
                .find(|(name, _)| name == KERNEL_VERSION)
                .map(|(_, value)| value.clone()),
            seccomp_profile: self
                .params
                .iter()
                .rev()
                .find(|(name, _)| name == SECCOMP_PROFILE)
                .map(|(_, value)| PathBuf::from(value)),
            ssh: ssh.options(),
            image: crate::targets::image::ImageOptions {
                reference: self
                    .params
                    .iter()
                    .rev()
                    .find(|(name, _)| name == IMAGE_REFERENCE)
                    .map(|(_, value)| value.clone()),
                ..Default::default()
            },
            vm: Default::default(),
        }
    }
}

/// How image targets' signatures are judged.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The containers-policy.json signatures of image targets are judged by (as skopeo's
    /// `--policy`); otherwise the profile's `policy` parameter, if it sets one.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A signature of the image (repeatable): a simple-signing signature (`signature-1`, as
    /// skopeo writes them) or a cosign-style signature's JSON.
    #[arg(long = "signature", value_name = "FILE")]
    pub signatures: Vec<PathBuf>,
    /// A lookaside folder in registries.d's layout (`<repo>@sha256=<hex>/signature-N`) to find
    /// signatures in (repeatable).
    #[arg(long, value_name = "DIR")]
    pub lookaside: Vec<PathBuf>,
    /// The public key (PEM, ECDSA P-256 or Ed25519) in-toto attestations of image targets are
    /// verified with; otherwise the `attestation-key` parameter.
    #[arg(long, value_name = "FILE")]
    pub attestation_key: Option<PathBuf>,
    /// The platform of a multi-platform image index to certify, `os/arch[/variant]`
    /// (repeatable); without it every platform of an index is its own target, named
    /// `NAME[os/arch]`. A platform the index does not list is an error.
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]", value_parser = crate::targets::image::Platform::parse)]
    pub platforms: Vec<crate::targets::image::Platform>,
    /// The registry credentials of `docker://` images (containers-auth.json, as skopeo's
    /// `--authfile`); otherwise REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
    /// ~/.config/containers/auth.json and ~/.docker/config.json.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// The folder of a registry's CA certificates (`*.crt`) and client certificate (`*.cert`
    /// with its `*.key`); otherwise /etc/containers/certs.d/HOST:PORT.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Verify registries' TLS certificates (`--tls-verify=false` skips it and allows plain HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// The registries.d folder that says where a registry's signatures are (lookaside,
    /// use-sigstore-attachments); otherwise ~/.config/containers/registries.d or
    /// /etc/containers/registries.d.
    #[arg(long = "registries.d", value_name = "DIR")]
    pub registries_d: Option<PathBuf>,
}

impl ImageArgs {
    /// Fills the image options from the flags; a flag not given (`--policy`,
    /// `--attestation-key`) falls back to `--param NAME=FILE`, then to the profile's parameter.
    pub fn apply(
        &self,
        options: &mut crate::targets::TargetOptions,
        catalog: &CatalogArgs,
        profile: &crate::model::Profile,
    ) {
        let params = catalog.suite_params();
        let fallback = |wanted: &str| {
            params
                .iter()
                .rev()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.clone())
                .or_else(|| {
                    profile
                        .parameters
                        .iter()
                        .find(|(name, _)| name.as_str() == wanted)
                        .map(|(_, value)| value.clone())
                })
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        };
        options.image.policy = self.policy.clone().or_else(|| fallback("policy"));
        options.image.attestation_key = self
            .attestation_key
            .clone()
            .or_else(|| fallback("attestation-key"));
        options.image.signatures = self.signatures.clone();
        options.image.lookaside = self.lookaside.clone();
        options.image.platforms = self.platforms.clone();
        options.image.registry = crate::targets::image::RegistryOptions {
            authfile: self.authfile.clone(),
            cert_dir: self.cert_dir.clone(),
            tls_verify: self.tls_verify,
            registries_d: self.registries_d.clone(),
            connect_timeout: options.ssh.connect_timeout,
            gather_timeout: options.ssh.gather_timeout,
        };
    }
}

/// How SSH targets (`ssh://[user@]host[:port]`) connect and authenticate.
#[derive(Debug, Args)]
pub struct SshArgs {
    /// The private key to log in with (otherwise ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa,
    /// id_rsa; a password is read only from the HOSTCERT_SSH_PASSWORD environment variable).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The known_hosts file host keys are checked against (default ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Record the keys of hosts not yet in known_hosts (trust on first use), appending one line
    /// as `ssh -o StrictHostKeyChecking=accept-new` does; a changed or revoked key is still
    /// refused.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Gather under one `sudo -n` per host (never one sudo per check).
    #[arg(long)]
    pub sudo: bool,
    /// The ssh_config file whose Host entries (HostName, User, Port, IdentityFile, ProxyJump
    /// chains of up to 8 bastions) apply (default ~/.ssh/config when it exists).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Seconds for the TCP connection, the SSH banner and the key exchange, together (and for a
    /// registry's TCP connection); 1 to 600.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: u64,
    /// Seconds for authentication; 1 to 600.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub auth_timeout: u64,
    /// Seconds for a host's facts once logged in (the probe program and the batch), or for a
    /// registry's answer (and each read of a blob it sends); 1 to 86400 (a day).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub gather_timeout: u64,
}

impl SshArgs {
    fn options(&self) -> crate::targets::ssh::SshOptions {
        crate::targets::ssh::SshOptions {
            identity: self.identity.clone(),
            known_hosts: self.known_hosts.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
            sudo: self.sudo,
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout),
            auth_timeout: std::time::Duration::from_secs(self.auth_timeout),
            gather_timeout: std::time::Duration::from_secs(self.gather_timeout),
            ssh_config: self.ssh_config.clone(),
        }
    }
}

/// The most threads `--jobs` and `--test-threads` start.
const MAX_THREADS: u64 = 1024;
/// The most days `--waiver-warning-days` looks ahead (ten years).
const MAX_WARNING_DAYS: i64 = 3650;

/// The `--param` name that tells targets which kernel version to assume or choose.
const KERNEL_VERSION: &str = "kernel-version";
/// The `--param` name of the runtime seccomp profile (a JSON file) pair checks judge.
const SECCOMP_PROFILE: &str = "seccomp-profile";
/// The `--param` name that gives image targets the Docker reference they are judged as.
const IMAGE_REFERENCE: &str = "image-reference";

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// How `vm:` targets boot.
#[derive(Debug, Args)]
pub struct VmArgs {
    /// Seconds a `vm:` target has from QEMU's start to an SSH login; a guest that does not get
    /// there (or panics, or halts) is an error showing its console's last lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub boot_timeout: u64,
    /// Memory of each `vm:` target, MiB (an address's `memory=` wins). VMs run in parallel
    /// within --jobs and within half of the memory available when the first starts.
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(128..=1048576))]
    pub vm_memory: u32,
    /// `auto` (KVM when /dev/kvm really works, else TCG), `kvm` or `tcg` (an address's `accel=`
    /// wins).
    #[arg(long, value_name = "ACCEL", default_value = "auto", value_parser = crate::targets::vm::AccelChoice::parse)]
    pub vm_accel: crate::targets::vm::AccelChoice,
}

impl VmArgs {
    /// The options, with the folder console logs are kept in.
    pub fn options(&self, console_dir: Option<PathBuf>) -> crate::targets::vm::VmOptions {
        crate::targets::vm::VmOptions {
            boot_timeout: std::time::Duration::from_secs(self.boot_timeout),
            memory_mib: self.vm_memory,
            accel: self.vm_accel,
            console_dir,
        }
    }
}

/// `hostcert run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Suites and profile.
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// A target to certify (repeatable): `local` (the default when neither --target nor --facts
    /// is given), `ssh://[user@]host[:port]`, `rootfs:DIR` (an OS build tree, one target per
    /// kernel in it), `kernel-config:FILE` (a kernel .config alone), or an image: `oci:DIR[:TAG]`,
    /// `oci-archive:FILE[:TAG]`, `docker-archive:FILE`, `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`
    /// (a registry), `containers-storage:[DRIVER@ROOT]NAME[:TAG]` (podman's local store), or an
    /// OS build booted in a VM: `vm:DISK` (raw or qcow2) or
    /// `vm:kernel=FILE,initrd=FILE,disk=FILE,append=ARGS` (`append=` last; keys in docs/vm.md).
    #[arg(long = "target", value_name = "TARGET")]
    pub targets: Vec<String>,
    /// An image (or OS tree) to certify on each target (repeatable: the compatibility matrix
    /// of images by targets): `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE`,
    /// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, `containers-storage:NAME[:TAG]` or
    /// `rootfs:DIR`. Each target becomes the pair `<image>@<target>`: `image` probes are read
    /// from the image, all others from the target; each image and each target is read once.
    #[arg(long, value_name = "TARGET")]
    pub image: Vec<String>,
    /// More images, one address a line (`#` starts a comment line).
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,
    /// SSH options.
    #[command(flatten)]
    pub ssh: SshArgs,
    /// VM options.
    #[command(flatten)]
    pub vm: VmArgs,
    /// Image signature options.
    #[command(flatten)]
    pub image_options: ImageArgs,
    /// Evaluate a fact snapshot written by `hostcert gather` instead of a live target
    /// (repeatable).
    #[arg(long = "facts", value_name = "FILE")]
    pub facts: Vec<PathBuf>,
    /// Hosts to certify from an inventory: hostcert's YAML, or Ansible's INI or YAML.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Only these hosts or groups of the inventory: names or globs, comma- or colon-separated,
    /// `!` to exclude (`web,db*,!web-3`).
    #[arg(long, value_name = "PATTERN", requires = "inventory")]
    pub limit: Option<String>,
    /// How many targets are read at once, 1 to 1024.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=MAX_THREADS as i64))]
    pub jobs: u16,
    /// Certify only share K of N of the targets (`--shard 2/4`), chosen by a hash of their
    /// names, so that N jobs cover a fleet exactly once; join their reports with
    /// `hostcert report merge`.
    #[arg(long, value_name = "K/N", value_parser = crate::inventory::parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// The folder for report.json, junit.xml, report.html and report.md.
    #[arg(long, value_name = "DIR", default_value = "hostcert-report")]
    pub report_dir: PathBuf,
    /// The report files, one option per format.
    #[command(flatten)]
    pub files: super::outputs::FormatFiles<{ super::outputs::RUN }>,
    /// Gate on regressions only: exit as not certified only for gating failures that did not
    /// also fail on the same target in this earlier JSON report.
    #[arg(long, value_name = "OLD.json")]
    pub baseline: Option<PathBuf>,
    /// Also read waivers from this YAML file: a list with the keys of a profile's waivers
    /// (repeatable; they are consulted before the profile's).
    #[arg(long = "waivers", value_name = "FILE")]
    pub waivers: Vec<PathBuf>,
    /// Warn about waivers that expire within this many days, 0 to 3650.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=MAX_WARNING_DAYS))]
    pub waiver_warning_days: u32,
    /// Sign the result with this PKCS#8 PEM private key (Ed25519 or ECDSA P-256): an in-toto
    /// Statement in a DSSE envelope, written beside the JSON report as <name>.intoto.jsonl.
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// libtest's options.
    #[command(flatten)]
    pub libtest: libtest_mimic::Arguments,
}

/// `hostcert list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Suites and profile.
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// `hostcert lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Suite and profile files or folders; the built-in ones when none is given.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `hostcert explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The check id, e.g. `kernel.namespaces.net`.
    #[arg(value_name = "CHECK-ID")]
    pub check: String,
    /// Also load suites from this folder (repeatable).
    #[arg(long = "suites", value_name = "DIR")]
    pub suite_dirs: Vec<PathBuf>,
}

/// `hostcert gather`.
#[derive(Debug, Args)]
pub struct GatherArgs {
    /// Suites and profile: the facts gathered are those the profile's checks need.
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// The target to read.
    #[arg(long, value_name = "TARGET", default_value = "local")]
    pub target: String,
    /// An image (or OS tree) on the target: gathers the pair `<image>@<target>` (see `run`).
    #[arg(long, value_name = "TARGET")]
    pub image: Option<String>,
    /// SSH options.
    #[command(flatten)]
    pub ssh: SshArgs,
    /// VM options.
    #[command(flatten)]
    pub vm: VmArgs,
    /// Image signature options.
    #[command(flatten)]
    pub image_options: ImageArgs,
    /// The name the target gets in the snapshot, and so in trial names and reports when the
    /// snapshot is evaluated (default: the target's own name, e.g. `local`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The snapshot file to write (`-`: stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

/// `hostcert report`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    /// Join reports instead of rendering one.
    #[command(subcommand)]
    pub action: Option<ReportAction>,
    /// The JSON report written by `hostcert run`.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// The files to write, one option per format.
    #[command(flatten)]
    pub files: super::outputs::FormatFiles<{ super::outputs::REPORT }>,
    /// Warn about waivers that expire within this many days of the run, 0 to 3650.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=MAX_WARNING_DAYS))]
    pub waiver_warning_days: u32,
}

/// `hostcert diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older JSON report.
    #[arg(value_name = "OLD.json")]
    pub old: PathBuf,
    /// The newer JSON report.
    #[arg(value_name = "NEW.json")]
    pub new: PathBuf,
    /// Also write the differences as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `hostcert attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The JSON report written by `hostcert run`.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The PKCS#8 PEM private key (Ed25519 or ECDSA P-256).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// The bundle to write: one DSSE envelope, as a line of JSON.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

/// `hostcert verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle written by `hostcert attest` or `hostcert run --sign`.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// The SubjectPublicKeyInfo PEM public key (`openssl pkey -in KEY -pubout`).
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
    /// The JSON report the bundle names (default: the file of that name beside the bundle).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also require the bundle to attest this verdict: a genuine bundle that attests another
    /// one exits 1.
    #[arg(long, value_name = "VERDICT", value_enum)]
    pub require: Option<RequiredVerdict>,
}

/// A verdict `verify --require` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RequiredVerdict {
    /// `certified`.
    Certified,
    /// `not-certified`.
    NotCertified,
    /// `incomplete`.
    Incomplete,
}

impl RequiredVerdict {
    /// The verdict of the report model.
    pub fn verdict(self) -> hostcert_reports::Verdict {
        match self {
            RequiredVerdict::Certified => hostcert_reports::Verdict::Certified,
            RequiredVerdict::NotCertified => hostcert_reports::Verdict::NotCertified,
            RequiredVerdict::Incomplete => hostcert_reports::Verdict::Incomplete,
        }
    }
}

/// `hostcert report merge`.
#[derive(Debug, Subcommand)]
pub enum ReportAction {
    /// Join the JSON reports of the shards of one run (`run --shard K/N`) into one report.
    Merge(MergeArgs),
}

/// `hostcert report merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The JSON reports to join.
    #[arg(value_name = "REPORT", required = true)]
    pub reports: Vec<PathBuf>,
    /// The files to write, one option per format.
    #[command(flatten)]
    pub files: super::outputs::FormatFiles<{ super::outputs::MERGE }>,
}

/// `hostcert clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}
