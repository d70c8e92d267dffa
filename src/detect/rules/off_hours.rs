//! D11 off_hours: large uploads outside business hours.

use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::{Keyed, Largest, Seen, mb, order_key};
use crate::model::Flow;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Off-hours transfer above 100 MB (practitioner rule, mukul975 skills).
pub const BYTES: u64 = 100_000_000;

pub struct OffHours;

impl Detector for OffHours {
    fn code(&self) -> &'static str {
        "D11"
    }
    fn name(&self) -> &'static str {
        "off_hours_upload"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Needs `[business_hours]` in the case file (days, start, end, fixed UTC offset). Sums each \
internal host's outbound application bytes to non-allowlisted destinations in flows that \
started outside business hours, and flags hosts above 100 MB.\n\n\
## Why it matters\n\
Attackers move data at night and on weekends, when nobody watches (MITRE ATT&CK DET0131 \
TimeWindow \"flag after-hours file transfer\").\n\n\
## Defaults and sources\n\
100 MB off hours: practitioner heuristic (methodology §2.6, low authority). The offset is \
fixed: daylight saving time is not applied (a known limitation).\n\n\
## Known false positives\n\
Scheduled backups and batch jobs at night (allowlist their destinations)."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

/// Per host and destination, what went out outside business hours: bytes, the
/// largest single flow (bytes, order key), and the flows seen.
#[derive(Default)]
struct State {
    pairs: Keyed<(IpAddr, IpAddr), (u64, Largest, Seen)>,
}

impl Pass for State {
    fn observe(&mut self, cx: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        let Some(bh) = cx.business_hours else {
            return;
        };
        if let Some((host, dest, o, _, _)) = ob
            && o.bytes > 0
            && !bh.is_business(f.first_ts)
        {
            let e = self.pairs.entry((host, dest));
            e.0 += o.bytes;
            e.1 = e.1.max((o.bytes, order_key(f)));
            e.2.add(f);
        }
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        self.pairs
            .merge(super::super::downcast::<State>(other).pairs, |a, b| {
                a.0 += b.0;
                a.1 = a.1.max(b.1);
                a.2.merge(&b.2);
            });
    }

    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        let mut hosts: BTreeMap<IpAddr, Vec<(IpAddr, u64, Largest, Seen)>> = BTreeMap::new();
        for ((host, dest), (bytes, top, seen)) in self.pairs.into_sorted() {
            if !inp.allowed(dest) {
                hosts
                    .entry(host)
                    .or_default()
                    .push((dest, bytes, top, seen));
            }
        }
        let mut out = Vec::new();
        for (host, v) in hosts {
            let bytes: u64 = v.iter().map(|x| x.1).sum();
            if bytes <= BYTES {
                continue;
            }
            let top = v.iter().max_by_key(|x| x.2);
            let mut all = Seen::default();
            for x in &v {
                all.merge(&x.3);
            }
            let (first_ts, last_ts) = all.range();
            out.push(Finding {
                code: OffHours.code(),
                name: OffHours.name(),
                severity: Severity::Flag,
                host,
                destination: top.map(|x| x.0),
                destination_names: top.map(|x| inp.names_of(x.0)).unwrap_or_default(),
                protocol: "any".into(),
                bytes,
                first_ts,
                last_ts,
                text: format!("{host} uploaded {} outside business hours", mb(bytes)),
                text_de: format!(
                    "{host} hat außerhalb der Geschäftszeiten {} hochgeladen",
                    mb(bytes)
                ),
                metrics: vec![Metric {
                    name: "bytes_out_off_hours",
                    value: bytes as f64,
                    threshold: Some(BYTES as f64),
                }],
                references: top.map(|x| x.3.spans(host, x.0, 4)).unwrap_or_default(),
            });
        }
        out
    }
}
