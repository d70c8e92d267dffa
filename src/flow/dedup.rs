//! Flows reported by more than one exporter (a router and a firewall on the same
//! path both export it): counted once. Records are duplicates when they have the
//! same 5-tuple and direction, come from different exporters and overlap in
//! time; the record of the preferred exporter is kept (`--exporter-priority`
//! order, then the lower exporter address), the others are dropped and summed
//! per exporter so the report can say how much was deduplicated.

use crate::model::{ExporterTotals, Flow, FlowKey, Ts};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Counts a flow's record and IP bytes on its exporter (flows without one are
/// not counted).
pub fn count_exporter(totals: &mut BTreeMap<IpAddr, ExporterTotals>, f: &Flow) {
    let Some(e) = f.export.and_then(|x| x.exporter) else {
        return;
    };
    let t = totals.entry(e).or_insert_with(|| ExporterTotals {
        exporter: e,
        records: 0,
        ip_bytes: 0,
        duplicate_records: 0,
        duplicate_ip_bytes: 0,
    });
    t.records += 1;
    t.ip_bytes += f.orig_stats.ip_bytes + f.resp_stats.ip_bytes;
}

/// The exporter's rank under `--exporter-priority`: listed exporters first in
/// their order, then the others; ties broken by the lower address.
fn rank(priority: &[IpAddr], e: IpAddr) -> (usize, IpAddr) {
    (
        priority
            .iter()
            .position(|p| *p == e)
            .unwrap_or(priority.len()),
        e,
    )
}

/// Which members of one group (same 5-tuple and direction; exporter, first
/// and last time) are duplicates: those that overlap in time a member of
/// another, preferred exporter.
fn duplicates(priority: &[IpAddr], members: &[(IpAddr, Ts, Ts)]) -> Vec<bool> {
    members
        .iter()
        .map(|&(e, first, last)| {
            let me = rank(priority, e);
            members
                .iter()
                .any(|&(o, of, ol)| o != e && rank(priority, o) < me && of <= last && first <= ol)
        })
        .collect()
}

/// The part of a flow's group key beside its 5-tuple: whether the originator
/// is the key's `a` side, and which directions carry packets.
fn group_flags(f: &Flow) -> u8 {
    u8::from(f.orig.ip == f.key.a.ip)
        | u8::from(f.orig_stats.pkts > 0) << 1
        | u8::from(f.resp_stats.pkts > 0) << 2
}

/// Finds the duplicates among flows that are not held: sees every export flow
/// once (in the order its input hands them out, which is the same on every
/// read) and keeps a compact entry per flow (88 bytes instead of the flow).
/// The flows of an input's baseline window are numbered (and de-duplicated)
/// apart from its other flows, as the held path de-duplicates the baseline's
/// flows apart from the window's: slot `input` for the window, `inputs +
/// input` for the baseline.
pub struct Planner {
    priority: Vec<IpAddr>,
    entries: Vec<Entry>,
    /// Export flows with an exporter seen so far, per slot.
    seen: Vec<u64>,
}

struct Entry {
    key: FlowKey,
    flags: u8,
    exporter: IpAddr,
    first: Ts,
    last: Ts,
    input: u32,
    ord: u64,
}

impl Planner {
    pub fn new(priority: &[IpAddr], inputs: usize) -> Self {
        Planner {
            priority: priority.to_vec(),
            entries: Vec::new(),
            seen: vec![0; 2 * inputs],
        }
    }

    /// A flow of the investigation (not of a baseline window).
    pub fn add(&mut self, f: &Flow) {
        self.push(f, f.span.input, 0);
    }

    /// A flow of an input's baseline window.
    pub fn add_baseline(&mut self, f: &Flow) {
        self.push(f, self.seen.len() / 2 + f.span.input, 1 << 3);
    }

    fn push(&mut self, f: &Flow, slot: usize, part: u8) {
        let Some(exporter) = f.export.and_then(|x| x.exporter) else {
            return;
        };
        if f.span.input >= self.seen.len() / 2 {
            return;
        }
        let seen = &mut self.seen[slot];
        self.entries.push(Entry {
            key: f.key,
            flags: group_flags(f) | part,
            exporter,
            first: f.first_ts,
            last: f.last_ts,
            input: slot as u32,
            ord: *seen,
        });
        *seen += 1;
    }

    /// Planners that each saw other inputs' flows, as one.
    pub fn join(parts: Vec<Planner>) -> Planner {
        let mut all = Planner {
            priority: parts
                .first()
                .map(|p| p.priority.clone())
                .unwrap_or_default(),
            entries: Vec::with_capacity(parts.iter().map(|p| p.entries.len()).sum()),
            seen: vec![0; parts.iter().map(|p| p.seen.len()).max().unwrap_or(0)],
        };
        for p in parts {
            all.entries.extend(p.entries);
            for (a, b) in all.seen.iter_mut().zip(p.seen) {
                *a += b;
            }
        }
        all
    }

