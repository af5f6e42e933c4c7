//! Axes: the map from data values to a fraction of the plot area, and labelled ticks.

/// How an axis maps its values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scale {
    /// Equal distances for equal differences.
    #[default]
    Linear,
    /// Equal distances for equal ratios; values ≤ 0 cannot be drawn.
    Log,
}

impl Scale {
    /// Whether `v` can be placed on an axis of this scale.
    pub fn accepts(self, v: f64) -> bool {
        v.is_finite() && (self == Scale::Linear || v > 0.0)
    }

    fn to_axis(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => v.log10(),
        }
    }
}

/// An axis: its scale, its range (in axis units: `log10` of the value on a log axis) and its
/// labelled ticks.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub scale: Scale,
    lo: f64,
    hi: f64,
    /// Tick positions (data values) and their labels.
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// The position of `v` along the axis, 0 at the low end and 1 at the high end.
    pub fn frac(&self, v: f64) -> f64 {
        (self.scale.to_axis(v) - self.lo) / (self.hi - self.lo)
    }

    /// An axis over the data values `lo..=hi`, 3 % wider at both ends so that no marker sits on
    /// the frame, with "nice" ticks: 1, 2 or 5 times a power of ten inside the range on a
    /// linear axis; decades (with 2 and 5 in short ranges) widened to whole ticks on a log
    /// axis.
    pub fn nice(scale: Scale, lo: f64, hi: f64) -> Axis {
        let (lo, hi) = widen(scale.to_axis(lo), scale.to_axis(hi));
        let (lo, hi) = (lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo));
        match scale {
            Scale::Linear => Axis::exact(lo, hi),
            Scale::Log => {
                let mantissas: &[f64] = if hi - lo <= 2.1 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                let all: Vec<(f64, String)> = (lo.floor() as i32 - 1..=hi.ceil() as i32 + 1)
                    .flat_map(|e| mantissas.iter().map(move |&m| (m * 10f64.powi(e), m, e)))
                    .map(|(v, m, e)| (v, format_decade(m, e)))
                    .collect();
                let first = all
                    .iter()
                    .rposition(|t| t.0.log10() <= lo + 1e-9)
                    .unwrap_or(0);
                let last = all
                    .iter()
                    .position(|t| t.0.log10() >= hi - 1e-9)
                    .unwrap_or(all.len() - 1);
                let ticks = all[first..=last].to_vec();
                Axis {
                    scale,
                    lo: ticks[0].0.log10(),
                    hi: ticks[ticks.len() - 1].0.log10(),
                    ticks,
                }
            }
        }
    }

    /// An axis over exactly `lo..=hi` (a linear scale) with nice ticks inside it: two axes of
    /// the same span then share one scale, as a scatter plot needs.
    pub fn exact(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = widen(lo, hi);
        let step = nice_step((hi - lo) / 6.0);
        let a = (lo / step).ceil() * step;
        let b = (hi / step).floor() * step;
        Axis {
            scale: Scale::Linear,
            lo,
            hi,
            ticks: linear_ticks(a, b, step),
        }
    }

    /// An axis with a tick at each of the (few, distinct, sorted) `values`, padded by 4 % of
    /// the range at both ends so that markers at the ends stay off the frame.
    pub fn at_values(scale: Scale, values: &[f64]) -> Axis {
        let t: Vec<f64> = values.iter().map(|&v| scale.to_axis(v)).collect();
        let (lo, hi) = widen(t[0], t[t.len() - 1]);
        let pad = 0.04 * (hi - lo);
        Axis {
            scale,
            lo: lo - pad,
            hi: hi + pad,
            ticks: values.iter().map(|&v| (v, format_value(v))).collect(),
        }
    }
}

/// A range of positive width around `lo..=hi`.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        let d = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        (lo - d, hi + d)
    }
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// Ticks from `a` to `b` in steps of `step`, labelled with the decimals the step needs.
fn linear_ticks(a: f64, b: f64, step: f64) -> Vec<(f64, String)> {
    let n = ((b - a) / step).round().max(0.0) as usize;
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    (0..=n)
        .map(|i| {
            let v = a + i as f64 * step;
            let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
            (v, format!("{v:.decimals$}"))
        })
        .collect()
}

