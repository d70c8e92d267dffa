//! D13 internal_staging: one internal host collects data from several others and
//! then sends data out (fan-in, then egress).

use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::{Keyed, mb};
use crate::attribution::netscope::AddrClass;
use crate::model::Flow;
use foldhash::fast::FixedState;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A source counts when it sent the staging host at least 1 MB.
pub const SOURCE_BYTES: u64 = 1_000_000;
/// At least three internal sources.
pub const SOURCES: usize = 3;
/// And the staging host sends at least 10 MB out afterwards.
pub const OUT_BYTES: u64 = 10_000_000;

/// Bytes internal hosts sent to other internal hosts: (sender, receiver) → (bytes,
/// first ts), gathered as flows pass (found by hash; sorted when asked for).
#[derive(Default)]
pub struct InternalTransfers {
    pairs: Keyed<(IpAddr, IpAddr), (u64, i64)>,
}

impl InternalTransfers {
    /// `ob`: the flow's outbound view; a flow that crosses the boundary is not
    /// internal (and needs no address lookups here).
    pub fn observe(&mut self, cx: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        if f.key.depth != 0
            || ob.is_some()
            || cx.netscope.class(f.orig.ip) != AddrClass::Internal
            || cx.netscope.class(f.resp.ip) != AddrClass::Internal
        {
            return;
        }
        for (from, to, b) in [
            (f.orig.ip, f.resp.ip, f.orig_stats.bytes),
            (f.resp.ip, f.orig.ip, f.resp_stats.bytes),
        ] {
            if b > 0 {
                // A pair is entered with bytes only: no bytes yet = new.
                let e = self.pairs.entry((from, to));
                e.1 = if e.0 == 0 {
                    f.first_ts
                } else {
                    e.1.min(f.first_ts)
                };
                e.0 += b;
            }
        }
    }

    pub fn merge(&mut self, o: InternalTransfers) {
        self.pairs.merge(o.pairs, |a, b| {
            a.0 += b.0;
            a.1 = a.1.min(b.1);
        });
    }

    /// (sender, receiver) → (bytes, first ts), by sender and receiver.
    pub fn into_map(self) -> BTreeMap<(IpAddr, IpAddr), (u64, i64)> {
        self.pairs.into_sorted().into_iter().collect()
    }
}

pub struct Staging;

impl Detector for Staging {
    fn code(&self) -> &'static str {
        "D13"
    }
    fn name(&self) -> &'static str {
        "internal_staging"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Finds internal hosts that received at least 1 MB each from three or more other internal \
hosts and sent at least 10 MB to non-allowlisted external destinations after the first of \
those transfers began. Flags them. Independently of this flag, a detector that fires on a \
host outside the scope becomes a contradiction of the claim when a host in scope sent that \
host at least 1 MB before (it is then a staging host feeding the exfiltration).\n\n\
## Why it matters\n\
Attackers collect data on one machine (SMB reads, archives) and exfiltrate from there; the \
data-holding server itself then never talks to the internet.\n\n\
## Defaults and sources\n\
Fan-in then egress: methodology D13 (design choice; thresholds ours). Internal traffic is only \
seen when the capture point sees it (a core switch SPAN, not an internet uplink).\n\n\
## Known false positives\n\
File servers that also sync to the cloud, backup servers, jump hosts."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<InternalTransfers>::default()
    }
}

impl Pass for InternalTransfers {
    fn observe(&mut self, cx: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        InternalTransfers::observe(self, cx, f, ob);
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        InternalTransfers::merge(self, *super::super::downcast::<InternalTransfers>(other));
    }

    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        let mut fan_in: BTreeMap<IpAddr, Vec<(IpAddr, u64, i64)>> = BTreeMap::new();
        for ((from, to), (b, t)) in self.pairs.into_sorted() {
            if b >= SOURCE_BYTES {
                fan_in.entry(to).or_default().push((from, b, t));
            }
        }
        // Hosts with enough fan-in, and when their first incoming transfer began;
        // then the flows once more for what each sent out after that (few hosts
        // qualify, so nothing per flow is kept for this on the first pass).
        let candidates: HashMap<IpAddr, i64, FixedState> = fan_in
            .iter()
            .filter(|(_, s)| s.len() >= SOURCES)
            .map(|(h, s)| (*h, s.iter().map(|x| x.2).min().unwrap_or(0)))
            .collect();
        // Per candidate and destination: bytes sent after the fan-in began, and
        // the last such flow's end (the allow-list is applied afterwards).
        let mut to_dest: Keyed<(IpAddr, IpAddr), Option<(u64, i64)>> = Keyed::default();
        if !candidates.is_empty() {
            let cx = inp.scope();
            (inp.replay)(&mut |f: &Flow| {
                if let Some((h, dest, o, _, _)) = cx.outbound(f)
                    && let Some(&start) = candidates.get(&h)
                    && f.last_ts >= start
                {
                    let (b, last) = to_dest.entry((h, dest)).get_or_insert((0, start));
                    *b += o.bytes;
                    *last = (*last).max(f.last_ts);
                }
            });
        }
        let mut egress: BTreeMap<IpAddr, (u64, i64)> = BTreeMap::new();
        for ((h, dest), (b, last)) in to_dest
            .into_sorted()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
        {
            if !inp.allowed(dest) {
                let e = egress.entry(h).or_insert((0, last));
                e.0 += b;
                e.1 = e.1.max(last);
            }
        }
        let mut out = Vec::new();
        for (host, sources) in fan_in {
            let Some(&start) = candidates.get(&host) else {
                continue;
            };
            let (sent, last) = egress.get(&host).copied().unwrap_or((0, start));
            if sent < OUT_BYTES {
                continue;
            }
            let collected: u64 = sources.iter().map(|s| s.1).sum();
            out.push(Finding {
                code: Staging.code(),
                name: Staging.name(),
                severity: Severity::Flag,
                host,
                destination: None,
                destination_names: Vec::new(),
                protocol: "internal fan-in, then egress".into(),
                bytes: sent,
                first_ts: start,
                last_ts: last,
                text: format!(
                    "{host} collected {} from {} internal hosts and then sent {} out",
                    mb(collected),
                    sources.len(),
                    mb(sent)
                ),
                text_de: format!(
                    "{host} hat {} von {} internen Hosts gesammelt und danach {} hinausgesendet",
                    mb(collected),
                    sources.len(),
                    mb(sent)
                ),
                metrics: vec![
                    Metric {
                        name: "internal_sources",
                        value: sources.len() as f64,
                        threshold: Some(SOURCES as f64),
                    },
                    Metric {
                        name: "collected_bytes",
                        value: collected as f64,
                        threshold: None,
                    },
                    Metric {
                        name: "sent_out_bytes",
                        value: sent as f64,
                        threshold: Some(OUT_BYTES as f64),
                    },
                ],
                references: Vec::new(),
            });
        }
        out
    }
}