    /// The duplicates: per input, the numbers of its export flows to drop.
    pub fn finish(mut self) -> Plan {
        let mut drops = vec![Vec::new(); self.seen.len()];
        self.entries.sort_unstable_by(|x, y| {
            (x.key, x.flags, x.input, x.ord).cmp(&(y.key, y.flags, y.input, y.ord))
        });
        let mut start = 0;
        while start < self.entries.len() {
            let e = &self.entries[start];
            let end = start
                + self.entries[start..]
                    .iter()
                    .take_while(|x| x.key == e.key && x.flags == e.flags)
                    .count();
            let group = &self.entries[start..end];
            if group.len() > 1 {
                let members: Vec<(IpAddr, Ts, Ts)> = group
                    .iter()
                    .map(|x| (x.exporter, x.first, x.last))
                    .collect();
                for (x, dup) in group.iter().zip(duplicates(&self.priority, &members)) {
                    if dup {
                        drops[x.input as usize].push(x.ord);
                    }
                }
            }
            start = end;
        }
        for d in &mut drops {
            d.sort_unstable();
        }
        Plan { drops }
    }
}

/// What [`Planner`] found: which export flows of each input are duplicates.
pub struct Plan {
    drops: Vec<Vec<u64>>,
}

impl Plan {
    /// Export flows dropped as duplicates.
    pub fn len(&self) -> usize {
        self.drops.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Picks the duplicates out of input `input`'s flows read again in the
    /// same order.
    pub fn filter(&self, input: usize) -> Filter<'_> {
        self.slot(input)
    }

    /// The same for the flows of input `input`'s baseline window.
    pub fn baseline_filter(&self, input: usize) -> Filter<'_> {
        self.slot(self.drops.len() / 2 + input)
    }

    fn slot(&self, slot: usize) -> Filter<'_> {
        Filter {
            drops: self.drops.get(slot).map_or(&[], Vec::as_slice),
            next: 0,
            seen: 0,
        }
    }
}

/// One input's duplicates, told flow by flow (see [`Plan::filter`]).
pub struct Filter<'p> {
    drops: &'p [u64],
    next: usize,
    seen: u64,
}

impl Filter<'_> {
    /// Whether `f`, the input's next flow, is a duplicate; if so it is
    /// counted on its exporter in `totals` (records, IP bytes, duplicates).
    pub fn is_duplicate(
        &mut self,
        f: &Flow,
        totals: &mut BTreeMap<IpAddr, ExporterTotals>,
    ) -> bool {
        if f.export.and_then(|x| x.exporter).is_none() {
            return false;
        }
        let n = self.seen;
        self.seen += 1;
        if self.drops.get(self.next) != Some(&n) {
            return false;
        }
        self.next += 1;
        count_exporter(totals, f);
        if let Some(t) = f
            .export
            .and_then(|x| x.exporter)
            .and_then(|e| totals.get_mut(&e))
        {
            t.duplicate_records += 1;
            t.duplicate_ip_bytes += f.orig_stats.ip_bytes + f.resp_stats.ip_bytes;
        }
        true
    }
}

/// Adds `more` (totals of other flows, duplicates included) to `totals`.
pub fn add_totals(
    totals: &mut BTreeMap<IpAddr, ExporterTotals>,
    more: impl IntoIterator<Item = ExporterTotals>,
) {
    for m in more {
        let t = totals.entry(m.exporter).or_insert_with(|| ExporterTotals {
            exporter: m.exporter,
            records: 0,
            ip_bytes: 0,
            duplicate_records: 0,
            duplicate_ip_bytes: 0,
        });
        t.records += m.records;
        t.ip_bytes += m.ip_bytes;
        t.duplicate_records += m.duplicate_records;
        t.duplicate_ip_bytes += m.duplicate_ip_bytes;
    }
}

