//! The cloud end of the demo: the real ingest service, in-process, on
//! embedded SQLite, with a synthetic clinic set up through its admin API
//! (one clinician, the demo's patients assigned to them, a device token per
//! patient).
//!
//! It listens on loopback only: a demo never exposes synthetic tokens to a
//! network. The friendly default port falls back to an ephemeral one when
//! taken, so a second demo (or anything else on 8470) does not stop it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;
use vigil_ingest::auth::Role;
use vigil_ingest::storage::Store;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::{Limits, ServiceState, admin, app};

use crate::Failure;

/// One synthetic patient as the service knows them.
#[derive(Debug, Clone)]
pub struct DemoPatient {
    /// The service's patient id (also the SDK's `patient_id`).
    pub id: i64,
    /// The device token the patient's phone syncs with (a secret).
    pub device_token: String,
}

/// The running service and the clinic in it.
pub struct Service {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// The clinician's token (a secret; printed once, as a demo secret).
    pub clinician_token: String,
    /// The synthetic patients, in demo order.
    pub patients: Vec<DemoPatient>,
    /// The service's SQLite file, read by the demo for its figures.
    pub database: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The display name of demo patient `index`: plainly synthetic, so nothing
/// on the dashboard can pass for a real person.
pub fn patient_name(index: usize) -> String {
    format!("Synthetic patient {:02} (demo)", index + 1)
}

fn admin_failed(what: &str) -> impl Fn(vigil_ingest::Error) -> Failure + '_ {
    move |e| Failure::Other(format!("demo clinic: {what}: {e}"))
}

/// Opens the database in `dir`, creates the clinic and starts serving on
/// 127.0.0.1:`port` (0: any free port; a taken port falls back to any).
pub async fn start(dir: &Path, port: u16, patients: usize) -> Result<Service, Failure> {
    start_with(dir, port, patients, Limits::default()).await
}

/// [`start`] with the service's limits given: measurements that replay days
/// in seconds lift the per-token throttle, which counts wall-clock seconds,
/// so that no byte they count is a 429 and its retry.
pub async fn start_with(
    dir: &Path,
    port: u16,
    patients: usize,
    limits: Limits,
) -> Result<Service, Failure> {
    let database = dir.join("ingest.db");
    let storage = SqliteStorage::open(&database).map_err(admin_failed("database"))?;
    // A kept --data-dir already holds earlier runs' clinicians: each run
    // gets its own, named by the time it started.
    let clinician = format!(
        "demo-clinician-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f")
    );
    let clinician_token = admin::add_clinician(&storage, &clinician)
        .map_err(admin_failed("clinician"))?
        .expose()
        .to_owned();
    let mut demo = Vec::with_capacity(patients);
    for i in 0..patients {
        let id = admin::add_patient(&storage, &patient_name(i)).map_err(admin_failed("patient"))?;
        let token = admin::add_patient_token(&storage, id, Role::Device)
            .map_err(admin_failed("device token"))?;
        admin::assign(&storage, &clinician, id).map_err(admin_failed("assignment"))?;
        demo.push(DemoPatient {
            id,
            device_token: token.expose().to_owned(),
        });
    }
    let listener = bind(port).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Other(format!("demo service address: {e}")))?;
    let router = app(ServiceState::new(Store::new(storage), limits));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            eprintln!("vigil demo: the service stopped: {e}");
        }
    });
    Ok(Service {
        url: format!("http://{addr}"),
        clinician_token,
        patients: demo,
        database,
        shutdown: Some(tx),
        task: Some(task),
    })
}

async fn bind(port: u16) -> Result<tokio::net::TcpListener, Failure> {
    let at = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    match tokio::net::TcpListener::bind(at(port)).await {
        Ok(l) => Ok(l),
        Err(e) if port != 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
            tokio::net::TcpListener::bind(at(0))
                .await
                .map_err(|e| Failure::Other(format!("cannot listen on 127.0.0.1: {e}")))
        }
        Err(e) => Err(Failure::Other(format!(
            "cannot listen on 127.0.0.1:{port}: {e}"
        ))),
    }
}

impl Service {
    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // Open SSE streams never finish by themselves: bound the wait.
            if tokio::time::timeout(std::time::Duration::from_secs(3), task)
                .await
                .is_err()
            {
                eprintln!("vigil demo: the service did not stop within 3 s");
            }
        }
    }
}
