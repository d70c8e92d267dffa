//! Content features the detectors need but the flow record does not carry:
//! ICMP echo payload statistics per flow, and DNS query statistics per
//! (client, registered domain). Collected while packets stream past, bounded in
//! memory, mergeable across inputs.

use foldhash::fast::FixedState;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

pub use crate::model::IcmpStats;
use crate::model::Ts;

/// Echo requests waiting for their reply, per flow.
pub(crate) const MAX_OUTSTANDING: usize = 4096;
/// Distinct payload sizes remembered per ICMP flow.
const MAX_SIZES: usize = 64;
/// Unique query names remembered per (client, domain).
pub const MAX_NAMES: usize = 50_000;

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl IcmpStats {
    /// An echo request or reply. `payload` is what was captured of the payload
    /// after the 8-byte header; `len` its length from the IP header.
    pub fn echo(&mut self, request: bool, id: u16, seq: u16, len: u64, payload: &[u8]) {
        let h = fnv(payload) ^ len;
        if request {
            self.requests += 1;
            self.request_payload += len;
            self.max_request_payload = self.max_request_payload.max(len);
            if len >= 256 {
                self.large_requests += 1;
            }
            if self.request_sizes.len() < MAX_SIZES {
                self.request_sizes
                    .insert(len.min(u64::from(u32::MAX)) as u32);
            }
            if self.seen_payloads.len() < MAX_OUTSTANDING && self.seen_payloads.insert(h) {
                self.distinct_payloads += 1;
            }
            if self.outstanding.len() < MAX_OUTSTANDING {
                self.outstanding.insert((id, seq), (len, h));
            }
        } else {
            self.replies += 1;
            self.reply_payload += len;
            if let Some((_, rh)) = self.outstanding.remove(&(id, seq)) {
                if rh == h {
                    self.matched_replies += 1;
                } else {
                    self.mismatched_replies += 1;
                }
            }
        }
    }

    pub fn merge(&mut self, o: &IcmpStats) {
        self.requests += o.requests;
        self.replies += o.replies;
        self.request_payload += o.request_payload;
        self.reply_payload += o.reply_payload;
        self.max_request_payload = self.max_request_payload.max(o.max_request_payload);
        self.large_requests += o.large_requests;
        for s in &o.request_sizes {
            if self.request_sizes.len() < MAX_SIZES {
                self.request_sizes.insert(*s);
            }
        }
        self.distinct_payloads += o.distinct_payloads;
        self.mismatched_replies += o.mismatched_replies;
        self.matched_replies += o.matched_replies;
    }
}

