//! One live progress line per stream on stderr, for a person at a terminal: rows read, rows per
//! second, the API in use and, once the stream's volume is counted, the estimate and the time
//! left. Nothing is drawn when stderr is a pipe or a file (a platform's logs stay clean).
//!
//! Drawn by `indicatif` (a `MultiProgress` of one bar a stream), at most 10 times a second.

use std::collections::HashMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sf_sync::{Api, StreamPlan};

/// A stream whose volume is known: a bar with the estimate and the time left.
const COUNTED: &str = "{prefix:<28} {msg:<4} {bar:20} {pos:>9}/{len:<9} rows {rate:>10} ETA {eta}";
/// A stream whose volume is unknown: rows and rate only.
const UNCOUNTED: &str = "{prefix:<28} {msg:<4} {pos:>9} rows {rate:>10}";

/// The progress lines of one sync.
pub struct Progress {
    /// `None` when nothing is drawn.
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl Progress {
    /// Lines on stderr when stderr is a terminal, none otherwise.
    pub fn stderr() -> Progress {
        Progress::new(
            std::io::stderr().is_terminal(),
            ProgressDrawTarget::stderr_with_hz(10),
        )
    }

    /// Lines drawn on `target` when `is_terminal`, none otherwise (a test injects both).
    pub fn new(is_terminal: bool, target: ProgressDrawTarget) -> Progress {
        Progress {
            multi: is_terminal.then(|| MultiProgress::with_draw_target(target)),
            bars: HashMap::new(),
        }
    }

    /// Whether lines are drawn.
    pub fn is_drawn(&self) -> bool {
        self.multi.is_some()
    }

    fn bar(&mut self, stream: &str) -> Option<&ProgressBar> {
        let multi = self.multi.as_ref()?;
        if !self.bars.contains_key(stream) {
            let bar = multi.add(ProgressBar::no_length());
            bar.set_style(style(UNCOUNTED));
            bar.set_prefix(stream.to_string());
            self.bars.insert(stream.to_string(), bar);
        }
        self.bars.get(stream)
    }

    /// A stream's plan: its API, and its estimate when counted.
    pub fn plan(&mut self, stream: &str, plan: &StreamPlan) {
        if let Some(bar) = self.bar(stream) {
            bar.set_message(api_label(plan.api));
            if let Some(rows) = plan.estimated_rows {
                bar.set_length(rows);
                bar.set_style(style(COUNTED));
            }
        }
    }

    /// The rows a stream has read so far.
    pub fn rows(&mut self, stream: &str, rows: u64) {
        if let Some(bar) = self.bar(stream) {
            // A count taken before changes landed may be passed: the bar grows with the rows.
            if bar.length().is_some_and(|len| rows > len) {
                bar.set_length(rows);
            }
            bar.set_position(rows);
        }
    }

    /// A stream ended: its line stays, with how it ended.
    pub fn finish(&mut self, stream: &str, how: &str) {
        if let Some(bar) = self.bar(stream) {
            let api = bar.message();
            // The rate at the finish, kept: indicatif's keeps dividing by the time since the
            // bar began while other streams' lines are redrawn.
            let seconds = bar.elapsed().as_secs_f64();
            let rate = if seconds > 0.0 {
                bar.position() as f64 / seconds
            } else {
                0.0
            };
            let template = if bar.length().is_some() {
                COUNTED
            } else {
                UNCOUNTED
            };
            bar.set_style(style_at(template, Some(rate)));
            bar.finish_with_message(format!("{api} {how}").trim().to_string());
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    style_at(template, None)
}

/// `template`'s style, its `{rate}` the live one, or `frozen` once the stream has ended.
fn style_at(template: &str, frozen: Option<f64>) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", frozen.unwrap_or_else(|| state.per_sec()));
            },
        )
}

fn api_label(api: Api) -> &'static str {
    match api {
        Api::Rest => "REST",
        Api::Bulk => "BULK",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Clone, Default)]
    struct Captured(Arc<Mutex<String>>);

    impl Captured {
        fn text(&self) -> String {
            self.0.lock().map(|t| t.clone()).unwrap_or_default()
        }
        fn push(&self, s: &str) -> std::io::Result<()> {
            if let Ok(mut t) = self.0.lock() {
                t.push_str(s);
            }
            Ok(())
        }
    }

    impl TermLike for Captured {
        fn width(&self) -> u16 {
            160
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(s)?;
            self.push("\n")
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn run(is_terminal: bool) -> String {
        let term = Captured::default();
        let mut progress = Progress::new(
            is_terminal,
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        assert_eq!(progress.is_drawn(), is_terminal);
        progress.plan(
            "Account",
            &StreamPlan {
                api: Api::Bulk,
                estimated_rows: Some(1_000),
                reason: String::new(),
            },
        );
        progress.rows("Account", 400);
        progress.plan(
            "Lead",
            &StreamPlan {
                api: Api::Rest,
                estimated_rows: None,
                reason: String::new(),
            },
        );
        progress.rows("Lead", 7);
        progress.finish("Lead", "done");
        progress.rows("Account", 1_000);
        progress.finish("Account", "done");
        term.text()
    }

    /// The last line drawn for `stream`: from its last start to the next stream's line.
    fn last_line(text: &str, stream: &str) -> String {
        let start = text.rfind(&format!("{stream} ")).unwrap_or(text.len());
        let rest = &text[start..];
        let end = ["Account ", "Lead ", "Contact "]
            .iter()
            .filter_map(|other| rest[1..].find(other).map(|i| i + 1))
            .min()
            .unwrap_or(rest.len());
        rest[..end].to_string()
    }

    #[test]
    fn a_terminal_gets_one_line_per_stream() {
        let text = run(true);
        let account = last_line(&text, "Account");
        assert!(account.contains("BULK done"), "{text}");
        assert!(account.contains("1000/1000"), "{text}");
        assert!(account.contains("rows"), "{text}");
        assert!(account.contains("ETA"), "{text}");
        let lead = last_line(&text, "Lead");
        assert!(lead.contains("REST done"), "{text}");
        assert!(lead.contains(" 7 rows"), "{text}");
        assert!(
            lead.ends_with("/s") || lead.trim_end().ends_with("/s"),
            "{lead}"
        );
        assert!(!lead.contains("ETA"), "no estimate, no ETA: {text}");
    }

    #[test]
    fn a_pipe_gets_nothing() {
        assert_eq!(run(false), "");
    }

    #[test]
    fn a_count_passed_by_changes_grows_the_bar() {
        let term = Captured::default();
        let mut progress =
            Progress::new(true, ProgressDrawTarget::term_like(Box::new(term.clone())));
        progress.plan(
            "Contact",
            &StreamPlan {
                api: Api::Rest,
                estimated_rows: Some(10),
                reason: String::new(),
            },
        );
        progress.rows("Contact", 12);
        progress.finish("Contact", "done");
        assert!(term.text().contains("12/12"), "{}", term.text());
    }

    /// The style a stream gets when it ends shows the rate it is given, whatever the bar's own
    /// clock says since (indicatif's kept falling on a terminal while other lines redrew).
    #[test]
    fn a_frozen_rate_is_the_one_shown() {
        let term = Captured::default();
        let multi =
            MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        let bar = multi.add(ProgressBar::no_length());
        bar.set_style(style_at(UNCOUNTED, Some(1234.4)));
        bar.set_prefix("Lead");
        bar.set_position(5_000);
        bar.finish_with_message("REST done");
        let text = term.text();
        assert!(
            last_line(&text, "Lead").trim_end().ends_with("1234/s"),
            "{text}"
        );
    }
}
