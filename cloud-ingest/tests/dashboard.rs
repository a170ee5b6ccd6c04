//! The dashboard's session flow over real HTTP on loopback against a real
//! SQLite file: sign-in (CSRF double-submit, clinician tokens only),
//! cookie flags, the CSP, own and foreign patients through a session,
//! audit entries, sign-out (CSRF-checked) and revocation ending a session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

mod common;

use std::time::Duration;

use common::{FOREIGN_NAME, Fixture, OWN_NAME, serve_loopback};
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use vigil_ingest::Limits;
use vigil_ingest::domain::TokenHash;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The value of `name` among a response's Set-Cookie headers, and the
/// whole header.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().unwrap();
        let (kv, _) = v.split_once(';')?;
        let (k, val) = kv.split_once('=')?;
        (k == name).then(|| (val.to_owned(), v.to_owned()))
    })
}

fn hidden_csrf(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// Signs in with `token`; returns the sign-in response.
async fn sign_in(base: &str, c: &reqwest::Client, token: &str) -> reqwest::Response {
    let form = c
        .get(format!("{base}/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let (login_csrf, _) = set_cookie(&form, "vigil_login_csrf").unwrap();
    let page = form.text().await.unwrap();
    assert_eq!(hidden_csrf(&page), login_csrf);
    c.post(format!("{base}/dashboard/login"))
        .header("cookie", format!("vigil_login_csrf={login_csrf}"))
        .form(&[("token", token), ("csrf", &login_csrf)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinician_signs_in_sees_own_patients_only_and_signs_out() {
    let fx = Fixture::new();
    let base = serve_loopback(fx.state(Limits::default())).await;
    let c = client();

    // Without a session every page redirects to the sign-in form.
    let r = c.get(format!("{base}/dashboard/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/dashboard/login");

    // Non-clinician tokens, bad tokens and revoked ones are refused.
    for t in [&fx.device, &fx.follower, &fx.admin, &fx.revoked] {
        let r = sign_in(&base, &c, t).await;
        assert_eq!(r.status(), 401);
        assert!(set_cookie(&r, "vigil_session").is_none());
    }
    // A wrong or missing CSRF pair is refused even with a good token.
    let r = c
        .post(format!("{base}/dashboard/login"))
        .header("cookie", "vigil_login_csrf=aaaa")
        .form(&[("token", fx.clinician.as_str()), ("csrf", "bbbb")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{base}/dashboard/login"))
        .form(&[("token", fx.clinician.as_str()), ("csrf", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = sign_in(&base, &c, &fx.clinician).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/dashboard/");
    let (session, header) = set_cookie(&r, "vigil_session").unwrap();
    assert_eq!(session.len(), 64);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(flag), "{header}");
    }
    assert!(!header.contains("Secure"), "plain loopback: no Secure flag");
    // Only the session id's hash is stored.
    let bytes = std::fs::read(&fx.db)
        .unwrap()
        .into_iter()
        .chain(std::fs::read(fx.db.with_extension("db-wal")).unwrap_or_default())
        .collect::<Vec<u8>>();
    assert!(!bytes.windows(64).any(|w| w == session.as_bytes()));
    assert!(
        bytes
            .windows(32)
            .any(|w| w == TokenHash::of(&session).as_bytes())
    );

    let cookie = format!("vigil_session={session}");
    let home = c
        .get(format!("{base}/dashboard/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let csp = home.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    let page = home.text().await.unwrap();
    assert!(page.contains(OWN_NAME));
    assert!(!page.contains(FOREIGN_NAME));
    let csrf = hidden_csrf(&page);

    let own = c
        .get(format!("{base}/dashboard/patients/{}", fx.own))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(
        own.text()
            .await
            .unwrap()
            .contains(&format!("Report: {OWN_NAME}"))
    );
    let foreign = c
        .get(format!("{base}/dashboard/patients/{}", fx.foreign))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(!foreign.text().await.unwrap().contains(FOREIGN_NAME));
    // The triage list (issue 17): own patients only, sorted and filtered
    // by query; a bad parameter is a 400 that does not echo it.
    let triage = c
        .get(format!(
            "{base}/dashboard/triage?days=7&sort=wear&order=asc&show=all"
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(triage.status(), 200);
    let page = triage.text().await.unwrap();
    assert!(page.contains(OWN_NAME) && !page.contains(FOREIGN_NAME));
    assert!(page.contains(&format!("/dashboard/patients/{}?days=7", fx.own)));
    assert!(page.contains(r#"aria-sort="ascending""#));
    for bad in [
        "days=0",
        "days=abc%3Cx%3E",
        "sort=zzz%3Cx%3E",
        "order=up",
        "show=zzz%3Cx%3E",
    ] {
        let r = c
            .get(format!("{base}/dashboard/triage?{bad}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("invalid_input") || body.contains("error"),
            "{body}"
        );
        assert!(
            !body.contains("zzz") && !body.contains("abc") && !body.contains("up\""),
            "{bad}: {body}"
        );
    }
    let bad_period = c
        .get(format!(
            "{base}/dashboard/patients/{}?from=2026-03-10T00:00:00Z&to=2026-03-01T00:00:00Z",
            fx.own
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_period.status(), 400);
    // The chooser: the last 7 days in mmol/L, and what it refuses.
    let chosen = c
        .get(format!(
            "{base}/dashboard/patients/{}?days=7&units=mmol",
            fx.own
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), 200);
    let chosen = chosen.text().await.unwrap();
    assert!(chosen.contains("(7 days)"), "{chosen}");
    assert!(chosen.contains(r#"<option value="7" selected>last 7 days</option>"#));
    assert!(chosen.contains(r#"<option value="mmol" selected>mmol/L</option>"#));
    // The clinician's own unit: saved from the patient list (CSRF-checked),
    // then every report without `units` reads in it; a link's `units`
    // still wins.
    let report = |units: &'static str| {
        let c = c.clone();
        let url = format!("{base}/dashboard/patients/{}{units}", fx.own);
        let cookie = cookie.clone();
        async move {
            let r = c.get(url).header("cookie", &cookie).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    assert!(
        report("")
            .await
            .contains(r#"<option value="mgdl" selected>"#)
    );
    let save = |csrf: String, units: &'static str| {
        let c = c.clone();
        let url = format!("{base}/dashboard/preferences");
        let cookie = cookie.clone();
        async move {
            c.post(url)
                .header("cookie", &cookie)
                .form(&[("csrf", csrf.as_str()), ("units", units)])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(save("0".repeat(64), "mmol").await.status(), 403);
    let refused = save(csrf.clone(), "furlongs").await;
    assert_eq!(refused.status(), 400);
    assert!(
        !refused.text().await.unwrap().contains("furlongs"),
        "not echoed"
    );
    assert!(
        report("")
            .await
            .contains(r#"<option value="mgdl" selected>"#)
    );
    let saved = save(csrf.clone(), "mmol").await;
    assert_eq!(saved.status(), 303);
    assert!(
        report("")
            .await
            .contains(r#"<option value="mmol" selected>mmol/L</option>"#)
    );
    assert!(
        report("?units=mgdl")
            .await
            .contains(r#"<option value="mgdl" selected>"#)
    );
    let home = c
        .get(format!("{base}/dashboard/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains(r#"<option value="mmol" selected>mmol/L</option>"#));
    assert_eq!(save(csrf.clone(), "mgdl").await.status(), 303);
    // Custom dates from the form: the end date is included; blank fields
    // (as a form sends them) are absent.
    let custom = c
        .get(format!(
            "{base}/dashboard/patients/{}?days=14&from=2026-03-01&to=2026-03-07&units=mgdl",
            fx.own
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(custom.status(), 200);
    let custom = custom.text().await.unwrap();
    assert!(
        custom.contains("2026-03-01 — 2026-03-07 (7 days)"),
        "{custom}"
    );
    let blank = c
        .get(format!(
            "{base}/dashboard/patients/{}?days=30&from=&to=",
            fx.own
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(blank.status(), 200);
    assert!(blank.text().await.unwrap().contains("(30 days)"));
    for bad in [
        "days=0",
        "days=91",
        "units=furlong",
        "days=x",
        "from=furlong",
        "from=2026-02-30",
        "from=2026-01-01&to=2026-06-01",
    ] {
        let r = c
            .get(format!("{base}/dashboard/patients/{}?{bad}", fx.own))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(!r.text().await.unwrap().contains("furlong"), "not echoed");
    }

    // The reads are audited under the clinician's token.
    let audit = fx.store.blocking().audit_entries(0, 1000).unwrap();
    for action in [
        "dashboard.sign_in",
        "dashboard.patients.read",
        "dashboard.report.read",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == action && e.token_id.is_some()),
            "no {action}"
        );
    }
    assert!(
        audit
            .iter()
            .any(|e| e.action == "dashboard.report.read" && e.patient_id == Some(fx.own))
    );
    // Signed in with the token; everything after, with the session.
    use vigil_ingest::domain::CredentialKind;
    for e in &audit {
        match e.action.as_str() {
            "dashboard.sign_in" => assert_eq!(e.credential, CredentialKind::Token),
            a if a.starts_with("dashboard.") => {
                assert_eq!(e.credential, CredentialKind::DashboardSession, "{a}")
            }
            _ => {}
        }
    }

    // Sign-out needs the session's CSRF token.
    let r = c
        .post(format!("{base}/dashboard/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{base}/dashboard/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (cleared, header) = set_cookie(&r, "vigil_session").unwrap();
    assert!(cleared.is_empty() && header.contains("Max-Age=0"));
    let r = c
        .get(format!("{base}/dashboard/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the old cookie opens nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_token_ends_its_sessions() {
    let fx = Fixture::new();
    let base = serve_loopback(fx.state(Limits::default())).await;
    let c = client();
    let r = sign_in(&base, &c, &fx.clinician).await;
    let (session, _) = set_cookie(&r, "vigil_session").unwrap();
    let cookie = format!("vigil_session={session}");
    let ok = c
        .get(format!("{base}/dashboard/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let s = fx.store.blocking();
    let id = s
        .token_by_hash(&TokenHash::of(&fx.clinician))
        .unwrap()
        .unwrap()
        .id;
    assert!(s.revoke_token(id).unwrap());
    let r = c
        .get(format!("{base}/dashboard/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_assets_are_embedded_and_typed() {
    let fx = Fixture::new();
    let base = serve_loopback(fx.state(Limits::default())).await;
    let c = client();
    let css = c
        .get(format!("{base}/dashboard/static/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("@media print"));
    let js = c
        .get(format!("{base}/dashboard/static/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(js.text().await.unwrap().contains("EventSource"));
}
