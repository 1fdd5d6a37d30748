//! Printing figures: one line each, with the goal and, where Prometheus
//! answered the same question, the ratio.

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// The goal in words, e.g. "≥ 2× Prometheus".
    pub goal: String,
    /// What the same measurement gave on Prometheus, when it was run.
    pub prometheus: Option<f64>,
    /// Whether a bigger value is better (throughput) or a smaller one (time, bytes).
    pub higher_is_better: bool,
}

impl Figure {
    /// How many times better Yunzhi did than Prometheus.
    pub fn advantage(&self) -> Option<f64> {
        let p = self.prometheus?;
        Some(if self.higher_is_better { self.value / p } else { p / self.value })
    }

    pub fn line(&self) -> String {
        let mut s = format!("{:<58} {:>14.3} {:<18}", self.name, self.value, self.unit);
        if let (Some(p), Some(a)) = (self.prometheus, self.advantage()) {
            if a >= 1.0 {
                s.push_str(&format!(" prometheus {p:.3}, yunzhi {a:.2}× better"));
            } else {
                s.push_str(&format!(" prometheus {p:.3}, yunzhi {:.2}× worse", 1.0 / a));
            }
        }
        s.push_str(&format!("  (goal: {})", self.goal));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advantage_reads_the_right_way_for_times_and_rates() {
        let rate = Figure {
            name: "ingest".into(),
            value: 3.0,
            unit: "M/CPU-s",
            goal: String::new(),
            prometheus: Some(1.0),
            higher_is_better: true,
        };
        assert_eq!(rate.advantage(), Some(3.0));
        let time = Figure { value: 0.5, prometheus: Some(10.0), higher_is_better: false, ..rate.clone() };
        assert_eq!(time.advantage(), Some(20.0));
        assert!(rate.line().contains("yunzhi 3.00× better"), "{}", rate.line());
        let slower = Figure { value: 0.25, ..rate };
        assert!(slower.line().contains("yunzhi 4.00× worse"), "{}", slower.line());
    }
}
