//! `vigil demo` as a user runs it: the built binary with a small fleet on
//! fast simulated time. The URL and clinician token it prints must open the
//! dashboard (sign-in through the browser's form, CSRF cookie and all) on
//! the simulated clinic, whose patients have synced readings; and its
//! summary must report readings synced and alerts raised.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The whole test's time budget.
const BUDGET: Duration = Duration::from_secs(60);
const PATIENTS: usize = 3;

struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Demo {
    fn start(run_for_s: u32) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args([
                "demo",
                "--patients",
                &PATIENTS.to_string(),
                "--acceleration",
                "1200",
                "--for",
                &run_for_s.to_string(),
                "--port",
                "0",
                "--straps",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run vigil demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The first line starting with `prefix`, waiting for it until
    /// `deadline`.
    fn line(&mut self, prefix: &str, deadline: Instant) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return l.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(e) => panic!(
                    "no line `{prefix}` ({e:?}); output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the process to end by itself and returns all it printed.
    fn finish(mut self, deadline: Instant) -> String {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(l);
                }
                assert!(
                    status.success(),
                    "demo failed: {status}\n{}",
                    self.seen.join("\n")
                );
                return self.seen.join("\n");
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("demo did not stop by itself:\n{}", self.seen.join("\n"));
            }
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of cookie `name` among a response's Set-Cookie headers.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (n, value) = pair.split_once('=')?;
            (n.trim() == name).then(|| value.to_owned())
        })
}

/// The `value` of the hidden input named `csrf` in a form.
fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Signs in on the dashboard's form as a browser does and returns the
/// session cookie.
async fn sign_in(client: &reqwest::Client, base: &str, token: &str) -> String {
    let form = client
        .get(format!("{base}/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let cookie = set_cookie(&form, "vigil_login_csrf").expect("login CSRF cookie");
    let html = form.text().await.unwrap();
    let csrf = csrf_field(&html);
    assert_eq!(csrf, cookie, "double-submit pair");
    let r = client
        .post(format!("{base}/dashboard/login"))
        .header("cookie", format!("vigil_login_csrf={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={}&csrf={}",
            form_encode(token),
            form_encode(&csrf)
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "sign-in: {}", r.status());
    set_cookie(&r, "vigil_session").expect("session cookie")
}

/// The patient list's rows of synthetic patients, as (name, row html).
fn patient_rows(html: &str) -> Vec<(String, String)> {
    html.split("<tr class=\"hb-")
        .skip(1)
        .filter_map(|row| {
            let row = &row[..row.find("</tr>")?];
            let start = row.find("Synthetic patient ")?;
            let name = &row[start..start + row[start..].find('<')?];
            Some((name.to_owned(), row.to_owned()))
        })
        .collect()
}

#[test]
fn demo_url_and_token_open_the_dashboard_on_the_simulated_clinic() {
    let started = Instant::now();
    let deadline = started + BUDGET;
    let mut demo = Demo::start(25);
    let url = demo.line("Dashboard: ", deadline)["Dashboard: ".len()..].to_owned();
    let token_line = demo.line("Clinician token", deadline);
    let token = token_line.rsplit(' ').next().unwrap().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/dashboard/"),
        "{url}"
    );
    let base = url.trim_end_matches("/dashboard/").to_owned();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let session = sign_in(&client, &base, &token).await;
        // The phones sync every 15 simulated minutes (under a second here):
        // every patient's row shows a latest glucose soon after the start.
        loop {
            let page = client
                .get(format!("{base}/dashboard/"))
                .header("cookie", format!("vigil_session={session}"))
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), 200, "patient list");
            let rows = patient_rows(&page.text().await.unwrap());
            let synced = rows.iter().filter(|(_, r)| r.contains(" mg/dL")).count();
            if rows.len() == PATIENTS && synced == PATIENTS {
                return rows;
            }
            assert!(
                Instant::now() + Duration::from_secs(15) < deadline,
                "the dashboard never showed {PATIENTS} patients with readings: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Synthetic patient 01 (demo)",
            "Synthetic patient 02 (demo)",
            "Synthetic patient 03 (demo)"
        ]
    );

    let out = demo.finish(deadline);
    let number_after = |label: &str| -> u64 {
        let at = out
            .find(label)
            .unwrap_or_else(|| panic!("no `{label}` in:\n{out}"));
        out[at + label.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("no number after `{label}` in:\n{out}"))
    };
    assert!(number_after("readings synced: ") > 0, "{out}");
    assert!(number_after("alerts raised: ") >= 1, "{out}");
    assert_eq!(
        number_after("readings of "),
        PATIENTS as u64,
        "every patient's readings are in the cloud:\n{out}"
    );
    assert!(started.elapsed() < BUDGET);
}
