//! D12 ioc_hit: traffic to the incident's indicators of compromise (case file).

use super::super::{DetectInput, Detector, Finding, Metric, Severity};
use std::collections::BTreeMap;
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
    fn run(&self, inp: &DetectInput<'_>) -> Vec<Finding> {
        if inp.iocs.nets.is_empty() && inp.iocs.domains.is_empty() {
            return Vec::new();
        }
        let mut acc: BTreeMap<(IpAddr, IpAddr), (Vec<&crate::model::Flow>, String)> =
            BTreeMap::new();
        for f in inp.flows {
            let Some((host, dest, o, _, _)) = inp.outbound(f) else {
                continue;
            };
            if o.pkts == 0 {
                continue;
            }
            let why = if let Some(n) = inp.iocs.nets.iter().find(|n| n.contains(&dest)) {
                Some(n.to_string())
            } else {
                inp.names_of(dest).into_iter().find(|name| {
                    inp.iocs
                        .domains
                        .iter()
                        .any(|d| name == d || name.ends_with(&format!(".{d}")))
                })
            };
            if let Some(w) = why {
                acc.entry((host, dest))
                    .or_insert_with(|| (Vec::new(), w))
                    .0
                    .push(f);
            }
        }
        acc.into_iter()
            .map(|((host, dest), (fl, ioc))| {
                let bytes: u64 = super::sent_by(&fl, host);
                Finding {
                    severity: Severity::Fire,
                    protocol: "any".into(),
                    bytes,
                    text: format!("{host} sent {bytes} bytes to {dest}, an indicator of compromise ({ioc})"),
                    text_de: format!("{host} hat {bytes} Bytes an {dest} gesendet, einen Kompromittierungsindikator ({ioc})"),
                    metrics: vec![Metric { name: "bytes_out", value: bytes as f64, threshold: Some(0.0) }],
                    ..Finding::for_pair(self, inp, host, dest, &fl)
                }
            })
            .collect()
    }
}
