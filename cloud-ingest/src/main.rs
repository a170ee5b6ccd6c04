//! `vigil-ingest`: the ingest service and its administration, one binary.
//! CLI parsing and bootstrap only; the work lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use vigil_ingest::domain::Role;
use vigil_ingest::rate_limit::RateLimit;
use vigil_ingest::serve::{ServeOptions, TlsFiles};
use vigil_ingest::{Error, Limits, Result, ServiceState, admin};

#[derive(Parser)]
#[command(name = "vigil-ingest", version, about = "Vigil's cloud ingest service")]
struct Cli {
    /// The database: a SQLite file (created and migrated when missing) or a
    /// `postgres://` URL (migrated at start; TLS off loopback).
    #[arg(
        long,
        global = true,
        env = "VIGIL_DATABASE",
        default_value = "vigil.db"
    )]
    database: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "VIGIL_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// PEM certificate chain: serve HTTPS (needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key (needs --tls-cert).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Allow plain HTTP off loopback: a TLS proxy fronts this service.
        #[arg(long)]
        insecure_behind_proxy: bool,
        /// Sustained requests per second allowed per token (per replica).
        #[arg(long, env = "VIGIL_RATE_PER_SECOND", default_value_t = RateLimit::default().per_second)]
        rate_per_second: f64,
        /// Requests a token may send at once after a quiet spell.
        #[arg(long, env = "VIGIL_RATE_BURST", default_value_t = RateLimit::default().burst)]
        rate_burst: u32,
        /// Seconds without a heartbeat or data before a patient's app is
        /// reported silent (`app_silent` alert).
        #[arg(long, env = "VIGIL_APP_SILENT_AFTER", default_value_t = 1800)]
        app_silent_after: u32,
        /// Seconds between dead-man's switch checks.
        #[arg(long, env = "VIGIL_APP_SILENT_CHECK", default_value_t = 60)]
        app_silent_check: u32,
        /// The URL clients reach this service at (e.g.
        /// `https://vigil.example.org`): FHIR `fullUrl`s are built from it,
        /// never from the request's Host. Default: the listen address.
        #[arg(long, env = "VIGIL_PUBLIC_URL")]
        public_url: Option<String>,
        /// Most readings one batch may carry (more: 413).
        #[arg(long, env = "VIGIL_MAX_READINGS_PER_BATCH", default_value_t = Limits::default().max_readings_per_batch)]
        max_readings_per_batch: usize,
        /// Seconds a reading, alert or heartbeat may be dated past the
        /// server's clock (after clock-skew correction).
        #[arg(long, env = "VIGIL_MAX_FUTURE_SKEW", default_value_t = 300)]
        max_future_skew: u32,
    },
    /// Manage patients.
    Patient {
        #[command(subcommand)]
        command: PatientCommand,
    },
    /// Manage patient tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage clinicians.
    Clinician {
        #[command(subcommand)]
        command: ClinicianCommand,
    },
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Set a patient's Nightscout API secret (at least 12 characters; stored
    /// hashed). Nightscout clients then use it as their `api-secret`.
    NightscoutSecret {
        /// The patient the secret opens.
        patient_id: i64,
        /// The secret (prefer the VIGIL_NIGHTSCOUT_SECRET environment
        /// variable: command lines are visible to other local users).
        #[arg(env = "VIGIL_NIGHTSCOUT_SECRET", hide_env_values = true)]
        secret: String,
    },
    /// Manage webhooks that receive alert and new-data events.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Register an HTTPS receiver; prints its signing secret (shown once).
    Add {
        /// The receiver's URL (https, or http to loopback).
        url: String,
        /// Comma-separated events: alert, data.
        #[arg(long, default_value = "alert")]
        events: String,
    },
    /// List registered webhooks, one per line: id, url, events.
    List,
}

