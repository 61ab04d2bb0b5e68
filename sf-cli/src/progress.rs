//! One live progress line per stream on stderr, for a person at a terminal: rows read, rows per
//! second, the API in use and, once the stream's volume is counted, the estimate and the time
//! left. Nothing is drawn when stderr is a pipe or a file (a platform's logs stay clean).
//!
//! Drawn by `indicatif` (a `MultiProgress` of one bar a stream), at most 10 times a second. A
//! line fits 80 columns (long stream names are cut, the bar takes what is left). When the lines
//! would not fit the terminal's height, the streams that ended first give their lines up to one
//! line that counts them and their rows, so the running streams stay in view.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sf_sync::{Api, StreamPlan};

/// A stream whose volume is known: a bar with the estimate and the time left.
const COUNTED: &str = "{prefix:20!} {msg:<4} {wide_bar} {pos:>9}/{len:<9} rows {rate:>9} ETA {eta}";
/// A stream whose volume is unknown: rows and rate only.
const UNCOUNTED: &str = "{prefix:20!} {msg:<4} {rows} {rate:>9}";

/// The progress lines of one sync.
pub struct Progress {
    /// `None` when nothing is drawn.
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
    /// Streams that ended and still have their line, the earliest first, and whether each
    /// completed.
    ended: VecDeque<(String, bool)>,
    /// Streams whose lines were given up, and the line that counts them.
    folded: HashSet<String>,
    folded_line: Option<ProgressBar>,
    folded_rows: u64,
    /// Lines the terminal has room for.
    room: usize,
}

impl Progress {
    /// Lines on stderr when stderr is a terminal, none otherwise.
    pub fn stderr() -> Progress {
        let (rows, _) = console::Term::stderr().size();
        Progress::new(
            std::io::stderr().is_terminal(),
            ProgressDrawTarget::stderr_with_hz(10),
        )
        // The cursor's line stays free.
        .with_room(usize::from(rows).saturating_sub(1))
    }

    /// Lines drawn on `target` when `is_terminal`, none otherwise (a test injects both), with
    /// room for any number of lines.
    pub fn new(is_terminal: bool, target: ProgressDrawTarget) -> Progress {
        Progress {
            multi: is_terminal.then(|| MultiProgress::with_draw_target(target)),
            bars: HashMap::new(),
            ended: VecDeque::new(),
            folded: HashSet::new(),
            folded_line: None,
            folded_rows: 0,
            room: usize::MAX,
        }
    }

    /// The same with room for `lines` lines (at least 3: two streams and the count).
    pub fn with_room(mut self, lines: usize) -> Progress {
        self.room = lines.max(3);
        self
    }

    /// Whether lines are drawn.
    pub fn is_drawn(&self) -> bool {
        self.multi.is_some()
    }

    fn bar(&mut self, stream: &str) -> Option<&ProgressBar> {
        let multi = self.multi.as_ref()?;
        if self.folded.contains(stream) {
            return None;
        }
        if !self.bars.contains_key(stream) {
            let bar = multi.add(ProgressBar::no_length());
            bar.set_style(style(UNCOUNTED));
            bar.set_prefix(stream.to_string());
            self.bars.insert(stream.to_string(), bar);
            self.fold();
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

    /// A stream ended: its line stays, with how it ended, while the terminal has room for it.
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
            if !self.ended.iter().any(|(s, _)| s == stream) {
                self.ended
                    .push_back((stream.to_string(), how == "complete"));
            }
            self.fold();
        }
    }

