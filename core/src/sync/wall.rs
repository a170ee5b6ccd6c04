//! The network on the wall clock, whatever clock the engine runs on.
//!
//! Under simulated time the engine's runtime is paused: its timers only
//! move when every task waits, and they then jump. Requests polled there
//! would see their timeouts fire at once, and a jump of simulated hours
//! would tear down a keep-alive connection mid-request. So a
//! [`WallClockPoster`] hands every request to one small process-wide
//! runtime on real time, and the engine only awaits the answer. Production
//! (wall clock) needs none of this and posts directly.
//!
//! The engine awaits from a blocking task, because a paused runtime does
//! not auto-advance while one runs: a request takes no simulated time, as
//! on a phone a request takes seconds, not the simulated hours an idle
//! paused runtime would otherwise jump while it waits for the answer. Without
//! that, how much simulated time a request "took" depended on the host's
//! load, and so did everything timed from the answer (the next contact, a
//! stretched cadence's steadiness check).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tokio::runtime::{Builder, Handle, Runtime};

use super::http::{HttpReply, Poster, Route};
use crate::error::{Error, Result};

/// The process-wide runtime for requests made on behalf of simulated time.
/// Built once, never dropped: it outlives every SDK instance of the
/// process, as the connection pools it drives may.
fn network_runtime() -> Result<Handle> {
    static NET: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    let rt = NET.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vigil-net")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match rt {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(Error::InvalidInput(format!(
            "sync: cannot start the network runtime: {e}"
        ))),
    }
}

/// A [`Poster`] whose requests run on the wall-clock network runtime.
#[derive(Debug, Clone)]
pub struct WallClockPoster<P> {
    inner: Arc<P>,
    net: Handle,
}

impl<P: Poster + 'static> WallClockPoster<P> {
    /// Wraps `inner`; fails only when no thread can be started.
    pub fn new(inner: P) -> Result<WallClockPoster<P>> {
        Ok(WallClockPoster {
            inner: Arc::new(inner),
            net: network_runtime()?,
        })
    }
}

#[async_trait]
impl<P: Poster + 'static> Poster for WallClockPoster<P> {
    async fn post(
        &self,
        route: Route,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
        body: Vec<u8>,
        token: Option<&str>,
    ) -> Result<HttpReply> {
        let inner = self.inner.clone();
        let token = token.map(str::to_owned);
        let net = self.net.clone();
        let task = tokio::task::spawn_blocking(move || {
            net.block_on(async move {
                inner
                    .post(
                        route,
                        content_type,
                        content_encoding,
                        body,
                        token.as_deref(),
                    )
                    .await
            })
        });
        match task.await {
            Ok(reply) => reply,
            Err(e) => Err(Error::Network(format!("request task ended: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Answers after a real (wall-clock) pause.
    #[derive(Debug)]
    struct Slow;

    #[async_trait]
    impl Poster for Slow {
        async fn post(
            &self,
            _: Route,
            _: &'static str,
            _: Option<&'static str>,
            body: Vec<u8>,
            _: Option<&str>,
        ) -> Result<HttpReply> {
            // Real I/O that takes 5 ms of wall time, under a 2 s timeout:
            // on a paused runtime the timeout is the only timer, so it
            // fires at once while the I/O is pending; on the network
            // runtime it is real and the answer wins.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                let _ = tx.send(());
            });
            tokio::time::timeout(Duration::from_secs(2), rx)
                .await
                .map_err(|_| Error::Network("timed out".into()))?
                .map_err(|_| Error::Network("sender gone".into()))?;
            Ok(HttpReply {
                status: 200,
                retry_after: None,
                body,
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_times_out_real_io_at_once() {
        // The failure the wrapper exists for, shown directly.
        let err = Slow
            .post(Route::Batches, "application/json", None, vec![], None)
            .await;
        assert!(err.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_keep_real_time_under_a_paused_clock() {
        let p = WallClockPoster::new(Slow).unwrap();
        let reply = p
            .post(
                Route::Batches,
                "application/json",
                None,
                b"{}".to_vec(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"{}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_takes_no_simulated_time() {
        // Another task's timer an hour away: an idle paused runtime would
        // jump to it while the request's real 5 ms pass.
        let timer = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
        let p = WallClockPoster::new(Slow).unwrap();
        let before = tokio::time::Instant::now();
        p.post(Route::Batches, "application/json", None, vec![], None)
            .await
            .unwrap();
        assert_eq!(tokio::time::Instant::now() - before, Duration::ZERO);
        timer.abort();
    }
}
