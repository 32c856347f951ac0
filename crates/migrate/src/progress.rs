//! Progress bars on standard error, drawn only when it is a terminal (a log file or a pipe gets
//! the summary alone).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that draws nothing unless standard error is a terminal.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` messages (`None`: unknown, a counter), labelled `what`.
    pub fn messages(what: &str, total: Option<u64>) -> Progress {
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        bar.set_draw_target(target);
        let template = match total {
            Some(_) => {
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} messages ({per_sec}, {eta}) {msg}"
            }
            None => "{prefix} [{elapsed_precise}] {pos} messages ({per_sec}) {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_owned());
        Progress { bar }
    }

    /// Counts `n` more messages done.
    pub fn add(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Shows what is being worked on (a mailbox name).
    pub fn at(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    /// Prints a line above the bar (or plainly, without one) on standard error.
    pub fn note(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
