//! D11 off_hours: large uploads outside business hours.

use super::super::{DetectInput, Detector, Finding, Metric, Severity};
use super::{mb, spans};
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
    fn run(&self, inp: &DetectInput<'_>) -> Vec<Finding> {
        let Some(bh) = inp.business_hours else {
            return Vec::new();
        };
        let mut acc: BTreeMap<IpAddr, Vec<(&Flow, IpAddr, u64)>> = BTreeMap::new();
        for f in inp.flows {
            if let Some((host, dest, o, _, _)) = inp.outbound(f)
                && o.bytes > 0
                && !bh.is_business(f.first_ts)
                && !inp.allowed(dest)
            {
                acc.entry(host).or_default().push((f, dest, o.bytes));
            }
        }
        let mut out = Vec::new();
        for (host, v) in acc {
            let bytes: u64 = v.iter().map(|x| x.2).sum();
            if bytes <= BYTES {
                continue;
            }
            let top = v.iter().max_by_key(|x| x.2).map(|x| x.1);
            out.push(Finding {
                code: self.code(),
                name: self.name(),
                severity: Severity::Flag,
                host,
                destination: top,
                destination_names: top.map(|d| inp.names_of(d)).unwrap_or_default(),
                protocol: "any".into(),
                bytes,
                first_ts: v.iter().map(|x| x.0.first_ts).min().unwrap_or(0),
                last_ts: v.iter().map(|x| x.0.last_ts).max().unwrap_or(0),
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
                references: top
                    .map(|d| spans(v.iter().filter(|x| x.1 == d).map(|x| x.0), host, d, 4))
                    .unwrap_or_default(),
            });
        }
        out
    }
}
