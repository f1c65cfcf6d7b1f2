//! Progress of long operations, the one place that decides how it is shown: on a terminal
//! (stderr is a TTY and `CI` is not set) an indicatif bar or spinner; otherwise byte bars
//! are silent and steps print one line when they start and one when they end.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether and where progress is shown.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Visible when stderr is a terminal and `CI` is not set.
    pub fn auto() -> Progress {
        Progress {
            visible: std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
        }
    }

    /// Never visible.
    pub fn hidden() -> Progress {
        Progress { visible: false }
    }

    /// Whether bars and spinners are drawn.
    pub fn is_visible(&self) -> bool {
        self.visible
    }

    /// A byte-counting bar for one stage of a copy or a conversion.
    pub fn stage(&self, name: &str, total_bytes: u64) -> ByteBar {
        let bar = if self.visible {
            let bar =
                ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta:>4}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        ByteBar { bar }
    }

    /// A step of unknown length named by `label`: a spinner on a terminal, else the line
    /// `LABEL …` on stderr.
    pub fn step(&self, label: String) -> StepStatus {
        if self.visible {
            let spinner = ProgressBar::new_spinner().with_message(label);
            spinner.enable_steady_tick(Duration::from_millis(120));
            StepStatus {
                spinner: Some(spinner),
            }
        } else {
            eprintln!("{label} …");
            StepStatus { spinner: None }
        }
    }
}

/// A bar counting the bytes of one stage.
pub struct ByteBar {
    bar: ProgressBar,
}

impl ByteBar {
    /// Sets the bytes done.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Sets the total (when it becomes known).
    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    /// Completes the bar (it stays on screen).
    pub fn finish(self) {
        self.bar.finish();
    }

    /// Completes the bar and removes it from the screen.
    pub fn clear(self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for ByteBar {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.abandon();
        }
    }
}

/// A running step (see [`Progress::step`]).
pub struct StepStatus {
    spinner: Option<ProgressBar>,
}

impl StepStatus {
    /// Ends the step with `line`: the spinner's last message, or a line on stderr.
    pub fn done(self, line: String) {
        match self.spinner {
            Some(spinner) => spinner.finish_with_message(line),
            None => eprintln!("{line}"),
        }
    }
}
