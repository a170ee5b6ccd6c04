//! The triage list's cost (issue 17): `GET /dashboard/triage` for a
//! clinician with 1,000 patients, each with 14 days of 5-minute CGM
//! readings (4,032 each, 4,032,000 in all), end to end over loopback HTTP,
//! against the naive path in the same run.
//!
//! - **summary**: the product route. It reads the per-day summaries
//!   (`glucose_days`, about 28 rows a patient for 14 days and the 14
//!   before) and the dead-man's switch state, and renders the page.
//! - **naive**: the baseline. The same rows and the same page, but each
//!   patient's resolved series of both periods is read and summarised on
//!   every request (`glucose::points` then `glucose_days::counts`), served
//!   by a bench-only route on the same server.
//!
//! Seeding goes through the real storage API as intake does
//! (`Storage::store_batch` then `glucose_days::after_batch`), one batch per
//! patient and day. Three summary requests alternate with one naive one
//! (the naive one takes seconds) so drift hits both; the table gives the
//! median and p95 of each. Both pages must list every patient with the same
//! time-in-ranges figures.
//!
//! `cargo bench -p vigil-ingest --bench triage` seeds 1,000 patients and
//! times 15 summary and 5 naive requests; without `--bench` (as `cargo test
//! --benches` runs it) 20 patients and 3 + 1 requests check the path.
//! `VIGIL_TRIAGE_PATIENTS` overrides the patient count;
//! `VIGIL_TRIAGE_BACKEND=postgres` runs it on a throwaway PostgreSQL server
//! (`tests/pg-harness`, as the contract suite starts one) instead of SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A bench fails loudly.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use vigil_ingest::auth::Principal;
use vigil_ingest::dashboard::sign_in::{self, SESSION_COOKIE};
use vigil_ingest::dashboard::triage::{self, TriageRow};
use vigil_ingest::domain::TokenScope;
use vigil_ingest::glucose_days::{self, Figures};
use vigil_ingest::storage::postgres::PostgresStorage;
use vigil_ingest::storage::sqlite::SqliteStorage;
use vigil_ingest::storage::{NewBatch, NewGroup, NewReading, Storage, Store, day_of, day_start};
use vigil_ingest::{Limits, ServiceState, admin, app, glucose};
use vigil_model::reading::Stream;
use vigil_model::wire::{BatchId, PROTOCOL_VERSION};

const DAYS: i64 = 14;

fn seed(s: &dyn Storage, patients: usize, now: DateTime<Utc>) -> Principal {
    let secret = admin::add_clinician(s, "dr-triage").unwrap();
    let token = s.token_by_hash(&secret.hash()).unwrap().unwrap();
    let start = now - TimeDelta::days(DAYS);
    for n in 0..patients {
        let p = admin::add_patient(s, &format!("Patient {n:04}")).unwrap();
        admin::assign(s, "dr-triage", p).unwrap();
        for day in 0..DAYS {
            let readings = (0..288)
                .map(|k| {
                    let i = day * 288 + k;
                    // A daily swing whose level differs by patient, so
                    // every band and both sort orders are exercised.
                    let level = 90.0 + (n % 17) as f64 * 8.0;
                    let value =
                        level + 70.0 * ((i % 288) as f64 / 288.0 * std::f64::consts::TAU).sin();
                    NewReading {
                        seq: u64::try_from(i).unwrap(),
                        time: start + TimeDelta::minutes(5 * i),
                        value: value.max(40.0).round(),
                        quality_percent: None,
                        quality_flagged: false,
                        held_back: false,
                        raw: None,
                    }
                })
                .collect();
            let b = NewBatch {
                v: PROTOCOL_VERSION,
                id: BatchId::random(),
                patient: p,
                device: "cgm-1".into(),
                received_at: now,
                groups: vec![NewGroup {
                    stream: Stream::Glucose,
                    session: Some(1),
                    characteristic: 0x2AA7,
                    tolerance: None,
                    readings,
                    rejected: Vec::new(),
                }],
            };
            s.store_batch(&b).unwrap();
            glucose_days::after_batch(s, &b).unwrap();
        }
    }
    Principal {
        token_id: token.id,
        role: token.role,
        scope: token.scope,
        credential: vigil_ingest::domain::CredentialKind::DashboardSession,
    }
}

/// The baseline: every patient's resolved series of both periods, read and
/// summarised per request.
fn naive_rows(s: &dyn Storage, principal: &Principal, now: DateTime<Utc>) -> Vec<TriageRow> {
    let TokenScope::Clinician(c) = principal.scope else {
        return Vec::new();
    };
    let today = day_of(now);
    let from = day_start(today + 1 - DAYS);
    let before = day_start(today + 1 - 2 * DAYS);
    let end = day_start(today + 1);
    let contacts: std::collections::HashMap<_, _> = s
        .contacts()
        .unwrap()
        .into_iter()
        .map(|c| (c.patient, c))
        .collect();
    let expected = ((now - from).num_seconds() + 299) / 300;
    s.assigned_patients(c)
        .unwrap()
        .into_iter()
        .map(|p| {
            let cur = glucose_days::counts(&glucose::points(s, p.id, from, end).unwrap());
            let prev = glucose_days::counts(&glucose::points(s, p.id, before, from).unwrap());
            let (f, b) = (Figures::of(&cur), Figures::of(&prev));
            let contact = contacts.get(&p.id);
            TriageRow {
                id: p.id,
                name: p.display_name,
                figures: f,
                wear_pct: glucose_days::wear_pct(&cur, expected),
                tir_drop: f.zip(b).map(|(n, b)| b.tir_70_180_pct - n.tir_70_180_pct),
                last_contact: contact.map(|c| c.last_contact),
                silent: contact.is_none_or(|c| {
                    c.silence.is_some() || now - c.last_contact >= TimeDelta::minutes(30)
                }),
            }
        })
        .collect()
}

