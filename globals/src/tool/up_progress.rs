//! `lego up`'s display: one line per component, "starting" with its time
//! so far, then "up". On a terminal these are live lines (indicatif);
//! otherwise (a log, CI) one plain line per component when it is up.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    lines: Vec<Line>,
    /// Kept alive while the bars draw.
    _multi: Option<MultiProgress>,
}

struct Line {
    name: String,
    bar: Option<ProgressBar>,
    since: Option<Instant>,
    done: bool,
}

impl Progress {
    pub fn new(names: &[&str]) -> Progress {
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
        let live = std::io::stderr().is_terminal();
        let multi = live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let lines = names
            .iter()
            .map(|name| {
                let bar = multi.as_ref().map(|m| {
                    let b = m.add(ProgressBar::new_spinner());
                    b.set_style(style.clone());
                    b.set_prefix(format!("{name:<width$}"));
                    b.set_message("waiting");
                    b.enable_steady_tick(Duration::from_millis(100));
                    b
                });
                Line {
                    name: format!("{name:<width$}"),
                    bar,
                    since: None,
                    done: false,
                }
            })
            .collect();
        Progress {
            lines,
            _multi: multi,
        }
    }

    pub fn starting(&mut self, line: usize) {
        if let Some(l) = self.lines.get_mut(line) {
            l.since = Some(Instant::now());
        }
        self.tick();
    }

    /// Refreshes the "starting" lines' times.
    pub fn tick(&mut self) {
        for l in self.lines.iter().filter(|l| !l.done) {
            if let (Some(bar), Some(since)) = (&l.bar, l.since) {
                bar.set_message(format!("starting… {:.1} s", since.elapsed().as_secs_f64()));
            }
        }
    }

    pub fn up(&mut self, line: usize, what: &str) {
        let Some(l) = self.lines.get_mut(line) else {
            return;
        };
        l.done = true;
        let secs = l.since.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let msg = format!("{what} ({secs:.2} s)");
        match &l.bar {
            Some(bar) => bar.finish_with_message(msg),
            None => println!("  {} {msg}", l.name),
        }
    }

    /// Ends the live lines (those not up are left as they are).
    pub fn finish(&mut self) {
        for l in &self.lines {
            if let Some(bar) = &l.bar {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}
