//! The dashboard in a real headless Chromium (Debian's system binary,
//! driven over the DevTools protocol by `common/cdp.rs`): sign in, open a
//! patient, see the report drawn, and check accessibility basics in the
//! rendered page. Screenshots go to `target/screenshots/`. Without
//! Chromium this test fails with a message saying how to install it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::cdp::Browser;
use common::{Fixture, OWN_NAME, serve_loopback};
use serde_json::Value;
use vigil_ingest::Limits;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// Accessibility basics of the current page: labelled inputs, titled SVG,
/// `lang`, one `h1`, text contrast >= 4.5:1 (WCAG relative luminance).
const A11Y: &str = r#"(() => {
  const problems = [];
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const labelled = (el.id && document.querySelector('label[for="' + el.id + '"]')) || el.closest('label')
      || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!labelled) problems.push('unlabelled input ' + (el.name || el.id));
  }
  for (const svg of document.querySelectorAll('svg')) {
    if (!svg.querySelector(':scope > title')) problems.push('svg without title');
  }
  for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('img without alt');
  if (!document.documentElement.lang) problems.push('no lang');
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  const rgb = s => s.match(/[\d.]+/g).map(Number);
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const bg = el => { while (el) { const v = rgb(getComputedStyle(el).backgroundColor); if (v.length < 4 || v[3] > 0) return v; el = el.parentElement; } return [255, 255, 255]; };
  let checked = 0, min = 99;
  for (const el of document.querySelectorAll('body, p, a, button, th, td, label, li, h1, h2, dt, dd, caption')) {
    if (el.tagName !== 'BODY' && el.getClientRects().length === 0) continue;
    if (!el.textContent.trim()) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    checked++; min = Math.min(min, ratio);
    if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ' on ' + el.tagName + ' "' + el.textContent.trim().slice(0, 20) + '"');
  }
  return { problems, checked, min };
})()"#;

/// Numbers every visible focusable control; returns how many.
const MARK_FOCUSABLE: &str = r#"(() => {
  const els = [...document.querySelectorAll('a[href], button:not([disabled]), input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])')]
    .filter(e => e.getClientRects().length > 0 || e.classList.contains('skip'));
  els.forEach((e, i) => e.setAttribute('data-focus-i', String(i)));
  document.activeElement && document.activeElement.blur();
  return els.length;
})()"#;

/// Tabs through the page; every marked control must receive focus.
async fn assert_tab_reaches_everything(b: &mut Browser, page: &str) {
    let n = b.eval(MARK_FOCUSABLE).await.as_u64().unwrap();
    assert!(n > 0, "{page}: nothing focusable");
    let mut seen = std::collections::BTreeSet::new();
    // A date input takes several Tabs (day, month, year), so allow a few
    // per control and stop once every one has been reached.
    for _ in 0..(4 * n + 3) {
        if seen.len() as u64 == n {
            break;
        }
        b.press("Tab", "Tab", 9).await;
        let i = b
            .eval("document.activeElement && document.activeElement.getAttribute('data-focus-i')")
            .await;
        if let Some(i) = i.as_str() {
            seen.insert(i.parse::<u64>().unwrap());
        }
    }
    let missing: Vec<u64> = (0..n).filter(|i| !seen.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "{page}: controls {missing:?} of {n} never got focus by Tab"
    );
}

