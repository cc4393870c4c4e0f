//! Progress while a fleet is read: a bar on a terminal (images and hosts done, failing ones),
//! plain lines otherwise, and nothing for a single one.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

use hostcert_reports::escape::visible;
use libtest_mimic::FormatSetting;

use crate::engine::UnitRead;

/// Reports targets as they are read, on stderr.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    plain: bool,
    done: AtomicUsize,
    unreadable: AtomicUsize,
}

impl Progress {
    /// Progress for `total` targets; silent for one target and with libtest's JSON format.
    pub(super) fn new(total: usize, format: Option<FormatSetting>) -> Progress {
        let quiet = total < 2 || matches!(format, Some(FormatSetting::Json));
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} reading targets {pos}/{len} {wide_bar} {elapsed} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            total,
            plain: !quiet && !terminal,
            done: AtomicUsize::new(0),
            unreadable: AtomicUsize::new(0),
        }
    }

    /// One image or host was read (or could not be).
    pub(super) fn done(&self, target: &UnitRead) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if target.unreadable.is_some() {
            self.unreadable.fetch_add(1, Ordering::SeqCst);
        }
        let unreadable = self.unreadable.load(Ordering::SeqCst);
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            if unreadable > 0 {
                bar.set_message(format!("{unreadable} could not be read"));
            }
        } else if self.plain {
            // Names and reasons come from targets: escaped, so no escape sequence reaches the
            // terminal.
            let name = visible(&target.name);
            match (&target.unreadable, &target.gather_error) {
                (Some(reason), _) => eprintln!(
                    "read {done}/{}: {name} could not be read: {}",
                    self.total,
                    visible(reason)
                ),
                (None, Some(reason)) => eprintln!(
                    "read {done}/{}: {name} stopped before every fact was read: {}",
                    self.total,
                    visible(reason)
                ),
                (None, None) => eprintln!("read {done}/{}: {name}", self.total),
            }
        }
    }

    /// All targets were read.
    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
