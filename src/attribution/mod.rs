//! Flows become "who sent how much to whom". Outbound = bytes an internal
//! address sent to an external one, whoever initiated the flow. Only outer flows
//! count (a tunnel's inner packets are inside bytes already counted once).

pub mod netscope;

use crate::model::{DirStats, Flow, NameObservation, Slots, Ts};
use foldhash::fast::FixedState;
use netscope::{AddrClass, Allowlist, Netscope};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

/// A name of a destination and how it was learned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DestName {
    pub name: String,
    /// `dns` (an answer seen in the capture), `sni` (TLS ClientHello) or `http_host`.
    pub source: &'static str,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub first_ts: Ts,
    pub input: usize,
    pub frame: u64,
}

/// Variance of the Horvitz-Thompson estimate N·b of one sampled record that
/// counted `bytes` in `pkts` packets: N(N-1)·Σ b_i² (methodology 3.3). The
/// per-packet sizes are not in the record; Σ b_i² is bounded by b·m with m the
/// largest packet the record can hold, taken as max(1,500, ⌈b/pkts⌉) (Ethernet
/// MTU, or the record's mean if larger) and at most b. An integer, so sums over
/// records do not depend on the order they are added in.
pub fn sampled_variance(n: u32, bytes: u64, pkts: u64) -> u128 {
    let n = u128::from(n);
    let b = u128::from(bytes);
    let mean = if pkts > 0 {
        b.div_ceil(u128::from(pkts))
    } else {
        b
    };
    let m = mean.max(1500).min(b);
    (n * n.saturating_sub(1))
        .saturating_mul(b)
        .saturating_mul(m)
}

#[derive(Clone, Debug, Serialize)]
pub struct HostRow {
    pub host: IpAddr,
    pub out: DirStats,
    #[serde(rename = "in")]
    pub inb: DirStats,
    /// Outbound to destinations not on the allowlist.
    pub out_unallowed: DirStats,
    /// Sampled flow exports: estimated variance of `out_unallowed.ip_bytes`
    /// (Horvitz-Thompson, methodology 3.3), 0 for unsampled data.
    pub out_unallowed_variance: f64,
    /// Largest sampling interval among its outbound flow records (1 = unsampled).
    pub max_sampling: u32,
    /// Outbound over inbound application bytes (None when nothing came in).
    pub out_in_ratio: Option<f64>,
    pub flows: u64,
    pub destinations: u64,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub first_ts: Ts,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub last_ts: Ts,
}

#[derive(Clone, Debug, Serialize)]
pub struct DestRow {
    pub dest: IpAddr,
    pub names: Vec<DestName>,
    /// The allowlist entry that covers this destination, if any.
    pub allowed_by: Option<String>,
    /// Bytes internal hosts sent to it.
    pub out: DirStats,
    /// Bytes it sent to internal hosts.
    #[serde(rename = "in")]
    pub inb: DirStats,
    pub flows: u64,
    pub hosts: u64,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub first_ts: Ts,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub last_ts: Ts,
}