/// `m × 10^e` as a plain decimal where that is short, else as `me<e>`.
fn format_decade(m: f64, e: i32) -> String {
    if (-4..=5).contains(&e) {
        let decimals = (-e).max(0) as usize;
        format!("{:.decimals$}", m * 10f64.powi(e))
    } else {
        format!("{m}e{e}")
    }
}

/// A data value as a short label: integers as such, others to 3 significant digits without
/// trailing zeros.
pub(crate) fn format_value(v: f64) -> String {
    if v == v.round() && v.abs() < 1e7 {
        format!("{v}")
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e7) {
        format!("{v:.2e}")
    } else {
        let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The smallest stride `k` such that keeping every `k`-th of the labels at `positions` (in
/// pixels, increasing) leaves a gap of at least `gap` pixels between neighbours, each label
/// spanning `extent[i]` pixels centred on its position.
pub(crate) fn label_stride(positions: &[f64], extent: &[f64], gap: f64) -> usize {
    let fits = |k: usize| {
        let idx: Vec<usize> = (0..positions.len()).step_by(k).collect();
        idx.windows(2).all(|w| {
            (positions[w[1]] - positions[w[0]]).abs() >= (extent[w[0]] + extent[w[1]]) / 2.0 + gap
        })
    };
    (1..=positions.len().max(1)).find(|&k| fits(k)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(a: &Axis) -> Vec<&str> {
        a.ticks.iter().map(|t| t.1.as_str()).collect()
    }

    #[test]
    fn nice_linear_ticks_cover_the_data() {
        let a = Axis::nice(Scale::Linear, 3.05, 5.0);
        assert_eq!(labels(&a), ["3.0", "3.5", "4.0", "4.5", "5.0"]);
        assert!(a.frac(3.05) > 0.0 && a.frac(5.0) < 1.0);
        let a = Axis::nice(Scale::Linear, 0.0, 10_000.0);
        assert_eq!(labels(&a), ["0", "2000", "4000", "6000", "8000", "10000"]);
        let a = Axis::nice(Scale::Linear, -0.3, 0.2);
        assert!(labels(&a).contains(&"0.0"), "{:?}", labels(&a));
        let a = Axis::nice(Scale::Linear, 2.5, 2.5);
        assert!(a.frac(2.5) > 0.0 && a.frac(2.5) < 1.0);
    }

    #[test]
    fn log_ticks_are_decades_with_2_and_5_in_short_ranges() {
        let a = Axis::nice(Scale::Log, 2e-4, 0.3);
        assert_eq!(labels(&a), ["0.0001", "0.001", "0.01", "0.1", "1"]);
        let a = Axis::nice(Scale::Log, 0.003, 0.04);
        assert_eq!(labels(&a), ["0.002", "0.005", "0.01", "0.02", "0.05"]);
        assert!((a.frac(0.01) - 0.5).abs() < 1e-12);
        assert_eq!(
            labels(&Axis::nice(Scale::Log, 1e-7, 1e-6)),
            ["5e-8", "1e-7", "2e-7", "5e-7", "1e-6", "2e-6"]
        );
    }

    #[test]
    fn exact_axes_keep_their_range_and_ticks_inside() {
        let a = Axis::exact(-2.3, 2.3);
        assert_eq!(a.frac(-2.3), 0.0);
        assert_eq!(a.frac(2.3), 1.0);
        assert_eq!(labels(&a), ["-2", "-1", "0", "1", "2"]);
    }

    #[test]
    fn value_ticks_and_labels() {
        let a = Axis::at_values(Scale::Log, &[5.0, 20.0, 80.0, 160.0]);
        assert_eq!(labels(&a), ["5", "20", "80", "160"]);
        assert!(a.frac(5.0) > 0.0 && a.frac(160.0) < 1.0);
        assert_eq!(format_value(0.123456), "0.123");
        assert_eq!(format_value(1.5), "1.5");
        assert_eq!(format_value(2.5e-5), "2.50e-5");
        assert_eq!(label_stride(&[0.0, 10.0, 20.0, 30.0], &[8.0; 4], 4.0), 2);
        assert_eq!(label_stride(&[0.0, 100.0], &[8.0; 2], 4.0), 1);
    }
}
