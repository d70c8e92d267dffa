//! D4 new_destination: a large upload to a destination no internal host used in
//! the baseline and few hosts use now.

use super::super::{DetectInput, Detector, Finding, Metric, Pass, Severity};
use super::AtEnd;
use super::{Seen, mb};
use crate::flow::features::registered_domain;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// First-time destination with more than 50 MB (practitioner rule, mukul975 skills).
pub const FIRE_BYTES: u64 = 50_000_000;
/// Smaller uploads to a new destination are flagged from 1 MB.
pub const FLAG_BYTES: u64 = 1_000_000;
/// RITA: prevalence at most 2 % of internal hosts counts as rare.
pub const PREVALENCE: f64 = 0.02;

pub struct NewDestination;

impl Detector for NewDestination {
    fn code(&self) -> &'static str {
        "D4"
    }
    fn name(&self) -> &'static str {
        "new_destination"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Needs a baseline. A destination is new when neither its address nor the registered domain \
of any of its names was contacted by any internal host in the baseline; it is rare when at \
most 2 % of the internal hosts seen in the window talk to it (or only one host). Fires when \
a host uploads more than 50 MB to a new, rare destination; flags from 1 MB.\n\n\
## Why it matters\n\
Exfiltration goes to infrastructure the organisation never used before (attacker VPS, a new \
cloud tenant), and usually from few hosts.\n\n\
## Defaults and sources\n\
Prevalence ≤ 2 % and first-seen: RITA's score modifiers (default_config.hjson). First-time \
destination > 50 MB: practitioner heuristic (methodology §1, low authority).\n\n\
## Known false positives\n\
New SaaS rolled out during the window; a short baseline makes many destinations new."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::new(AtEnd(decide))
    }
}
/// Reads the ledger's host/destination rows when it decides; keeps nothing.
fn decide(inp: &DetectInput<'_>) -> Vec<Finding> {
    let Some(base) = inp.baseline else {
        return Vec::new();
    };
    let mut known_ips: BTreeSet<IpAddr> = BTreeSet::new();
    let mut known_domains: BTreeSet<String> = BTreeSet::new();
    for &dest in &base.dests {
        known_ips.insert(dest);
        for n in inp.names_of(dest) {
            known_domains.insert(registered_domain(&n));
        }
    }
    let mut users: BTreeMap<IpAddr, BTreeSet<IpAddr>> = BTreeMap::new();
    let mut hosts: BTreeSet<IpAddr> = BTreeSet::new();
    for p in &inp.ledger.pairs {
        let (host, dest) = (p.host, p.dest);
        hosts.insert(host);
        users.entry(dest).or_default().insert(host);
    }
    let mut out = Vec::new();
    for p in &inp.ledger.pairs {
        let (host, dest, bytes) = (p.host, p.dest, p.out.bytes);
        // The cheap test first: most pairs send little.
        if bytes < FLAG_BYTES || known_ips.contains(&dest) || inp.allowed(dest) {
            continue;
        }
        let names = inp.names_of(dest);
        if names
            .iter()
            .any(|n| known_domains.contains(&registered_domain(n)))
        {
            continue;
        }
        let n_users = users.get(&dest).map_or(0, BTreeSet::len);
        let prevalence = n_users as f64 / hosts.len().max(1) as f64;
        if !(n_users <= 1 || prevalence <= PREVALENCE) {
            continue;
        }
        let severity = if bytes > FIRE_BYTES {
            Severity::Fire
        } else {
            Severity::Flag
        };
        out.push(Finding {
                severity,
                destination_names: names,
                protocol: "any".into(),
                bytes,
                text: format!(
                    "{host} uploaded {} to {dest}, a destination no internal host used in the baseline ({n_users} host(s) use it now)",
                    mb(bytes)
                ),
                text_de: format!(
                    "{host} hat {} an {dest} hochgeladen, ein Ziel, das in der Vergleichszeit kein interner Host nutzte ({n_users} Host(s) nutzen es jetzt)",
                    mb(bytes)
                ),
                metrics: vec![
                    Metric { name: "bytes_out", value: bytes as f64, threshold: Some(FIRE_BYTES as f64) },
                    Metric { name: "prevalence", value: prevalence, threshold: Some(PREVALENCE) },
                ],
                ..Finding::for_pair(&NewDestination, inp, host, dest, &Seen::of_pair(p))
            });
    }
    out
}
