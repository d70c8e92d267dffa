//! Flows become "who sent how much to whom". Outbound = bytes an internal
//! address sent to an external one, whoever initiated the flow. Only outer flows
//! count (a tunnel's inner packets are inside bytes already counted once).

pub mod netscope;

use crate::model::{DirStats, Flow, NameObservation, Ts};
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
/// largest packet the record can hold, taken as max(1,500, b/pkts) (Ethernet
/// MTU, or the record's mean if larger) and at most b.
pub fn sampled_variance(n: u32, bytes: u64, pkts: u64) -> f64 {
    let n = f64::from(n);
    let b = bytes as f64;
    let mean = if pkts > 0 { b / pkts as f64 } else { b };
    let m = mean.max(1500.0).min(b);
    n * (n - 1.0) * b * m
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

fn add_ts(first: &mut Ts, last: &mut Ts, f: &Flow, fresh: bool) {
    if fresh {
        *first = f.first_ts;
        *last = f.last_ts;
    } else {
        *first = (*first).min(f.first_ts);
        *last = (*last).max(f.last_ts);
    }
}

/// A hash map whose values live in a vector: growing the table moves only the
/// small key/index entries, never the (large) rows.
struct Slots<K, V> {
    index: HashMap<K, u32, FixedState>,
    rows: Vec<V>,
}

impl<K: std::hash::Hash + Eq, V> Slots<K, V> {
    fn new() -> Self {
        Slots {
            index: HashMap::default(),
            rows: Vec::new(),
        }
    }

    /// The row of `k` (made by `make` when new) and whether it is new.
    fn row(&mut self, k: K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let n = self.rows.len() as u32;
        let i = *self.index.entry(k).or_insert(n);
        if i == n {
            self.rows.push(make());
        }
        (&mut self.rows[i as usize], i == n)
    }
}

type NamesOfIp = BTreeMap<(String, &'static str), (Ts, usize, u64)>;

/// Builds the ledger from the flows of all inputs and the names learned.
pub fn build(
    flows: &[Flow],
    names: &[NameObservation],
    scope: &Netscope,
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
    for f in flows.iter().filter(|f| f.key.depth == 0) {
        for (v, src) in [(f.sni(), "sni"), (f.http_host(), "http_host")] {
            if let Some(name) = v {
                let e = names_by_ip
                    .entry(f.resp.ip)
                    .or_default()
                    .entry((name.to_ascii_lowercase(), src))
                    .or_insert((f.first_ts, f.span.input, f.span.first_frame));
                if f.first_ts < e.0 {
                    *e = (f.first_ts, f.span.input, f.span.first_frame);
                }
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

    let mut led = Ledger::default();
    // Hash maps for speed; every table is sorted by a total order before it is used.
    let mut hosts: Slots<IpAddr, (HostRow, HashSet<IpAddr, FixedState>)> = Slots::new();
    let mut dests: Slots<IpAddr, (DestRow, HashSet<IpAddr, FixedState>)> = Slots::new();
    let mut pairs: Slots<(IpAddr, IpAddr), PairRow> = Slots::new();
    let mut allowed_cache: HashMap<IpAddr, Option<String>, FixedState> = HashMap::default();
    // Hashed while flows are added (two lookups per flow), ordered once at the end.
    let mut seen: HashSet<IpAddr, FixedState> = HashSet::default();

    for f in flows {
        if f.key.depth > 0 {
            led.inner_flows += 1;
            continue;
        }
        led.outer_flows += 1;
        if f.direction == crate::model::DirectionReason::First {
            led.uncertain_direction_flows += 1;
        }
        let co = scope.class(f.orig.ip);
        let cr = scope.class(f.resp.ip);
        for (ip, c) in [(f.orig.ip, co), (f.resp.ip, cr)] {
            if c == AddrClass::Internal {
                seen.insert(ip);
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
                led.internal_bytes += f.orig_stats.ip_bytes + f.resp_stats.ip_bytes;
                continue;
            }
            (AddrClass::External, AddrClass::External) => {
                led.external_only_bytes += f.orig_stats.ip_bytes + f.resp_stats.ip_bytes;
                continue;
            }
            _ => continue, // multicast, broadcast, unspecified: does not leave the network
        };
        let allowed_by = allowed_cache
            .entry(dest)
            .or_insert_with(|| {
                let ns: Vec<String> = dest_names(&dest).into_iter().map(|n| n.name).collect();
                allow.matches(dest, &ns)
            })
            .clone();
        led.total_out.add(&out);
        led.total_in.add(&inb);
        if allowed_by.is_none() {
            led.total_out_unallowed.add(&out);
        }

        let ((h, hd), fresh) = hosts.row(host, || {
            (
                HostRow {
                    host,
                    out: DirStats::default(),
                    inb: DirStats::default(),
                    out_unallowed: DirStats::default(),
                    out_unallowed_variance: 0.0,
                    max_sampling: 1,
                    out_in_ratio: None,
                    flows: 0,
                    destinations: 0,
                    first_ts: 0,
                    last_ts: 0,
                },
                HashSet::default(),
            )
        });
        h.out.add(&out);
        h.inb.add(&inb);
        if allowed_by.is_none() {
            h.out_unallowed.add(&out);
            if let Some(x) = f.export
                && x.sampling > 1
            {
                h.out_unallowed_variance += sampled_variance(
                    x.sampling,
                    x.counted_bytes[out_dir],
                    x.counted_pkts[out_dir],
                );
            }
        }
        if let Some(x) = f.export {
            h.max_sampling = h.max_sampling.max(x.sampling);
        }
        h.flows += 1;
        hd.insert(dest);
        add_ts(&mut h.first_ts, &mut h.last_ts, f, fresh);

        let ((d, dh), fresh) = dests.row(dest, || {
            (
                DestRow {
                    dest,
                    names: dest_names(&dest),
                    allowed_by: allowed_by.clone(),
                    out: DirStats::default(),
                    inb: DirStats::default(),
                    flows: 0,
                    hosts: 0,
                    first_ts: 0,
                    last_ts: 0,
                },
                HashSet::default(),
            )
        });
        d.out.add(&out);
        d.inb.add(&inb);
        d.flows += 1;
        dh.insert(host);
        add_ts(&mut d.first_ts, &mut d.last_ts, f, fresh);

        // While flows are added a pair's `dest_ports` are unsorted (sorted and
        // made unique at the end) and its `frames` sorted by input.
        let (p, fresh) = pairs.row((host, dest), || PairRow {
            host,
            dest,
            allowed_by: allowed_by.clone(),
            out: DirStats::default(),
            inb: DirStats::default(),
            flows: 0,
            dest_ports: Vec::new(),
            first_ts: 0,
            last_ts: 0,
            frames: Vec::new(),
        });
        p.out.add(&out);
        p.inb.add(&inb);
        p.flows += 1;
        if f.orig.ip == host {
            let port = (crate::model::proto_name(f.key.proto), f.resp.port);
            let ports = &mut p.dest_ports;
            if ports.last() != Some(&port) {
                ports.push(port);
                // Bounded by the distinct services, not by the flows.
                if ports.len() >= 64 && ports.len().is_power_of_two() {
                    ports.sort_unstable();
                    ports.dedup();
                }
            }
        }
        match p.frames.binary_search_by_key(&f.span.input, |r| r.input) {
            Ok(i) => {
                let r = &mut p.frames[i];
                r.first_frame = r.first_frame.min(f.span.first_frame);
                r.last_frame = r.last_frame.max(f.span.last_frame);
            }
            Err(i) => p.frames.insert(
                i,
                FrameRef {
                    input: f.span.input,
                    first_frame: f.span.first_frame,
                    last_frame: f.span.last_frame,
                },
            ),
        }
        add_ts(&mut p.first_ts, &mut p.last_ts, f, fresh);
    }

    led.internal_hosts_seen = seen.into_iter().collect();
    led.hosts = hosts
        .rows
        .into_iter()
        .map(|(mut h, d)| {
            h.destinations = d.len() as u64;
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
    led.destinations = dests
        .rows
        .into_iter()
        .map(|(mut d, h)| {
            d.hosts = h.len() as u64;
            d
        })
        .collect();
    led.destinations.sort_by(|a, b| {
        b.out
            .bytes
            .cmp(&a.out.bytes)
            .then(b.out.ip_bytes.cmp(&a.out.ip_bytes))
            .then(a.dest.cmp(&b.dest))
    });
    led.pairs = pairs
        .rows
        .into_iter()
        .map(|mut p| {
            p.dest_ports.sort_unstable();
            p.dest_ports.dedup();
            p
        })
        .collect();
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
