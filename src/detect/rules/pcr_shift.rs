//! D2 pcr_shift: a host that normally downloads starts to upload (producer-consumer
//! ratio shift against the baseline).

use super::super::stats::median;
use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::mb;
use crate::model::{Flow, NS_PER_SEC};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Shift of +0.4 (the "70:30 export" role in Bullard & Gerth's table).
pub const SHIFT: f64 = 0.4;
/// Only for hosts that sent at least 10 MB in the window.
pub const FLOOR: u64 = 10_000_000;
pub(crate) const DAY: i64 = 86_400 * NS_PER_SEC;

pub fn pcr(out: u64, inb: u64) -> f64 {
    if out + inb == 0 {
        0.0
    } else {
        (out as f64 - inb as f64) / (out + inb) as f64
    }
}

pub struct PcrShift;

impl Detector for PcrShift {
    fn code(&self) -> &'static str {
        "D2"
    }
    fn name(&self) -> &'static str {
        "pcr_shift"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Needs a baseline. Computes each internal host's producer-consumer ratio \
PCR = (out − in)/(out + in) of application bytes across the boundary over the incident window, \
and the median of its daily PCRs in the baseline. Flags hosts whose PCR rose by more than 0.4 \
and that sent at least 10 MB in the window.\n\n\
## Why it matters\n\
Most clients consume (PCR near −0.5); a host that turns producer is pushing data out (MITRE \
ATT&CK T1048 detection: \"a client sending significantly more data than it receives\").\n\n\
## Defaults and sources\n\
PCR: Bullard & Gerth, FloCon 2014 (ThreatHuntingProject hunt \
analyze_producer_consumer_ratio). +0.4 shift: the 70:30 export role of their table (methodology \
§2.4, design choice). 10 MB floor: methodology D1.\n\n\
## Known false positives\n\
Hosts that start a sanctioned upload role (backup agents, video conferencing)."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

/// Per host: bytes out, bytes in, first and last timestamp in the window.
#[derive(Default)]
struct State {
    win: BTreeMap<IpAddr, (u64, u64, i64, i64)>,
}

impl Pass for State {
    fn observe(&mut self, _: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        if let Some((h, _, o, i, _)) = ob {
            let e = self.win.entry(h).or_insert((0, 0, f.first_ts, f.last_ts));
            e.0 += o.bytes;
            e.1 += i.bytes;
            e.2 = e.2.min(f.first_ts);
            e.3 = e.3.max(f.last_ts);
        }
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        super::merge_map(
            &mut self.win,
            super::super::downcast::<State>(other).win,
            |a, b| {
                a.0 += b.0;
                a.1 += b.1;
                a.2 = a.2.min(b.2);
                a.3 = a.3.max(b.3);
            },
        );
    }

    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        let Some(base) = inp.baseline else {
            return Vec::new();
        };
        let mut daily: BTreeMap<IpAddr, Vec<f64>> = BTreeMap::new();
        for (&(h, _), &(o, i)) in &base.daily {
            daily.entry(h).or_default().push(pcr(o, i));
        }
        let mut out = Vec::new();
        for (host, (o, i, t0, t1)) in self.win {
            let Some(mut d) = daily.get(&host).cloned() else {
                continue;
            };
            let base_pcr = median(&mut d);
            let now = pcr(o, i);
            if o < FLOOR || now - base_pcr <= SHIFT {
                continue;
            }
            out.push(Finding {
                code: PcrShift.code(),
                name: PcrShift.name(),
                severity: Severity::Flag,
                host,
                destination: None,
                destination_names: Vec::new(),
                protocol: "any".into(),
                bytes: o,
                first_ts: t0,
                last_ts: t1,
                text: format!(
                    "{host} turned producer: PCR {now:.2} in the window against a baseline median of {base_pcr:.2} ({} out, {} in)",
                    mb(o),
                    mb(i)
                ),
                text_de: format!(
                    "{host} sendet nun mehr als er empfängt: PCR {now:.2} im Zeitfenster gegenüber einem Median von {base_pcr:.2} ({} hinaus, {} herein)",
                    mb(o),
                    mb(i)
                ),
                metrics: vec![
                    Metric { name: "pcr", value: now, threshold: None },
                    Metric { name: "baseline_pcr_median", value: base_pcr, threshold: None },
                    Metric { name: "shift", value: now - base_pcr, threshold: Some(SHIFT) },
                ],
                references: Vec::new(),
            });
        }
        out
    }
}
