//! The dashboard's HTTP handlers: sign-in, sign-out, the patient list, the
//! patient report and the embedded static assets. Pages are for signed-in
//! clinicians; without a session every page redirects to the sign-in form.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde::Deserialize;

use vigil_model::precedence::Quantity;

use crate::ServiceState;
use crate::access::{PatientAccess, Read};
use crate::auth::Principal;
use crate::dashboard::pages::{self, Heartbeat, PatientRow};
use crate::dashboard::sign_in::{
    self, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, cookie, random_hex, same, set_cookie,
};
use crate::dashboard::units::GlucoseUnit;
use crate::dashboard::{APP_CSS, APP_JS, report, triage};
use crate::domain::{CredentialKind, NewAuditEntry, TokenScope};
use crate::domain::{Role, TokenHash};
use crate::error::{Error, Result};
use crate::glucose;
use crate::storage::Storage;

fn with_cookie(mut r: Response, value: String) -> Result<Response> {
    let v = HeaderValue::from_str(&value).map_err(|e| Error::Config(format!("cookie: {e}")))?;
    r.headers_mut().append(header::SET_COOKIE, v);
    Ok(r)
}

/// `GET /dashboard/login`: the sign-in form, with a fresh double-submit
/// CSRF cookie.
pub async fn login_form(State(state): State<ServiceState>) -> Result<Response> {
    let token = random_hex()?;
    let page = pages::html(StatusCode::OK, pages::login(&token, None));
    with_cookie(
        page,
        set_cookie(LOGIN_CSRF_COOKIE, &token, 600, state.cookie_secure),
    )
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: String,
}

/// `POST /dashboard/login`: checks the CSRF pair and the clinician token,
/// opens a session, and redirects to the patient list. A wrong token gets
/// the form again with a message (401), never a hint which part was wrong.
pub async fn login(
    State(state): State<ServiceState>,
    headers: HeaderMap,
    form: std::result::Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response> {
    let Form(form) = form.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_FORM.into()))?;
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !same(expected, &form.csrf) {
        return Err(Error::Forbidden("missing or wrong CSRF token"));
    }
    let hash = TokenHash::of(form.token.trim());
    let lookup = hash.clone();
    let record = state.store.run(move |s| s.token_by_hash(&lookup)).await?;
    let ok = record
        .filter(|r| r.hash.ct_eq(&hash) && r.revoked_at.is_none() && r.role == Role::Clinician);
    let Some(record) = ok else {
        tracing::info!("dashboard sign-in refused");
        let again = random_hex()?;
        let page = pages::html(
            StatusCode::UNAUTHORIZED,
            pages::login(&again, Some("That is not a valid clinician token.")),
        );
        return with_cookie(
            page,
            set_cookie(LOGIN_CSRF_COOKIE, &again, 600, state.cookie_secure),
        );
    };
    if !state.rate_limiter.try_acquire(record.id) {
        return Err(Error::RateLimited);
    }
    let id = random_hex()?;
    let session_hash = sign_in::session_hash(&id);
    let token_id = record.id;
    state
        .store
        .run(move |s| {
            s.create_session(&session_hash, token_id, sign_in::expiry())?;
            // Signed in with the clinician's token, typed into the form.
            s.append_audit(&NewAuditEntry {
                credential: CredentialKind::Token,
                token_id: Some(token_id),
                patient_id: None,
                action: "dashboard.sign_in".into(),
            })
        })
        .await?;
    tracing::info!(token_id, "dashboard sign-in");
    let r = with_cookie(
        pages::redirect("/dashboard/"),
        set_cookie(
            SESSION_COOKIE,
            &id,
            sign_in::SESSION_TTL.num_seconds(),
            state.cookie_secure,
        ),
    )?;
    with_cookie(r, set_cookie(LOGIN_CSRF_COOKIE, "", 0, state.cookie_secure))
}

