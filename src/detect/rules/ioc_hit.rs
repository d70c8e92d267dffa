//! D12 ioc_hit: traffic to the incident's indicators of compromise (case file).

use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::{Keyed, Seen};
use crate::model::Flow;
use std::net::IpAddr;

pub struct IocHit;

impl Detector for IocHit {
    fn code(&self) -> &'static str {
        "D12"
    }
    fn name(&self) -> &'static str {
        "ioc_hit"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Fires when an internal host sent any bytes to an address or network, or to a destination \
named by a domain, listed as an indicator of compromise in the case file (`[iocs]` with \
`ips` and `domains`).\n\n\
## Why it matters\n\
Addresses and domains already tied to the intrusion (from the IR investigation) make any \
outbound byte to them relevant. RITA places every threat-intel hit in its highest tier.\n\n\
## Defaults and sources\n\
Any outbound byte (methodology D12). No feed is fetched: the tool is offline; the list comes \
from the case.\n\n\
## Known false positives\n\
Shared hosting and CDN addresses listed as IOCs."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

/// Per host and destination that the host sent packets to: bytes sent and the
/// flows seen (domain indicators match names known only at the end).
#[derive(Default)]
struct State {
    acc: Keyed<(IpAddr, IpAddr), (u64, Seen)>,
}

impl Pass for State {
    fn observe(&mut self, cx: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        // Domain indicators match names known only at the end: then every
        // destination is kept; address indicators select as flows pass.
        if cx.iocs.domains.is_empty() && cx.iocs.nets.is_empty() {
            return;
        }
        if let Some((host, dest, o, _, _)) = ob
            && o.pkts > 0
            && (!cx.iocs.domains.is_empty() || cx.iocs.nets.iter().any(|n| n.contains(&dest)))
        {
            let e = self.acc.entry((host, dest));
            e.0 += o.bytes;
            e.1.add(f);
        }
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        self.acc
            .merge(super::super::downcast::<State>(other).acc, super::add_seen);
    }

    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        if inp.iocs.nets.is_empty() && inp.iocs.domains.is_empty() {
            return Vec::new();
        }
        self.acc
            .into_sorted()
            .into_iter()
            .filter_map(|((host, dest), (bytes, seen))| {
                let ioc = if let Some(n) = inp.iocs.nets.iter().find(|n| n.contains(&dest)) {
                    n.to_string()
                } else {
                    inp.names_of(dest).into_iter().find(|name| {
                        inp.iocs
                            .domains
                            .iter()
                            .any(|d| name == d || name.ends_with(&format!(".{d}")))
                    })?
                };
                Some(Finding {
                    severity: Severity::Fire,
                    protocol: "any".into(),
                    bytes,
                    text: format!("{host} sent {bytes} bytes to {dest}, an indicator of compromise ({ioc})"),
                    text_de: format!("{host} hat {bytes} Bytes an {dest} gesendet, einen Kompromittierungsindikator ({ioc})"),
                    metrics: vec![Metric { name: "bytes_out", value: bytes as f64, threshold: Some(0.0) }],
                    ..Finding::for_pair(&IocHit, inp, host, dest, &seen)
                })
            })
            .collect()
    }
}
