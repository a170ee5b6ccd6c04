//! The resolver: readings in, one resolved series and its audit trail out.
//!
//! The order of work is fixed so that the result is a function of the set of
//! inputs, not of their order: keep the patient's readings of the quantity
//! (the rest is reported, never dropped silently), sort them in one total
//! order, cut them into moments, then in each moment apply validity, the
//! configured rules, and a last tie-break on the stable device key.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::config::{Coincidence, Direction, PrecedenceConfig, Rule};
use super::{DeviceClass, Quantity, Validity};
use crate::error::{Error, Result};
use crate::reading::{DeviceId, PatientId, Reading, Stream};

/// Which step of the policy decided something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleName {
    /// The moment held one usable reading: nothing to decide.
    Uncontested,
    /// Validity: flagged lost to valid, or a special/impossible value was
    /// refused.
    Validity,
    /// [`Rule::Fresh`].
    Fresh,
    /// [`Rule::DeviceRank`].
    DeviceRank,
    /// [`Rule::NewestSession`].
    NewestSession,
    /// [`Rule::MostRecent`].
    MostRecent,
    /// [`Rule::MostSevere`].
    MostSevere,
    /// The configured rules left several candidates; the one first by
    /// device id, stream, session and sequence won.
    TieBreak,
}

/// One reading as a decision names it: enough to find it in the buffer
/// (device, stream, session, sequence are its unique key there) and to read
/// the decision without it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contender {
    /// Device that measured it.
    pub device: DeviceId,
    /// Its class as the policy saw it.
    pub class: DeviceClass,
    /// Its stream.
    pub stream: Stream,
    /// Its sensor session, if any.
    pub session: Option<i64>,
    /// Its per-device sequence.
    pub sequence: u64,
    /// When it was measured.
    pub sensor_time: DateTime<Utc>,
    /// Its value in the quantity's unit; `None` for a special value (NaN,
    /// infinity), which JSON cannot carry.
    pub value: Option<f64>,
    /// Its validity.
    pub validity: Validity,
}

/// A reading that lost, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loss {
    /// The losing reading.
    pub reading: Contender,
    /// The step that eliminated it.
    pub rule: RuleName,
    /// Human-readable detail (values, classes, ages) for the audit view.
    pub reason: String,
}

/// The audit record of one moment: who won, who lost and why. Every matched
/// input reading appears in exactly one decision, as its winner or a loser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Whose data.
    pub patient: PatientId,
    /// Which quantity.
    pub quantity: Quantity,
    /// The moment's stamp (slot start, or its first reading's time).
    pub time: DateTime<Utc>,
    /// The winning reading; `None` only when every reading of the moment was
    /// invalid, in which case the moment has no resolved value.
    pub winner: Option<Contender>,
    /// The step that left a single candidate (or refused them all).
    pub decided_by: RuleName,
    /// Every other reading of the moment, in elimination order.
    pub losers: Vec<Loss>,
}

/// One point of the resolved series: the winning reading itself, unchanged,
/// provenance included.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The moment's stamp (same as its decision's `time`).
    pub time: DateTime<Utc>,
    /// The winning input reading, as it was given.
    pub reading: Reading,
}

/// Why an input reading took no part in the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedReason {
    /// It belongs to another patient.
    OtherPatient,
    /// Its stream does not measure the policy's quantity.
    OtherQuantity,
}

/// An input reading left out, reported rather than silently dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmatched {
    /// The reading, unchanged.
    pub reading: Reading,
    /// Why it was left out.
    pub reason: UnmatchedReason,
}

/// Everything one resolution produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The resolved series, in time order, one point per moment that had a
    /// usable reading.
    pub series: Vec<Resolved>,
    /// One decision per moment, in time order (including moments whose
    /// readings were all invalid).
    pub decisions: Vec<Decision>,
    /// Inputs of other patients or quantities, in canonical order.
    pub unmatched: Vec<Unmatched>,
}

impl Resolution {
    /// The resolved series as samples, for the alert engine, reduction and
    /// metrics.
    pub fn samples(&self) -> Vec<crate::reading::Sample> {
        self.series
            .iter()
            .map(|p| crate::reading::Sample {
                time: p.reading.sensor_time,
                value: p.reading.value,
            })
            .collect()
    }
}

/// A validated policy plus the device classes it needs; resolves readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Precedence {
    config: PrecedenceConfig,
    classes: BTreeMap<DeviceId, DeviceClass>,
}

impl Precedence {
    /// Validates `config` ([`PrecedenceConfig::validate`]) and builds a
    /// resolver that assumes each device's class from its stream
    /// ([`DeviceClass::default_for`]) until told otherwise.
    pub fn new(config: PrecedenceConfig) -> Result<Precedence> {
        config.validate()?;
        Ok(Precedence {
            config,
            classes: BTreeMap::new(),
        })
    }