/// A form carrying only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /dashboard/logout`: ends the session (CSRF-checked) and clears
/// the cookie.
pub async fn logout(
    State(state): State<ServiceState>,
    who: Session,
    form: std::result::Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response> {
    let Form(form) = form.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_FORM.into()))?;
    if !same(&who.csrf, &form.csrf) {
        return Err(Error::Forbidden("missing or wrong CSRF token"));
    }
    let hash = who.hash.clone();
    let token_id = who.principal.token_id;
    state
        .store
        .run(move |s| {
            s.delete_session(&hash, Utc::now())?;
            s.append_audit(&NewAuditEntry {
                credential: CredentialKind::DashboardSession,
                token_id: Some(token_id),
                patient_id: None,
                action: "dashboard.sign_out".into(),
            })
        })
        .await?;
    with_cookie(
        pages::redirect("/dashboard/login"),
        set_cookie(SESSION_COOKIE, "", 0, state.cookie_secure),
    )
}

/// `GET /dashboard/`: the signed-in clinician's patients, most urgent first.
pub async fn home(State(state): State<ServiceState>, who: Session) -> Result<Response> {
    let principal = who.principal;
    let (rows, unit) = state
        .store
        .run(move |s| {
            let unit = preferred_unit(s, &principal)?;
            let patients = match principal.scope {
                TokenScope::Clinician(c) => s.assigned_patients(c)?,
                TokenScope::Patient(_) | TokenScope::Admin => Vec::new(),
            };
            let mut rows = Vec::with_capacity(patients.len());
            for p in patients {
                principal.audit(s, Some(p.id), "dashboard.patients.read")?;
                let now = Utc::now();
                let recent = glucose::points(s, p.id, now - TimeDelta::days(14), now)?;
                // The arrow is derived from glucose (the phone no longer
                // sends the sensor's trend): the 15-minute slope.
                let latest = recent.last().map(|last| {
                    let rate = recent
                        .len()
                        .checked_sub(1)
                        .and_then(|i| vigil_model::trend::rate_at(&glucose::samples(&recent), i));
                    (last.time, last.mg_dl, rate)
                });
                // 14 days of 5-minute readings is 4032.
                let completeness =
                    (!recent.is_empty()).then(|| (recent.len() as f64 / 4032.0 * 100.0).min(100.0));
                let heartbeat = match s.latest_heartbeat(p.id)? {
                    Some(h) if now - h.received_at < TimeDelta::minutes(30) => Heartbeat::Live,
                    Some(h) if now - h.received_at < TimeDelta::hours(6) => Heartbeat::Silent,
                    _ => match latest {
                        Some((t, _, _)) if now - t < TimeDelta::minutes(30) => Heartbeat::Live,
                        _ => Heartbeat::Offline,
                    },
                };
                let alerts = s.alerts_for(&[p.id], now - TimeDelta::days(1), 1000)?;
                let active = alerts
                    .iter()
                    .filter(|a| a.alert.phase != "end" && a.acks.is_empty())
                    .count();
                rows.push(PatientRow {
                    id: p.id,
                    name: p.display_name,
                    latest,
                    active_alerts: u32::try_from(active).unwrap_or(u32::MAX),
                    heartbeat,
                    completeness_pct: completeness,
                });
            }
            Ok((rows, unit))
        })
        .await?;
    Ok(pages::html(
        StatusCode::OK,
        pages::patient_list(rows, Utc::now(), &who.csrf, unit),
    ))
}

/// `GET /dashboard/triage`: every assigned patient with the consensus risk
/// markers of the period, sortable and filterable (issue 17). Reads the
/// per-day glucose summaries (recomputing any day still stale first) and
/// the dead-man's switch state, never the readings. An admin's session
/// sees no patient (admins read no patient data).
pub async fn triage(
    State(state): State<ServiceState>,
    who: Session,
    q: std::result::Result<Query<triage::TriageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    // The rejection's text quotes the query: not echoed.
    let Query(q) = q.map_err(|_| Error::InvalidInput(triage::BAD_QUERY.into()))?;
    let view = triage::View::of(&q)?;
    let principal = who.principal;
    let now = Utc::now();
    let rows = state
        .store
        .run(move |s| triage_rows(s, &principal, view.days, now))
        .await?;
    Ok(pages::html(
        StatusCode::OK,
        triage::render(rows, &view, now, &who.csrf),
    ))
}

