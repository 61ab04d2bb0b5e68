//! The one retry loop every call goes through (data calls, their bodies and the token request):
//! a failure worth retrying is tried again after an exponential backoff with jitter, within the
//! policy's budget ([`crate::RetryConfig`]).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Session;
use crate::error::{Error, ErrorKind};

/// What one try of a call came to; an `Err` beside it is final.
pub(super) enum Attempt<T> {
    /// The call succeeded.
    Done(T),
    /// The call failed in a way worth trying again after a backoff of at least `at_least` (a
    /// `Retry-After`); `error` is the call's error once the retries are spent.
    Retry {
        error: Error,
        at_least: Option<Duration>,
    },
    /// Try again at once without spending a retry: the token was just renewed.
    Replay,
}

impl<T> Attempt<T> {
    /// `error`, tried again (after at least `at_least`) when `retryable`, else final.
    pub(super) fn failed(
        error: Error,
        retryable: bool,
        at_least: Option<Duration>,
    ) -> Result<Attempt<T>, Error> {
        if retryable {
            Ok(Attempt::Retry { error, at_least })
        } else {
            Err(error)
        }
    }
}

impl Session {
    /// Runs `attempt` until it succeeds, fails for good, or fails retryably with the retries
    /// spent; each retry is logged as `event` and waits its backoff first.
    pub(super) async fn with_retries<T, F, Fut>(
        &self,
        event: &'static str,
        operation: &str,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Attempt<T>, Error>>,
    {
        let mut retry: u32 = 0;
        loop {
            match attempt().await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Replay => {}
                Attempt::Retry { error, at_least } => {
                    let policy = &self.inner.config.retry;
                    let concurrent = error.kind() == ErrorKind::ConcurrentLimit;
                    let budget = if concurrent {
                        policy.concurrent_limit_retries.max(policy.max_retries)
                    } else {
                        policy.max_retries
                    };
                    if retry >= budget {
                        return Err(error);
                    }
                    let at_least = if concurrent {
                        Some(at_least.map_or(policy.concurrent_limit_wait, |a| {
                            a.max(policy.concurrent_limit_wait)
                        }))
                    } else {
                        at_least
                    };
                    match error.api_error() {
                        Some(api) => tracing::warn!(
                            operation = %operation,
                            retry,
                            status = api.status,
                            error_code = ?api.error_code,
                            "{event}"
                        ),
                        None => {
                            tracing::warn!(operation = %operation, retry, error = %error, "{event}")
                        }
                    }
                    self.sleep_backoff(retry, at_least).await;
                    retry += 1;
                }
            }
        }
    }

    /// Sleeps the backoff before retry number `retry`, at least `at_least` (capped at the
    /// policy's longest wait).
    async fn sleep_backoff(&self, retry: u32, at_least: Option<Duration>) {
        let unit = self.next_unit();
        let mut wait = self.inner.config.retry.backoff(retry, unit);
        if let Some(floor) = at_least {
            wait = wait.max(floor.min(self.inner.config.retry.max_backoff));
        }
        tokio::time::sleep(wait).await;
    }

    fn next_unit(&self) -> f64 {
        // xorshift64: jitter needs spread, not cryptographic quality.
        let mut x = self.inner.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.inner.rng.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}
