//! Fault: the SDK process is SIGKILLed while a 1 Hz heart-rate strap (and
//! a CGM) stream into it, with the buffer batching its commits.
//! Invariant: every reading the app's listener heard before the kill is in
//! the buffer afterwards: the listener is told only after the commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_core::model::{DeviceId, Stream};
use vigil_core::store::{Buffer, BufferConfig};
use vigil_e2e::procs::{lines, wait_for};

/// (device, stream, sequence, sensor time ms) of one heard reading.
type Key = (String, String, u64, i64);

fn parse(line: &str) -> Option<Key> {
    let mut f = line.strip_prefix("heard ")?.split(' ');
    Some((
        f.next()?.to_string(),
        f.next()?.to_string(),
        f.next()?.parse().ok()?,
        f.next()?.parse().ok()?,
    ))
}

#[test]
fn sigkill_during_a_1hz_burst_keeps_every_reading_the_listener_heard() {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let start_ms = 1_767_571_200_000i64; // 2026-01-05T00:00:00Z
    let mut total = 0usize;
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-strap"))
            .args([path.to_str().unwrap(), &start_ms.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let rx = lines(child.stdout.take().unwrap());
        wait_for(&rx, "started", Duration::from_secs(30)).expect("strap process started");
        // Kill after a random number of heard readings: some rounds in
        // the first minutes (a connection's first window), most later.
        let kill_after = rng.random_range(20..3_000usize);
        let mut heard: Vec<Key> = Vec::new();
        while heard.len() < kill_after {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the strap process keeps reporting readings");
            assert_ne!(line, "done", "round {round}: the day ended before the kill");
            if let Some(k) = parse(&line) {
                heard.push(k);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines already in the pipe were heard before the kill too.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
            if let Some(k) = parse(&line) {
                heard.push(k);
            }
        }
        let buffer = Buffer::open(&path, BufferConfig::default()).unwrap();
        let mut stored: HashSet<Key> = HashSet::new();
        for device in ["strap-1", "cgm-1"] {
            for stream in Stream::ALL {
                for r in buffer
                    .readings_of(&DeviceId(device.to_string()), stream)
                    .unwrap()
                {
                    stored.insert((
                        device.to_string(),
                        stream.as_str().to_string(),
                        r.reading.sequence,
                        r.reading.sensor_time.timestamp_millis(),
                    ));
                }
            }
        }
        let missing: Vec<&Key> = heard.iter().filter(|k| !stored.contains(*k)).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} of {} heard readings lost, first {:?}",
            missing.len(),
            heard.len(),
            missing.first()
        );
        assert!(
            heard.iter().any(|k| k.1 == "heart_rate"),
            "round {round}: the strap was heard"
        );
        total += heard.len();
    }
    assert!(total > 100, "only {total} readings heard in all rounds");
}
