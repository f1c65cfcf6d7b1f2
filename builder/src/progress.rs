//! Progress of long stages: an indicatif bar on a terminal, nothing otherwise (not a TTY,
//! or `CI` set).

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

    /// A byte-counting bar for one stage.
    pub fn stage(&self, name: &str, total_bytes: u64) -> Stage {
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
        Stage { bar }
    }
}

/// One stage's bar.
pub struct Stage {
    bar: ProgressBar,
}

impl Stage {
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
}

impl Drop for Stage {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.abandon();
        }
    }
}
