//! Repeated measurements of one quantity: median and spread.
//!
//! The machines are shared and noisy, so every figure is a median of several
//! runs, printed with its range; a single run is never reported.

/// The samples of one quantity, in the order they were taken.
#[derive(Debug, Clone)]
pub struct Samples {
    /// The measured values.
    pub values: Vec<f64>,
    /// The unit the values are in, as printed ("s", "MiB", "polls/s").
    pub unit: &'static str,
}

impl Samples {
    /// No samples yet, in `unit`.
    pub fn new(unit: &'static str) -> Samples {
        Samples {
            values: Vec::new(),
            unit,
        }
    }

    /// Samples from `values`.
    pub fn of(unit: &'static str, values: impl IntoIterator<Item = f64>) -> Samples {
        Samples {
            values: values.into_iter().collect(),
            unit,
        }
    }

    /// Adds one value.
    pub fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (the mean of the middle two for an even count); NaN when empty.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The smallest value.
    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    /// The largest value.
    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// Half the range as a share of the median, in percent: the "±" printed.
    pub fn spread_pct(&self) -> f64 {
        let m = self.median();
        if m == 0.0 {
            0.0
        } else {
            (self.max() - self.min()) / 2.0 / m.abs() * 100.0
        }
    }

    /// "1.234 s ±2.1% (n=5, 1.201–1.260)".
    pub fn describe(&self) -> String {
        format!(
            "{} {} ±{:.1}% (n={}, {}–{})",
            fmt_num(self.median()),
            self.unit,
            self.spread_pct(),
            self.values.len(),
            fmt_num(self.min()),
            fmt_num(self.max())
        )
    }
}

/// Three significant digits, without exponent notation for everyday sizes.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Samples::of("s", [3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(Samples::of("s", [4.0, 1.0, 2.0, 3.0]).median(), 2.5);
        assert!(Samples::new("s").median().is_nan());
    }

    #[test]
    fn spread_is_half_the_range_over_the_median() {
        let s = Samples::of("s", [9.0, 10.0, 11.0]);
        assert!((s.spread_pct() - 10.0).abs() < 1e-9);
        assert_eq!(s.describe(), "10.0 s ±10.0% (n=3, 9.00–11.0)");
    }
}
