//! The rows and their printing: the table, a `csv,` line per row, and the histograms
//! the rows carry.

use hdrhistogram::Histogram;

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

pub(crate) struct Row {
    pub(crate) setup: String,
    pub(crate) mode: &'static str,
    pub(crate) lane: &'static str,
    pub(crate) threads: usize,
    pub(crate) calls_per_s: f64,
    pub(crate) hist: Option<Histogram<u64>>,
    pub(crate) wrong: u64,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

pub(crate) fn print_row(r: &Row, floor_p50: u64, nim: Option<(f64, Option<f64>)>) {
    let (p50, p90, p99, p999) = match &r.hist {
        Some(h) => (
            format!("{:.2}", us(h.value_at_quantile(0.5))),
            format!("{:.2}", us(h.value_at_quantile(0.9))),
            format!("{:.2}", us(h.value_at_quantile(0.99))),
            format!("{:.2}", us(h.value_at_quantile(0.999))),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    let ratio = r
        .hist
        .as_ref()
        .map(|h| format!("{:.2}x", h.value_at_quantile(0.5) as f64 / floor_p50 as f64))
        .unwrap_or_else(|| "-".into());
    let nim_text = match nim {
        Some((rate, _)) => format!("{:>8.0}/s  {:>6.0}x", rate, r.calls_per_s / rate),
        None => String::new(),
    };
    println!(
        "{:<16} {:<6} {:<9} {:>2} {:>12.0} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
        r.setup, r.mode, r.lane, r.threads, r.calls_per_s, p50, p90, p99, p999, ratio, nim_text
    );
    let q = |q: f64| {
        r.hist
            .as_ref()
            .map(|h| h.value_at_quantile(q).to_string())
            .unwrap_or_default()
    };
    println!(
        "csv,{},{},{},{},{:.0},{},{},{},{},{},{}",
        r.setup,
        r.mode,
        r.lane,
        r.threads,
        r.calls_per_s,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        floor_p50,
        nim.map(|(rate, _)| format!("{rate:.0}"))
            .unwrap_or_default()
    );
}
