//! Closed-loop load: a fixed number of workers, each sending its next call as soon as the last
//! one returns, for a warm-up period and then a measured period or call count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::stats::CallStats;

/// One call of a scenario, made by worker `worker`; returns once the response has arrived.
pub type CallFn = Arc<dyn Fn(usize) -> BoxFuture<'static, Result<(), tonic::Status>> + Send + Sync>;

/// When the measured period ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    After(Duration),
    Calls(u64),
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Workers, each with one call in flight at a time.
    pub concurrency: usize,
    /// Calls made before measuring, to fill caches, pools and connections.
    pub warmup: Duration,
    pub stop: Stop,
    /// Draws a progress bar on standard error.
    pub progress: bool,
}

#[derive(Debug, Clone)]
pub struct LoadResult {
    pub stats: CallStats,
    pub elapsed: Duration,
}

impl LoadResult {
    /// Successful calls per second over the measured period.
    pub fn calls_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds == 0.0 {
            return 0.0;
        }
        self.stats.ok_count() as f64 / seconds
    }
}

/// Runs `call` under closed-loop load: warm-up first, then the measured period. Dropping the
/// returned future stops the load: its workers are aborted with it.
pub async fn run_load(label: &str, call: CallFn, options: &LoadOptions) -> LoadResult {
    if !options.warmup.is_zero() {
        let bar = progress_bar(
            options.progress,
            &format!("{label} warm-up"),
            Stop::After(options.warmup),
        );
        drive(
            &call,
            options.concurrency,
            Stop::After(options.warmup),
            &bar,
        )
        .await;
        bar.finish_and_clear();
    }
    let bar = progress_bar(options.progress, label, options.stop);
    let result = drive(&call, options.concurrency, options.stop, &bar).await;
    bar.finish_and_clear();
    result
}

async fn drive(call: &CallFn, concurrency: usize, stop: Stop, bar: &ProgressBar) -> LoadResult {
    let started = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Mutex::new(CallStats::new()));

    // JoinSets abort their tasks when dropped, so the load stops with this future.
    let mut workers = JoinSet::new();
    for worker in 0..concurrency.max(1) {
        let call = Arc::clone(call);
        let issued = Arc::clone(&issued);
        let done = Arc::clone(&done);
        let totals = Arc::clone(&totals);
        workers.spawn(async move {
            let mut stats = CallStats::new();
            loop {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let number = issued.fetch_add(1, Ordering::Relaxed);
                match stop {
                    Stop::Calls(limit) if number >= limit => break,
                    Stop::After(period) if started.elapsed() >= period => break,
                    _ => {}
                }
                let sent = Instant::now();
                let outcome = call(worker).await;
                stats.record(
                    sent.elapsed(),
                    outcome.map(|_| ()).map_err(|status| status.code()),
                );
                // A call that completes without waiting (one that fails at once, say) would
                // otherwise keep this task running forever and starve the runtime's other
                // tasks, the signal listener included. This yields once the budget is spent.
                tokio::task::coop::consume_budget().await;
            }
            totals.lock().await.merge(&stats);
        });
    }

    let mut ticker = JoinSet::new();
    {
        let bar = bar.clone();
        let issued = Arc::clone(&issued);
        let done = Arc::clone(&done);
        ticker.spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(100));
            loop {
                interval.tick().await;
                let position = match stop {
                    Stop::After(_) => started.elapsed().as_millis() as u64,
                    Stop::Calls(_) => issued.load(Ordering::Relaxed),
                };
                bar.set_position(position);
                let seconds = started.elapsed().as_secs_f64().max(1e-3);
                let calls = issued.load(Ordering::Relaxed);
                bar.set_message(format!("{:.0} calls/s", calls as f64 / seconds));
                if let Stop::After(period) = stop
                    && started.elapsed() >= period
                {
                    done.store(true, Ordering::Relaxed);
                }
            }
        });
    }

    // A worker that panicked loses its samples; the others still count.
    while workers.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    ticker.abort_all();
    let stats = totals.lock().await.clone();
    LoadResult { stats, elapsed }
}

fn progress_bar(enabled: bool, label: &str, stop: Stop) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let length = match stop {
        Stop::After(period) => period.as_millis() as u64,
        Stop::Calls(calls) => calls,
    };
    let bar = ProgressBar::new(length);
    let style = ProgressStyle::with_template("{prefix:>18} [{bar:40}] {percent:>3}% {msg}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting_call(counter: Arc<AtomicU64>, fail_every: u64) -> CallFn {
        Arc::new(move |_worker| {
            let counter = Arc::clone(&counter);
            Box::pin(async move {
                let number = counter.fetch_add(1, Ordering::Relaxed) + 1;
                tokio::task::yield_now().await;
                if number.is_multiple_of(fail_every) {
                    Err(tonic::Status::unavailable("down"))
                } else {
                    Ok(())
                }
            })
        })
    }

    #[tokio::test]
    async fn call_count_is_exact() {
        let counter = Arc::new(AtomicU64::new(0));
        let options = LoadOptions {
            concurrency: 8,
            warmup: Duration::ZERO,
            stop: Stop::Calls(1_000),
            progress: false,
        };
        let result = run_load("test", counting_call(Arc::clone(&counter), 10), &options).await;
        assert_eq!(counter.load(Ordering::Relaxed), 1_000);
        assert_eq!(result.stats.ok_count(), 900);
        assert_eq!(result.stats.errors().get("UNAVAILABLE"), Some(&100));
    }

    #[tokio::test]
    async fn duration_stops_the_load() {
        let counter = Arc::new(AtomicU64::new(0));
        let options = LoadOptions {
            concurrency: 2,
            warmup: Duration::from_millis(50),
            stop: Stop::After(Duration::from_millis(200)),
            progress: false,
        };
        let result = run_load("test", counting_call(counter, u64::MAX), &options).await;
        assert!(result.elapsed >= Duration::from_millis(200));
        assert!(result.elapsed < Duration::from_secs(5));
        assert!(result.stats.ok_count() > 0);
    }

    #[tokio::test]
    async fn dropping_the_load_stops_its_workers() {
        let counter = Arc::new(AtomicU64::new(0));
        let options = LoadOptions {
            concurrency: 4,
            warmup: Duration::ZERO,
            stop: Stop::After(Duration::from_secs(60)),
            progress: false,
        };
        let call = counting_call(Arc::clone(&counter), u64::MAX);
        let load = run_load("test", call, &options);
        let stopped = tokio::time::timeout(Duration::from_millis(100), load).await;
        assert!(stopped.is_err(), "the load ended before its 60 s");
        let calls_at_drop = counter.load(Ordering::Relaxed);
        assert!(calls_at_drop > 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(counter.load(Ordering::Relaxed), calls_at_drop);
    }

    #[test]
    fn instant_calls_let_other_tasks_run() {
        // One thread runs everything, so a worker that never yields would starve the timer.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let call: CallFn = Arc::new(|_worker| Box::pin(async { Ok(()) }));
                let options = LoadOptions {
                    concurrency: 1,
                    warmup: Duration::ZERO,
                    stop: Stop::After(Duration::from_secs(60)),
                    progress: false,
                };
                let load = run_load("test", call, &options);
                let stopped = tokio::time::timeout(Duration::from_millis(100), load).await;
                let _ = sender.send(stopped.is_err());
            });
        });
        let timed_out = receiver.recv_timeout(Duration::from_secs(10));
        assert_eq!(timed_out, Ok(true));
    }
}