#[derive(Subcommand)]
enum PatientCommand {
    /// Register a patient; prints the new patient id.
    Add { display_name: String },
    /// Set a patient's IANA time zone (e.g. Europe/Berlin) for local-time
    /// charts; prints `updated`.
    TimeZone { patient_id: i64, time_zone: String },
    /// Print a patient's source-precedence policy for a quantity (their own
    /// or the default) as JSON.
    Precedence {
        patient_id: i64,
        /// heart_rate, glucose or spo2.
        #[arg(long, default_value = "glucose")]
        quantity: String,
        /// Set the policy from this JSON file (`-` for stdin) instead of
        /// printing it; prints `updated`.
        #[arg(long)]
        set: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum PatientRole {
    Device,
    Follower,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token for a patient; prints the secret (shown once).
    Add {
        #[arg(long)]
        patient: i64,
        #[arg(long, value_enum)]
        role: PatientRole,
    },
    /// Revoke a token by its id (as logs and the audit log name it): it is
    /// refused from then on, and its open live streams and dashboard
    /// sessions end; prints `revoked`.
    Revoke { token_id: i64 },
}

#[derive(Subcommand)]
enum ClinicianCommand {
    /// Register a clinician; prints their secret (shown once).
    Add { name: String },
    /// Assign a patient to a clinician; prints `assigned`.
    Assign { name: String, patient_id: i64 },
    /// End every dashboard session of a clinician (their token stays
    /// valid); prints how many were ended.
    EndSessions { name: String },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Issue an admin token; prints the secret (shown once).
    Add { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    // Logs go to stderr so that each admin command's stdout is its one
    // result line.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(line) => {
            if let Some(line) = line {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<Option<String>> {
    let store = vigil_ingest::storage::open(&cli.database)?;
    let storage = store.blocking();
    let line = match cli.command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            insecure_behind_proxy,
            rate_per_second,
            rate_burst,
            app_silent_after,
            app_silent_check,
            public_url,
            max_readings_per_batch,
            max_future_skew,
        } => {
            if !(rate_per_second.is_finite() && rate_per_second >= 0.0) {
                return Err(Error::InvalidInput(
                    "--rate-per-second must be a finite number >= 0".into(),
                ));
            }
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                _ => None,
            };
            let opts = ServeOptions {
                listen,
                tls,
                insecure_behind_proxy,
                connections: vigil_ingest::serve::ConnectionLimits::default(),
            };
            // Refuse before starting a runtime or touching the network.
            vigil_ingest::serve::check_listen(&opts)?;
            let limits = Limits {
                rate: RateLimit {
                    per_second: rate_per_second,
                    burst: rate_burst,
                },
                max_readings_per_batch,
                max_future_skew: chrono::TimeDelta::seconds(i64::from(max_future_skew)),
                ..Limits::default()
            };
            let mut state = ServiceState::new(store.clone(), limits);
            state.cookie_secure = opts.tls.is_some() || opts.insecure_behind_proxy;
            state.hsts = opts.tls.is_some();
            let scheme = if opts.tls.is_some() { "https" } else { "http" };
            state.public_url = public_url
                .unwrap_or_else(|| format!("{scheme}://{}", opts.listen))
                .trim_end_matches('/')
                .to_owned();
            // Over PostgreSQL, replicas share live alerts through
            // LISTEN/NOTIFY; over SQLite the one process's bus is enough.
            if let Some(url) = cli
                .database
                .to_str()
                .filter(|u| vigil_ingest::storage::postgres::is_postgres_url(u))
            {
                let target = vigil_ingest::storage::postgres::Target::parse(url)?;
                let fanout = vigil_ingest::storage::pg_notify::PgLiveFanout::start(
                    target,
                    state.bus.clone(),
                )?;
                state = state.with_fanout(std::sync::Arc::new(fanout));
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let deadman = vigil_ingest::deadman::DeadManConfig {
                check_every: std::time::Duration::from_secs(u64::from(app_silent_check.max(1))),
                silent_after: chrono::TimeDelta::seconds(i64::from(app_silent_after.max(1))),
            };
            let _switch = runtime.enter();
            vigil_ingest::deadman::spawn(state.clone(), deadman);
            vigil_ingest::upkeep::spawn(state.store.clone());
            runtime.block_on(vigil_ingest::serve::serve(
                state,
                opts,
                vigil_ingest::serve::shutdown_signal(),
                |addr, tls| {
                    let scheme = if tls { "https" } else { "http" };
                    tracing::info!(%addr, scheme, "listening");
                    // Tests and scripts read the bound address (port 0 picks
                    // one) from this stdout line.
                    println!("listening {scheme}://{addr}");
                    // Logged, not printed: scripts may stop reading stdout
                    // after the first line.
                    tracing::info!("clinician dashboard at {scheme}://{addr}/dashboard/");
                },
            ))?;
            tracing::info!("stopped");
            None
        }
        Command::Patient {
            command: PatientCommand::Add { display_name },
        } => Some(admin::add_patient(storage, &display_name)?.to_string()),
        Command::Patient {
            command:
                PatientCommand::TimeZone {
                    patient_id,
                    time_zone,
                },
        } => {
            admin::set_time_zone(storage, patient_id, &time_zone)?;
            Some("updated".into())
        }
        Command::Patient {
            command:
                PatientCommand::Precedence {
                    patient_id,
                    quantity,
                    set,
                },
        } => Some(match set {
            None => admin::precedence_policy(storage, patient_id, &quantity)?,
            Some(path) => {
                admin::set_precedence_policy(storage, patient_id, &quantity, &read_policy(&path)?)?;
                "updated".into()
            }
        }),
        Command::Token {
            command: TokenCommand::Add { patient, role },
        } => {
            let role = match role {
                PatientRole::Device => Role::Device,
                PatientRole::Follower => Role::Follower,
            };
            Some(
                admin::add_patient_token(storage, patient, role)?
                    .expose()
                    .to_owned(),
            )
        }
        Command::Clinician {
            command: ClinicianCommand::Add { name },
        } => Some(admin::add_clinician(storage, &name)?.expose().to_owned()),
        Command::Clinician {
            command: ClinicianCommand::Assign { name, patient_id },
        } => {
            admin::assign(storage, &name, patient_id)?;
            Some("assigned".to_owned())
        }
        Command::Token {
            command: TokenCommand::Revoke { token_id },
        } => {
            admin::revoke_token(storage, token_id)?;
            Some("revoked".to_owned())
        }
        Command::Clinician {
            command: ClinicianCommand::EndSessions { name },
        } => {
            let n = admin::end_clinician_sessions(storage, &name)?;
            Some(format!("ended {n} session(s)"))
        }
        Command::Admin {
            command: AdminCommand::Add { name },
        } => Some(admin::add_admin(storage, &name)?.expose().to_owned()),
        Command::NightscoutSecret { patient_id, secret } => {
            admin::set_nightscout_secret(storage, patient_id, &secret)?;
            Some("nightscout secret set".to_owned())
        }
        Command::Webhook {
            command: WebhookCommand::Add { url, events },
        } => Some(admin::add_webhook(storage, &url, &events)?),
        Command::Webhook {
            command: WebhookCommand::List,
        } => Some(
            storage
                .webhooks()?
                .iter()
                .map(|w| {
                    let events: Vec<&str> = w.events.iter().map(|e| e.as_str()).collect();
                    format!("{} {} {}", w.id, w.url, events.join(","))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    Ok(line)
}

/// A policy document from a file or stdin, bounded like a request body.
fn read_policy(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    const MAX: u64 = 64 * 1024;
    let mut out = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().take(MAX + 1).read_to_end(&mut out)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX + 1).read_to_end(&mut out))
    };
    read.map_err(|e| Error::InvalidInput(format!("precedence policy file: {e}")))?;
    if out.len() as u64 > MAX {
        return Err(Error::InvalidInput(
            "precedence policy file: larger than 64 KiB".into(),
        ));
    }
    Ok(out)
}
