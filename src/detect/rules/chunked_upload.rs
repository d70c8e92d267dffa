//! D10 chunked_upload: many uploads of the same size at regular intervals from one
//! host to one destination (data split into chunks and sent on a schedule).

use super::super::stats::{madm, median};
use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::PairSeries;
use crate::model::Flow;

pub const MIN_FLOWS: usize = 10;
/// Flows within ±1 % of the median outbound size (methodology D10).
pub const SIZE_TOLERANCE: f64 = 0.01;
/// Share of flows that must be that uniform.
pub const UNIFORM_SHARE: f64 = 0.8;
/// Chunks smaller than this are beacons, not uploads.
pub const MIN_CHUNK: f64 = 1024.0;
/// Start times are regular when the MAD of the intervals is at most 10 % of the median interval.
pub const REGULARITY: f64 = 0.1;

pub struct ChunkedUpload;

impl Detector for ChunkedUpload {
    fn code(&self) -> &'static str {
        "D10"
    }
    fn name(&self) -> &'static str {
        "chunked_upload"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
For every internal host and external destination with at least 10 flows the host originated, \
it checks whether at least 80 % of them send the same amount (within ±1 % of the median, at \
least 1 KiB), send more than they receive, and start at regular intervals (median absolute \
deviation of the intervals at most 10 % of the median interval). That pattern fires: fixed-size \
uploads on a schedule are how data is moved low and slow.\n\n\
## Why it matters\n\
MITRE ATT&CK T1030 (Data Transfer Size Limits: \"fixed size data packets at regular \
intervals\"), T1029 (Scheduled Transfer) and T1020 (Automated Exfiltration). Each chunk is far \
below any volume threshold, so volume rules miss it.\n\n\
## Defaults and sources\n\
±1 %: methodology D10. Minimum 10 flows, 80 %, 1 KiB and 10 % regularity are our design \
choices; the methodology rates this pattern FLAG, we fire on it because size-uniform, \
upload-dominant, regular transfers from a host are data leaving by design (see \
docs/detectors.md).\n\n\
## Known false positives\n\
Telemetry agents that post fixed-size reports (allowlist them), synthetic monitoring."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

/// Per host and destination, the start and outbound size of each flow that sent
/// more than it received.
#[derive(Default)]
struct State {
    pairs: PairSeries,
}

impl Pass for State {
    fn observe(&mut self, _: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        if let Some((host, dest, o, i, true)) = ob
            && o.bytes > i.bytes
        {
            self.pairs.add(host, dest, f);
        }
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        self.pairs
            .merge(super::super::downcast::<State>(other).pairs);
    }

    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((host, dest), (series, seen)) in self.pairs.into_sorted() {
            let (n, bytes) = (series.n, series.bytes);
            if n < MIN_FLOWS as u64 || inp.allowed(dest) {
                continue;
            }
            let fl = series.points();
            let mut sizes: Vec<f64> = fl.iter().map(|f| f.1 as f64).collect();
            let med = median(&mut sizes);
            if med < MIN_CHUNK {
                continue;
            }
            let uniform = fl
                .iter()
                .filter(|f| ((f.1 as f64) - med).abs() <= SIZE_TOLERANCE * med)
                .count();
            let share = uniform as f64 / fl.len() as f64;
            let mut starts: Vec<i64> = fl.iter().map(|f| f.0).collect();
            starts.sort_unstable();
            let mut deltas: Vec<f64> = starts
                .windows(2)
                .map(|w| (w[1] - w[0]) as f64 / 1e9)
                .collect();
            let dm = madm(&deltas);
            let period = median(&mut deltas);
            let regular = period > 0.0 && dm <= REGULARITY * period;
            if share < UNIFORM_SHARE || !regular {
                continue;
            }
            out.push(Finding {
                severity: Severity::Fire,
                protocol: seen.protocol(),
                bytes,
                text: format!(
                    "{host} uploaded {} chunks of about {med:.0} bytes to {dest} every {period:.1} s ({bytes} bytes in total)",
                    n
                ),
                text_de: format!(
                    "{host} hat {} Teilstücke von etwa {med:.0} Bytes alle {period:.1} s an {dest} hochgeladen ({bytes} Bytes insgesamt)",
                    n
                ),
                metrics: vec![
                    Metric { name: "flows", value: n as f64, threshold: Some(MIN_FLOWS as f64) },
                    Metric { name: "median_chunk_bytes", value: med, threshold: Some(MIN_CHUNK) },
                    Metric { name: "uniform_share", value: share, threshold: Some(UNIFORM_SHARE) },
                    Metric { name: "median_interval_s", value: period, threshold: None },
                    Metric { name: "interval_madm_s", value: dm, threshold: Some(REGULARITY * period) },
                ],
                ..Finding::for_pair(&ChunkedUpload, inp, host, dest, &seen)
            });
            // A pair with more connections than the series keeps: its rule looked
            // at the earliest SERIES_CAP of them; said so in the finding.
            if (fl.len() as u64) < n
                && let Some(last) = out.last_mut()
            {
                last.metrics.push(Metric {
                    name: "flows_analysed",
                    value: fl.len() as f64,
                    threshold: None,
                });
            }
        }
        out
    }
}