/// The triage list's rows for `principal` over the `days` UTC days ending
/// today, against the `days` before. Public for the benchmark.
pub fn triage_rows(
    s: &dyn crate::storage::Storage,
    principal: &crate::auth::Principal,
    days: i64,
    now: DateTime<Utc>,
) -> Result<Vec<triage::TriageRow>> {
    use crate::glucose_days::{self, Figures};
    use crate::storage::{DayScope, day_of, day_start};
    let TokenScope::Clinician(c) = principal.scope else {
        return Ok(Vec::new());
    };
    let patients = s.assigned_patients(c)?;
    let today = day_of(now);
    let (from, to) = (today + 1 - days, today + 1);
    let before = from - days;
    let scope = DayScope::Clinician(c);
    glucose_days::refresh(s, scope, before, to)?;
    let rows = s.glucose_days(scope, before, to)?;
    let current = glucose_days::per_patient(&rows, from, to);
    let previous = glucose_days::per_patient(&rows, before, from);
    let contacts: std::collections::HashMap<_, _> =
        s.contacts()?.into_iter().map(|c| (c.patient, c)).collect();
    // The slots of the period so far (today counts up to now).
    let expected = ((now - day_start(from)).num_seconds() + 299) / 300;
    let silent_after = crate::deadman::DeadManConfig::default().silent_after;
    let audit: Vec<_> = patients
        .iter()
        .map(|p| principal.audit_entry(Some(p.id), "dashboard.triage.read"))
        .collect();
    s.append_audits(&audit)?;
    let mut out = Vec::with_capacity(patients.len());
    for p in patients {
        let now_counts = current.get(&p.id).copied().unwrap_or_default();
        let figures = Figures::of(&now_counts);
        let before = previous.get(&p.id).and_then(Figures::of);
        let contact = contacts.get(&p.id);
        out.push(triage::TriageRow {
            id: p.id,
            name: p.display_name,
            figures,
            wear_pct: glucose_days::wear_pct(&now_counts, expected),
            tir_drop: figures
                .zip(before)
                .map(|(n, b)| b.tir_70_180_pct - n.tir_70_180_pct),
            last_contact: contact.map(|c| c.last_contact),
            silent: contact
                .is_none_or(|c| c.silence.is_some() || now - c.last_contact >= silent_after),
        });
    }
    Ok(out)
}

/// Query of the report page.
#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    /// Period start: an RFC 3339 date-time, or a date (its first moment,
    /// UTC); default `days` before `to`. Empty is absent (a form's blank
    /// date field).
    from: Option<String>,
    /// Period end: an RFC 3339 date-time, or a date (the end of that day,
    /// so the day is included); default now.
    to: Option<String>,
    /// Period length in days when `from` is not given (default 14).
    days: Option<u16>,
    /// `mgdl` (default) or `mmol`.
    units: Option<GlucoseUnit>,
}

/// A period bound as a form or a link sends it: blank is absent; a date
/// is its first moment, or with `end_of_day` the first of the next day.
fn moment(text: Option<&str>, end_of_day: bool) -> std::result::Result<Option<DateTime<Utc>>, ()> {
    let text = match text.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(t) => t,
    };
    match crate::query::day(text) {
        Some(day) if end_of_day => {
            let next = day.succ_opt().ok_or(())?;
            Ok(Some(next.and_time(chrono::NaiveTime::MIN).and_utc()))
        }
        _ => crate::query::instant(text).map(Some).ok_or(()),
    }
}

/// Treatments read for one report: 90 days of a pump user's boluses,
/// meals and notes with room to spare (temporary basals, the bulk of what
/// a pump posts, are read and then left off the charts).
const MAX_TREATMENTS: u32 = 20_000;

