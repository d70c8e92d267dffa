//! One detector per file. Adding one: a new file with a struct implementing
//! [`super::Detector`], a new code never used before, an entry in
//! [`super::registry`], docs/detectors.md, and a test on real traffic.

pub mod alt_protocol;
pub mod beaconing;
pub mod chunked_upload;
pub mod dns_tunnel;
pub mod exfil_service;
pub mod icmp_tunnel;
pub mod ioc_hit;
pub mod large_outbound;
pub mod new_destination;
pub mod off_hours;
pub mod pcr_shift;
pub mod staging;
pub mod volume_anomaly;

use super::{DetectInput, Finding, FrameSpan, Outbound, Pass, Scope, filter_for};
use crate::model::{Flow, FrameSet, Slots, Ts};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Where a flow stands in the report order: start, input, first frame.
pub(crate) type OrderKey = (Ts, usize, u64);

/// The largest flow of a group: its outbound bytes and order key (the later
/// flow wins a tie, as a maximum over the report order does).
pub(crate) type Largest = (u64, OrderKey);

/// Connections of a pair that D9 and D10 look at one by one: the earliest
/// [`SERIES_CAP`] (by start). Their rules see the series of a pair's first
/// connections; counts and bytes are of all.
pub const SERIES_CAP: usize = 100_000;

/// Start and outbound bytes of the flows of a host and destination: all of
/// them counted, the earliest [`SERIES_CAP`] kept (memory is bounded per pair;
/// which ones are kept does not depend on the order flows arrive in).
#[derive(Default)]
pub(crate) struct Series {
    pts: Vec<(Ts, u64)>,
    /// Flows and their bytes, all of them.
    pub n: u64,
    pub bytes: u64,
}

impl Series {
    pub(crate) fn push(&mut self, start: Ts, bytes: u64) {
        self.n += 1;
        self.bytes += bytes;
        self.pts.push((start, bytes));
        if self.pts.len() >= 2 * SERIES_CAP {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.pts.len() > SERIES_CAP {
            self.pts.select_nth_unstable(SERIES_CAP);
            self.pts.truncate(SERIES_CAP);
        }
    }

    pub(crate) fn merge(&mut self, o: Series) {
        self.n += o.n;
        self.bytes += o.bytes;
        self.pts.extend(o.pts);
        if self.pts.len() >= 2 * SERIES_CAP {
            self.trim();
        }
    }

    /// The kept points (the earliest [`SERIES_CAP`]), sorted.
    pub(crate) fn points(mut self) -> Vec<(Ts, u64)> {
        self.trim();
        self.pts.sort_unstable();
        self.pts
    }
}

pub(crate) fn order_key(f: &Flow) -> OrderKey {
    (f.first_ts, f.span.input, f.span.first_frame)
}

/// Adds map `b` into `a`, combining the values of keys in both with `f`.
pub(crate) fn merge_map<K: Ord, V>(
    a: &mut BTreeMap<K, V>,
    b: BTreeMap<K, V>,
    f: impl Fn(&mut V, V),
) {
    for (k, v) in b {
        match a.entry(k) {
            std::collections::btree_map::Entry::Occupied(mut e) => f(e.get_mut(), v),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(v);
            }
        }
    }
}

/// A map from keys to values for the states of detectors: found by hash while
/// flows pass ([`Slots`]), sorted by key once when the detector decides.
pub(crate) struct Keyed<K, V>(Slots<K, (K, V)>);

impl<K, V> Default for Keyed<K, V> {
    fn default() -> Self {
        Keyed(Slots::default())
    }
}

impl<K: std::hash::Hash + Eq + Ord + Copy, V: Default> Keyed<K, V> {
    pub(crate) fn entry(&mut self, k: K) -> &mut V {
        &mut self.0.row(k, || (k, V::default())).1
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.0.get(k).map(|r| &r.1)
    }

    /// (key, value) in the order keys were first seen.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.0.rows().iter()
    }

    /// Adds `o` into this map, combining the values of keys in both with `f`.
    pub(crate) fn merge(&mut self, o: Keyed<K, V>, f: impl Fn(&mut V, V)) {
        for (k, v) in o.0.into_rows() {
            self.0.add(k, (k, v), |a, b| f(&mut a.1, b.1));
        }
    }

    /// The rows, sorted by key.
    pub(crate) fn into_sorted(self) -> Vec<(K, V)> {
        let mut rows = self.0.into_rows();
        rows.sort_unstable_by_key(|r| r.0);
        rows
    }
}

/// Per host and destination, the series of flows the host originated and what
/// they cite (the state of D9 and D10, which differ in the flows they add).
#[derive(Default)]
pub(crate) struct PairSeries(Keyed<(IpAddr, IpAddr), (Series, Seen)>);

impl PairSeries {
    pub(crate) fn add(&mut self, host: IpAddr, dest: IpAddr, f: &Flow) {
        let e = self.0.entry((host, dest));
        e.0.push(f.first_ts, f.orig_stats.bytes);
        e.1.add(f);
    }

    pub(crate) fn merge(&mut self, o: PairSeries) {
        self.0.merge(o.0, |a, b| {
            a.0.merge(b.0);
            a.1.merge(&b.1);
        });
    }

    pub(crate) fn into_sorted(self) -> Vec<((IpAddr, IpAddr), (Series, Seen))> {
        self.0.into_sorted()
    }
}

