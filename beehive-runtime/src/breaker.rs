//! Adaptive client-side throttling (the "client request rejection" scheme of Google's SRE book):
//! over a sliding window, a call is rejected locally with probability
//! `max(0, (requests − K·accepts) / (requests + 1))`.
//!
//! A healthy backend accepts almost everything, so the probability stays 0. When it fails, the
//! client sheds its own load instead of piling calls on. The probability never reaches 1, so some
//! calls always go through; as they succeed, and as old failures leave the window, it falls back
//! to 0. The breaker never stays open.
//!
//! NOTE: unlike the book, calls rejected locally are not counted as requests. Counted, a client
//! that keeps calling during an outage fills the window with its own rejections, and after the
//! backend recovers the probability shrinks by only a factor of about 1.5 per window length.
//! Uncounted, the window holds only calls the backend saw, so the breaker closes at the latest
//! one window after the backend recovers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

/// Settings of a [`Breaker`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Length of the sliding window.
    pub window: Duration,
    /// Number of buckets the window is split into; old buckets leave the window one at a time.
    pub buckets: u32,
    /// Multiplier `K` of accepts: 1.5 lets through up to half again as many calls as succeed.
    pub k: f64,
    /// Below this many requests in the window nothing is rejected, so a few early failures do
    /// not throttle a fresh client.
    pub min_requests: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            buckets: 40,
            k: 1.5,
            min_requests: 10,
        }
    }
}

/// The outcome of one call, as the breaker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend handled the call (including errors that are the caller's fault).
    Accepted,
    /// UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or a connection failure.
    Failed,
}

impl Outcome {
    /// Classifies a gRPC status code: overload and unreachability count as failures.
    pub fn of_code(code: tonic::Code) -> Self {
        match code {
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted => Self::Failed,
            _ => Self::Accepted,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    requests: u64,
    accepts: u64,
}

#[derive(Debug)]
struct Window {
    buckets: Vec<Bucket>,
    /// Index of the bucket that `bucket_start` belongs to.
    current: usize,
    bucket_start: Instant,
}

/// One breaker per client of a service; see the module documentation.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    bucket_length: Duration,
    window: Mutex<Window>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        let buckets = config.buckets.max(1);
        Self {
            config,
            bucket_length: config.window / buckets,
            window: Mutex::new(Window {
                buckets: vec![Bucket::default(); buckets as usize],
                current: 0,
                bucket_start: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the window forward to `now`, clearing buckets that fell out of it.
    fn advance(&self, window: &mut Window, now: Instant) {
        let elapsed = now.saturating_duration_since(window.bucket_start);
        if elapsed < self.bucket_length || self.bucket_length.is_zero() {
            return;
        }
        let steps = (elapsed.as_nanos() / self.bucket_length.as_nanos()) as usize;
        let count = window.buckets.len();
        for step in 1..=steps.min(count) {
            let index = (window.current + step) % count;
            window.buckets[index] = Bucket::default();
        }
        window.current = (window.current + steps) % count;
        window.bucket_start += self.bucket_length * u32::try_from(steps).unwrap_or(u32::MAX);
    }

    /// Returns the current rejection probability.
    pub fn rejection_probability(&self) -> f64 {
        let mut window = self.lock();
        self.advance(&mut window, Instant::now());
        self.probability(&window)
    }

    fn probability(&self, window: &Window) -> f64 {
        let (requests, accepts) = window.buckets.iter().fold((0u64, 0u64), |(r, a), bucket| {
            (r + bucket.requests, a + bucket.accepts)
        });
        if requests < self.config.min_requests {
            return 0.0;
        }
        let requests = requests as f64;
        ((requests - self.config.k * accepts as f64) / (requests + 1.0)).max(0.0)
    }

    /// Decides whether a call may go out.
    pub fn allow(&self) -> bool {
        let mut window = self.lock();
        self.advance(&mut window, Instant::now());
        let probability = self.probability(&window);
        !(probability > 0.0 && rand::rng().random::<f64>() < probability)
    }

    /// Records the outcome of a call that [`Breaker::allow`] let through.
    pub fn record(&self, outcome: Outcome) {
        let mut window = self.lock();
        self.advance(&mut window, Instant::now());
        let current = window.current;
        let bucket = &mut window.buckets[current];
        bucket.requests += 1;
        if outcome == Outcome::Accepted {
            bucket.accepts += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_backend_never_rejected() {
        let breaker = Breaker::new(BreakerConfig::default());
        for _ in 0..1000 {
            assert!(breaker.allow());
            breaker.record(Outcome::Accepted);
        }
        assert_eq!(breaker.rejection_probability(), 0.0);
    }

    #[test]
    fn failures_raise_probability_below_one() {
        let breaker = Breaker::new(BreakerConfig::default());
        for _ in 0..100 {
            breaker.record(Outcome::Failed);
        }
        let probability = breaker.rejection_probability();
        assert!(probability > 0.98, "{probability}");
        assert!(probability < 1.0, "{probability}");
    }

    #[test]
    fn few_requests_not_rejected() {
        let breaker = Breaker::new(BreakerConfig::default());
        for _ in 0..9 {
            breaker.record(Outcome::Failed);
        }
        assert_eq!(breaker.rejection_probability(), 0.0);
    }

    #[test]
    fn successes_close_it_again() {
        let breaker = Breaker::new(BreakerConfig::default());
        for _ in 0..30 {
            breaker.record(Outcome::Failed);
        }
        assert!(breaker.rejection_probability() > 0.5);
        for _ in 0..60 {
            breaker.record(Outcome::Accepted);
        }
        assert_eq!(breaker.rejection_probability(), 0.0);
    }

    #[test]
    fn old_failures_leave_window() {
        let config = BreakerConfig {
            window: Duration::from_millis(200),
            buckets: 4,
            ..BreakerConfig::default()
        };
        let breaker = Breaker::new(config);
        for _ in 0..50 {
            breaker.record(Outcome::Failed);
        }
        assert!(breaker.rejection_probability() > 0.9);
        std::thread::sleep(Duration::from_millis(260));
        assert_eq!(breaker.rejection_probability(), 0.0);
    }

    #[test]
    fn failure_codes_classified() {
        assert_eq!(Outcome::of_code(tonic::Code::Unavailable), Outcome::Failed);
        assert_eq!(
            Outcome::of_code(tonic::Code::DeadlineExceeded),
            Outcome::Failed
        );
        assert_eq!(
            Outcome::of_code(tonic::Code::ResourceExhausted),
            Outcome::Failed
        );
        assert_eq!(Outcome::of_code(tonic::Code::NotFound), Outcome::Accepted);
        assert_eq!(Outcome::of_code(tonic::Code::Ok), Outcome::Accepted);
    }
}