/// Every row's time-in-ranges bar title (its five figures), in page order.
fn titles(body: &str) -> Vec<String> {
    body.split("<title>Time in ranges: ")
        .skip(1)
        .map(|t| t.split('<').next().unwrap_or("").to_owned())
        .collect()
}

fn pct(xs: &[Duration], p: f64) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort();
    let i = ((xs.len() as f64 - 1.0) * p).round() as usize;
    xs[i].as_secs_f64() * 1e3
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let patients: usize = std::env::var("VIGIL_TRIAGE_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1000 } else { 20 });
    let rounds = if full { 5 } else { 1 };
    match std::env::var("VIGIL_TRIAGE_BACKEND").as_deref() {
        Ok("postgres") => {
            let server = vigil_pg_harness::PgServer::start().unwrap_or_else(|e| panic!("{e}"));
            let url = server.fresh_database().unwrap();
            run(
                PostgresStorage::connect(&url).unwrap(),
                "PostgreSQL",
                patients,
                rounds,
            );
        }
        _ => {
            let dir = tempfile::tempdir().unwrap();
            run(
                SqliteStorage::open(&dir.path().join("vigil.db")).unwrap(),
                "SQLite",
                patients,
                rounds,
            );
        }
    }
}

fn run<S: Storage>(backend: S, label: &str, patients: usize, rounds: usize) {
    let now = Utc::now();
    let t = Instant::now();
    let principal = seed(&backend, patients, now);
    let seeded = t.elapsed();
    let session = sign_in::random_hex().unwrap();
    backend
        .create_session(
            &sign_in::session_hash(&session),
            principal.token_id,
            sign_in::expiry(),
        )
        .unwrap();
    eprintln!(
        "{label}: seeded {patients} patients × {DAYS} days × 288 readings through store_batch + after_batch in {:.1} s",
        seeded.as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::new(backend);
        let state = ServiceState::new(store.clone(), Limits::default());
        let naive = axum::Router::new()
            .route(
                "/bench/triage-naive",
                get(
                    |State((store, principal)): State<(Store, Principal)>| async move {
                        let now = Utc::now();
                        let rows = store
                            .run(move |s| Ok(naive_rows(s, &principal, now)))
                            .await
                            .unwrap();
                        let view = triage::View::of(&triage::TriageQuery {
                            days: None,
                            sort: None,
                            order: None,
                            show: None,
                        })
                        .unwrap();
                        Html(triage::render(rows, &view, now, "bench"))
                    },
                ),
            )
            .with_state((store, principal));
        let router = app(state).merge(naive);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let cookie = format!("{SESSION_COOKIE}={session}");
        let (mut summary, mut naive) = (Vec::new(), Vec::new());
        let mut sizes = (0, 0);
        let mut bars = (Vec::new(), Vec::new());
        let get = |path: &'static str| {
            let (http, cookie) = (http.clone(), cookie.clone());
            async move {
                let t = Instant::now();
                let body = http
                    .get(format!("http://{addr}{path}"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap()
                    .error_for_status()
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let took = t.elapsed();
                let rows = body.matches(r#"<th scope="row">"#).count();
                assert_eq!(rows, patients, "{path}: every patient is listed");
                (took, body)
            }
        };
        // The naive path takes seconds a request: three summary requests
        // to one naive one, interleaved.
        for _ in 0..rounds {
            for _ in 0..3 {
                let (took, body) = get("/dashboard/triage").await;
                summary.push(took);
                sizes.0 = body.len();
                bars.0 = titles(&body);
            }
            let (took, body) = get("/bench/triage-naive").await;
            naive.push(took);
            sizes.1 = body.len();
            bars.1 = titles(&body);
        }
        // Both paths show the same figures for every patient.
        assert_eq!(bars.0, bars.1);
        println!(
            "| path ({patients} patients × {DAYS} d of 5-min CGM, {label}) | page bytes | median ms | p95 ms | min–max ms |"
        );
        println!("|---|---|---|---|---|");
        for (name, xs, bytes) in [
            ("summary (`GET /dashboard/triage`)", &summary, sizes.0),
            ("naive (full resolved series per request)", &naive, sizes.1),
        ] {
            println!(
                "| {name} | {bytes} | {:.1} | {:.1} | {:.1}–{:.1} |",
                pct(xs, 0.5),
                pct(xs, 0.95),
                pct(xs, 0.0),
                pct(xs, 1.0)
            );
        }
        println!(
            "naive median / summary median: {:.1}×",
            pct(&naive, 0.5) / pct(&summary, 0.5)
        );
    });
}