/// `GET /dashboard/patients/{id}`: the report of one assigned patient.
pub async fn patient(
    State(state): State<ServiceState>,
    who: Session,
    Path(id): Path<i64>,
    q: std::result::Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    // The rejection's text quotes the query: not echoed.
    let Query(q) = q.map_err(|_| {
        Error::InvalidInput(
            "`from` and `to` must be RFC 3339 date-times, `days` a number of days, `units` mgdl or mmol"
                .into(),
        )
    })?;
    let to = moment(q.to.as_deref(), true)
        .map_err(|()| Error::InvalidInput("`to` must be a date or an RFC 3339 date-time".into()))?
        .unwrap_or_else(Utc::now);
    let from = moment(q.from.as_deref(), false).map_err(|()| {
        Error::InvalidInput("`from` must be a date or an RFC 3339 date-time".into())
    })?;
    let from = match (from, q.days) {
        (Some(from), _) => Some(from),
        (None, None) => None,
        (None, Some(days)) => {
            let days = i64::from(days);
            if !(1..=crate::query::MAX_PERIOD.num_days()).contains(&days) {
                return Err(Error::InvalidInput("`days` must be 1 to 90".into()));
            }
            Some(crate::validate::shift(to, -TimeDelta::days(days), "to")?)
        }
    };
    let (from, to) = crate::query::period(from, Some(to))?;
    // The period of the same length just before, for the comparison column.
    let before = crate::validate::shift(from, -(to - from), "from")?;
    let principal = who.principal;
    let asked_unit = q.units;
    let (patient, samples, held_back, alerts, sources, uploader, previous, treatments, unit) =
        state
            .store
            .run(move |s| {
                let access =
                    PatientAccess::<Read>::open(s, &principal, id, "dashboard.report.read")?;
                let unit = match asked_unit {
                    Some(u) => u,
                    None => preferred_unit(s, &principal)?,
                };
                let patient = access.record(s)?;
                let points = access.points(s, from, to)?;
                let held_back: Vec<DateTime<Utc>> = points
                    .iter()
                    .filter(|p| p.held_back)
                    .map(|p| p.time)
                    .collect();
                let samples = glucose::samples(&points);
                let previous = glucose::samples(&access.points(s, before, from)?);
                let treatments: Vec<_> = access
                    .ns_documents(
                        s,
                        crate::nightscout::care::TREATMENTS,
                        from,
                        to,
                        MAX_TREATMENTS,
                    )?
                    .iter()
                    .filter_map(crate::dashboard::treatments::treatment_mark)
                    .collect();
                let uploader = access
                    .ns_documents(
                        s,
                        crate::nightscout::care::DEVICE_STATUS,
                        Utc::now() - TimeDelta::days(7),
                        Utc::now() + TimeDelta::days(1),
                        1,
                    )?
                    .into_iter()
                    .next()
                    .map(|d| report::Uploader {
                        battery: crate::nightscout::care::uploader_battery(&d.document),
                        device: d.kind,
                        at: d.time,
                    });
                let sources = crate::resolved::periods(
                    &access
                        .resolve(s, Quantity::Glucose, None, from, to)?
                        .decisions,
                );
                let alerts: Vec<report::AlertLine> = access
                    .alerts(s, from, 1000)?
                    .into_iter()
                    .filter(|a| a.alert.time < to && a.alert.phase == "start")
                    .map(|a| report::AlertLine {
                        at: a.alert.time,
                        kind: a.alert.kind,
                        acked: a.acks.first().map(|k| (k.by.clone(), k.at)),
                    })
                    .collect();
                Ok((
                    patient, samples, held_back, alerts, sources, uploader, previous, treatments,
                    unit,
                ))
            })
            .await?;
    let page = report::render(
        &report::Report {
            patient_id: id,
            name: &patient.display_name,
            from,
            to,
            samples: &samples,
            held_back: &held_back,
            alerts: &alerts,
            offset: local_offset(patient.time_zone.as_deref(), to)?,
            now: Utc::now(),
            sources: &sources,
            uploader: uploader.as_ref(),
            unit,
            previous: &previous,
            treatments: &treatments,
        },
        &who.csrf,
    );
    Ok(pages::html(StatusCode::OK, page))
}

