//! Opening a run's targets: fact snapshots (`--facts`), addresses (`--target`, `local` when
//! none is given), inventory hosts (`--inventory`, `--limit`), and the images paired with each
//! of them (`--image`, `--images FILE`), into [`Units`]: each image and each host once, and the
//! targets made of them, in report order (snapshots, then each image's pairs, row by row of
//! the matrix), narrowed to a `--shard`. Opening reads no host facts.

use std::path::{Path, PathBuf};

use hostcert_reports::escape::visible;

use crate::engine::{Cell, Units};
use crate::facts::ProbeSet;
use crate::model::{CertifiedKind, Profile};
use crate::targets::pair::PairInputs;
use crate::targets::snapshot::SnapshotTarget;
use crate::targets::ssh::SshTarget;
use crate::targets::{self, Target, TargetOptions, UnreadableTarget};
use crate::Error;

/// Which targets a run certifies.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--target` addresses.
    pub targets: Vec<String>,
    /// `--image` addresses: each target becomes a pair with each image.
    pub images: Vec<String>,
    /// `--images FILE`: more image addresses, one a line.
    pub images_file: Option<PathBuf>,
    /// `--facts` snapshot files.
    pub facts: Vec<PathBuf>,
    /// `--inventory`.
    pub inventory: Option<PathBuf>,
    /// `--limit`.
    pub limit: Option<String>,
    /// `--shard K/N`.
    pub shard: Option<(u32, u32)>,
}

impl Selection {
    /// Whether `local` is certified because no target was given.
    pub fn implicit_local(&self) -> bool {
        self.targets.is_empty() && self.facts.is_empty() && self.inventory.is_none()
    }

    /// Whether the run has images, and so may make a real run.
    pub fn has_images(&self) -> bool {
        !self.images.is_empty() || self.images_file.is_some()
    }
}

/// The image addresses of an `--images` file: one a line; blank lines and lines whose first
/// character that is not a space is `#` are skipped. With the line each is on.
pub fn read_images_file(path: &Path) -> Result<Vec<(usize, String)>, Error> {
    let text = crate::fsio::read_regular_text(path, crate::fsio::cap::IMAGES, "images file")?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(number, line)| (number, line.to_owned()))
        .collect())
}

/// Opens the images of pairs: a bad one stops the run before any target is opened, named with
/// its option (`--image ADDRESS: ...`, `--images FILE:LINE: ADDRESS: ...`).
fn open_images(
    selection: &Selection,
    options: &TargetOptions,
) -> Result<Vec<Box<dyn Target>>, Error> {
    let mut images = Vec::new();
    for address in &selection.images {
        images.push(
            targets::pair::open_image(address, options)
                .map_err(|e| Error::Usage(format!("--image {e}")))?,
        );
    }
    if let Some(path) = &selection.images_file {
        let addresses = read_images_file(path)?;
        // A matrix whose rows are all missing is not the hosts alone.
        if addresses.is_empty() {
            return Err(Error::Usage(format!(
                "--images {} names no image (one address a line; blank lines and # comments are skipped)",
                path.display()
            )));
        }
        for (line, address) in addresses {
            images.push(
                targets::pair::open_image(&address, options).map_err(|e| {
                    Error::Usage(format!("--images {}:{line}: {e}", path.display()))
                })?,
            );
        }
    }
    Ok(images)
}

/// Opens every target of `selection`. A target that cannot be opened stays in the run as an
/// [`UnreadableTarget`]: its checks report the reason as errors and every other target is
/// still certified.
pub fn open(selection: &Selection, options: &TargetOptions) -> Result<Units, Error> {
    let mut hosts: Vec<Box<dyn Target>> = Vec::new();
    for path in &selection.facts {
        hosts.push(match SnapshotTarget::load(path) {
            Ok(snapshot) => Box::new(snapshot),
            Err(error) => Box::new(UnreadableTarget::new(error)),
        });
    }
    let snapshots = hosts.len();
    // The images of pairs are opened first: a bad `--image` stops the run before any target.
    let images = open_images(selection, options)?;
    let addresses = if selection.implicit_local() {
        vec!["local".to_owned()]
    } else {
        selection.targets.clone()
    };
    for address in &addresses {
        match targets::open(address, options) {
            Ok(mut opened) => hosts.append(&mut opened),
            Err(error) => hosts.push(Box::new(UnreadableTarget::new(error))),
        }
    }
    if let Some(path) = &selection.inventory {
        let mut found = crate::inventory::read(path).map_err(|e| Error::Invalid(vec![e]))?;
        if let Some(pattern) = &selection.limit {
            found = crate::inventory::limit(found, pattern).map_err(Error::Usage)?;
        }
        for host in found {
            let mut ssh = options.ssh.clone();
            if host.identity.is_some() {
                ssh.identity = host.identity.clone();
            }
            hosts.push(match SshTarget::parse(&host.ssh_address(), ssh) {
                Ok(target) => Box::new(target.named(&host.name)),
                Err(error) => Box::new(UnreadableTarget::new(error)),
            });
        }
    }
    // Snapshots keep the facts they saved; live and offline targets become pairs with each
    // image (image by image: the rows of the matrix), or pairs without one that answer the
    // seccomp profile's probes.
    let paired = !images.is_empty() || options.seccomp_profile.is_some();
    let cell = |name: String, host: usize, image: Option<usize>, paired: bool| Cell {
        name,
        host,
        image,
        paired,
        probes: ProbeSet::new(),
    };
    let mut cells: Vec<Cell> = (0..snapshots)
        .map(|host| cell(hosts[host].name().to_owned(), host, None, false))
        .collect();
    if images.is_empty() {
        cells.extend(
            (snapshots..hosts.len())
                .map(|host| cell(hosts[host].name().to_owned(), host, None, paired)),
        );
    } else {
        for (index, image) in images.iter().enumerate() {
            cells.extend((snapshots..hosts.len()).map(|host| {
                let name = format!("{}@{}", image.name(), hosts[host].name());
                cell(name, host, Some(index), true)
            }));
        }
    }
    if let Some(share) = selection.shard {
        cells = crate::inventory::shard(cells, |c| c.name.as_str(), share);
    }
    Ok(prune(Units {
        images,
        hosts,
        cells,
        pair_inputs: PairInputs::new(options.seccomp_profile.clone()),
    }))
}

