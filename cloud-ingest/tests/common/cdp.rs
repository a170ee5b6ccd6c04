//! A minimal Chrome DevTools Protocol client for the browser test: start
//! the system `chromium` headless, attach to one page over the browser's
//! websocket, send commands and wait for their replies.
//!
//! Why not chromiumoxide or headless_chrome: the test needs a dozen CDP
//! commands; a websocket and JSON do that with two small dependencies, and
//! there is no code path that could download a browser.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The headless flags the project mandates.
pub const FLAGS: [&str; 6] = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
];

/// The Chromium binary: `$VIGIL_CHROMIUM` or the first of Debian's names
/// on PATH. Missing: a clear failure, never a skip.
pub fn chromium_binary() -> String {
    if let Ok(p) = std::env::var("VIGIL_CHROMIUM") {
        return p;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            return name.to_owned();
        }
    }
    panic!(
        "Chromium is not installed: the dashboard browser test needs it. \
         Install Debian's `chromium` (apt-get install chromium; xtask/test.sh does this) \
         or set VIGIL_CHROMIUM to a Chromium binary."
    );
}

/// A running headless Chromium with one attached page.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    next_id: u64,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Launches Chromium (at most 30 s to its DevTools line), opens a page
    /// and attaches to it.
    pub async fn launch() -> Self {
        let bin = chromium_binary();
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(&bin)
            .args(FLAGS)
            .arg("--remote-debugging-port=0")
            .arg("--remote-debugging-address=127.0.0.1")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--window-size=1280,1000")
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Chromium printed no DevTools URL within 30 s");
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        let mut b = Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            session: String::new(),
        };
        let target = b
            .call_browser("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = b
            .call_browser(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b.call("Page.enable", json!({})).await;
        b.call("Runtime.enable", json!({})).await;
        b
    }

    async fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.try_send(method, params, session)
            .await
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// Like `send`, but a DevTools error reply is returned, not a panic.
    async fn try_send(
        &mut self,
        method: &str,
        params: Value,
        session: Option<String>,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no reply to {method} within 20 s"))
                .expect("DevTools websocket closed")
                .unwrap();
            let Message::Text(text) = next else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(e.clone());
                }
                return Ok(v["result"].clone());
            }
        }
    }

    /// A browser-level command.
    pub async fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None).await
    }

    /// A command to the attached page.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.send(method, params, Some(s)).await
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its
    /// JSON value; a thrown exception fails the test.
    pub async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("page script threw: {e}\n{expr}");
        }
        r["result"]["value"].clone()
    }

    /// Navigates and waits (at most 10 s) until the document is complete.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for(
            "document.readyState === 'complete' && location.href !== 'about:blank'",
            Duration::from_secs(10),
        )
        .await;
    }

    /// Polls `cond` (a JS boolean expression) every 20 ms until true;
    /// returns how long it took, or fails after `limit`.
    pub async fn wait_for(&mut self, cond: &str, limit: Duration) -> Duration {
        let start = std::time::Instant::now();
        loop {
            // A click that navigates races this poll: while the old page
            // goes, DevTools answers "Inspected target navigated or closed"
            // (or the context is gone). That is "not yet", not a failure.
            let s = self.session.clone();
            let r = self
                .try_send(
                    "Runtime.evaluate",
                    json!({"expression": format!("!!({cond})"), "returnByValue": true}),
                    Some(s),
                )
                .await
                .unwrap_or(Value::Null);
            if r["result"]["value"] == json!(true) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for: {cond}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Presses a key (e.g. Tab) in the page.
    pub async fn press(&mut self, key: &str, code: &str, key_code: u32) {
        for kind in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code}),
            )
            .await;
        }
    }

    /// Saves a full-page PNG screenshot at `path`.
    pub async fn screenshot(&mut self, path: &std::path::Path) {
        use base64::Engine;
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}