async fn assert_accessible(b: &mut Browser, page: &str) {
    let r: Value = b.eval(A11Y).await;
    assert!(
        r["checked"].as_u64().unwrap() >= 3,
        "{page}: too few text elements checked: {r}"
    );
    assert!(
        r["problems"].as_array().unwrap().is_empty(),
        "{page}: {}",
        r["problems"]
    );
    assert_tab_reaches_everything(b, page).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinician_signs_in_and_reads_a_report_in_chromium() {
    let run = async {
        let fx = Fixture::new();
        let base = serve_loopback(fx.state(Limits::default())).await;
        // 14 days of 5-minute readings up to now, synced as the SDK does:
        // one wire-protocol batch per day on POST /v1/batches.
        let now = chrono::Utc::now();
        let now = chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap();
        let http = reqwest::Client::new();
        for day in 0..14u64 {
            let mut batch = vigil_model::wire::Batch::new(
                vigil_model::wire::BatchId::random(),
                vigil_model::reading::PatientId(fx.own.to_string()),
                vigil_model::reading::DeviceId("cgm-1".into()),
                now,
            );
            let mut g = vigil_model::wire::StreamReadings::new(
                vigil_model::reading::Stream::Glucose,
                Some(1),
                0x2AA7,
            );
            for k in 0..288u64 {
                let i = day * 288 + k;
                let back = i64::try_from(14 * 288 - 1 - i).unwrap();
                let time = now - chrono::TimeDelta::minutes(5 * back);
                let value = (140.0
                    + 70.0 * ((i % 288) as f64 / 288.0 * std::f64::consts::TAU).sin())
                .round();
                g.readings.push(vigil_model::wire::WireReading {
                    seq: i,
                    time,
                    value,
                    quality: vigil_model::reading::Quality::default(),
                    raw: None,
                });
            }
            batch.streams.push(g);
            let r = http
                .post(format!("{base}/v1/batches"))
                .bearer_auth(&fx.device)
                .header("content-type", "application/json")
                .body(vigil_model::wire::json::to_vec(&batch).unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
        let mut b = Browser::launch().await;
        let shots = screenshots();

        b.goto(&format!("{base}/dashboard/")).await;
        b.wait_for(
            "location.pathname === '/dashboard/login'",
            Duration::from_secs(5),
        )
        .await;
        assert_accessible(&mut b, "sign-in").await;
        b.screenshot(&shots.join("01-sign-in.png")).await;

        // Sign in by typing into the labelled field and submitting.
        let token = serde_json::to_string(&fx.clinician).unwrap();
        b.eval(&format!(
            "document.getElementById('token').value = {token}; document.querySelector('form.login').requestSubmit(); true"
        ))
        .await;
        b.wait_for(
            "location.pathname === '/dashboard/' && document.readyState === 'complete'",
            Duration::from_secs(10),
        )
        .await;
        let cookie_visible = b.eval("document.cookie.includes('vigil_session')").await;
        assert_eq!(
            cookie_visible,
            Value::Bool(false),
            "the session cookie must be HttpOnly"
        );
        let list = b
            .eval("document.querySelector('table.patients').innerText")
            .await;
        assert!(list.as_str().unwrap().contains(OWN_NAME));
        assert_accessible(&mut b, "patient list").await;
        b.screenshot(&shots.join("02-patients.png")).await;

        // The triage list (issue 17), reached from the header's navigation:
        // a real table with row headers, the sorted column announced, the
        // time-in-ranges bar drawn, and a column re-sorted by its link.
        b.eval("document.querySelector('nav.nav a[href=\"/dashboard/triage\"]').click(); true")
            .await;
        b.wait_for(
            "location.pathname === '/dashboard/triage' && document.readyState === 'complete'",
            Duration::from_secs(10),
        )
        .await;
        let triage = b
            .eval("(() => { const t = document.querySelector('table.triage'); if (!t) return null; \
                   return { caption: !!t.querySelector('caption'), rows: t.querySelectorAll('tbody th[scope=row]').length, \
                   sorted: t.querySelector('th[aria-sort]').textContent, order: t.querySelector('th[aria-sort]').getAttribute('aria-sort'), \
                   bars: t.querySelectorAll('svg.tir-mini rect').length, text: t.innerText }; })()")
            .await;
        assert_eq!(triage["caption"], true, "{triage}");
        assert_eq!(triage["sorted"], "GRI", "{triage}");
        assert_eq!(triage["order"], "descending", "{triage}");
        assert!(triage["rows"].as_u64().unwrap() >= 1, "{triage}");
        assert!(triage["bars"].as_u64().unwrap() >= 1, "{triage}");
        assert!(
            triage["text"].as_str().unwrap().contains(OWN_NAME),
            "{triage}"
        );
        assert_accessible(&mut b, "triage list").await;
        b.screenshot(&shots.join("02b-triage.png")).await;
        b.eval("[...document.querySelectorAll('table.triage thead a')].find(a => a.textContent === 'Sensor wear').click(); true")
            .await;
        b.wait_for(
            "location.search.includes('sort=wear') && document.readyState === 'complete'",
            Duration::from_secs(10),
        )
        .await;
        let sorted = b
            .eval("document.querySelector('table.triage th[aria-sort]').textContent")
            .await;
        assert_eq!(sorted, "Sensor wear");
        b.goto(&format!("{base}/dashboard/")).await;
        b.wait_for(
            "location.pathname === '/dashboard/' && document.readyState === 'complete'",
            Duration::from_secs(10),
        )
        .await;

        // Open the patient from the list.
        b.eval("document.querySelector('table.patients a').click(); true")
            .await;
        b.wait_for("location.pathname.startsWith('/dashboard/patients/') && document.readyState === 'complete'", Duration::from_secs(10)).await;
        let h1 = b.eval("document.querySelector('h1').textContent").await;
        assert_eq!(h1.as_str().unwrap(), format!("Report: {OWN_NAME}"));
        // The AGP is drawn: a median point per 15-minute slot, both bands,
        // and the time-in-ranges bar; the daily charts follow.
        let main_text = b
            .eval("document.querySelector('main').innerText.slice(0, 400)")
            .await;
        let agp = b
            .eval("(() => { const s = document.querySelector('svg.agp'); if (!s) return null; const r = s.getBoundingClientRect(); \
                   return { median: s.querySelector('polyline.median').points.length, \
                   bands: s.querySelectorAll('polygon').length, w: r.width, h: r.height, \
                   tir: document.querySelectorAll('svg.tir rect').length, \
                   days: document.querySelectorAll('svg.day').length }; })()")
            .await;
        assert_eq!(agp["median"], 96, "{agp} {main_text}");
        assert_eq!(agp["bands"], 2, "{agp}");
        assert_eq!(agp["tir"], 5, "{agp}");
        assert!(
            agp["w"].as_f64().unwrap() > 300.0 && agp["h"].as_f64().unwrap() > 100.0,
            "{agp}"
        );
        assert!(agp["days"].as_u64().unwrap() >= 14, "{agp}");
        assert_accessible(&mut b, "report").await;
        b.screenshot(&shots.join("03-report.png")).await;

        // A live alert POSTed by the patient's device appears within one
        // second on the open page, and the clinician acknowledges it.
        b.wait_for(
            "document.getElementById('live-state').textContent === 'Connected.'",
            Duration::from_secs(5),
        )
        .await;
        let now = chrono::Utc::now();
        let alert = vigil_model::wire::Alert {
            v: 1,
            patient: vigil_model::reading::PatientId(fx.own.to_string()),
            device: Some(vigil_model::reading::DeviceId("cgm-1".into())),
            sent_at: now,
            id: "00aa11bb22cc33dd".into(),
            kind: vigil_model::alerts::AlertKind::UrgentLow,
            phase: vigil_model::alerts::Phase::Start,
            time: now,
            glucose_mg_dl: Some(50.0),
            rate_mg_dl_per_min: None,
            battery_pct: None,
            session_expires_at: None,
        };
        let posted = std::time::Instant::now();
        let r = reqwest::Client::new()
            .post(format!("{base}/v1/alerts"))
            .bearer_auth(&fx.device)
            .header("content-type", "application/json")
            .body(vigil_model::wire::json::to_vec(&alert).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        b.wait_for(
            "document.querySelector('#live-list li[data-alert-id=\"00aa11bb22cc33dd\"]')",
            Duration::from_secs(1),
        )
        .await;
        let shown_after = posted.elapsed();
        assert!(
            shown_after < Duration::from_secs(1),
            "alert shown after {shown_after:?}"
        );
        // The kind in the page's words and the moment as every page shows
        // one (today: the clock time alone; the date only if midnight
        // passed in between), in a <time> element.
        let said = b
            .eval(
                "(function(){var li=document.querySelector('#live-list li[data-alert-id=\"00aa11bb22cc33dd\"]');\
                 var t=li.querySelector('time');\
                 return li.textContent.indexOf('Urgent low at ')>=0 && t && /^([0-9]{4}-[0-9]{2}-[0-9]{2} )?[0-9]{2}:[0-9]{2}$/.test(t.textContent)\
                 && !isNaN(Date.parse(t.getAttribute('datetime')));})()",
            )
            .await;
        assert_eq!(said, serde_json::json!(true), "live alert text");
        b.screenshot(&shots.join("04-live-alert.png")).await;
        b.eval("document.querySelector('#live-list li button.ack').click(); true")
            .await;
        b.wait_for(
            "document.querySelector('#live-list li[data-acked=\"true\"]')",
            Duration::from_secs(5),
        )
        .await;
        let acks = fx
            .store
            .blocking()
            .alert_acks(fx.own, "00aa11bb22cc33dd")
            .unwrap();
        assert_eq!(acks.len(), 1, "the acknowledgement is stored");
        assert_eq!(acks[0].by, "dr-own", "stored under the clinician's name");
        b.screenshot(&shots.join("05-acknowledged.png")).await;
        println!("live alert shown {shown_after:?} after the device's POST");

        // The checker itself can fail: a grey-on-white paragraph, an
        // unlabelled input and an untitled SVG are each reported. (The
        // colour is set through the CSSOM: the CSP blocks style attributes.)
        let r = b
            .eval(&format!(
                "(() => {{ const m = document.querySelector('main'); \
                 m.insertAdjacentHTML('beforeend', '<p id=\"bad\">faint</p><input id=\"nolabel\"><svg></svg>'); \
                 document.getElementById('bad').style.color = '#aaaaaa'; \
                 const r = {A11Y}; document.getElementById('bad').remove(); document.getElementById('nolabel').remove(); \
                 m.querySelector('svg:last-child').remove(); return r; }})()"
            ))
            .await;
        let problems = r["problems"].to_string();
        assert!(problems.contains("contrast 2.32 on P"), "{problems}");
        assert!(problems.contains("unlabelled input nolabel"), "{problems}");
        assert!(problems.contains("svg without title"), "{problems}");

        // Sign out through the header form.
        b.eval("document.querySelector('form.signout button').click(); true")
            .await;
        b.wait_for(
            "location.pathname === '/dashboard/login'",
            Duration::from_secs(10),
        )
        .await;
        b.goto(&format!("{base}/dashboard/")).await;
        b.wait_for(
            "location.pathname === '/dashboard/login'",
            Duration::from_secs(5),
        )
        .await;
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("browser scenario took over 120 s");
}
