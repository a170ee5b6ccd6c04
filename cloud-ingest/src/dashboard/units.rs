//! Glucose in the clinic's unit. US clinics read mg/dL; most of the world
//! reads mmol/L. Everything is stored and computed in mg/dL (the wire's
//! unit); only the page converts, once, at the last step.

use serde::Deserialize;

/// Milligrams per decilitre in one millimole per litre of glucose (its
/// molar mass, 180.156 g/mol, over ten).
pub const MG_DL_PER_MMOL_L: f64 = 18.0156;

/// The unit a report shows glucose in (`?units=mgdl` or `?units=mmol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum GlucoseUnit {
    /// mg/dL, whole numbers.
    #[default]
    #[serde(rename = "mgdl")]
    MgDl,
    /// mmol/L, one decimal.
    #[serde(rename = "mmol")]
    MmolL,
}

impl GlucoseUnit {
    /// Both units, in the order the page offers them.
    pub const ALL: [GlucoseUnit; 2] = [GlucoseUnit::MgDl, GlucoseUnit::MmolL];

    /// How the page writes the unit.
    pub fn label(self) -> &'static str {
        match self {
            GlucoseUnit::MgDl => "mg/dL",
            GlucoseUnit::MmolL => "mmol/L",
        }
    }

    /// The query value that selects it (also how a clinician's preference
    /// is stored).
    pub fn query(self) -> &'static str {
        match self {
            GlucoseUnit::MgDl => "mgdl",
            GlucoseUnit::MmolL => "mmol",
        }
    }

    /// The unit a query value (or a stored preference) names.
    pub fn from_query(value: &str) -> Option<GlucoseUnit> {
        GlucoseUnit::ALL.into_iter().find(|u| u.query() == value)
    }

    /// A glucose value in this unit, without the unit: whole mg/dL or
    /// mmol/L to one decimal. The consensus thresholds come out as the
    /// consensus writes them (54, 70, 140, 180, 250 mg/dL are 3.0, 3.9,
    /// 7.8, 10.0, 13.9 mmol/L).
    pub fn value(self, mg_dl: f64) -> String {
        match self {
            GlucoseUnit::MgDl => format!("{mg_dl:.0}"),
            GlucoseUnit::MmolL => format!("{:.1}", mg_dl / MG_DL_PER_MMOL_L),
        }
    }

    /// The `<option>`s of a unit `<select>` (`name="units"`), `selected`
    /// chosen: one list for the report's chooser and the preference form.
    pub fn options(selected: GlucoseUnit) -> String {
        GlucoseUnit::ALL
            .iter()
            .map(|&u| {
                let mark = if u == selected { " selected" } else { "" };
                format!(
                    r#"<option value="{}"{mark}>{}</option>"#,
                    u.query(),
                    u.label()
                )
            })
            .collect()
    }

    /// A value with its unit, e.g. `"7.2 mmol/L"`.
    pub fn with_unit(self, mg_dl: f64) -> String {
        format!("{} {}", self.value(mg_dl), self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consensus_thresholds_read_as_published_in_both_units() {
        let mmol: Vec<String> = [54.0, 70.0, 140.0, 180.0, 250.0]
            .into_iter()
            .map(|v| GlucoseUnit::MmolL.value(v))
            .collect();
        assert_eq!(mmol, ["3.0", "3.9", "7.8", "10.0", "13.9"]);
        assert_eq!(GlucoseUnit::MgDl.value(70.0), "70");
        assert_eq!(GlucoseUnit::MgDl.with_unit(154.4), "154 mg/dL");
        assert_eq!(GlucoseUnit::MmolL.with_unit(154.4), "8.6 mmol/L");
    }
}
