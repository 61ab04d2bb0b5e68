//! API usage: the `Sforce-Limit-Info` header and the `/limits` resource.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Daily API requests used and allowed, as last reported by Salesforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    /// Requests used in the rolling 24 hours (may exceed `max` while bursting).
    pub used: u64,
    /// The org's daily allocation.
    pub max: u64,
}

impl ApiUsage {
    /// Requests left before the daily limit (0 when over it).
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }

    /// The usage at which an `api_budget` of `share` (a fraction of the allocation, e.g. `0.5`)
    /// stops requests: `max × share`, rounded down.
    pub fn budget(&self, share: f64) -> u64 {
        // A float-to-int `as` saturates: a share out of range cannot wrap.
        (self.max as f64 * share).floor() as u64
    }

    /// Whether an `api_budget` of `share` lets no more request start.
    pub fn over_budget(&self, share: f64) -> bool {
        self.used >= self.budget(share)
    }
}

/// Parses a `Sforce-Limit-Info` value such as `api-usage=18/5000` or
/// `api-usage=25/5000; per-app-api-usage=17/250(appName=sample)`: only the `api-usage` part counts.
pub fn parse_limit_info(value: &str) -> Option<ApiUsage> {
    value.split(';').find_map(|part| {
        let (key, rest) = part.trim().split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("api-usage") {
            return None;
        }
        let (used, max) = rest.trim().split_once('/')?;
        let used = used.trim().parse().ok()?;
        let max = max
            .trim()
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()?;
        Some(ApiUsage { used, max })
    })
}

/// How long the largest reading stands against lower ones: answers sent close together can
/// arrive out of order, so within this time a lower reading is taken for an older one. Past it,
/// a lower reading is the rolling count going down (calls of 24 hours ago leaving it).
const OUT_OF_ORDER: Duration = Duration::from_secs(60);

/// The usage value every response updates: the largest reading of the last [`OUT_OF_ORDER`],
/// else the latest.
#[derive(Debug, Default)]
pub(crate) struct UsageTracker {
    /// The reading kept and when it was taken.
    kept: Mutex<Option<(ApiUsage, Instant)>>,
}

impl UsageTracker {
    pub(crate) fn record(&self, usage: ApiUsage) {
        self.record_at(usage, Instant::now());
    }

    fn record_at(&self, usage: ApiUsage, at: Instant) {
        let mut kept = crate::lock(&self.kept);
        // The reading kept stands whole (its allocation too) against an older answer.
        let stands = kept.is_some_and(|(old, taken)| {
            old.used > usage.used && at.saturating_duration_since(taken) < OUT_OF_ORDER
        });
        if !stands {
            *kept = Some((usage, at));
        }
    }

    /// Takes `usage` as the count now, whatever came before (an answer asked for now).
    pub(crate) fn set(&self, usage: ApiUsage) {
        *crate::lock(&self.kept) = Some((usage, Instant::now()));
    }

    pub(crate) fn get(&self) -> Option<ApiUsage> {
        crate::lock(&self.kept)
            .map(|(usage, _)| usage)
            .filter(|usage| usage.max > 0)
    }
}

/// One limit from `/limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Limit {
    /// The allocation.
    #[serde(rename = "Max")]
    pub max: i64,
    /// What is left of it.
    #[serde(rename = "Remaining")]
    pub remaining: i64,
}

/// The parts of `GET /limits` a connector needs, plus every entry as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `DailyApiRequests`.
    pub daily_api_requests: Limit,
    /// `DailyBulkV2QueryJobs`, when the org reports it.
    pub daily_bulk_v2_query_jobs: Option<Limit>,
    /// Every entry, by name (some carry nested per-app objects).
    pub all: HashMap<String, serde_json::Value>,
}

