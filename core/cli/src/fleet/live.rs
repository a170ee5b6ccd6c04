//! The clinician's side of live alerts: the demo follows
//! `GET /v1/alerts/stream` (server-sent events) with the clinician's token,
//! as a dashboard or an app would, and tells the board when each alert
//! event arrives. The time between the phone raising an alert and this
//! stream showing it is the delivery latency the demo reports: measured
//! end to end over real HTTP, not taken from any timestamp.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::board::Board;

/// Follows the stream until the task is dropped, reconnecting after a
/// second when it breaks. `patients` maps the service's patient ids to the
/// demo's patient numbers. `connected` turns true once the stream is open,
/// so the fleet can wait for it: alerts posted before it would never be
/// seen (the stream delivers what happens from its connection on).
pub async fn follow(
    url: String,
    token: String,
    patients: HashMap<i64, usize>,
    board: Arc<Board>,
    connected: Arc<std::sync::atomic::AtomicBool>,
) {
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            board.log(&format!("live alerts: no HTTP client: {e}"));
            return;
        }
    };
    loop {
        if let Err(e) = once(&client, &url, &token, &patients, &board, &connected).await {
            board.log(&format!("live alerts: stream broke ({e}); reconnecting"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn once(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    patients: &HashMap<i64, usize>,
    board: &Board,
    connected: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    let mut response = client
        .get(format!("{url}/v1/alerts/stream"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    connected.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut pending = String::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let frame: String = pending.drain(..end + 2).collect();
            if let Some(e) = parse(&frame) {
                board.alert_seen(
                    patients.get(&e.patient).copied(),
                    &e.alert_id,
                    &e.kind,
                    &e.phase,
                    e.time_ms,
                );
            }
        }
    }
    Err("the server closed it".into())
}

/// One alert event off the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    patient: i64,
    alert_id: String,
    kind: String,
    phase: String,
    time_ms: i64,
}

/// The alert in one SSE frame (`event: alert` with a JSON `data:` line);
/// `None` for keep-alives, acknowledgements and anything unreadable.
fn parse(frame: &str) -> Option<Seen> {
    let mut event = None;
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    if event != Some("alert") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&data).ok()?;
    Some(Seen {
        patient: v.get("patient")?.as_i64()?,
        alert_id: v.get("alert_id")?.as_str()?.to_owned(),
        kind: v.get("kind")?.as_str()?.to_owned(),
        phase: v.get("phase")?.as_str()?.to_owned(),
        time_ms: chrono::DateTime::parse_from_rfc3339(v.get("time")?.as_str()?)
            .ok()?
            .timestamp_millis(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn an_alert_frame_is_read_and_others_are_skipped() {
        let frame = "event: alert\ndata: {\"event\":\"alert\",\"patient\":3,\"alert_id\":\"x-1\",\"kind\":\"low\",\"phase\":\"start\",\"time\":\"2026-01-01T00:00:00Z\"}\n\n";
        assert_eq!(
            parse(frame),
            Some(Seen {
                patient: 3,
                alert_id: "x-1".into(),
                kind: "low".into(),
                phase: "start".into(),
                time_ms: 1_767_225_600_000,
            })
        );
        assert_eq!(parse(":\n\n"), None);
        assert_eq!(parse("event: ack\ndata: {}\n\n"), None);
    }
}
