//! Progress on stderr: a bar on a terminal, one plain line per step in a log (CI), so stdout
//! carries only the tables.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts the steps of a run and shows what is being measured.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: AtomicU64,
    started: Instant,
}

impl Progress {
    pub(crate) fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{elapsed_precise:.dim} [{bar:32.cyan/blue}] {pos}/{len} {msg}",
            )
            .expect("the progress template is valid")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Starts a step: shows what it measures.
    pub(crate) fn step(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_owned()),
            None => eprintln!(
                "[{:>3}/{} {:>6.1}s] {message}",
                self.done.load(Ordering::Relaxed) + 1,
                self.total,
                self.started.elapsed().as_secs_f64()
            ),
        }
    }

    /// Shows a message without starting a step.
    pub(crate) fn message(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_owned()),
            None => eprintln!("          {message}"),
        }
    }

    /// Prints a warning without breaking the bar.
    pub(crate) fn warn(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }

    /// Ends the current step.
    pub(crate) fn done(&self) {
        self.skip(1);
    }

    /// Counts `steps` as done without running them (a strategy that could not start).
    pub(crate) fn skip(&self, steps: u64) {
        self.done.fetch_add(steps, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(steps);
        }
    }

    pub(crate) fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!(
                "finished {} steps in {:.1}s",
                self.total,
                self.started.elapsed().as_secs_f64()
            ),
        }
    }
}
