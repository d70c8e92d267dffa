//! D7 dns_tunnel: data carried in DNS query names (iodine, dnscat2, dns2tcp...),
//! per (client, registered domain), with an information bound in bytes.

use super::super::{DetectInput, Detector, Finding, FrameSpan, Metric, Pass, Severity};
use super::AtEnd;
use crate::flow::features::DnsAgg;

/// RITA "C2 over DNS" base threshold: 100 unique subdomains.
pub const UNIQUE: u64 = 100;
/// Label entropy above which names look encoded (mydnstunnel.info, skills: > 3.5 bits/char).
pub const ENTROPY: f64 = 3.5;
/// Any label longer than 30 characters (mydnstunnel.info).
pub const LABEL: usize = 30;
/// TXT/NULL share of queries to one domain (> 30 %, mydnstunnel.info / skills).
pub const TXT_NULL_SHARE: f64 = 0.3;
/// Information sent to one domain: 4 KiB (the operating point quoted for Paxson et al. 2013).
pub const INFO: u64 = 4096;

/// Compressed size of the sorted unique query names: an upper bound on the
/// information the names can carry (Paxson et al., USENIX Security 2013). Small
/// sets are bounded by their raw length (compression cannot help them).
pub fn information_bound(agg: &DnsAgg, z: &mut flate2::Compress) -> u64 {
    let raw: usize = agg.names.iter().map(|n| n.len() + 1).sum();
    let overflow = agg.names_overflow * agg.max_name_len as u64;
    if raw <= 512 {
        return raw as u64 + overflow;
    }
    let mut names: Vec<&String> = agg.names.iter().collect();
    names.sort();
    let mut input = Vec::with_capacity(raw);
    for n in names {
        input.extend_from_slice(n.as_bytes());
        input.push(b'\n');
    }
    z.reset();
    // Deflate never expands by more than a few bytes per 16 KiB block.
    let mut out = Vec::with_capacity(raw + raw / 8 + 64);
    match z.compress_vec(&input, &mut out, flate2::FlushCompress::Finish) {
        Ok(flate2::Status::StreamEnd) => (out.len() as u64).min(raw as u64) + overflow,
        _ => raw as u64 + overflow,
    }
}

/// The information bound of every DNS aggregate, in the same order.
pub fn information_bounds(dns: &[((std::net::IpAddr, String), DnsAgg)]) -> Vec<u64> {
    let mut z = flate2::Compress::new(flate2::Compression::default(), false);
    dns.iter()
        .map(|(_, agg)| information_bound(agg, &mut z))
        .collect()
}

pub struct DnsTunnel;

impl Detector for DnsTunnel {
    fn code(&self) -> &'static str {
        "D7"
    }
    fn name(&self) -> &'static str {
        "dns_tunnel"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