/// The state of a rule that looks at no flow itself: it decides from what the
/// other stages gathered (the ledger's rows, the DNS aggregates).
pub(crate) struct AtEnd(pub(crate) fn(&DetectInput<'_>) -> Vec<Finding>);

impl Pass for AtEnd {
    fn observe(&mut self, _: &Scope<'_>, _: &Flow, _: Option<Outbound>) {}

    fn merge(&mut self, _: Box<dyn Pass>) {}

    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        (self.0)(inp)
    }
}

/// Bytes and flows seen, combined.
pub(crate) fn add_seen(a: &mut (u64, Seen), b: (u64, Seen)) {
    a.0 += b.0;
    a.1.merge(&b.1);
}

/// What a finding about a host and a destination cites of the flows behind it,
/// gathered flow by flow: how many, their time range, the frame (or record)
/// range per input, and the protocol and port of the first flow (report order).
#[derive(Clone, Debug)]
pub struct Seen {
    pub flows: u64,
    pub first_ts: Ts,
    pub last_ts: Ts,
    frames: FrameSet,
    /// Order key (start, input, first frame) of the first flow, its protocol and
    /// responder port.
    first: OrderKey,
    pub proto: u8,
    pub port: u16,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            flows: 0,
            first_ts: Ts::MAX,
            last_ts: Ts::MIN,
            frames: FrameSet::default(),
            first: (Ts::MAX, usize::MAX, u64::MAX),
            proto: 0,
            port: 0,
        }
    }
}

impl Seen {
    pub fn add(&mut self, f: &Flow) {
        self.flows += 1;
        self.first_ts = self.first_ts.min(f.first_ts);
        self.last_ts = self.last_ts.max(f.last_ts);
        let s = f.span;
        self.frames.add(s.input, s.first_frame, s.last_frame);
        let k = order_key(f);
        if k < self.first {
            self.first = k;
            self.proto = f.key.proto;
            self.port = f.resp.port;
        }
    }

    pub fn merge(&mut self, o: &Seen) {
        self.flows += o.flows;
        self.first_ts = self.first_ts.min(o.first_ts);
        self.last_ts = self.last_ts.max(o.last_ts);
        self.frames.merge(&o.frames);
        if o.first < self.first {
            self.first = o.first;
            self.proto = o.proto;
            self.port = o.port;
        }
    }

    /// What the ledger's row of a host and destination shows of its flows
    /// (all flows of the pair; the first flow's protocol is not known there).
    pub fn of_pair(p: &crate::attribution::PairRow) -> Seen {
        Seen {
            flows: p.flows,
            first_ts: p.first_ts,
            last_ts: p.last_ts,
            frames: {
                let mut s = FrameSet::default();
                for r in &p.frames {
                    s.add(r.input, r.first_frame, r.last_frame);
                }
                s
            },
            ..Seen::default()
        }
    }

    /// First and last timestamp, (0, 0) when no flow was seen.
    pub fn range(&self) -> (Ts, Ts) {
        if self.flows == 0 {
            (0, 0)
        } else {
            (self.first_ts, self.last_ts)
        }
    }

    /// `proto/port` of the first flow, e.g. `tcp/443`.
    pub fn protocol(&self) -> String {
        format!("{}/{}", crate::model::proto_name(self.proto), self.port)
    }

    /// Frame spans (one per input), the first `max` inputs.
    pub fn spans(&self, host: IpAddr, dest: IpAddr, max: usize) -> Vec<FrameSpan> {
        self.frames
            .iter()
            .take(max)
            .map(|(input, a, b)| FrameSpan {
                input,
                first_frame: a,
                last_frame: b,
                display_filter: filter_for(host, dest),
            })
            .collect()
    }
}

impl super::Finding {
    /// The parts of a finding about a host and a destination that follow from
    /// its flows: names, time range and frame references. Detectors fill in
    /// severity, protocol, bytes, texts and metrics.
    pub(crate) fn for_pair(
        det: &dyn super::Detector,
        inp: &super::DetectInput<'_>,
        host: IpAddr,
        dest: IpAddr,
        seen: &Seen,
    ) -> super::Finding {
        let (first_ts, last_ts) = seen.range();
        super::Finding {
            code: det.code(),
            name: det.name(),
            severity: super::Severity::Fire,
            host,
            destination: Some(dest),
            destination_names: inp.names_of(dest),
            protocol: String::new(),
            bytes: 0,
            first_ts,
            last_ts,
            text: String::new(),
            text_de: String::new(),
            metrics: Vec::new(),
            references: seen.spans(host, dest, 4),
        }
    }
}

pub(crate) fn mb(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The series keeps the earliest SERIES_CAP points whatever the order of
    /// arrival and of merging, and counts all.
    #[test]
    fn series_keeps_the_earliest_points() {
        let n = 2 * SERIES_CAP as u64 + 12_345;
        // A fixed permutation of 0..n (multiplication by a unit modulo n).
        let order = |i: u64| (i * 7_919) % n;
        let mut one = Series::default();
        let (mut a, mut b) = (Series::default(), Series::default());
        for i in 0..n {
            let t = order(i) as Ts;
            one.push(t, 10);
            if i % 3 == 0 {
                a.push(t, 10)
            } else {
                b.push(t, 10)
            }
        }
        b.merge(a);
        assert_eq!((one.n, one.bytes), (n, 10 * n));
        assert_eq!((b.n, b.bytes), (n, 10 * n));
        let (p1, p2) = (one.points(), b.points());
        assert_eq!(p1.len(), SERIES_CAP);
        assert_eq!(p1, p2);
        assert_eq!(p1.first(), Some(&(0, 10)));
        assert_eq!(p1.last(), Some(&(SERIES_CAP as Ts - 1, 10)));
    }
}