/// DNS queries of one client for one registered domain.
#[derive(Clone, Debug, Default)]
pub struct DnsAgg {
    pub queries: u64,
    pub responses: u64,
    pub nxdomain: u64,
    /// Query types: TXT, NULL, CNAME, MX, AAAA/A, other.
    pub txt: u64,
    pub null: u64,
    pub cname: u64,
    pub mx: u64,
    pub addr: u64,
    pub other: u64,
    /// Unique query names (lower case), up to [`MAX_NAMES`]; the rest are counted.
    pub names: HashSet<String, FixedState>,
    pub names_overflow: u64,
    pub max_name_len: usize,
    pub max_label_len: usize,
    /// Sum of Shannon entropy (bits/char) of the subdomain part over unique names.
    pub entropy_sum: f64,
    pub bytes_out: u64,
    pub first_ts: Ts,
    pub last_ts: Ts,
    pub input: usize,
    pub first_frame: u64,
    pub last_frame: u64,
    pub servers: BTreeSet<IpAddr>,
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The registered domain (eTLD+1) of a name, by the Public Suffix List.
pub fn registered_domain(name: &str) -> String {
    let n = name.trim_end_matches('.');
    match psl::domain_str(n) {
        Some(d) => d.to_string(),
        None => n.to_string(),
    }
}

impl DnsAgg {
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &mut self,
        name: &str,
        regdom: &str,
        qtype: u16,
        ts: Ts,
        input: usize,
        frame: u64,
        server: IpAddr,
        ip_len: u64,
    ) {
        if self.queries == 0 {
            self.first_ts = ts;
            self.input = input;
            self.first_frame = frame;
        }
        self.queries += 1;
        self.bytes_out += ip_len;
        self.last_ts = self.last_ts.max(ts);
        self.last_frame = self.last_frame.max(frame);
        match qtype {
            16 => self.txt += 1,
            10 => self.null += 1,
            5 => self.cname += 1,
            15 => self.mx += 1,
            1 | 28 => self.addr += 1,
            _ => self.other += 1,
        }
        if self.servers.len() < 16 {
            self.servers.insert(server);
        }
        let lname = name.trim_end_matches('.').to_ascii_lowercase();
        if self.names.contains(&lname) {
            return;
        }
        if self.names.len() >= MAX_NAMES {
            self.names_overflow += 1;
            return;
        }
        self.max_name_len = self.max_name_len.max(lname.len());
        self.max_label_len = self
            .max_label_len
            .max(lname.split('.').map(str::len).max().unwrap_or(0));
        let sub = lname
            .strip_suffix(regdom)
            .map(|s| s.trim_end_matches('.'))
            .unwrap_or(&lname);
        self.entropy_sum += entropy(&sub.replace('.', ""));
        self.names.insert(lname);
    }

    pub fn merge(&mut self, o: DnsAgg, regdom: &str) {
        if self.queries == 0
            || (o.queries > 0 && (o.first_ts, o.input) < (self.first_ts, self.input))
        {
            self.first_ts = o.first_ts;
            self.input = o.input;
            self.first_frame = o.first_frame;
        }
        self.queries += o.queries;
        self.responses += o.responses;
        self.nxdomain += o.nxdomain;
        self.txt += o.txt;
        self.null += o.null;
        self.cname += o.cname;
        self.mx += o.mx;
        self.addr += o.addr;
        self.other += o.other;
        self.bytes_out += o.bytes_out;
        self.last_ts = self.last_ts.max(o.last_ts);
        self.last_frame = self.last_frame.max(o.last_frame);
        self.max_name_len = self.max_name_len.max(o.max_name_len);
        self.max_label_len = self.max_label_len.max(o.max_label_len);
        self.names_overflow += o.names_overflow;
        // Sorted, so which names are kept past the cap does not depend on hashing.
        let mut incoming: Vec<String> = o.names.into_iter().collect();
        incoming.sort();
        for n in incoming {
            if self.names.len() >= MAX_NAMES {
                self.names_overflow += 1;
            } else if !self.names.contains(&n) {
                let sub = n
                    .strip_suffix(regdom)
                    .map(|s| s.trim_end_matches('.'))
                    .unwrap_or(&n);
                self.entropy_sum += entropy(&sub.replace('.', ""));
                self.names.insert(n);
            }
        }
        self.servers.extend(o.servers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_and_domains() {
        assert!((entropy("aaaa") - 0.0).abs() < 1e-9);
        assert!((entropy("abcd") - 2.0).abs() < 1e-9);
        assert_eq!(
            registered_domain("aGVsbG8.t.evil-tunnel.com."),
            "evil-tunnel.com"
        );
        assert_eq!(registered_domain("x.y.t1.example"), "t1.example");
        assert_eq!(registered_domain("files.example.co.uk"), "example.co.uk");
    }

    #[test]
    fn icmp_mismatch() {
        let mut s = IcmpStats::default();
        s.echo(true, 1, 1, 56, b"abc");
        s.echo(false, 1, 1, 56, b"abc");
        s.echo(true, 1, 2, 1000, b"data");
        s.echo(false, 1, 2, 1000, b"other");
        assert_eq!((s.matched_replies, s.mismatched_replies), (1, 1));
        assert_eq!(s.large_requests, 1);
        assert_eq!(s.request_payload, 1056);
    }
}