/// Removes duplicate export flows in place (the order of the rest is kept) and
/// returns the per-exporter totals, sorted by exporter address. The flows are
/// held here, so the streaming [`Planner`] numbers them in this order.
pub fn dedup_exporters(flows: &mut Vec<Flow>, priority: &[IpAddr]) -> Vec<ExporterTotals> {
    let mut totals: BTreeMap<IpAddr, ExporterTotals> = BTreeMap::new();
    for f in flows.iter() {
        count_exporter(&mut totals, f);
    }
    // With one exporter (or none) there is nothing to compare: no grouping of
    // millions of records.
    if totals.len() < 2 {
        return totals.into_values().collect();
    }
    let inputs = flows.iter().map(|f| f.span.input + 1).max().unwrap_or(0);
    let mut planner = Planner::new(priority, inputs);
    flows.iter().for_each(|f| planner.add(f));
    let plan = planner.finish();
    let mut filters: Vec<Filter<'_>> = (0..inputs).map(|i| plan.filter(i)).collect();
    let mut dropped = BTreeMap::new();
    flows.retain(|f| !filters[f.span.input].is_duplicate(f, &mut dropped));
    // `totals` has every record already: only the duplicate counts are new.
    for (e, d) in dropped {
        if let Some(t) = totals.get_mut(&e) {
            t.duplicate_records += d.duplicate_records;
            t.duplicate_ip_bytes += d.duplicate_ip_bytes;
        }
    }
    totals.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, FlowRecord};

    /// Export flows of two inputs from three exporters (and some without
    /// one): few 5-tuples, overlapping and disjoint times, both directions.
    fn flows() -> Vec<Flow> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let ip = |a: u64| IpAddr::from([10, 0, 0, a as u8]);
        (0..4000u64)
            .map(|n| {
                let (s, d) = (next(4), 4 + next(3));
                let start = next(60) as i64 * 1_000_000_000;
                let pkts = next(3);
                let r = FlowRecord {
                    start,
                    end: start + next(5) as i64 * 1_000_000_000,
                    proto: if next(2) == 0 { 6 } else { 17 },
                    src: Endpoint {
                        ip: ip(s),
                        port: 1000 + next(2) as u16,
                    },
                    dst: Endpoint {
                        ip: ip(d),
                        port: 443,
                    },
                    pkts,
                    bytes: pkts * 100 + next(50),
                    tcp_flags: 0,
                    sampling: 1,
                    record: n,
                    rev_pkts: if next(3) == 0 { 1 + next(2) } else { 0 },
                    rev_bytes: next(500),
                    app_bytes: None,
                    missed: 0,
                    exporter: match next(4) {
                        0 => None,
                        k => Some(IpAddr::from([192, 0, 2, k as u8])),
                    },
                };
                super::super::record_to_flow(r, (n % 2) as usize)
            })
            .collect()
    }

    /// The streaming use (one planner per input, joined; flows filtered as
    /// they pass, duplicates counted on their exporter) drops exactly the
    /// flows the held de-duplication drops (the baseline's apart from the
    /// window's), and gives the same per-exporter totals, for any priority.
    #[test]
    fn planner_equals_held_dedup() {
        let all = flows();
        // Every third flow belongs to its input's baseline window.
        let is_base = |f: &Flow| f.span.first_frame.is_multiple_of(3);
        let e = |k: u8| IpAddr::from([192, 0, 2, k]);
        for priority in [vec![], vec![e(2)], vec![e(3), e(1)]] {
            let mut held: Vec<Flow> = all.iter().filter(|f| !is_base(f)).cloned().collect();
            let mut held_base: Vec<Flow> = all.iter().filter(|f| is_base(f)).cloned().collect();
            let want_totals = dedup_exporters(&mut held, &priority);
            dedup_exporters(&mut held_base, &priority);
            // One planner per input, joined (as inputs are read in parallel).
            let mut parts = vec![Planner::new(&priority, 2), Planner::new(&priority, 2)];
            for f in &all {
                match is_base(f) {
                    true => parts[f.span.input].add_baseline(f),
                    false => parts[f.span.input].add(f),
                }
            }
            let plan = Planner::join(parts).finish();
            let mut filters = [plan.filter(0), plan.filter(1)];
            let mut base_filters = [plan.baseline_filter(0), plan.baseline_filter(1)];
            let (mut totals, mut dups) = (BTreeMap::new(), BTreeMap::new());
            let (mut kept, mut kept_base) = (Vec::new(), Vec::new());
            for f in &all {
                if is_base(f) {
                    if !base_filters[f.span.input].is_duplicate(f, &mut BTreeMap::new()) {
                        kept_base.push(f);
                    }
                    continue;
                }
                if filters[f.span.input].is_duplicate(f, &mut dups) {
                    continue;
                }
                count_exporter(&mut totals, f);
                kept.push(f);
            }
            add_totals(&mut totals, dups.into_values());
            let id = |f: &Flow| (f.span.input, f.span.first_frame);
            let ids = |v: &[Flow]| v.iter().map(id).collect::<Vec<_>>();
            assert_eq!(
                kept.iter().map(|f| id(f)).collect::<Vec<_>>(),
                ids(&held),
                "{priority:?}"
            );
            assert_eq!(
                kept_base.iter().map(|f| id(f)).collect::<Vec<_>>(),
                ids(&held_base),
                "{priority:?}"
            );
            let dropped = all.len() - held.len() - held_base.len();
            assert_eq!(plan.len(), dropped);
            assert!(
                held_base.len() < all.len() / 3 - 50,
                "the baseline has duplicates"
            );
            assert!(dropped > 100, "the data has duplicates: {dropped}");
            assert_eq!(totals.into_values().collect::<Vec<_>>(), want_totals);
        }
    }
}
