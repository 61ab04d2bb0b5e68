//! The config keys holding ISO 8601 durations (`stream_slice_step`, `lookback_window`,
//! `formula_refresh`).

use super::{json_kind, Reader};
use crate::duration::IsoDuration;
use crate::error::Error;

impl Reader<'_> {
    /// `key` as an ISO 8601 duration of at least `min_secs` (`default` when absent); a problem
    /// naming the key, the value and `examples` otherwise.
    pub(super) fn duration(
        &mut self,
        key: &str,
        default: &str,
        min_secs: u64,
        examples: &str,
    ) -> Option<IsoDuration> {
        let Some(value) = self.get(key).cloned() else {
            return IsoDuration::parse(default).ok();
        };
        let floor = if min_secs == 1 {
            " of at least 1 second".to_string()
        } else if min_secs > 1 {
            format!(" of at least {min_secs} seconds")
        } else {
            String::new()
        };
        let Some(text) = value.as_str() else {
            let msg = format!(
                "is {}, not an ISO 8601 duration{floor}; {examples}",
                json_kind(&value)
            );
            self.problem(key, Some(&value), msg);
            return None;
        };
        match IsoDuration::parse(text) {
            Ok(d) if d.as_std().as_secs() >= min_secs => Some(d),
            Ok(d) => {
                let msg = format!(
                    "is not an ISO 8601 duration{floor} (it is {} s); {examples}",
                    d.as_std().as_secs_f64()
                );
                self.problem(key, Some(&value), msg);
                None
            }
            Err(Error::DurationParse { reason, .. }) => {
                let msg = format!("is not an ISO 8601 duration{floor} ({reason}); {examples}");
                self.problem(key, Some(&value), msg);
                None
            }
            Err(other) => {
                self.problem(key, Some(&value), other.to_string());
                None
            }
        }
    }

    /// `lookback_window`; one under a minute is taken with a WARN: Salesforce stamps a row when
    /// its transaction starts and shows it at commit, minutes later for a long transaction
    /// (reference §8.1: airbyte#27146 saw rows 5 minutes below the saved cursor), so a row
    /// committed late can fall behind the state.
    pub(super) fn lookback_window(&mut self) -> Option<IsoDuration> {
        let lookback = self.duration(
            "lookback_window",
            super::DEFAULT_LOOKBACK_WINDOW,
            0,
            "use e.g. `PT10M`, `PT30M`, `PT1H`",
        )?;
        if self.get("lookback_window").is_some() && lookback.as_std().as_secs() < 60 {
            self.warn(
                "lookback_window",
                "is under a minute: a row whose transaction commits after the sync read past \
                 its timestamp (Salesforce stamps rows when the transaction starts) is not read; \
                 the default `PT10M` reads the last ten minutes again to catch such rows",
            );
        }
        Some(lookback)
    }
    /// `formula_refresh` (`None` when left out, null or empty); one under an hour is taken
    /// with a WARN: every sync that long after the last refresh reads each stream with formula
    /// fields whole again, and `PT1M` (a minute) is easily written for `P1M` (a month).
    pub(super) fn formula_refresh(&mut self) -> Option<Option<IsoDuration>> {
        match self.get("formula_refresh") {
            None | Some(serde_json::Value::Null) => return Some(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => return Some(None),
            Some(_) => {}
        }
        let every = self.duration(
            "formula_refresh",
            "P1D",
            1,
            "use e.g. `P1D`, `PT12H`, `P7D`, or leave it out to never re-read",
        )?;
        if every.as_std().as_secs() < 3600 {
            let text = self
                .get("formula_refresh")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_ascii_uppercase();
            let minutes = text
                .strip_prefix("PT")
                .and_then(|t| t.strip_suffix('M'))
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let month = match minutes {
                Some(n) => format!(" (`{text}` is {n} minute(s); {n} month(s) is `P{n}M`)"),
                None => String::new(),
            };
            let message = format!(
                "is under an hour{month}: every sync that runs that long after the last refresh \
                 reads each incremental stream with formula fields whole again; a refresh is \
                 usually daily (`P1D`) or weekly (`P7D`)"
            );
            self.warn("formula_refresh", &message);
        }
        Some(Some(every))
    }
}
