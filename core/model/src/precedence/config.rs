//! Precedence policy: how readings are grouped into coincident moments and
//! the ordered rules that pick one reading per moment.
//!
//! A policy is data (it derives serde) so the cloud and the phone can share
//! one JSON document; [`PrecedenceConfig::validate`] refuses a policy that
//! cannot mean anything before any reading is resolved with it.
//!
//! The defaults are product choices, not clinical standards: they say which
//! source we trust more and how close in time two readings must be to be the
//! same moment, and every one of them is a setting for that reason.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::{DeviceClass, Quantity};
use crate::error::{Error, Result};

/// Which readings count as the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Coincidence {
    /// Fixed slots of `width` aligned to the Unix epoch: one resolved value
    /// per slot that holds any reading, stamped with the slot's start.
    Slots {
        /// Slot width (> 0).
        width: TimeDelta,
    },
    /// Per reading time: walking forward in time, the earliest unassigned
    /// reading opens a moment that takes every reading measured less than
    /// `width` after it; the moment is stamped with that first reading's time.
    Window {
        /// Coincidence window (> 0).
        width: TimeDelta,
    },
}

/// Which end of the scale is dangerous, for [`Rule::MostSevere`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The lowest value is the most severe (hypoglycaemia, bradycardia,
    /// desaturation).
    Low,
    /// The highest value is the most severe (hyperglycaemia, tachycardia).
    High,
}

/// One precedence rule. Rules run in order; each keeps only the candidates
/// it rates best and records the others as losers, until one is left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// Staleness limit: drops candidates measured more than `max_age` before
    /// the newest candidate of the moment, so a trusted device that has gone
    /// quiet cannot outrank a fresh reading through a later rule.
    Fresh {
        /// Oldest a candidate may be relative to the newest (≥ 0).
        max_age: TimeDelta,
    },
    /// Device class and trust: keeps the candidates whose class comes first
    /// in `ranking` (earlier is more trusted); classes not listed rank
    /// together after every listed one.
    DeviceRank {
        /// Classes, most trusted first; non-empty, no repeats.
        ranking: Vec<DeviceClass>,
    },
    /// Newest sensor session: of one device's candidates, keeps those of its
    /// latest sensor session, so a new sensor's readings stand over the old
    /// sensor's late backfill of the same minutes. Candidates of different
    /// devices are not compared (their session numbers are unrelated).
    NewestSession,
    /// Most recent: keeps the candidates with the latest sensor time.
    MostRecent,
    /// Most severe, for alert evaluation: keeps the candidates with the most
    /// dangerous value. With `engage_beyond` set, the rule acts only when
    /// some candidate is beyond it (below it for [`Direction::Low`], above
    /// for [`Direction::High`]) and otherwise leaves the choice to the next
    /// rule.
    ///
    /// Why it is safe for the alarm it is aimed at: with [`Direction::Low`],
    /// whenever it acts the resolved value is the lowest coincident candidate,
    /// so if any valid coincident reading meets a low threshold the resolved
    /// one meets it too. It can start a low alert that another source alone
    /// would not have, or keep one going longer, but never hide one. It is
    /// one-sided on purpose: choosing the lowest could hide a *high* reading
    /// of the same moment, which is why `engage_beyond` keeps it to values
    /// near the danger it guards. (The phone's alert engine does not use it:
    /// it follows one source at a time, see `vigil_core::precedence::live`, so that two
    /// sensors' offset never reads as a slope or flaps an episode.)
    MostSevere {
        /// Which end of the scale is dangerous.
        direction: Direction,
        /// Act only when some candidate is beyond this value (finite, in the
        /// quantity's unit); `None` acts always.
        engage_beyond: Option<f64>,
    },
}

/// A complete precedence policy for one quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecedenceConfig {
    /// The quantity resolved; readings of other streams are reported as
    /// unmatched.
    pub quantity: Quantity,
    /// How readings are grouped into moments.
    pub coincidence: Coincidence,
    /// The rules, in the order they are applied (at least one).
    pub rules: Vec<Rule>,
}

