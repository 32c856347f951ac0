//! Results: the JSON document a run writes, the table it prints, and the comparison of runs.
//!
//! Every scenario reduces its measurements to flat [`Figure`]s (`mixed.FETCH.p99_ms`, ...), each
//! with a unit and a direction (higher or lower is better). That keeps the JSON stable for
//! scripts and makes [`compare`] generic: it takes the median of each figure over several runs
//! per server and prints the ratio A/B, plus the advantage of A in the direction that matters.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::client::Counters;
use crate::stats::Recorder;

/// Which direction of a figure is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Throughput and the like.
    Higher,
    /// Latency, memory, time.
    Lower,
    /// Informational (counts, sizes): no ratio is judged.
    Neither,
}

/// One measured number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Dotted name, unique within a report: `scenario.item.measure`.
    pub key: String,
    /// The value, in `unit`; `None` when not measurable against this server ("n/a").
    pub value: Option<f64>,
    /// Unit for people (`cmd/s`, `ms`, `KiB`, ...).
    pub unit: String,
    /// Which direction is good.
    pub better: Better,
}

/// The JSON document of one run of one scenario against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The scenario (`mixed`, `append`, ...).
    pub scenario: String,
    /// A free label, e.g. the server's name.
    pub label: String,
    /// Server address as given.
    pub target: String,
    /// Capabilities the server advertised after login.
    pub capabilities: Vec<String>,
    /// The parameters the scenario ran with.
    pub params: serde_json::Value,
    /// Protocol errors seen over the whole run.
    pub protocol_errors: u64,
    /// The first protocol error, if any.
    pub first_protocol_error: Option<String>,
    /// The measured figures.
    pub figures: Vec<Figure>,
}

impl Report {
    /// Adds a figure.
    pub fn push(&mut self, key: impl Into<String>, value: Option<f64>, unit: &str, better: Better) {
        self.figures.push(Figure { key: key.into(), value, unit: unit.to_owned(), better });
    }

    /// Records protocol health from merged counters.
    pub fn set_counters(&mut self, counters: &Counters) {
        self.protocol_errors = counters.protocol_errors;
        self.first_protocol_error.clone_from(&counters.first_error);
    }

    /// Adds per-operation figures (rate, p50, p99, errors) under `prefix`, with rates over
    /// `seconds`, and a total rate over the operations for which `counts_as_command` holds.
    pub fn push_ops(
        &mut self,
        prefix: &str,
        rec: &Recorder,
        seconds: f64,
        counts_as_command: impl Fn(&str) -> bool,
    ) {
        let seconds = seconds.max(1e-9);
        let mut total = 0u64;
        let mut errors = 0u64;
        for (name, op) in &rec.ops {
            let done = op.ok + op.errors;
            if counts_as_command(name) {
                total += done;
                errors += op.errors;
            }
            self.push(format!("{prefix}.{name}.per_s"), Some(done as f64 / seconds), "op/s", Better::Higher);
            self.push(
                format!("{prefix}.{name}.p50_ms"),
                Some(op.latency.quantile_ms(0.5)),
                "ms",
                Better::Lower,
            );
            self.push(
                format!("{prefix}.{name}.p99_ms"),
                Some(op.latency.quantile_ms(0.99)),
                "ms",
                Better::Lower,
            );
            self.push(format!("{prefix}.{name}.errors"), Some(op.errors as f64), "count", Better::Neither);
        }
        self.push(format!("{prefix}.total.cmd_per_s"), Some(total as f64 / seconds), "cmd/s", Better::Higher);
        self.push(format!("{prefix}.total.errors"), Some(errors as f64), "count", Better::Neither);
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} against {} ({})", self.scenario, self.target, self.label);
        let width = self.figures.iter().map(|f| f.key.len()).max().unwrap_or(10).max(10);
        for f in &self.figures {
            let _ = writeln!(out, "  {:<width$}  {:>14}  {}", f.key, format_value(f.value), f.unit);
        }
        let _ = writeln!(out, "  protocol errors: {}", self.protocol_errors);
        if let Some(e) = &self.first_protocol_error {
            let _ = writeln!(out, "  first protocol error: {e}");
        }
        out
    }
}

