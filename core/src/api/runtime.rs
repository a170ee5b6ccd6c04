//! The runtime the SDK owns, so host apps can call it from any thread: a
//! small multi-thread runtime on the wall clock, or a paused current-thread
//! runtime on its own thread for simulated time.
//!
//! Simulated time (`ClockMode::Simulated`) stands still until collection
//! starts: a paused runtime jumps to its next timer whenever it is idle, so
//! the simulated transport's tick alone would otherwise carry the clock
//! minutes past `start_ms` while the app is still pairing, and a run would
//! begin at an arbitrary time. Tokio does not jump while a `spawn_blocking`
//! task runs, so one waits on [`Owned::release_time`].

use std::future::Future;
use std::pin::Pin;
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;

use super::config::ClockMode;
use super::error::{SdkError, SdkResult};

/// Builds a future that need not be `Send` (a session holds its SQLite
/// connection across awaits) on the thread that will run it.
pub(crate) type Maker = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

enum Kind {
    Multi(Option<Runtime>),
    Simulated {
        local: tokio::sync::mpsc::UnboundedSender<Maker>,
        shutdown: Option<oneshot::Sender<()>>,
        thread: Option<JoinHandle<()>>,
    },
}

/// Holds paused time back to `factor` times the wall clock, and never
/// lets it pass the wall clock.
///
/// A paused runtime jumps to its next timer whenever every task waits, and
/// tokio does not jump while a `spawn_blocking` task runs. So the pacer
/// alternates a wall-clock sleep on the blocking pool (time frozen) with a
/// simulated sleep of `factor` times as long (time jumps through every
/// timer due in it, at once). Everything else keeps running on tokio's
/// paused time unchanged.
///
/// Simulated time that caught up with the wall clock goes on at real
/// speed: readings from the future would be refused by the server, which
/// checks them against its own clock.
#[derive(Debug, Clone, Copy)]
struct Pacer {
    start_ms: i64,
    simulated_step: std::time::Duration,
}

impl Pacer {
    const WALL_STEP: std::time::Duration = std::time::Duration::from_millis(20);

    fn new(start_ms: i64, factor: f64) -> SdkResult<Pacer> {
        if !factor.is_finite() || !(1.0..=1.0e6).contains(&factor) {
            return Err(SdkError::invalid(
                "acceleration factor must be between 1 and 1,000,000",
            ));
        }
        Ok(Pacer {
            start_ms,
            simulated_step: Self::WALL_STEP.mul_f64(factor),
        })
    }

    /// How far simulated time may move in the next step: a full step while
    /// behind the wall clock, at most the gap once close, and the wall
    /// step (real speed) once caught up.
    fn next_step(&self, simulated_ms: i64, wall_ms: i64) -> std::time::Duration {
        let gap = u64::try_from(wall_ms.saturating_sub(simulated_ms)).unwrap_or(0);
        self.simulated_step
            .min(std::time::Duration::from_millis(gap))
            .max(Self::WALL_STEP)
    }

    async fn run(self) {
        let origin = tokio::time::Instant::now();
        loop {
            if tokio::task::spawn_blocking(|| std::thread::sleep(Self::WALL_STEP))
                .await
                .is_err()
            {
                return;
            }
            let elapsed = i64::try_from(origin.elapsed().as_millis()).unwrap_or(i64::MAX);
            let step = self.next_step(
                self.start_ms.saturating_add(elapsed),
                chrono::Utc::now().timestamp_millis(),
            );
            tokio::time::sleep(step).await;
        }
    }
}

