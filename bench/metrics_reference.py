#!/usr/bin/env python3
"""Reference CGM metrics, written from the published formulas alone.

This script shares no code with `core/model/src/metrics`: it is the oracle that
`core/cli/tests/metrics_reference.rs` holds the SDK's metrics against. It
reads a glucose trace CSV (a `time` column in RFC 3339 UTC and a
`glucose_mgdl` column) and prints one JSON object with the same keys as
`vigil metrics`, unrounded.

Arithmetic is exact wherever the definition allows it: every glucose value
is read as an exact fraction, times are whole milliseconds, and every
percentage, the mean and the variance are rational numbers; only the
square root of the variance and the final conversion to float round.

Definitions (with the conventions documented in `docs/architecture.md`):
  bands      very low g < 54; low 54 <= g < 70; target 70 <= g <= 180;
             high 180 < g <= 250; very high g > 250 (mg/dL); tight range
             70 <= g <= 140. Each "time in" figure is percent of readings.
  SD         sample standard deviation, sum((g - mean)^2) / (n - 1); 0 for
             a single reading. CV = SD / mean * 100.
  GMI        3.31 + 0.02392 * mean (Bergenstal 2018).
  GRI        3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High, capped at 100
             (Klonoff 2022); hypo = VLow + 0.8 Low; hyper = VHigh + 0.5 High;
             zone A <= 20 < B <= 40 < C <= 60 < D <= 80 < E.
  period     first reading to last reading plus one sampling interval.
  wear       share of the period's sampling slots (one per interval from the
             first reading, the last reading's slot included) that hold a
             reading; a reading belongs to its nearest slot (halves round up).
  days with data   24-hour days from the first reading holding a reading.
  sufficiency      period >= 14 days; wear >= 70 %.
"""

import csv
import json
import sys
from datetime import datetime, timezone
from decimal import Decimal, getcontext
from fractions import Fraction

DAY_MS = 86_400_000


def parse_time_ms(text):
    """Whole milliseconds since the epoch of an RFC 3339 UTC time."""
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    delta = t - epoch
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def sqrt_fraction(x):
    """Square root of a non-negative fraction, to 50 significant digits."""
    getcontext().prec = 50
    return (Decimal(x.numerator) / Decimal(x.denominator)).sqrt()


def zone(gri):
    for letter, upper in (("A", 20), ("B", 40), ("C", 60), ("D", 80)):
        if gri <= upper:
            return letter
    return "E"


def nearest(offset_ms, interval_ms):
    """offset / interval rounded to the nearest whole number, halves up."""
    return (2 * offset_ms + interval_ms) // (2 * interval_ms)


def metrics(times_ms, values, interval_ms):
    n = len(values)
    if n == 0:
        raise ValueError("no readings")
    mean = sum(values, Fraction(0)) / n
    if n > 1:
        variance = sum(((g - mean) ** 2 for g in values), Fraction(0)) / (n - 1)
        sd = sqrt_fraction(variance)
    else:
        sd = Decimal(0)
    mean_dec = Decimal(mean.numerator) / Decimal(mean.denominator)

    def share(pred):
        return Fraction(100 * sum(1 for g in values if pred(g)), n)

    vlow = share(lambda g: g < 54)
    low = share(lambda g: 54 <= g < 70)
    target = share(lambda g: 70 <= g <= 180)
    tight = share(lambda g: 70 <= g <= 140)
    high = share(lambda g: 180 < g <= 250)
    vhigh = share(lambda g: g > 250)
    hypo = vlow + Fraction(8, 10) * low
    hyper = vhigh + Fraction(5, 10) * high
    gri = min(
        Fraction(30, 10) * vlow
        + Fraction(24, 10) * low
        + Fraction(16, 10) * vhigh
        + Fraction(8, 10) * high,
        Fraction(100),
    )

    first, last = min(times_ms), max(times_ms)
    period_ms = last - first + interval_ms
    slots = nearest(last - first, interval_ms) + 1
    occupied = {nearest(t - first, interval_ms) for t in times_ms}
    wear = min(Fraction(100 * len(occupied), slots), Fraction(100))
    days_with_data = len({(t - first) // DAY_MS for t in times_ms})

    return {
        "mean_mg_dl": float(mean),
        "sd_mg_dl": float(sd),
        "cv_pct": float(sd / mean_dec * 100),
        "gmi_pct": float(Fraction("3.31") + Fraction("0.02392") * mean),
        "tbr_lt54_pct": float(vlow),
        "tbr_lt70_pct": float(vlow + low),
        "tir_70_180_pct": float(target),
        "tar_gt180_pct": float(high + vhigh),
        "tar_gt250_pct": float(vhigh),
        "titr_70_140_pct": float(tight),
        "gri": float(gri),
        "gri_hypo": float(hypo),
        "gri_hyper": float(hyper),
        "gri_zone": zone(gri),
        "active_pct": float(wear),
        "days": float(Fraction(period_ms, DAY_MS)),
        "days_with_data": days_with_data,
        "enough_days": period_ms >= 14 * DAY_MS,
        "enough_wear": wear >= 70,
        "readings": n,
    }


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: metrics_reference.py TRACE.csv [INTERVAL_MS]")
    interval_ms = int(sys.argv[2]) if len(sys.argv) == 3 else 300_000
    times, values = [], []
    with open(sys.argv[1], newline="") as f:
        for row in csv.DictReader(f):
            times.append(parse_time_ms(row["time"]))
            values.append(Fraction(row["glucose_mgdl"].strip()))
    print(json.dumps(metrics(times, values, interval_ms)))


if __name__ == "__main__":
    main()
