//! A progress line on a terminal: redrawn in place on stderr, at most every
//! [`PROGRESS_REDRAW_INTERVAL`], and erased when done. When stderr is not a terminal (a log
//! file, a script) nothing is drawn, so output stays clean.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
pub const PROGRESS_REDRAW_INTERVAL: Duration = Duration::from_millis(200);

/// One line of progress on stderr.
#[derive(Debug)]
pub struct Progress {
    /// Whether to draw at all: stderr is a terminal and the caller wants it.
    enabled: bool,
    /// When the line was last drawn; `None` before the first time.
    last_drawn: Option<Instant>,
}

impl Progress {
    /// A progress line that draws only if stderr is a terminal and `wanted` (a command
    /// turns it off when its own output goes to the same terminal).
    pub fn on_terminal(wanted: bool) -> Progress {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            last_drawn: None,
        }
    }

    /// Redraws the line with `text()`, unless it was drawn less than
    /// [`PROGRESS_REDRAW_INTERVAL`] ago.
    pub fn update(&mut self, text: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last_drawn
            .is_some_and(|last| now.duration_since(last) < PROGRESS_REDRAW_INTERVAL)
        {
            return;
        }
        self.last_drawn = Some(now);
        // "\r" returns to the line's start; "\x1b[K" erases what a longer text left.
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "\r{}\x1b[K", text());
        let _ = stderr.flush();
    }

    /// Erases the line, if one was drawn.
    pub fn finish(&mut self) {
        if self.enabled && self.last_drawn.take().is_some() {
            let mut stderr = std::io::stderr();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
        }
    }
}

/// Runs `work`, which blocks, while a thread shows `what... 3s` on a terminal.
pub fn while_waiting<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let mut progress = Progress::on_terminal(true);
    progress.update(|| format!("{what}..."));
    std::thread::scope(|scope| {
        let (done, ticks) = mpsc::channel::<()>();
        scope.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = ticks.recv_timeout(PROGRESS_REDRAW_INTERVAL)
            {
                progress.update(|| format!("{what}... {:.0?}", started.elapsed()));
            }
            // Dropping `progress` erases the line.
        });
        let outcome = work();
        drop(done);
        outcome
    })
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
