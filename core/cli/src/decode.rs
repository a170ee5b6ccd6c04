//! `vigil decode <characteristic> <hex>`: one characteristic value, decoded
//! by the core's codecs, as a JSON array of records.
//!
//! The headline fields use stable names (`glucose_mg_dl`, `bpm`, ...) so
//! scripts can rely on them; every other field of the decoded value follows
//! as the codec's own structure. A special SFLOAT value is never a number:
//! the field is `null` and a sibling `<field>_special` names the marker.

use serde_json::{Map, Value, json};
use vigil_core::codec::{self, DecodeOptions, Decoded, SFloat, racp::RacpService};

use crate::Failure;

/// Arguments of `vigil decode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// 16-bit characteristic UUID in hex: 2AA7, 2AA8, 2AA9, 2AAA, 2AAB,
    /// 2AAC, 2A52, 2A18, 2A34, 2A37, 2A5F or 2A19.
    characteristic: String,
    /// The value's bytes in hex; spaces, colons and a 0x prefix are allowed.
    #[arg(required = true, num_args = 1..)]
    hex: Vec<String>,
    /// The sensor uses the E2E-CRC (CGM Feature bit 12): check it.
    #[arg(long)]
    crc: bool,
    /// Whose Record Access Control Point this is (filter type 0x01 is a time
    /// offset for a CGM and a sequence number for a glucose meter).
    #[arg(long, value_enum, default_value = "cgm")]
    service: Service,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Service {
    Cgm,
    Glucose,
}

/// Runs `vigil decode`.
pub fn run(args: Args) -> Result<(), Failure> {
    let uuid = parse_uuid(&args.characteristic)?;
    let bytes = parse_hex(&args.hex.join(" "))?;
    let opts = DecodeOptions {
        e2e_crc: args.crc,
        racp_service: match args.service {
            Service::Cgm => RacpService::Cgm,
            Service::Glucose => RacpService::Glucose,
        },
    };
    let decoded = codec::decode(uuid, &bytes, &opts).map_err(|e| Failure::Input(e.to_string()))?;
    let records = records(&decoded, args.crc)?;
    let text = serde_json::to_string_pretty(&records)
        .map_err(|e| Failure::Other(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

fn parse_uuid(text: &str) -> Result<u16, Failure> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u16::from_str_radix(t, 16)
        .map_err(|_| Failure::Input(format!("characteristic `{text}` is not a 16-bit hex UUID")))
}

/// Parses hex with optional separators; an odd digit count or a non-hex
/// character names its position.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, Failure> {
    let cleaned = text.replace("0x", "").replace("0X", "");
    let digits: Vec<(usize, char)> = cleaned
        .char_indices()
        .filter(|(_, c)| !(c.is_whitespace() || *c == ':' || *c == '-' || *c == ','))
        .collect();
    if let Some((pos, c)) = digits.iter().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(Failure::Input(format!(
            "hex: `{c}` at character {pos} is not a hex digit"
        )));
    }
    if digits.len() % 2 != 0 {
        return Err(Failure::Input(format!(
            "hex: odd number of digits ({}); each byte needs two",
            digits.len()
        )));
    }
    Ok(digits
        .chunks(2)
        .filter_map(|pair| match pair {
            [(_, hi), (_, lo)] => Some(
                // Both are ASCII hex digits (checked above), so the
                // conversions cannot fail; filter_map keeps it panic-free.
                (hi.to_digit(16)? * 16 + lo.to_digit(16)?) as u8,
            ),
            _ => None,
        })
        .collect())
}

/// The codec's own structure of a value, as a JSON object.
fn object(value: &impl serde::Serialize) -> Result<Map<String, Value>, Failure> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => {
            let mut map = Map::new();
            map.insert("value".into(), other);
            Ok(map)
        }
        Err(e) => Err(Failure::Other(format!("cannot encode JSON: {e}"))),
    }
}

/// Sets `name` to the number, or to `null` with `<name>_special`.
fn put_sfloat(map: &mut Map<String, Value>, name: &str, value: SFloat) {
    match value.value() {
        Ok(v) => {
            map.insert(name.into(), json!(v));
        }
        Err(special) => {
            map.insert(name.into(), Value::Null);
            map.insert(format!("{name}_special"), json!(special.label()));
        }
    }
}

