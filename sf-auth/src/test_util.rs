//! Test kit (feature `test-util`): a retry policy that does not wait and a config for paused time.

use std::time::Duration;

use crate::config::{RetryConfig, SessionConfig};

impl RetryConfig {
    /// The default number of retries (5) with no wait between them, for tests: a transient
    /// failure is retried at once. Override `max_retries` with struct update syntax:
    /// `RetryConfig { max_retries: 1, ..RetryConfig::immediate() }`.
    pub fn immediate() -> RetryConfig {
        RetryConfig {
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            jitter: false,
            concurrent_limit_wait: Duration::ZERO,
            ..RetryConfig::default()
        }
    }
}

impl SessionConfig {
    /// This config without connect, read or idle-pool timeouts, for tests under tokio's paused
    /// time (`#[tokio::test(start_paused = true)]`): with no transport timers, virtual time moves
    /// only for the timers under test (backoff sleeps, polls).
    pub fn for_paused_time(mut self) -> SessionConfig {
        self.connect_timeout = None;
        self.read_timeout = None;
        self.pool_idle_timeout = None;
        self.body_timeout = None;
        self
    }
}
