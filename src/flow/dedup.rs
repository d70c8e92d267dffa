//! Flows reported by more than one exporter (a router and a firewall on the same
//! path both export it): counted once. Records are duplicates when they have the
//! same 5-tuple and direction, come from different exporters and overlap in
//! time; the record of the preferred exporter is kept (`--exporter-priority`
//! order, then the lower exporter address), the others are dropped and summed
//! per exporter so the report can say how much was deduplicated.

use crate::model::{ExporterTotals, Flow, FlowKey};
use foldhash::fast::FixedState;
use std::collections::{BTreeMap, HashMap};
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

/// Removes duplicate export flows in place (the order of the rest is kept) and
/// returns the per-exporter totals, sorted by exporter address.
pub fn dedup_exporters(flows: &mut Vec<Flow>, priority: &[IpAddr]) -> Vec<ExporterTotals> {
    let rank = |e: IpAddr| -> (usize, IpAddr) {
        (
            priority
                .iter()
                .position(|p| *p == e)
                .unwrap_or(priority.len()),
            e,
        )
    };
    let mut totals: BTreeMap<IpAddr, ExporterTotals> = BTreeMap::new();
    for f in flows.iter() {
        count_exporter(&mut totals, f);
    }
    // With one exporter (or none) there is nothing to compare: no grouping of
    // millions of records.
    if totals.len() < 2 {
        return totals.into_values().collect();
    }
    // (5-tuple, direction) -> indices of flows with a known exporter.
    let mut groups: HashMap<(FlowKey, IpAddr, bool, bool), Vec<usize>, FixedState> =
        HashMap::with_hasher(FixedState::default());
    for (i, f) in flows.iter().enumerate() {
        if f.export.and_then(|x| x.exporter).is_none() {
            continue;
        }
        let dir = (f.orig_stats.pkts > 0, f.resp_stats.pkts > 0);
        groups
            .entry((f.key, f.orig.ip, dir.0, dir.1))
            .or_default()
            .push(i);
    }
    let mut drop = vec![false; flows.len()];
    let mut keys: Vec<_> = groups.keys().copied().collect();
    keys.sort();
    for k in keys {
        let idx = &groups[&k];
        if idx.len() < 2 {
            continue;
        }
        let exp = |i: usize| {
            flows[i]
                .export
                .and_then(|x| x.exporter)
                .unwrap_or(IpAddr::from([0, 0, 0, 0]))
        };
        for &i in idx {
            let me = rank(exp(i));
            let dup = idx.iter().any(|&j| {
                j != i
                    && exp(j) != exp(i)
                    && rank(exp(j)) < me
                    && flows[j].first_ts <= flows[i].last_ts
                    && flows[i].first_ts <= flows[j].last_ts
            });
            if dup {
                drop[i] = true;
                let f = &flows[i];
                let t = totals.get_mut(&exp(i)).expect("exporter counted above");
                t.duplicate_records += 1;
                t.duplicate_ip_bytes += f.orig_stats.ip_bytes + f.resp_stats.ip_bytes;
            }
        }
    }
    let mut i = 0;
    flows.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
    totals.into_values().collect()
}