fn format_value(v: Option<f64>) -> String {
    match v {
        None => "n/a".to_owned(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let upper = values.get(mid).copied()?;
    if values.len() % 2 == 1 {
        return Some(upper);
    }
    Some((values.get(mid - 1).copied()? + upper) / 2.0)
}

/// One row of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Figure key.
    pub key: String,
    /// Unit.
    pub unit: String,
    /// Median over A's runs.
    pub a: Option<f64>,
    /// Median over B's runs.
    pub b: Option<f64>,
    /// A / B.
    pub ratio: Option<f64>,
    /// How many times better A is than B (ratio for higher-is-better, its inverse otherwise).
    pub advantage: Option<f64>,
    /// Runs that had this figure, for A and B.
    pub runs: (usize, usize),
}

/// Compares the medians of each figure over A's and B's reports.
pub fn compare(a: &[Report], b: &[Report]) -> Vec<Row> {
    fn collect(reports: &[Report]) -> BTreeMap<String, (String, Better, Vec<f64>)> {
        let mut map: BTreeMap<String, (String, Better, Vec<f64>)> = BTreeMap::new();
        for f in reports.iter().flat_map(|r| &r.figures) {
            let entry = map.entry(f.key.clone()).or_insert_with(|| (f.unit.clone(), f.better, Vec::new()));
            if let Some(v) = f.value {
                entry.2.push(v);
            }
        }
        map
    }
    let mut ma = collect(a);
    let mb = collect(b);
    let mut keys: Vec<String> = ma.keys().chain(mb.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let mut rows = Vec::new();
    for key in keys {
        let (unit, better, mut va) = ma
            .remove(&key)
            .or_else(|| mb.get(&key).map(|(u, b, _)| (u.clone(), *b, Vec::new())))
            .unwrap_or((String::new(), Better::Neither, Vec::new()));
        let mut vb = mb.get(&key).map(|(_, _, v)| v.clone()).unwrap_or_default();
        let runs = (va.len(), vb.len());
        let (ma, mb) = (median(&mut va), median(&mut vb));
        let ratio = match (ma, mb) {
            (Some(x), Some(y)) if y != 0.0 => Some(x / y),
            _ => None,
        };
        let advantage = match (better, ratio) {
            (Better::Higher, Some(r)) => Some(r),
            (Better::Lower, Some(r)) if r != 0.0 => Some(1.0 / r),
            _ => None,
        };
        rows.push(Row { key, unit, a: ma, b: mb, ratio, advantage, runs });
    }
    rows
}

/// The comparison as a Markdown table (it reads fine in a terminal too).
pub fn comparison_table(rows: &[Row], name_a: &str, name_b: &str, filter: &dyn Fn(&Row) -> bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | unit | {name_a} | {name_b} | ratio {name_a}/{name_b} | {name_a} advantage | runs |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for r in rows.iter().filter(|r| filter(r)) {
        let adv = match r.advantage {
            Some(x) => format!("{x:.2}×"),
            None => "–".to_owned(),
        };
        let ratio = r.ratio.map_or("n/a".to_owned(), |x| format!("{x:.2}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {}/{} |",
            r.key,
            r.unit,
            format_value(r.a),
            format_value(r.b),
            ratio,
            adv,
            r.runs.0,
            r.runs.1
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report(values: &[(&str, Option<f64>, Better)]) -> Report {
        let mut r = Report {
            scenario: "t".into(),
            label: "x".into(),
            target: "127.0.0.1:1".into(),
            capabilities: vec![],
            params: serde_json::Value::Null,
            protocol_errors: 0,
            first_protocol_error: None,
            figures: vec![],
        };
        for (k, v, b) in values {
            r.push(*k, *v, "u", *b);
        }
        r
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn compare_takes_medians_and_directions() {
        let a = vec![
            report(&[("rate", Some(10.0), Better::Higher), ("lat", Some(1.0), Better::Lower)]),
            report(&[("rate", Some(30.0), Better::Higher), ("lat", Some(2.0), Better::Lower)]),
            report(&[("rate", Some(20.0), Better::Higher), ("lat", None, Better::Lower)]),
        ];
        let b = vec![report(&[
            ("rate", Some(5.0), Better::Higher),
            ("lat", Some(3.0), Better::Lower),
            ("only_b", Some(1.0), Better::Neither),
        ])];
        let rows = compare(&a, &b);
        let rate = rows.iter().find(|r| r.key == "rate").unwrap();
        assert_eq!(
            (rate.a, rate.b, rate.ratio, rate.advantage),
            (Some(20.0), Some(5.0), Some(4.0), Some(4.0))
        );
        let lat = rows.iter().find(|r| r.key == "lat").unwrap();
        assert_eq!(lat.a, Some(1.5));
        assert_eq!(lat.advantage, Some(2.0));
        assert_eq!(lat.runs, (2, 1));
        let only = rows.iter().find(|r| r.key == "only_b").unwrap();
        assert_eq!((only.a, only.ratio), (None, None));
        let table = comparison_table(&rows, "P", "D", &|_| true);
        assert!(table.contains("| rate | u | 20.00 | 5.00 | 4.00 | 4.00× | 3/1 |"), "{table}");
    }

    #[test]
    fn json_round_trip() {
        let r = report(&[("a.b", None, Better::Lower)]);
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"better\":\"lower\""));
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back.figures, r.figures);
    }
}
