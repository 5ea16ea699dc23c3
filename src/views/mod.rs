//! Views: everything arcplan prints goes through here.
//!
//! Colour follows the terminal: it is used only when the stream is a terminal, and never with
//! `NO_COLOR` or `--no-color` (anstream strips the styles otherwise).

pub mod diagnostics;
pub mod events;
#[cfg(test)]
#[path = "../../tests/fixtures/mod.rs"]
pub(crate) mod fixtures;
pub mod graph;
pub mod live;
pub mod plan;
pub mod progress;
pub mod report;
pub mod status;
pub mod view;

pub use diagnostics::ExpandedCluster;
pub use view::{PlanContext, Stage, View};

use anstyle::{AnsiColor, Style};
use std::io::Write;

/// Where output goes, and whether it may be coloured.
#[derive(Debug, Clone)]
pub struct Output {
    /// The caller asked for no colour.
    pub no_color: bool,
}

/// Bold red, for errors.
pub const ERROR: Style = AnsiColor::Red.on_default().bold();
/// Bold green, for success.
pub const SUCCESS: Style = AnsiColor::Green.on_default().bold();

impl Output {
    /// Decides colour once, from the flag (anstream handles NO_COLOR and non-terminals).
    pub fn detect(no_color: bool) -> Self {
        if no_color {
            anstream::ColorChoice::Never.write_global();
        }
        Self { no_color }
    }

    /// True when standard output may be coloured (a terminal, no NO_COLOR, no --no-color).
    pub fn color_stdout(&self) -> bool {
        use std::io::IsTerminal;
        !self.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
    }

    /// Writes text to standard output as is (a broken pipe is not an error worth reporting).
    pub fn stdout(&self, text: &str) {
        let mut out = anstream::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// Writes text to standard error as is.
    pub fn stderr(&self, text: &str) {
        let mut err = anstream::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = err.write_all(b"\n");
        }
    }

    /// A one-line error on standard error.
    pub fn error(&self, message: &str) {
        self.stderr(&format!("{ERROR}Error:{ERROR:#} {message}"));
    }

    /// A success line on standard output.
    pub fn success(&self, message: &str) {
        self.stdout(&format!("{SUCCESS}{message}{SUCCESS:#}"));
    }
}