    /// Declares `device`'s class (e.g. from the device registry's `kind`),
    /// overriding the stream-based default.
    pub fn with_device_class(mut self, device: DeviceId, class: DeviceClass) -> Precedence {
        self.classes.insert(device, class);
        self
    }

    /// The policy in use.
    pub fn config(&self) -> &PrecedenceConfig {
        &self.config
    }

    /// The class the policy gives `reading`'s device.
    pub fn class_of(&self, reading: &Reading) -> DeviceClass {
        DeviceClass::new(self.class_name(reading))
    }

    /// The name of [`Precedence::class_of`], borrowed.
    fn class_name<'a>(&'a self, reading: &Reading) -> &'a str {
        self.classes.get(&reading.provenance.device).map_or_else(
            || DeviceClass::default_name(reading.stream),
            |c| c.0.as_str(),
        )
    }

    /// Resolves `patient`'s readings of the policy's quantity.
    ///
    /// Guarantees: the result does not depend on the order of `readings`;
    /// every resolved point is an input reading, unchanged; every input
    /// appears exactly once, as a decision's winner or loser or as
    /// unmatched; no invalid reading is ever resolved and no flagged one
    /// wins a moment that holds a valid one. Fails with
    /// [`Error::InvalidInput`] only when a slot's start falls outside the
    /// representable time range.
    pub fn resolve(&self, patient: &PatientId, readings: &[Reading]) -> Result<Resolution> {
        let quantity = self.config.quantity;
        let mut matched: Vec<&Reading> = Vec::with_capacity(readings.len());
        let mut unmatched = Vec::new();
        for r in readings {
            if &r.patient != patient {
                unmatched.push((r, UnmatchedReason::OtherPatient));
            } else if Quantity::of(r.stream) != Some(quantity) {
                unmatched.push((r, UnmatchedReason::OtherQuantity));
            } else {
                matched.push(r);
            }
        }
        matched.sort_by(|a, b| canonical_cmp(a, b));
        unmatched.sort_by(|a, b| canonical_cmp(a.0, b.0));

        let mut series = Vec::new();
        let mut decisions = Vec::new();
        for (time, group) in self.moments(&matched)? {
            let decision = self.decide(patient, time, group);
            if let Some(w) = decision.0 {
                series.push(Resolved {
                    time,
                    reading: w.clone(),
                });
            }
            decisions.push(decision.1);
        }
        Ok(Resolution {
            series,
            decisions,
            unmatched: unmatched
                .into_iter()
                .map(|(r, reason)| Unmatched {
                    reading: r.clone(),
                    reason,
                })
                .collect(),
        })
    }

    /// Cuts time-sorted readings into moments, each with its stamp.
    fn moments<'a>(
        &self,
        sorted: &[&'a Reading],
    ) -> Result<Vec<(DateTime<Utc>, Vec<&'a Reading>)>> {
        let mut out: Vec<(DateTime<Utc>, Vec<&'a Reading>)> = Vec::new();
        match self.config.coincidence {
            Coincidence::Slots { width } => {
                // validate() proved the width fits in microseconds and is > 0.
                let w = width.num_microseconds().unwrap_or(i64::MAX).max(1);
                for r in sorted {
                    // In i128: near chrono's earliest date the slot start can
                    // fall below i64 microseconds.
                    let (t, w) = (i128::from(r.sensor_time.timestamp_micros()), i128::from(w));
                    let start_us = i64::try_from(t.div_euclid(w) * w).ok();
                    let start = start_us
                        .and_then(DateTime::from_timestamp_micros)
                        .ok_or_else(|| {
                            Error::InvalidInput(
                                "precedence: a slot starts outside the representable time range"
                                    .into(),
                            )
                        })?;
                    match out.last_mut() {
                        Some((t, group)) if *t == start => group.push(r),
                        _ => out.push((start, vec![r])),
                    }
                }
            }
            Coincidence::Window { width } => {
                // Moments still open for the reading at hand start at
                // `first_open`; a reading joins the earliest open moment
                // that has no other reading of its source, so one device never
                // fills a moment twice (a one-minute CGM keeps its rate
                // under a five-minute window) and a second source pairs
                // with the reading it coincides with.
                let mut first_open = 0;
                for r in sorted {
                    while out
                        .get(first_open)
                        .is_some_and(|(t, _)| r.sensor_time - *t >= width)
                    {
                        first_open += 1;
                    }
                    let slot = out.iter_mut().skip(first_open).find(|(_, group)| {
                        // The same source at the same instant is a
                        // duplicate: it competes in the moment.
                        !group
                            .iter()
                            .any(|g| same_source(g, r) && g.sensor_time != r.sensor_time)
                    });
                    match slot {
                        Some((_, group)) => group.push(r),
                        None => out.push((r.sensor_time, vec![r])),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Picks the winner of one moment and writes its decision.
    fn decide<'a>(
        &self,
        patient: &PatientId,
        time: DateTime<Utc>,
        group: Vec<&'a Reading>,
    ) -> (Option<&'a Reading>, Decision) {
        let mut losers = Vec::new();
        let mut alive = group;
        let mut decided_by = RuleName::Uncontested;

        let best = alive.iter().map(|r| Validity::of(r)).min();
        if let Some(best) = best {
            let before = alive.len();
            alive = self.narrow(
                alive,
                &mut losers,
                RuleName::Validity,
                |r| match Validity::of(r) {
                    Validity::Invalid => Err("special or impossible value".to_string()),
                    v if v > best => {
                        Err("flagged by the sensor while a valid reading coincides".to_string())
                    }
                    _ => Ok(()),
                },
            );
            if alive.len() < before {
                decided_by = RuleName::Validity;
            }
        }

        if alive.len() > 1 {
            for rule in &self.config.rules {
                alive = self.apply(rule, alive, &mut losers);
                if alive.len() == 1 {
                    decided_by = rule_name(rule);
                    break;
                }
            }
        }
        if alive.len() > 1 {
            alive.sort_by(|a, b| tie_cmp(a, b));
            let mut rest = alive.split_off(1);
            let winner = alive.first().map(|w| describe(w));
            for r in rest.drain(..) {
                losers.push(Loss {
                    reading: self.contender(r),
                    rule: RuleName::TieBreak,
                    reason: format!(
                        "tied with {} after every rule; lower device key wins",
                        winner.as_deref().unwrap_or("the winner")
                    ),
                });
            }
            decided_by = RuleName::TieBreak;
        }

        let winner = alive.first().copied();
        let decision = Decision {
            patient: patient.clone(),
            quantity: self.config.quantity,
            time,
            winner: winner.map(|w| self.contender(w)),
            decided_by,
            losers,
        };
        (winner, decision)
    }

    /// Applies one configured rule to the candidates still in the running.
    fn apply<'a>(
        &self,
        rule: &Rule,
        alive: Vec<&'a Reading>,
        losers: &mut Vec<Loss>,
    ) -> Vec<&'a Reading> {
        let Some(newest) = alive.iter().map(|r| r.sensor_time).max() else {
            return alive;
        };
        let name = rule_name(rule);
        match rule {
            Rule::Fresh { max_age } => self.narrow(alive, losers, name, |r| {
                let age = newest - r.sensor_time;
                if age > *max_age {
                    Err(format!(
                        "measured {} s before the newest coincident reading, over the {} s limit",
                        seconds(age),
                        seconds(*max_age)
                    ))
                } else {
                    Ok(())
                }
            }),
            Rule::DeviceRank { ranking } => {
                let rank = |r: &Reading| {
                    let class = self.class_name(r);
                    ranking
                        .iter()
                        .position(|c| c.0 == class)
                        .unwrap_or(ranking.len())
                };
                let best = alive.iter().map(|r| rank(r)).min().unwrap_or(0);
                let best_name = ranking
                    .get(best)
                    .map_or("an unranked class", |c| c.0.as_str())
                    .to_string();
                self.narrow(alive, losers, name, |r| {
                    if rank(r) > best {
                        Err(format!(
                            "class `{}` ranks below `{best_name}`",
                            self.class_name(r)
                        ))
                    } else {
                        Ok(())
                    }
                })
            }
            Rule::NewestSession => {
                // Per device: its latest sensor session. Devices are not
                // compared with each other (their session numbers are
                // unrelated counters), so a moment whose candidates are all
                // of different devices has nothing to decide here.
                let shared = alive.iter().enumerate().any(|(i, a)| {
                    alive[..i]
                        .iter()
                        .any(|b| b.provenance.device == a.provenance.device)
                });
                if !shared {
                    return alive;
                }
                let mut newest: BTreeMap<&DeviceId, i64> = BTreeMap::new();
                for r in &alive {
                    if let Some(session) = r.provenance.session {
                        let e = newest.entry(&r.provenance.device).or_insert(session);
                        *e = (*e).max(session);
                    }
                }
                let newest: BTreeMap<DeviceId, i64> =
                    newest.into_iter().map(|(d, s)| (d.clone(), s)).collect();
                self.narrow(alive, losers, name, |r| {
                    match (r.provenance.session, newest.get(&r.provenance.device)) {
                        (Some(own), Some(&latest)) if own < latest => Err(format!(
                            "sensor session {own} was replaced by session {latest} of the same device"
                        )),
                        (None, Some(&latest)) => Err(format!(
                            "no sensor session while session {latest} of the same device coincides"
                        )),
                        _ => Ok(()),
                    }
                })
            }
            Rule::MostRecent => self.narrow(alive, losers, name, |r| {
                if r.sensor_time < newest {
                    Err(format!(
                        "measured {} s before the newest coincident reading",
                        seconds(newest - r.sensor_time)
                    ))
                } else {
                    Ok(())
                }
            }),
            Rule::MostSevere {
                direction,
                engage_beyond,
            } => {
                let worse = |a: f64, b: f64| match direction {
                    Direction::Low => a < b,
                    Direction::High => a > b,
                };
                let engaged = match engage_beyond {
                    None => true,
                    Some(t) => alive.iter().any(|r| worse(r.value, *t)),
                };
                let extreme = alive
                    .iter()
                    .map(|r| r.value)
                    .reduce(|a, b| if worse(b, a) { b } else { a });
                match (engaged, extreme) {
                    (true, Some(x)) => self.narrow(alive, losers, name, |r| {
                        if worse(x, r.value) {
                            Err(format!("value {} is less severe than {x}", r.value))
                        } else {
                            Ok(())
                        }
                    }),
                    _ => alive,
                }
            }
        }
    }

    /// Keeps the candidates `verdict` accepts; records the others as losses
    /// of `rule` with the verdict's reason. Candidates keep their order.
    fn narrow<'a>(
        &self,
        alive: Vec<&'a Reading>,
        losers: &mut Vec<Loss>,
        rule: RuleName,
        verdict: impl Fn(&Reading) -> std::result::Result<(), String>,
    ) -> Vec<&'a Reading> {
        let mut kept = Vec::with_capacity(alive.len());
        for r in alive {
            match verdict(r) {
                Ok(()) => kept.push(r),
                Err(reason) => losers.push(Loss {
                    reading: self.contender(r),
                    rule,
                    reason,
                }),
            }
        }
        kept
    }

    fn contender(&self, r: &Reading) -> Contender {
        Contender {
            device: r.provenance.device.clone(),
            class: self.class_of(r),
            stream: r.stream,
            session: r.provenance.session,
            sequence: r.sequence,
            sensor_time: r.sensor_time,
            value: r.value.is_finite().then_some(r.value),
            validity: Validity::of(r),
        }
    }
}

