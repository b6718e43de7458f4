//! Per-client-address rate limits for abuse-prone calls (verification codes, logins,
//! registrations, friend requests).
//!
//! Each limiter counts calls per client IP address in fixed one-second windows. Counts live in
//! the process, so a deployment of several instances admits up to `instances × limit` calls per
//! second from one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::context::CallContext;
use crate::error::ServiceError;

/// Length of one counting window.
const WINDOW: Duration = Duration::from_secs(1);
/// Tracked addresses above which stale windows are swept on the next call.
const SWEEP_THRESHOLD: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    calls: u32,
}

/// Admits at most `per_sec` calls per client address per second; 0 disables the limit.
#[derive(Debug)]
pub struct RateLimiter {
    /// Name of the limited calls, used in the error message (`logins`).
    name: &'static str,
    per_sec: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl RateLimiter {
    pub fn new(name: &'static str, per_sec: u32) -> Self {
        Self {
            name,
            per_sec,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one call from the context's client address; RESOURCE_EXHAUSTED once the address
    /// used up its calls of the current second. Calls without an address (in-process calls)
    /// are not limited.
    pub fn check(&self, ctx: &CallContext) -> Result<(), ServiceError> {
        match ctx.remote_addr {
            Some(address) => self.check_address(address.ip(), Instant::now()),
            None => Ok(()),
        }
    }

    /// Counts one call from `address` at time `now`.
    pub fn check_address(&self, address: IpAddr, now: Instant) -> Result<(), ServiceError> {
        if self.per_sec == 0 {
            return Ok(());
        }
        let mut windows = match self.windows.lock() {
            Ok(windows) => windows,
            Err(poisoned) => poisoned.into_inner(),
        };
        if windows.len() > SWEEP_THRESHOLD {
            windows.retain(|_, window| now.duration_since(window.started) < WINDOW);
        }
        let window = windows.entry(address).or_insert(Window {
            started: now,
            calls: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                calls: 0,
            };
        }
        if window.calls >= self.per_sec {
            return Err(ServiceError::resource_exhausted(format!(
                "too many {} from {address}: at most {} per second, retry in a second",
                self.name, self.per_sec
            )));
        }
        window.calls += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn limit_applies_per_second() {
        let limiter = RateLimiter::new("logins", 2);
        let start = Instant::now();
        assert!(limiter.check_address(ADDRESS, start).is_ok());
        assert!(limiter.check_address(ADDRESS, start).is_ok());
        let third = limiter.check_address(ADDRESS, start);
        assert_eq!(
            third.err().map(|err| err.code()),
            Some(tonic::Code::ResourceExhausted)
        );
        assert!(limiter.check_address(ADDRESS, start + WINDOW).is_ok());
    }

    #[test]
    fn addresses_counted_apart() {
        let limiter = RateLimiter::new("logins", 1);
        let other = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
        let now = Instant::now();
        assert!(limiter.check_address(ADDRESS, now).is_ok());
        assert!(limiter.check_address(other, now).is_ok());
        assert!(limiter.check_address(ADDRESS, now).is_err());
    }

    #[test]
    fn zero_disables_limit() {
        let limiter = RateLimiter::new("logins", 0);
        let now = Instant::now();
        for _ in 0..100 {
            assert!(limiter.check_address(ADDRESS, now).is_ok());
        }
    }
}
