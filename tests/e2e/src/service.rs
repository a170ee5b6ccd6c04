//! The real ingest service, in-process, on SQLite in a temporary directory,
//! with one patient and a device token created through its admin API.
#![allow(clippy::expect_used)] // Test support: a failed setup should stop the test loudly.

use std::net::SocketAddr;
use std::path::PathBuf;

use tempfile::TempDir;
use vigil_ingest::domain::Role;
use vigil_ingest::storage::Store;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::{Limits, ServiceState, admin, app};

/// A running service and the identity a phone uses with it.
pub struct Service {
    /// Where it listens (127.0.0.1, an ephemeral port).
    pub addr: SocketAddr,
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// The patient's id as the service knows it.
    pub patient: i64,
    /// A device token of that patient (a bearer secret: never log it).
    pub device_token: String,
    /// The database file (the service keeps it open).
    pub db: PathBuf,
    /// The storage, to check what was stored.
    pub store: Store,
    _dir: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    /// Starts the service with default limits on a fresh database.
    pub async fn start() -> Service {
        Self::start_with(Limits::default()).await
    }

    /// Starts the service with `limits` on a fresh database.
    pub async fn start_with(limits: Limits) -> Service {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("ingest.db");
        let storage = SqliteStorage::open(&db).expect("open storage");
        let patient = admin::add_patient(&storage, "E2E Patient").expect("patient");
        let token = admin::add_patient_token(&storage, patient, Role::Device).expect("token");
        let store = Store::new(storage);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = app(ServiceState::new(store.clone(), limits));
        let task = tokio::spawn(async move {
            let _ = axum_serve(listener, router).await;
        });
        Service {
            addr,
            url: format!("http://{addr}"),
            patient,
            device_token: token.expose().to_owned(),
            db,
            store,
            _dir: dir,
            task,
        }
    }
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The service's default limits without its per-token request throttle.
/// The throttle counts wall-clock seconds; harnesses that run a phone's day
/// in seconds (simulated time) or call sync-now in a tight loop would meet
/// it where a real phone never does, and the phone honours its
/// `Retry-After` by not sending. Everything else stays the default.
pub fn unthrottled_limits() -> Limits {
    Limits {
        rate: vigil_ingest::rate_limit::RateLimit {
            per_second: 1.0e6,
            burst: 1_000_000,
        },
        ..Limits::default()
    }
}