/// The runtime and how to end it.
pub(crate) struct Owned {
    handle: Handle,
    kind: Kind,
    /// Dropping it lets simulated time move (see the module docs).
    hold: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

fn failed(e: std::io::Error) -> SdkError {
    SdkError::unavailable(format!("cannot start the SDK runtime: {e}"))
}

impl Owned {
    pub(crate) fn start(clock: &ClockMode) -> SdkResult<Owned> {
        match clock {
            ClockMode::Wall => {
                let rt = Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("vigil-runtime")
                    .enable_all()
                    .build()
                    .map_err(failed)?;
                Ok(Owned {
                    handle: rt.handle().clone(),
                    kind: Kind::Multi(Some(rt)),
                    hold: std::sync::Mutex::new(None),
                })
            }
            ClockMode::Simulated { .. } | ClockMode::Accelerated { .. } => {
                let pace = match clock {
                    ClockMode::Accelerated { start_ms, factor } => {
                        Some(Pacer::new(*start_ms, *factor)?)
                    }
                    _ => None,
                };
                let rt = Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .map_err(failed)?;
                let handle = rt.handle().clone();
                let (hold, held) = std::sync::mpsc::channel::<()>();
                let hold = match clock {
                    ClockMode::Simulated { .. } => Some(hold),
                    _ => None,
                };
                let (tx, mut rx) = oneshot::channel::<()>();
                let (local_tx, mut local_rx) = tokio::sync::mpsc::unbounded_channel::<Maker>();
                let thread = std::thread::Builder::new()
                    .name("vigil-runtime".into())
                    .spawn(move || {
                        let local = tokio::task::LocalSet::new();
                        local.block_on(&rt, async move {
                            if let Some(pace) = pace {
                                tokio::task::spawn_local(pace.run());
                            }
                            // Returns once every sender is gone.
                            let _held = tokio::task::spawn_blocking(move || {
                                let _ = held.recv();
                            });
                            loop {
                                tokio::select! {
                                    maker = local_rx.recv() => match maker {
                                        Some(m) => { tokio::task::spawn_local(m()); }
                                        None => break,
                                    },
                                    _ = &mut rx => break,
                                }
                            }
                        });
                        drop(local);
                        rt.shutdown_background();
                    })
                    .map_err(failed)?;
                Ok(Owned {
                    handle,
                    hold: std::sync::Mutex::new(hold),
                    kind: Kind::Simulated {
                        local: local_tx,
                        shutdown: Some(tx),
                        thread: Some(thread),
                    },
                })
            }
        }
    }

    /// Lets simulated time move from now on; nothing on other clocks.
    pub(crate) fn release_time(&self) {
        self.hold.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Blocking calls must not come from a runtime thread: they would wait
    /// for the very thread they block.
    fn check_thread() -> SdkResult<()> {
        if Handle::try_current().is_ok() {
            return Err(SdkError::unavailable(
                "blocking SDK call from inside an async runtime thread; call it from another thread",
            ));
        }
        Ok(())
    }

    /// Runs `fut` on the runtime and waits for its output.
    pub(crate) fn run<F>(&self, fut: F) -> SdkResult<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Self::check_thread()?;
        let (tx, rx) = oneshot::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.blocking_recv()
            .map_err(|_| SdkError::unavailable("the SDK runtime has stopped"))
    }

    /// Runs the future `make` builds: on the runtime's own thread in
    /// simulated time (so paused time only moves when everything waits),
    /// on a thread of its own driving the multi-thread runtime otherwise.
    pub(crate) fn spawn_local(&self, make: Maker) -> SdkResult<()> {
        match &self.kind {
            Kind::Simulated { local, .. } => local
                .send(make)
                .map_err(|_| SdkError::unavailable("the SDK runtime has stopped")),
            Kind::Multi(_) => {
                let handle = self.handle.clone();
                std::thread::Builder::new()
                    .name("vigil-session".into())
                    .spawn(move || handle.block_on(make()))
                    .map(|_| ())
                    .map_err(failed)
            }
        }
    }

    /// Waits for a task's completion signal.
    pub(crate) fn wait(&self, done: oneshot::Receiver<()>) -> SdkResult<()> {
        Self::check_thread()?;
        // A dropped sender means the task ended (or the runtime did): done
        // either way.
        let _ = done.blocking_recv();
        Ok(())
    }

    /// Ends the runtime; its tasks are dropped.
    pub(crate) fn shutdown(&mut self) {
        self.release_time();
        match &mut self.kind {
            Kind::Multi(rt) => {
                if let Some(rt) = rt.take() {
                    rt.shutdown_background();
                }
            }
            Kind::Simulated {
                shutdown, thread, ..
            } => {
                if let Some(tx) = shutdown.take() {
                    let _ = tx.send(());
                }
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_pacer_never_runs_past_the_wall_clock() {
        let p = Pacer::new(0, 3600.0).unwrap();
        // Far behind: a full step of 72 s.
        assert_eq!(p.next_step(0, 10_000_000), Duration::from_secs(72));
        // Close: only the gap.
        assert_eq!(p.next_step(9_990_000, 10_000_000), Duration::from_secs(10));
        // Caught up (or the wall clock was set back): real speed.
        assert_eq!(p.next_step(10_000_000, 10_000_000), Pacer::WALL_STEP);
        assert_eq!(p.next_step(20_000_000, 10_000_000), Pacer::WALL_STEP);
    }
}