/// Sets `name` to a derived number, or `null` with `<name>_special` taken
/// from the raw SFLOAT when the number is absent because of a marker.
fn put_derived(map: &mut Map<String, Value>, name: &str, value: Option<f64>, raw: SFloat) {
    match (value, raw.special()) {
        (Some(v), _) => {
            map.insert(name.into(), json!(v));
        }
        (None, Some(special)) => {
            map.insert(name.into(), Value::Null);
            map.insert(format!("{name}_special"), json!(special.label()));
        }
        (None, None) => {
            map.insert(name.into(), Value::Null);
        }
    }
}

fn control_point(
    direction: &str,
    value: &impl serde::Serialize,
) -> Result<Map<String, Value>, Failure> {
    let value = serde_json::to_value(value)
        .map_err(|e| Failure::Other(format!("cannot encode JSON: {e}")))?;
    Ok(Map::from_iter([
        ("direction".to_string(), json!(direction)),
        ("operation".to_string(), value),
    ]))
}

fn records(decoded: &Decoded, crc: bool) -> Result<Vec<Value>, Failure> {
    let one = |map: Map<String, Value>| Ok(vec![Value::Object(map)]);
    match decoded {
        Decoded::CgmMeasurement(list) => list
            .iter()
            .map(|m| {
                let mut map = object(m)?;
                for raw in ["glucose", "trend", "quality", "crc"] {
                    map.remove(raw);
                }
                put_sfloat(&mut map, "glucose_mg_dl", m.glucose);
                if let Some(trend) = m.trend {
                    put_sfloat(&mut map, "trend_mg_dl_per_min", trend);
                }
                if let Some(quality) = m.quality {
                    put_sfloat(&mut map, "quality_pct", quality);
                }
                // A record whose CRC fails never decodes, so a CRC that is
                // present here has been checked and is good.
                if crc {
                    map.insert("crc_ok".into(), json!(m.crc.is_some()));
                }
                Ok(Value::Object(map))
            })
            .collect(),
        Decoded::GlucoseMeasurement(g) => {
            let mut map = object(g)?;
            map.insert("sequence".into(), json!(g.sequence_number));
            if let Some(sample) = g.sample {
                put_derived(
                    &mut map,
                    "glucose_mg_dl",
                    g.concentration_mg_dl(),
                    sample.concentration,
                );
            }
            if let Some(t) = g.absolute_time() {
                map.insert("time_local".into(), json!(t.to_string()));
            }
            one(map)
        }
        Decoded::GlucoseMeasurementContext(c) => {
            let mut map = object(c)?;
            map.insert("sequence".into(), json!(c.sequence_number));
            one(map)
        }
        Decoded::HeartRateMeasurement(h) => {
            let mut map = object(h)?;
            map.remove("rr_intervals");
            map.insert("rr_intervals_s".into(), json!(h.rr_intervals_s()));
            map.insert("sensor_contact".into(), json!(h.sensor_contact.contact()));
            one(map)
        }
        Decoded::PlxContinuousMeasurement(p) => {
            let mut map = object(p)?;
            put_sfloat(&mut map, "spo2_pct", p.normal.spo2);
            put_sfloat(&mut map, "pulse_rate_bpm", p.normal.pulse_rate);
            if let Some(pai) = p.pulse_amplitude_index {
                put_sfloat(&mut map, "pulse_amplitude_index_pct", pai);
            }
            one(map)
        }
        Decoded::BatteryLevel(b) => one(Map::from_iter([(
            "battery_pct".to_string(),
            json!(b.percent),
        )])),
        Decoded::CgmSessionStartTime(s) => {
            let mut map = object(s)?;
            if let Some(t) = s.to_utc() {
                map.insert("start_utc".into(), json!(t.to_rfc3339()));
            }
            one(map)
        }
        Decoded::CgmFeature(f) => {
            let mut map = object(f)?;
            map.insert("e2e_crc_supported".into(), json!(f.features.e2e_crc()));
            one(map)
        }
        Decoded::CgmStatus(s) => one(object(s)?),
        Decoded::CgmSessionRunTime(s) => one(object(s)?),
        // Control points: say which direction the op code showed.
        Decoded::SocpRequest(r) => one(control_point("request", r)?),
        Decoded::SocpResponse(r) => one(control_point("response", r)?),
        Decoded::RacpRequest(r) => one(control_point("request", r)?),
        Decoded::RacpResponse(r) => one(control_point("response", r)?),
    }
}