/// Evidence reference: where the packets of a pair are.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct FrameRef {
    pub input: usize,
    pub first_frame: u64,
    pub last_frame: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PairRow {
    pub host: IpAddr,
    pub dest: IpAddr,
    pub allowed_by: Option<String>,
    pub out: DirStats,
    #[serde(rename = "in")]
    pub inb: DirStats,
    pub flows: u64,
    /// Responder ports of flows the internal host originated (services used).
    pub dest_ports: Vec<(&'static str, u16)>,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub first_ts: Ts,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub last_ts: Ts,
    /// Frame ranges per input, for evidence.
    pub frames: Vec<FrameRef>,
    /// While flows pass: Horvitz-Thompson variance of `out.ip_bytes` (sampled
    /// records) and the largest sampling interval (both go to the host's row).
    #[serde(skip)]
    variance: u128,
    #[serde(skip)]
    max_sampling: u32,
}

impl PairRow {
    fn new(host: IpAddr, dest: IpAddr) -> Self {
        PairRow {
            host,
            dest,
            allowed_by: None,
            out: DirStats::default(),
            inb: DirStats::default(),
            flows: 0,
            dest_ports: Vec::new(),
            first_ts: Ts::MAX,
            last_ts: Ts::MIN,
            frames: Vec::new(),
            variance: 0,
            max_sampling: 1,
        }
    }

    /// Ports are unsorted while flows are added (sorted and made unique at the end).
    fn add_port(&mut self, port: (&'static str, u16)) {
        let ports = &mut self.dest_ports;
        if ports.last() != Some(&port) {
            // Most pairs use one service: no room for more until needed.
            ports.reserve_exact(1);
            ports.push(port);
            // Bounded by the distinct services, not by the flows.
            if ports.len() >= 64 && ports.len().is_power_of_two() {
                ports.sort_unstable();
                ports.dedup();
            }
        }
    }

    fn add_frames(&mut self, input: usize, first_frame: u64, last_frame: u64) {
        match self.frames.binary_search_by_key(&input, |r| r.input) {
            Ok(i) => {
                let r = &mut self.frames[i];
                r.first_frame = r.first_frame.min(first_frame);
                r.last_frame = r.last_frame.max(last_frame);
            }
            Err(i) => {
                self.frames.reserve_exact(1);
                self.frames.insert(
                    i,
                    FrameRef {
                        input,
                        first_frame,
                        last_frame,
                    },
                );
            }
        }
    }

    fn merge(&mut self, o: PairRow) {
        self.out.add(&o.out);
        self.inb.add(&o.inb);
        self.flows += o.flows;
        for p in o.dest_ports {
            self.add_port(p);
        }
        self.first_ts = self.first_ts.min(o.first_ts);
        self.last_ts = self.last_ts.max(o.last_ts);
        for r in o.frames {
            self.add_frames(r.input, r.first_frame, r.last_frame);
        }
        self.variance += o.variance;
        self.max_sampling = self.max_sampling.max(o.max_sampling);
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct NameRow {
    pub name: String,
    pub sources: Vec<&'static str>,
    pub dests: Vec<IpAddr>,
    pub out: DirStats,
    pub hosts: u64,
}

/// The outbound ledger.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ledger {
    pub hosts: Vec<HostRow>,
    pub destinations: Vec<DestRow>,
    pub pairs: Vec<PairRow>,
    pub names: Vec<NameRow>,
    /// Totals of internal → external.
    pub total_out: DirStats,
    pub total_in: DirStats,
    pub total_out_unallowed: DirStats,
    /// Bytes between two internal hosts (not outbound).
    pub internal_bytes: u64,
    /// Bytes between two external addresses (transit; not attributed).
    pub external_only_bytes: u64,
    /// Flows whose originator came only from the first-packet rule.
    pub uncertain_direction_flows: u64,
    pub outer_flows: u64,
    pub inner_flows: u64,
    /// Every internal address seen in any outer flow.
    pub internal_hosts_seen: BTreeSet<IpAddr>,
}

/// Where a name was first seen: (timestamp, input, frame).
type NameSeen = (Ts, usize, u64);

type NamesOfIp = BTreeMap<(String, &'static str), NameSeen>;

/// Server names flows carry (TLS SNI, HTTP Host), per responder address, with
/// where each was first seen; gathered as flows pass.
#[derive(Default)]
pub struct ServerNames {
    by_ip: HashMap<IpAddr, NamesOfIp, FixedState>,
}

impl ServerNames {
    pub fn observe(&mut self, f: &Flow) {
        if f.key.depth != 0 {
            return;
        }
        for (v, src) in [(f.sni(), "sni"), (f.http_host(), "http_host")] {
            if let Some(name) = v {
                let at = (f.first_ts, f.span.input, f.span.first_frame);
                let e = self
                    .by_ip
                    .entry(f.resp.ip)
                    .or_default()
                    .entry((name.to_ascii_lowercase(), src))
                    .or_insert(at);
                *e = (*e).min(at);
            }
        }
    }

    // Order-free: each entry keeps the earliest sighting.
    #[allow(clippy::iter_over_hash_type)]
    pub fn merge(&mut self, o: ServerNames) {
        for (ip, m) in o.by_ip {
            let mine = self.by_ip.entry(ip).or_default();
            for (k, at) in m {
                let e = mine.entry(k).or_insert(at);
                *e = (*e).min(at);
            }
        }
    }

    /// (address, name, source) in the order flows first showed them (report
    /// order of flows; SNI before Host within a flow).
    pub fn in_order(&self) -> Vec<(IpAddr, &str, &'static str)> {
        let mut v: Vec<(NameSeen, u8, IpAddr, &str, &'static str)> = self
            .by_ip
            .iter()
            .flat_map(|(ip, m)| {
                m.iter()
                    .map(|((n, src), at)| (*at, u8::from(*src != "sni"), *ip, n.as_str(), *src))
            })
            .collect();
        v.sort();
        v.into_iter().map(|x| (x.2, x.3, x.4)).collect()
    }
}

/// The ledger while flows pass: per host and destination aggregates and the
/// totals that need no names; [`LedgerFold::finish`] adds names and the
/// allow-list and builds the tables.
#[derive(Default)]
pub struct LedgerFold {
    /// Rows found by hash; the rows become the ledger's pair table as they are.
    pairs: Slots<(IpAddr, IpAddr), PairRow>,
    internal_bytes: u64,
    external_only_bytes: u64,
    uncertain_direction_flows: u64,
    outer_flows: u64,
    inner_flows: u64,
    seen: HashSet<IpAddr, FixedState>,
}

impl LedgerFold {
    pub fn observe(&mut self, scope: &Netscope, f: &Flow) {
        if f.key.depth > 0 {
            self.inner_flows += 1;
            return;
        }
        self.outer_flows += 1;
        if f.direction == crate::model::DirectionReason::First {
            self.uncertain_direction_flows += 1;
        }
        let co = scope.class(f.orig.ip);
        let cr = scope.class(f.resp.ip);
        for (ip, c) in [(f.orig.ip, co), (f.resp.ip, cr)] {
            if c == AddrClass::Internal {
                self.seen.insert(ip);
            }
        }
        // Which side is the internal host, which the external destination?
        let (host, dest, out, inb, out_dir) = match (co, cr) {
            (AddrClass::Internal, AddrClass::External) => {
                (f.orig.ip, f.resp.ip, f.orig_stats, f.resp_stats, 0)
            }
            (AddrClass::External, AddrClass::Internal) => {
                (f.resp.ip, f.orig.ip, f.resp_stats, f.orig_stats, 1)
            }
            (AddrClass::Internal, AddrClass::Internal) => {
                self.internal_bytes += f.orig_stats.ip_bytes + f.resp_stats.ip_bytes;
                return;
            }
            (AddrClass::External, AddrClass::External) => {
                self.external_only_bytes += f.orig_stats.ip_bytes + f.resp_stats.ip_bytes;
                return;
            }
            _ => return, // multicast, broadcast, unspecified: does not leave the network
        };
        let p = self.pairs.row((host, dest), || PairRow::new(host, dest));
        p.out.add(&out);
        p.inb.add(&inb);
        p.flows += 1;
        if let Some(x) = f.export {
            p.max_sampling = p.max_sampling.max(x.sampling);
            if x.sampling > 1 {
                p.variance += sampled_variance(
                    x.sampling,
                    x.counted_bytes[out_dir],
                    x.counted_pkts[out_dir],
                );
            }
        }
        if f.orig.ip == host {
            p.add_port((crate::model::proto_name(f.key.proto), f.resp.port));
        }
        p.add_frames(f.span.input, f.span.first_frame, f.span.last_frame);
        p.first_ts = p.first_ts.min(f.first_ts);
        p.last_ts = p.last_ts.max(f.last_ts);
    }

    /// Order-free: sums, minima, maxima; ports and frames are sorted.
    pub fn merge(&mut self, o: LedgerFold) {
        for p in o.pairs.into_rows() {
            self.pairs.add((p.host, p.dest), p, PairRow::merge);
        }
        self.internal_bytes += o.internal_bytes;
        self.external_only_bytes += o.external_only_bytes;
        self.uncertain_direction_flows += o.uncertain_direction_flows;
        self.outer_flows += o.outer_flows;
        self.inner_flows += o.inner_flows;
        self.seen.extend(o.seen);
    }

    /// The ledger, with the names learned (DNS answers and the flows' server
    /// names) and the allow-list applied.
    pub fn finish(
        self,
        names: &[NameObservation],
        server_names: &ServerNames,
        allow: &Allowlist,
    ) -> Ledger {
        build(self, names, server_names, allow)
    }
}

/// Builds the ledger from the folded flows of all inputs and the names learned.
// Order-free: rows are sums per host and destination, each table is sorted by
// a total order at the end.
#[allow(clippy::iter_over_hash_type)]
fn build(
    fold: LedgerFold,
    names: &[NameObservation],
    server_names: &ServerNames,
    allow: &Allowlist,
) -> Ledger {
    // Names per IP: DNS answers, plus SNI and HTTP Host of flows to that IP.
    let mut names_by_ip: HashMap<IpAddr, NamesOfIp, FixedState> = HashMap::default();
    for n in names {
        let e = names_by_ip
            .entry(n.ip)
            .or_default()
            .entry((n.name.to_ascii_lowercase(), n.source))
            .or_insert((n.first_ts, n.input, n.frame));
        if n.first_ts < e.0 {
            *e = (n.first_ts, n.input, n.frame);
        }
    }
    for (ip, m) in &server_names.by_ip {
        let mine = names_by_ip.entry(*ip).or_default();
        for (k, at) in m {
            let e = mine.entry(k.clone()).or_insert(*at);
            if at.0 < e.0 {
                *e = *at;
            }
        }
    }
    let dest_names = |ip: &IpAddr| -> Vec<DestName> {
        names_by_ip
            .get(ip)
            .map(|m| {
                m.iter()
                    .map(|((name, source), (ts, input, frame))| DestName {
                        name: name.clone(),
                        source,
                        first_ts: *ts,
                        input: *input,
                        frame: *frame,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };

    let mut led = Ledger {
        internal_bytes: fold.internal_bytes,
        external_only_bytes: fold.external_only_bytes,
        uncertain_direction_flows: fold.uncertain_direction_flows,
        outer_flows: fold.outer_flows,
        inner_flows: fold.inner_flows,
        internal_hosts_seen: fold.seen.into_iter().collect(),
        ..Ledger::default()
    };
    let mut allowed_cache: HashMap<IpAddr, Option<String>, FixedState> = HashMap::default();
    let mut hosts: HashMap<IpAddr, HostRow, FixedState> = HashMap::default();
    let mut host_variance: HashMap<IpAddr, u128, FixedState> = HashMap::default();
    let mut dests: HashMap<IpAddr, DestRow, FixedState> = HashMap::default();
    let mut pairs = fold.pairs.into_rows();
    for p in &mut pairs {
        let (host, dest) = (p.host, p.dest);
        let allowed_by = allowed_cache
            .entry(dest)
            .or_insert_with(|| {
                let ns: Vec<String> = dest_names(&dest).into_iter().map(|n| n.name).collect();
                allow.matches(dest, &ns)
            })
            .clone();
        led.total_out.add(&p.out);
        led.total_in.add(&p.inb);
        let h = hosts.entry(host).or_insert_with(|| HostRow {
            host,
            out: DirStats::default(),
            inb: DirStats::default(),
            out_unallowed: DirStats::default(),
            out_unallowed_variance: 0.0,
            max_sampling: 1,
            out_in_ratio: None,
            flows: 0,
            destinations: 0,
            first_ts: Ts::MAX,
            last_ts: Ts::MIN,
        });
        h.out.add(&p.out);
        h.inb.add(&p.inb);
        if allowed_by.is_none() {
            led.total_out_unallowed.add(&p.out);
            h.out_unallowed.add(&p.out);
            *host_variance.entry(host).or_default() += p.variance;
        }
        h.max_sampling = h.max_sampling.max(p.max_sampling);
        h.flows += p.flows;
        h.destinations += 1;
        h.first_ts = h.first_ts.min(p.first_ts);
        h.last_ts = h.last_ts.max(p.last_ts);

        let d = dests.entry(dest).or_insert_with(|| DestRow {
            dest,
            names: dest_names(&dest),
            allowed_by: allowed_by.clone(),
            out: DirStats::default(),
            inb: DirStats::default(),
            flows: 0,
            hosts: 0,
            first_ts: Ts::MAX,
            last_ts: Ts::MIN,
        });
        d.out.add(&p.out);
        d.inb.add(&p.inb);
        d.flows += p.flows;
        d.hosts += 1;
        d.first_ts = d.first_ts.min(p.first_ts);
        d.last_ts = d.last_ts.max(p.last_ts);

        p.dest_ports.sort_unstable();
        p.dest_ports.dedup();
        p.allowed_by = allowed_by;
    }
    led.pairs = pairs;
    led.hosts = hosts
        .into_values()
        .map(|mut h| {
            h.out_unallowed_variance = host_variance.get(&h.host).copied().unwrap_or(0) as f64;
            h.out_in_ratio = (h.inb.bytes > 0).then(|| h.out.bytes as f64 / h.inb.bytes as f64);
            h
        })
        .collect();
    led.hosts.sort_by(|a, b| {
        b.out
            .bytes
            .cmp(&a.out.bytes)
            .then(b.out.ip_bytes.cmp(&a.out.ip_bytes))
            .then(a.host.cmp(&b.host))
    });
    led.destinations = dests.into_values().collect();
    led.destinations.sort_by(|a, b| {
        b.out
            .bytes
            .cmp(&a.out.bytes)
            .then(b.out.ip_bytes.cmp(&a.out.ip_bytes))
            .then(a.dest.cmp(&b.dest))
    });
    led.pairs.sort_by(|a, b| {
        b.out
            .bytes
            .cmp(&a.out.bytes)
            .then(b.out.ip_bytes.cmp(&a.out.ip_bytes))
            .then((a.host, a.dest).cmp(&(b.host, b.dest)))
    });
    // Per destination name.
    let mut dest_hosts: BTreeMap<IpAddr, Vec<IpAddr>> = BTreeMap::new();
    for p in &led.pairs {
        dest_hosts.entry(p.dest).or_default().push(p.host);
    }
    let mut by_name: BTreeMap<String, (NameRow, BTreeSet<IpAddr>)> = BTreeMap::new();
    for d in &led.destinations {
        for n in &d.names {
            let (row, hs) = by_name.entry(n.name.clone()).or_insert_with(|| {
                (
                    NameRow {
                        name: n.name.clone(),
                        ..Default::default()
                    },
                    BTreeSet::new(),
                )
            });
            if !row.sources.contains(&n.source) {
                row.sources.push(n.source);
            }
            if !row.dests.contains(&d.dest) {
                row.dests.push(d.dest);
                row.out.add(&d.out);
            }
            if let Some(h) = dest_hosts.get(&d.dest) {
                hs.extend(h.iter().copied());
            }
        }
    }
    led.names = by_name
        .into_values()
        .map(|(mut r, hs)| {
            r.hosts = hs.len() as u64;
            r.sources.sort();
            r.dests.sort();
            r
        })
        .collect();
    led.names
        .sort_by(|a, b| b.out.bytes.cmp(&a.out.bytes).then(a.name.cmp(&b.name)));
    led
}