impl PrecedenceConfig {
    /// The display policy of `quantity`.
    ///
    /// A moment holds at most one reading per source (device, stream,
    /// sensor session), so a window wider than a device's interval never
    /// thins that device's own series.
    ///
    /// - Heart rate: moments of 1 s, the usual notification interval of
    ///   straps and oximeters; a chest strap (electrical, ECG) outranks an
    ///   oximeter (optical, PPG, more easily fooled by motion); then the most
    ///   recent.
    /// - Glucose: moments of 5 min (a CGM's usual sampling interval, wide
    ///   enough to pair an uploader's copy of the same sensor value sent with
    ///   a clock up to a few minutes off). The trend comes from the CGM the
    ///   phone reads directly, then a Nightscout uploader's copy, then a CSV
    ///   import; a fingerstick meter reading stands only where no CGM value
    ///   coincides (a meter-only patient's series), and otherwise stays a
    ///   confirmation point beside the trend (it is capillary blood, without
    ///   the interstitial lag, so splicing it into the CGM trace would make a
    ///   step no sensor saw). Within one CGM a new sensor session beats the old
    ///   session's late backfill; then the most recent.
    /// - SpO2: moments of 1 s (as heart rate), the most recent reading.
    pub fn default_for(quantity: Quantity) -> PrecedenceConfig {
        let rank = |names: &[&str]| Rule::DeviceRank {
            ranking: names.iter().map(|n| DeviceClass::new(*n)).collect(),
        };
        match quantity {
            Quantity::HeartRate => PrecedenceConfig {
                quantity,
                coincidence: Coincidence::Window {
                    width: TimeDelta::seconds(1),
                },
                rules: vec![rank(&["heart_rate_strap", "oximeter"]), Rule::MostRecent],
            },
            Quantity::Glucose => PrecedenceConfig {
                quantity,
                coincidence: Coincidence::Window {
                    width: TimeDelta::minutes(5),
                },
                rules: vec![
                    rank(&[
                        DeviceClass::CGM,
                        DeviceClass::NIGHTSCOUT,
                        DeviceClass::IMPORT,
                        DeviceClass::METER,
                    ]),
                    Rule::NewestSession,
                    Rule::MostRecent,
                ],
            },
            Quantity::Spo2 => PrecedenceConfig {
                quantity,
                coincidence: Coincidence::Window {
                    width: TimeDelta::seconds(1),
                },
                rules: vec![Rule::MostRecent],
            },
        }
    }

    /// The glucose policy for alert evaluation: the lowest coincident value
    /// wins whenever any is below `low_episode_end_mg_dl` (the alert
    /// settings' low threshold plus their hysteresis: the level at which a
    /// low episode has not yet ended), so no low or urgent-low alert any
    /// source supports is lost and no low episode ends early; otherwise the
    /// display order applies.
    pub fn glucose_alerting(low_episode_end_mg_dl: f64) -> PrecedenceConfig {
        let mut config = PrecedenceConfig::default_for(Quantity::Glucose);
        config.rules.insert(
            0,
            Rule::MostSevere {
                direction: Direction::Low,
                engage_beyond: Some(low_episode_end_mg_dl),
            },
        );
        config
    }

    /// Checks that the policy means something: a positive coincidence width
    /// that fits in microseconds, at least one rule, non-negative staleness
    /// limits, non-empty rankings without repeats or blank names, finite
    /// severity thresholds. Fails with [`Error::InvalidSetting`].
    pub fn validate(&self) -> Result<()> {
        let width = match self.coincidence {
            Coincidence::Slots { width } | Coincidence::Window { width } => width,
        };
        if width <= TimeDelta::zero() || width.num_microseconds().is_none() {
            return Err(invalid(
                "coincidence.width",
                "must be positive and at most about 292,000 years",
            ));
        }
        if self.rules.is_empty() {
            return Err(invalid(
                "rules",
                "at least one rule is needed: a winner chosen by device id alone is arbitrary",
            ));
        }
        for rule in &self.rules {
            match rule {
                Rule::Fresh { max_age } => {
                    if *max_age < TimeDelta::zero() {
                        return Err(invalid("rules.fresh.max_age", "must not be negative"));
                    }
                }
                Rule::DeviceRank { ranking } => {
                    if ranking.is_empty() {
                        return Err(invalid("rules.device_rank.ranking", "must not be empty"));
                    }
                    for (i, class) in ranking.iter().enumerate() {
                        if class.0.trim().is_empty() {
                            return Err(invalid(
                                "rules.device_rank.ranking",
                                "class names must not be blank",
                            ));
                        }
                        if ranking.iter().take(i).any(|c| c == class) {
                            return Err(invalid(
                                "rules.device_rank.ranking",
                                format!("class `{}` is listed twice", class.0),
                            ));
                        }
                    }
                }
                Rule::MostRecent | Rule::NewestSession => {}
                Rule::MostSevere { engage_beyond, .. } => {
                    if engage_beyond.is_some_and(|v| !v.is_finite()) {
                        return Err(invalid("rules.most_severe.engage_beyond", "must be finite"));
                    }
                }
            }
        }
        Ok(())
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        setting,
        reason: reason.into(),
    }
}