/// The unit `who` reads glucose in: a clinician's saved preference, mg/dL
/// for anyone else.
fn preferred_unit(s: &dyn Storage, who: &Principal) -> Result<GlucoseUnit> {
    Ok(match who.scope {
        TokenScope::Clinician(c) => {
            GlucoseUnit::from_query(&s.clinician_unit(c)?).unwrap_or_default()
        }
        TokenScope::Patient(_) | TokenScope::Admin => GlucoseUnit::default(),
    })
}

/// The preference form's fields.
#[derive(Debug, Deserialize)]
pub struct PreferencesForm {
    csrf: String,
    units: GlucoseUnit,
}

/// `POST /dashboard/preferences`: saves the signed-in clinician's glucose
/// unit (CSRF-checked), used by every page that shows glucose when the
/// link does not name one.
pub async fn preferences(
    State(state): State<ServiceState>,
    who: Session,
    form: std::result::Result<Form<PreferencesForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response> {
    let Form(form) = form.map_err(|_| Error::InvalidInput(crate::error::UNREADABLE_FORM.into()))?;
    if !same(&who.csrf, &form.csrf) {
        return Err(Error::Forbidden("missing or wrong CSRF token"));
    }
    let TokenScope::Clinician(clinician) = who.principal.scope else {
        return Err(Error::Forbidden(
            "only clinicians keep dashboard preferences",
        ));
    };
    let principal = who.principal;
    state
        .store
        .run(move |s| {
            s.set_clinician_unit(clinician, form.units.query())?;
            principal.audit(s, None, "dashboard.preferences.write")
        })
        .await?;
    Ok(pages::redirect("/dashboard/"))
}

/// The patient's UTC offset at the end of the period (UTC when no zone is
/// set). One offset for the whole report: across a daylight-saving change
/// inside the period, readings on the other side sit an hour off in the
/// time-of-day charts, as in AGP reports that use one offset per report.
fn local_offset(time_zone: Option<&str>, at: DateTime<Utc>) -> Result<FixedOffset> {
    use chrono::Offset;
    let utc = || FixedOffset::east_opt(0).ok_or(Error::Config("UTC offset".into()));
    match time_zone.map(str::parse::<chrono_tz::Tz>) {
        Some(Ok(tz)) => Ok(at.with_timezone(&tz).offset().fix()),
        // Stored zones are validated on the way in; one the tz database no
        // longer knows falls back to UTC rather than failing the report.
        Some(Err(_)) | None => utc(),
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// `GET /dashboard/static/app.css`.
pub async fn css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

/// `GET /dashboard/static/app.js`.
pub async fn js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

/// `GET /dashboard/alerts/stream`: the live alerts of the signed-in
/// clinician's patients as server-sent events, the same stream as
/// `/v1/alerts/stream` authenticated by the session cookie (EventSource
/// cannot send a bearer header).
pub async fn alerts_stream(State(state): State<ServiceState>, who: Session) -> Result<Response> {
    let credential = crate::reads::routes::Credential::Session(who.hash.clone());
    Ok(
        crate::reads::routes::stream_while(state, who.principal, credential)
            .await?
            .into_response(),
    )
}

/// `POST /dashboard/alerts/{id}/ack`: acknowledges an alert episode for
/// the signed-in clinician; the page's CSRF token travels in
/// `x-csrf-token`.
pub async fn alerts_ack(
    State(state): State<ServiceState>,
    who: Session,
    headers: HeaderMap,
    Path(alert_id): Path<String>,
) -> Result<Response> {
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !same(&who.csrf, presented) {
        return Err(Error::Forbidden("missing or wrong CSRF token"));
    }
    Ok(
        crate::reads::routes::ack(State(state), who.principal, Path(alert_id))
            .await?
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_patients_zone_gives_the_offset_at_the_end_of_the_period() {
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        let secs = |tz, at| local_offset(tz, at).unwrap().local_minus_utc();
        assert_eq!(secs(Some("Europe/Berlin"), winter), 3600);
        assert_eq!(secs(Some("Europe/Berlin"), summer), 7200);
        assert_eq!(secs(Some("America/New_York"), winter), -5 * 3600);
        assert_eq!(secs(None, winter), 0);
        assert_eq!(secs(Some("Not/AZone"), winter), 0);
    }
}
