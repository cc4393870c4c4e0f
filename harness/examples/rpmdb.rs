//! Reads an rpm database with hostcert's reader and prints what it holds, or how long reading it
//! takes (ci/bench-rpmdb).
//!
//! Usage: `cargo run --release --example rpmdb -- [--repeat N] [--packages | --files] PATH`,
//! where PATH is a tree (its database is found as rpm finds it) or a database file
//! (`rpmdb.sqlite`, `Packages.db`, `Packages`). `--packages` and `--files` print the lists in the
//! shape of `rpm -qa --qf` (name, epoch, version, release, arch, vendor, sigmd5; package, path,
//! size, digest, octal mode, flags); `--repeat N` reads N times and prints the best and median
//! times, and the process's peak resident memory.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hostcert::targets::packages::rpmdb::{self, Backend, Location, RpmDatabase};
use hostcert::targets::packages::LocalTree;

fn read(path: &Path) -> Result<RpmDatabase, String> {
    if path.is_dir() {
        return rpmdb::read(&LocalTree::new(path))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: no rpm database", path.display()));
    }
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or("not a file name")?;
    let backend = Backend::ALL
        .into_iter()
        .find(|backend| backend.file_name() == name)
        .ok_or_else(|| format!("{name}: not rpmdb.sqlite, Packages.db or Packages"))?;
    let parent = path.parent().unwrap_or(Path::new("."));
    let location = Location {
        dbpath: "/".to_owned(),
        backend,
        file: format!("/{name}"),
        dbpath_from: None,
    };
    rpmdb::read_at(&LocalTree::new(parent), location).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut repeat, mut print, mut path) = (0usize, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--repeat" => repeat = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--packages" | "--files" => print = Some(arg),
            _ => path = Some(arg),
        }
    }
    let Some(path) = path else {
        eprintln!("usage: rpmdb [--repeat N] [--packages | --files] PATH");
        return ExitCode::from(2);
    };
    let path = Path::new(&path);
    let database = match read(path) {
        Ok(database) => database,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    match print.as_deref() {
        Some("--packages") => {
            for p in &database.packages {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    p.name,
                    p.epoch.unwrap_or(0),
                    p.version,
                    p.release,
                    p.arch.as_deref().unwrap_or("(none)"),
                    p.vendor.as_deref().unwrap_or("(none)"),
                    p.sigmd5.as_deref().unwrap_or("(none)"),
                );
            }
        }
        Some(_) => {
            for p in &database.packages {
                for f in &p.files {
                    println!(
                        "{}\t{}\t{}\t{}\t{:o}\t{}",
                        p.name,
                        f.path,
                        f.size,
                        f.digest.as_deref().unwrap_or(""),
                        f.mode,
                        f.flags
                    );
                }
            }
        }
        None => {
            let files: usize = database.packages.iter().map(|p| p.files.len()).sum();
            println!(
                "{}: {} database at {}, {} packages, {files} files",
                path.display(),
                database.location.backend,
                database.location.file,
                database.packages.len()
            );
        }
    }
    if repeat > 0 {
        let mut times: Vec<Duration> = (0..repeat)
            .map(|_| {
                let start = Instant::now();
                let again = read(path).expect("read again");
                std::hint::black_box(again);
                start.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "read {repeat} times: best {:.2} ms, median {:.2} ms, worst {:.2} ms",
            times[0].as_secs_f64() * 1e3,
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
        );
    }
    if let Some(peak) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
    {
        println!(
            "peak resident memory: {}",
            peak.trim_start_matches("VmHWM:").trim()
        );
    }
    ExitCode::SUCCESS
}
