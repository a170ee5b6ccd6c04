//! The consensus glucose bands whose boundaries reduction must not blur.

/// One of the five glucose ranges of the international consensus on time
/// in ranges (Battelino et al., Diabetes Care 2019).
///
/// Boundaries for any real value, so integer readings fall where the
/// consensus names them and fractional ones where a clinician would expect:
/// `v < 54` very low; `54 <= v < 70` low (54-69); `70 <= v <= 180` in range
/// (70-180); `180 < v <= 250` high (181-250); `v > 250` very high. So 69.9
/// is low, 180.0 in range, 180.4 high, 250.0 high, 250.1 very high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GlucoseBand {
    /// Below 54 mg/dL (level 2 hypoglycaemia).
    VeryLow,
    /// 54 to below 70 mg/dL (level 1 hypoglycaemia).
    Low,
    /// 70 to 180 mg/dL inclusive (target range).
    InRange,
    /// Above 180 up to 250 mg/dL inclusive (level 1 hyperglycaemia).
    High,
    /// Above 250 mg/dL (level 2 hyperglycaemia).
    VeryHigh,
}

impl GlucoseBand {
    /// The band of a value in mg/dL. NaN has no band and lands in `VeryHigh`
    /// only because every comparison fails; reducers reject NaN first.
    pub fn of(mg_dl: f64) -> GlucoseBand {
        if mg_dl < 54.0 {
            GlucoseBand::VeryLow
        } else if mg_dl < 70.0 {
            GlucoseBand::Low
        } else if mg_dl <= 180.0 {
            GlucoseBand::InRange
        } else if mg_dl <= 250.0 {
            GlucoseBand::High
        } else {
            GlucoseBand::VeryHigh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GlucoseBand::*;
    use super::*;

    #[test]
    fn boundary_values_fall_where_the_consensus_names_them() {
        let cases = [
            (53.0, VeryLow),
            (53.99, VeryLow),
            (54.0, Low),
            (69.0, Low),
            (69.9, Low),
            (70.0, InRange),
            (180.0, InRange),
            (180.4, High),
            (181.0, High),
            (250.0, High),
            (250.1, VeryHigh),
            (251.0, VeryHigh),
        ];
        for (v, band) in cases {
            assert_eq!(GlucoseBand::of(v), band, "{v}");
        }
    }
}
