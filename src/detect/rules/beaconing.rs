//! D9 beaconing: regular connections from one host to one destination (RITA's
//! timestamp and data-size scores). A beacon is evidence of an active channel.

use super::super::stats::{bowley_score, madm, median};
use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::PairSeries;
use crate::model::Flow;

/// RITA v5: at least 4 connections.
pub const MIN_CONNS: usize = 4;
/// RITA v5 score threshold "low".
pub const SCORE: f64 = 0.7;
/// A beacon calls home at most once a second (our floor; bursts are retries).
pub const MIN_PERIOD_S: f64 = 1.0;

/// RITA legacy beacon score (pkg/beacon/analyzer.go): the mean of the timestamp
/// score (Bowley skew, MADM vs 30 s, connection count) and the data-size score
/// (Bowley skew, MADM vs 32 bytes, smallness).
pub fn score(starts: &[i64], sizes: &[f64]) -> (f64, f64, f64) {
    let mut s: Vec<i64> = starts.to_vec();
    s.sort_unstable();
    let deltas: Vec<f64> = s.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
    let span = (s[s.len() - 1] - s[0]) as f64 / 1e9;
    let ts_skew = bowley_score(&deltas);
    let ts_madm = (1.0 - madm(&deltas) / 30.0).max(0.0);
    let ts_conn = if span > 0.0 {
        (s.len() as f64 / (span / 10.0)).min(1.0)
    } else {
        0.0
    };
    let ts = (ts_skew + ts_madm + ts_conn) / 3.0;
    let ds_skew = bowley_score(sizes);
    let ds_madm = (1.0 - madm(sizes) / 32.0).max(0.0);
    let mut c = sizes.to_vec();
    let mode_like = median(&mut c);
    let ds_small = (1.0 - mode_like / 65535.0).max(0.0);
    let ds = (ds_skew + ds_madm + ds_small) / 3.0;
    ((ts + ds) / 2.0, ts, ds)
}

pub struct Beaconing;

impl Detector for Beaconing {
    fn code(&self) -> &'static str {
        "D9"
    }
    fn name(&self) -> &'static str {
        "beaconing"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
For every internal host and external destination with at least 4 connections the host \
originated, it scores the regularity of connection start times and of the bytes sent per \
connection the way RITA's beacon analyzer does, and flags scores of 0.7 or more.\n\n\
## Why it matters\n\
Command-and-control implants (Cobalt Strike and others) call home at fixed intervals; an \
active C2 channel (MITRE ATT&CK T1041) can carry data out. Beacons themselves carry little, so \
this is a flag, not a fire; their bytes are stated.\n\n\
## Defaults and sources\n\
Score = mean of timestamp score (Bowley skew, 1 - MADM/30 s, connection count) and data-size \
score (Bowley skew, 1 - MADM/32 B, 1 - median/65535): activecm/rita-legacy \
pkg/beacon/analyzer.go (the mode is replaced by the median). 4 connections and 0.7: RITA v5 \
default_config.hjson. Jitter lowers but does not remove the score (Fox-IT).\n\n\
## Known false positives\n\
Software updaters, NTP, telemetry and monitoring agents. Allowlist them."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

/// Per host and destination, the start and outbound size of each connection.
#[derive(Default)]
struct State {
    pairs: PairSeries,
}

impl Pass for State {
    fn observe(&mut self, _: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        if let Some((host, dest, _, _, true)) = ob
            && f.icmp.is_none()
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
            if n < MIN_CONNS as u64 || inp.allowed(dest) {
                continue;
            }
            let fl = series.points();
            let starts: Vec<i64> = fl.iter().map(|f| f.0).collect();
            let sizes: Vec<f64> = fl.iter().map(|f| f.1 as f64).collect();
            let (sc, ts, ds) = score(&starts, &sizes);
            if sc < SCORE {
                continue;
            }
            let mut d0: Vec<f64> = {
                let mut s = starts.clone();
                s.sort_unstable();
                s.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect()
            };
            if median(&mut d0) < MIN_PERIOD_S {
                // Bursts of connections within a second are retries, not a schedule.
                continue;
            }
            let mut deltas: Vec<f64> = {
                let mut s = starts.clone();
                s.sort_unstable();
                s.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect()
            };
            let period = median(&mut deltas);
            out.push(Finding {
                severity: Severity::Flag,
                protocol: seen.protocol(),
                bytes,
                text: format!(
                    "{host} connected to {dest} {} times about every {period:.1} s (beacon score {sc:.2}); {bytes} bytes went out",
                    n
                ),
                text_de: format!(
                    "{host} hat sich {} Mal etwa alle {period:.1} s mit {dest} verbunden (Beacon-Wert {sc:.2}); {bytes} Bytes gingen hinaus",
                    n
                ),
                metrics: vec![
                    Metric { name: "score", value: sc, threshold: Some(SCORE) },
                    Metric { name: "timestamp_score", value: ts, threshold: None },
                    Metric { name: "data_size_score", value: ds, threshold: None },
                    Metric { name: "connections", value: n as f64, threshold: Some(MIN_CONNS as f64) },
                    Metric { name: "median_interval_s", value: period, threshold: None },
                ],
                ..Finding::for_pair(&Beaconing, inp, host, dest, &seen)
            });
            // A pair with more connections than the series keeps: its rule looked
            // at the earliest SERIES_CAP of them; said so in the finding.
            if (fl.len() as u64) < n
                && let Some(last) = out.last_mut()
            {
                last.metrics.push(Metric {
                    name: "connections_analysed",
                    value: fl.len() as f64,
                    threshold: None,
                });
            }
        }
        out
    }
}