    /// Gives up the lines of the streams that ended first while the lines exceed the room,
    /// counting them (and their rows) on one line at the top.
    fn fold(&mut self) {
        let Some(multi) = self.multi.as_ref() else {
            return;
        };
        let mut changed = false;
        while self.bars.len() + usize::from(self.folded_line.is_some()) > self.room {
            // Streams that completed give their lines up first: one that did not stays in view.
            let at = self
                .ended
                .iter()
                .position(|(_, complete)| *complete)
                .unwrap_or(0);
            let Some((stream, _)) = self.ended.remove(at) else {
                break;
            };
            if let Some(bar) = self.bars.remove(&stream) {
                self.folded_rows += bar.position();
                multi.remove(&bar);
            }
            self.folded.insert(stream);
            changed = true;
            if self.folded_line.is_none() {
                // Left on the screen when the sync ends, as the streams' finished lines are.
                let line = multi.insert(
                    0,
                    ProgressBar::no_length().with_finish(indicatif::ProgressFinish::AndLeave),
                );
                line.set_style(
                    ProgressStyle::with_template("{msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                self.folded_line = Some(line);
            }
        }
        if let (true, Some(line)) = (changed, &self.folded_line) {
            let n = self.folded.len();
            line.set_message(format!(
                "{n} stream{} ended: {} row{}",
                if n == 1 { "" } else { "s" },
                self.folded_rows,
                if self.folded_rows == 1 { "" } else { "s" }
            ));
            line.tick();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    style_at(template, None)
}

/// `template`'s style, its `{rate}` the live one, or `frozen` once the stream has ended, and
/// `{rows}` the rows read with the noun in its number.
fn style_at(template: &str, frozen: Option<f64>) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", frozen.unwrap_or_else(|| state.per_sec()));
            },
        )
        .with_key(
            "rows",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let rows = state.pos();
                let _ = write!(w, "{rows:>9} {}", if rows == 1 { "row " } else { "rows" });
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

    /// On a terminal with room for four lines, the streams that ended first give up their
    /// lines to one that counts them and their rows; a running stream keeps its line. Long
    /// names are cut so a line fits 80 columns.
    #[test]
    fn lines_that_would_not_fit_fold_into_a_count() {
        let term = Captured::default();
        let mut progress =
            Progress::new(true, ProgressDrawTarget::term_like(Box::new(term.clone()))).with_room(4);
        let plan = StreamPlan {
            api: Api::Rest,
            estimated_rows: None,
            reason: String::new(),
        };
        progress.plan("Running__c", &plan);
        progress.rows("Running__c", 5);
        for (i, stream) in ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"]
            .iter()
            .enumerate()
        {
            progress.plan(stream, &plan);
            progress.rows(stream, 10 * (i as u64 + 1));
            progress.finish(stream, "complete");
        }
        // Four lines: the count, Running__c and the last two ended.
        assert_eq!(progress.bars.len(), 3);
        assert!(progress.bars.contains_key("Running__c"));
        assert!(progress.bars.contains_key("Delta") && progress.bars.contains_key("Epsilon"));
        let count = progress.folded_line.as_ref().map(|l| l.message());
        assert_eq!(count.as_deref(), Some("3 streams ended: 60 rows"));
        // A stream that did not complete keeps its line while complete ones fold.
        progress.plan("Failed__c", &plan);
        progress.finish("Failed__c", "incomplete");
        progress.plan("Zeta", &plan);
        progress.finish("Zeta", "complete");
        assert!(
            progress.bars.contains_key("Failed__c"),
            "{:?}",
            progress.bars.keys()
        );
        assert!(!progress.bars.contains_key("Delta") && !progress.bars.contains_key("Epsilon"));
        let count = progress.folded_line.as_ref().map(|l| l.message());
        assert_eq!(count.as_deref(), Some("5 streams ended: 150 rows"));
        // A folded stream draws nothing more.
        progress.rows("Alpha", 99);
        assert!(!progress.bars.contains_key("Alpha"));

        let wide = Captured::default();
        let mut progress =
            Progress::new(true, ProgressDrawTarget::term_like(Box::new(wide.clone())));
        progress.plan(
            "A_Very_Long_Custom_Object_Name__c",
            &StreamPlan {
                api: Api::Bulk,
                estimated_rows: Some(1_000_000),
                reason: String::new(),
            },
        );
        progress.rows("A_Very_Long_Custom_Object_Name__c", 1);
        progress.finish("A_Very_Long_Custom_Object_Name__c", "complete");
        let text = wide.text();
        assert!(
            !text.contains("A_Very_Long_Custom_Object_Name__c"),
            "{text}"
        );
        assert!(text.contains("A_Very_Long_Custom_"), "{text}");
    }

    #[test]
    fn one_row_is_a_row() {
        let term = Captured::default();
        let multi =
            MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        let bar = multi.add(ProgressBar::no_length());
        bar.set_style(style_at(UNCOUNTED, Some(1.0)));
        bar.set_prefix("Lead");
        bar.set_position(1);
        bar.finish_with_message("REST done");
        let line = last_line(&term.text(), "Lead");
        assert!(line.contains(" 1 row "), "{line}");
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