For every internal client and registered domain (public suffix list) it measures the unique \
query names, their label entropy and length, the TXT/NULL share of queries, the NXDOMAIN share \
of answers and the information the names can carry: the compressed size of the sorted unique \
names. It fires when a domain gets at least 100 unique names that look encoded (mean label \
entropy > 3.5 bits/char, a label longer than 30 characters, or more than 30 % TXT/NULL \
queries), or when the information bound exceeds 4 KiB with encoded-looking names, or when \
at least 5 queries are mostly TXT/NULL with labels longer than 30 characters (a tunnel's \
handshake in a short capture). Other unusual domains are flagged.\n\n\
## Why it matters\n\
DNS leaves most networks even when everything else is blocked; tunnels such as iodine, \
dnscat2 and dns2tcp carry arbitrary data in query names (MITRE ATT&CK T1048, T1071.004).\n\n\
## Defaults and sources\n\
100 unique subdomains: RITA default_config c2_subdomain_threshold. Entropy 3.5 and label 30: \
mydnstunnel.info and practitioner skills (normal hostnames ~2.5 bits/char, base64 ~5.8). \
TXT/NULL > 30 %: same. 4 KiB: the operating point usually quoted for Paxson et al., \
\"Practical Comprehensive Bounds on Surreptitious Communication Over DNS\" (USENIX Security \
2013); the bound itself is their method (compressed unique names).\n\n\
## Known false positives\n\
CDNs and telemetry with hashed host names, anti-virus and DNSBL lookups, DNSSEC NSEC3 walking. \
Allowlist such domains (domain suffix) with a justification. DNS over TLS/HTTPS and TCP DNS \
are not inspected (known false negatives)."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::new(AtEnd(decide))
    }
}
/// D7 looks at the DNS aggregates only, not at flows.
fn decide(inp: &DetectInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (((client, domain), agg), &info) in inp.dns.iter().zip(inp.dns_info) {
        if agg.queries == 0 {
            continue;
        }
        if inp
            .allow
            .domains
            .iter()
            .any(|d| domain == d || domain.ends_with(&format!(".{d}")))
        {
            continue;
        }
        if inp.netscope.class(*client) != crate::attribution::netscope::AddrClass::Internal {
            continue;
        }
        let unique = agg.names.len() as u64 + agg.names_overflow;
        let mean_entropy = if agg.names.is_empty() {
            0.0
        } else {
            agg.entropy_sum / agg.names.len() as f64
        };
        let tn_share = (agg.txt + agg.null) as f64 / agg.queries as f64;
        let nx_share = if agg.responses > 0 {
            agg.nxdomain as f64 / agg.responses as f64
        } else {
            0.0
        };
        let encoded =
            mean_entropy > ENTROPY || agg.max_label_len > LABEL || tn_share > TXT_NULL_SHARE;
        let fire = (unique >= UNIQUE && encoded)
            || (info > INFO && (mean_entropy > ENTROPY || agg.max_label_len > LABEL))
            || (agg.queries >= 5 && tn_share >= 0.5 && agg.max_label_len > LABEL);
        // Reverse lookups (in-addr.arpa, ip6.arpa) have long names by design.
        let reverse = domain.ends_with("arpa");
        let flag = unique >= UNIQUE || info > INFO || (agg.max_name_len > 52 && !reverse);
        if !(fire || flag) {
            continue;
        }
        let severity = if fire { Severity::Fire } else { Severity::Flag };
        out.push(Finding {
                code: DnsTunnel.code(),
                name: DnsTunnel.name(),
                severity,
                host: *client,
                destination: None,
                destination_names: vec![domain.clone()],
                protocol: "dns".into(),
                bytes: info,
                first_ts: agg.first_ts,
                last_ts: agg.last_ts,
                text: format!(
                    "{client} sent {} queries with {unique} unique names under {domain} (mean entropy {mean_entropy:.2} bits/char, longest label {}, TXT/NULL {:.0} %); the names can carry at most {info} bytes",
                    agg.queries,
                    agg.max_label_len,
                    tn_share * 100.0
                ),
                text_de: format!(
                    "{client} hat {} Anfragen mit {unique} verschiedenen Namen unter {domain} gesendet (mittlere Entropie {mean_entropy:.2} Bit/Zeichen, längstes Label {}, TXT/NULL {:.0} %); die Namen können höchstens {info} Bytes tragen",
                    agg.queries,
                    agg.max_label_len,
                    tn_share * 100.0
                ),
                metrics: vec![
                    Metric { name: "unique_names", value: unique as f64, threshold: Some(UNIQUE as f64) },
                    Metric { name: "mean_label_entropy", value: mean_entropy, threshold: Some(ENTROPY) },
                    Metric { name: "max_label_len", value: agg.max_label_len as f64, threshold: Some(LABEL as f64) },
                    Metric { name: "txt_null_share", value: tn_share, threshold: Some(TXT_NULL_SHARE) },
                    Metric { name: "nxdomain_share", value: nx_share, threshold: None },
                    Metric { name: "information_bound_bytes", value: info as f64, threshold: Some(INFO as f64) },
                    Metric { name: "query_ip_bytes", value: agg.bytes_out as f64, threshold: None },
                ],
                references: vec![FrameSpan {
                    input: agg.input,
                    first_frame: agg.first_frame,
                    last_frame: agg.last_frame,
                    display_filter: format!(
                        "{}.src=={client} && dns.qry.name contains \"{}\"",
                        if client.is_ipv4() { "ip" } else { "ipv6" },
                        domain.replace('"', "")
                    ),
                }],
            });
    }
    out
}