/// Opens one target, and the pair of it with `image` (or without one when the run has a
/// seccomp profile): `gather`'s single target. An address of several targets (an OS tree with
/// several kernels, an image index) is refused, naming them.
pub fn open_one(
    address: &str,
    image: Option<&str>,
    options: &TargetOptions,
) -> Result<Units, Error> {
    let image = match image {
        Some(address) => Some(
            targets::pair::open_image(address, options)
                .map_err(|e| Error::Usage(format!("--image {e}")))?,
        ),
        None => None,
    };
    let opened = targets::open(address, options)?;
    if opened.len() != 1 {
        let names: Vec<&str> = opened.iter().map(|t| t.name()).collect();
        return Err(Error::Usage(format!(
            "{address} holds {} targets ({}); gather one at a time with --param kernel-version=RELEASE (OS trees) or --platform OS/ARCH (image indexes)",
            opened.len(),
            names.join(", ")
        )));
    }
    let host = opened.into_iter().next().expect("one target");
    let paired = image.is_some() || options.seccomp_profile.is_some();
    let name = match &image {
        Some(image) => format!("{}@{}", image.name(), host.name()),
        None => host.name().to_owned(),
    };
    Ok(Units {
        cells: vec![Cell {
            name,
            host: 0,
            image: image.as_ref().map(|_| 0),
            paired,
            probes: ProbeSet::new(),
        }],
        images: image.into_iter().collect(),
        hosts: vec![host],
        pair_inputs: PairInputs::new(options.seccomp_profile.clone()),
    })
}

/// Drops the images and hosts no target is made of (after `--shard`), so that only what the
/// run certifies is read.
fn prune(units: Units) -> Units {
    let Units {
        images,
        hosts,
        mut cells,
        pair_inputs,
    } = units;
    let keep = |count: usize, used: &dyn Fn(usize) -> bool| -> Vec<Option<usize>> {
        let mut next = 0;
        (0..count)
            .map(|index| {
                used(index).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    };
    let image_at = keep(images.len(), &|i| cells.iter().any(|c| c.image == Some(i)));
    let host_at = keep(hosts.len(), &|h| cells.iter().any(|c| c.host == h));
    for cell in &mut cells {
        cell.host = host_at[cell.host].expect("a cell's host is kept");
        cell.image = cell.image.and_then(|i| image_at[i]);
    }
    let filter = |all: Vec<Box<dyn Target>>, at: &[Option<usize>]| {
        all.into_iter()
            .zip(at)
            .filter(|(_, kept)| kept.is_some())
            .map(|(target, _)| target)
            .collect()
    };
    Units {
        images: filter(images, &image_at),
        hosts: filter(hosts, &host_at),
        cells,
        pair_inputs,
    }
}

/// Refuses two targets of one name: trial names must be unique.
pub fn check_names(units: &Units) -> Result<(), Error> {
    let mut names = std::collections::BTreeSet::new();
    for cell in &units.cells {
        if !names.insert(cell.name.as_str()) {
            return Err(Error::Usage(format!(
                "two targets are named `{}`; trial names must be unique",
                visible(&cell.name)
            )));
        }
    }
    Ok(())
}

/// Refuses, before anything is gathered, the targets of a kind `profile` does not certify
/// (its `target-kinds`), in one error that names each and says how to give a target it does
/// certify. `implicit_local` says that `local` was chosen because no target was given.
pub fn refuse_uncertified_kinds(
    profile: &Profile,
    units: &Units,
    implicit_local: bool,
) -> Result<(), Error> {
    let refused: Vec<String> = units
        .cells
        .iter()
        .filter(|cell| units.hosts[cell.host].kind_is_known())
        .filter_map(|cell| {
            let host = &units.hosts[cell.host];
            let image = cell.image_kind(units).or(host.image_kind());
            (!profile.certifies(host.kind(), image)).then(|| {
                let kind = CertifiedKind {
                    kind: host.kind(),
                    image,
                };
                let pair = kind.image.is_some();
                format!(
                    "`{}` is {} `{kind}` {}{}",
                    visible(&cell.name),
                    if pair { "an" } else { "a" },
                    if pair { "pair" } else { "target" },
                    if implicit_local {
                        " (this machine: the target when no --target is given)"
                    } else {
                        ""
                    }
                )
            })
        })
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let kinds: Vec<String> = profile.target_kinds.iter().map(|k| k.to_string()).collect();
    let how: Vec<String> = profile
        .target_kinds
        .iter()
        .map(|k| k.how_to_give())
        .collect();
    Err(Error::Usage(format!(
        "profile `{}` certifies {} targets only (target-kinds), and {}; give one with {}",
        profile.name,
        kinds.join(", "),
        refused.join(", "),
        how.join(" or ")
    )))
}