impl Limits {
    pub(crate) fn from_json(all: HashMap<String, serde_json::Value>) -> Result<Limits, String> {
        let get = |name: &str| -> Option<Limit> {
            all.get(name)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
        };
        let daily_api_requests =
            get("DailyApiRequests").ok_or("`DailyApiRequests` is missing or malformed")?;
        Ok(Limits {
            daily_api_requests,
            daily_bulk_v2_query_jobs: get("DailyBulkV2QueryJobs"),
            all,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_variants() {
        assert_eq!(
            parse_limit_info("api-usage=18/5000"),
            Some(ApiUsage {
                used: 18,
                max: 5000
            })
        );
        assert_eq!(
            parse_limit_info(
                "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"
            ),
            Some(ApiUsage {
                used: 25,
                max: 5000
            })
        );
        assert_eq!(
            parse_limit_info("api-usage=10018/100000; api-bursts=1/750"),
            Some(ApiUsage {
                used: 10018,
                max: 100000
            })
        );
        // Order does not matter; bursting past the max is allowed.
        assert_eq!(
            parse_limit_info("per-app-api-usage=1/2(appName=x); api-usage=16000/15000"),
            Some(ApiUsage {
                used: 16000,
                max: 15000
            })
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x)"),
            None
        );
        assert_eq!(parse_limit_info("api-usage=abc/5000"), None);
        assert_eq!(parse_limit_info(""), None);
        assert_eq!(
            ApiUsage {
                used: 16000,
                max: 15000
            }
            .remaining(),
            0
        );
    }

    #[test]
    fn a_budget_is_the_share_of_the_allocation_rounded_down() {
        let usage = ApiUsage {
            used: 500,
            max: 1_000,
        };
        assert_eq!(usage.budget(0.5), 500);
        assert_eq!(usage.budget(0.0015), 1);
        assert_eq!(usage.budget(0.0001), 0);
        assert_eq!(usage.budget(1.0), 1_000);
        assert!(usage.over_budget(0.5));
        assert!(!usage.over_budget(0.75));
    }

    #[test]
    fn tracker_keeps_the_largest_usage() {
        let t = UsageTracker::default();
        assert_eq!(t.get(), None);
        t.record(ApiUsage { used: 10, max: 100 });
        t.record(ApiUsage { used: 7, max: 100 });
        assert_eq!(t.get(), Some(ApiUsage { used: 10, max: 100 }));
    }

    /// A lower reading a minute after the largest is the rolling count going down: it is kept,
    /// so a session over its budget can come back under it.
    #[test]
    fn tracker_follows_the_count_down_after_a_minute() {
        let t = UsageTracker::default();
        let start = Instant::now();
        t.record_at(ApiUsage { used: 90, max: 100 }, start);
        t.record_at(
            ApiUsage { used: 80, max: 120 },
            start + Duration::from_secs(59),
        );
        assert_eq!(t.get(), Some(ApiUsage { used: 90, max: 100 }));
        t.record_at(
            ApiUsage { used: 40, max: 120 },
            start + Duration::from_secs(61),
        );
        assert_eq!(t.get(), Some(ApiUsage { used: 40, max: 120 }));
        // Higher readings are kept at once, whenever they come.
        t.record_at(
            ApiUsage { used: 41, max: 120 },
            start + Duration::from_secs(62),
        );
        assert_eq!(t.get(), Some(ApiUsage { used: 41, max: 120 }));
    }

    #[test]
    fn limits_parse_with_nested_per_app_entries() {
        let json = serde_json::json!({
            "DailyApiRequests": {"Max": 15000, "Remaining": 14998,
                "Workbench": {"Max": 0, "Remaining": 0}},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 9990},
            "DataStorageMB": {"Max": 5, "Remaining": 5}
        });
        let all = serde_json::from_value(json).unwrap();
        let limits = Limits::from_json(all).unwrap();
        assert_eq!(
            limits.daily_api_requests,
            Limit {
                max: 15000,
                remaining: 14998
            }
        );
        assert_eq!(
            limits.daily_bulk_v2_query_jobs,
            Some(Limit {
                max: 10000,
                remaining: 9990
            })
        );
        assert!(Limits::from_json(HashMap::new()).is_err());
    }
}