fn rule_name(rule: &Rule) -> RuleName {
    match rule {
        Rule::Fresh { .. } => RuleName::Fresh,
        Rule::DeviceRank { .. } => RuleName::DeviceRank,
        Rule::NewestSession => RuleName::NewestSession,
        Rule::MostRecent => RuleName::MostRecent,
        Rule::MostSevere { .. } => RuleName::MostSevere,
    }
}

/// Whether two readings come from one source: one device's stream in one
/// sensor session.
fn same_source(a: &Reading, b: &Reading) -> bool {
    a.provenance.device == b.provenance.device
        && a.stream == b.stream
        && a.provenance.session == b.provenance.session
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn describe(r: &Reading) -> String {
    format!(
        "device `{}` {} #{}",
        r.provenance.device.0,
        r.stream.as_str(),
        r.sequence
    )
}

/// The stable device key: device, stream, session, sequence, then every
/// other field, so no two distinct readings tie.
fn tie_cmp(a: &Reading, b: &Reading) -> Ordering {
    a.provenance
        .device
        .cmp(&b.provenance.device)
        .then(a.stream.cmp(&b.stream))
        .then(a.provenance.session.cmp(&b.provenance.session))
        .then(a.sequence.cmp(&b.sequence))
        .then_with(|| canonical_cmp(a, b))
}

/// One total order over readings: time first, then the stable device key,
/// then every remaining field (floats by `total_cmp`), so sorting any
/// permutation of the inputs yields the same sequence.
fn canonical_cmp(a: &Reading, b: &Reading) -> Ordering {
    let opt = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (x, y) => x.is_some().cmp(&y.is_some()),
    };
    a.sensor_time
        .cmp(&b.sensor_time)
        .then_with(|| a.provenance.device.cmp(&b.provenance.device))
        .then(a.stream.cmp(&b.stream))
        .then(a.provenance.session.cmp(&b.provenance.session))
        .then(a.sequence.cmp(&b.sequence))
        .then(a.receive_time.cmp(&b.receive_time))
        .then(a.value.total_cmp(&b.value))
        .then(a.quality.flagged.cmp(&b.quality.flagged))
        .then_with(|| opt(a.quality.percent, b.quality.percent))
        .then(
            a.provenance
                .characteristic
                .cmp(&b.provenance.characteristic),
        )
        .then_with(|| a.provenance.raw.cmp(&b.provenance.raw))
        .then_with(|| a.patient.cmp(&b.patient))
}
