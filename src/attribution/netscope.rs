//! Address classes: internal networks (RFC 1918, RFC 6598, RFC 4193, link-local
//! and loopback by default; `--internal` replaces them), addresses that never
//! leave the network (multicast, broadcast, unspecified), and the allowlist
//! (CIDRs and domain suffixes).

use ipnet::IpNet;
use std::net::IpAddr;

pub const DEFAULT_INTERNAL: [&str; 10] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "127.0.0.0/8",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
    "::ffff:127.0.0.0/104",
];

/// Destinations that do not leave the local network: multicast, limited
/// broadcast, the unspecified address.
const NON_ROUTED: [&str; 5] = [
    "224.0.0.0/4",
    "255.255.255.255/32",
    "0.0.0.0/32",
    "ff00::/8",
    "::/128",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrClass {
    Internal,
    External,
    NonRouted,
}

#[derive(Clone, Debug)]
pub struct Netscope {
    /// Read-only outside: `new` derives the integer tables from it.
    internal: Vec<IpNet>,
    /// The same networks as (address, mask) integers: `class` runs for every
    /// flow in several stages, so it compares integers instead of IpNets.
    /// IPv4 networks by first octet: the networks (in table order) that hold
    /// addresses starting with it, so a lookup compares one or two.
    v4: Vec<Vec<(u32, u32, AddrClass)>>,
    v6: Vec<(u128, u128, AddrClass)>,
}

impl Netscope {
    pub fn new(internal: Vec<IpNet>) -> Self {
        let non_routed: Vec<IpNet> = NON_ROUTED.iter().filter_map(|s| s.parse().ok()).collect();
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let tagged = internal
            .iter()
            .map(|n| (n, AddrClass::Internal))
            .chain(non_routed.iter().map(|n| (n, AddrClass::NonRouted)));
        for (n, c) in tagged {
            match n {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()), c)),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()), c)),
            }
        }
        let v4 = (0..=255u32)
            .map(|o| {
                v4.iter()
                    .filter(|&&(n, m, _)| (o << 24) & m & 0xff00_0000 == n & 0xff00_0000)
                    .copied()
                    .collect()
            })
            .collect();
        Netscope { internal, v4, v6 }
    }

    pub fn default_internal() -> Vec<IpNet> {
        DEFAULT_INTERNAL
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    pub fn internal(&self) -> &[IpNet] {
        &self.internal
    }

    /// The first matching network decides; internal networks come first in the
    /// tables (an internal network may overlap a non-routed one).
    #[inline]
    pub fn class(&self, ip: IpAddr) -> AddrClass {
        let hit = match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4[(a >> 24) as usize]
                    .iter()
                    .find(|&&(n, m, _)| a & m == n)
                    .map(|x| x.2)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().find(|&&(n, m, _)| a & m == n).map(|x| x.2)
            }
        };
        hit.unwrap_or(AddrClass::External)
    }
}

/// Destinations declared legitimate: CIDRs and domain suffixes.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    pub nets: Vec<IpNet>,
    pub domains: Vec<String>,
    /// Entries (as `matches` names them) marked multi-tenant: shared cloud
    /// services where an attacker could own a tenant.
    pub multi_tenant: Vec<String>,
}

impl Allowlist {
    /// Parses entries: a CIDR or address, else a domain suffix (`example.com`
    /// matches `example.com` and `*.example.com`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let with: Vec<(String, bool)> = entries.iter().map(|e| (e.clone(), false)).collect();
        Self::parse_entries(&with)
    }

    /// Parses entries with their multi-tenant mark.
    pub fn parse_entries(entries: &[(String, bool)]) -> Result<Self, String> {
        let mut a = Allowlist::default();
        for (e, mt) in entries {
            let e = e.trim();
            if e.is_empty() {
                continue;
            }
            let key = if let Ok(n) = e.parse::<IpNet>() {
                a.nets.push(n);
                n.to_string()
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                let n = IpNet::from(ip);
                a.nets.push(n);
                n.to_string()
            } else if e.contains('.')
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*'))
            {
                let d = e
                    .trim_start_matches("*.")
                    .trim_start_matches('.')
                    .to_ascii_lowercase();
                a.domains.push(d.clone());
                d
            } else {
                return Err(format!(
                    "allowlist entry '{e}' is neither a CIDR, an address nor a domain"
                ));
            };
            if *mt {
                a.multi_tenant.push(key);
            }
        }
        Ok(a)
    }

    /// The entry that covers a destination (by address, or by any of its names).
    /// Whether `ip` is allowed when that does not depend on its names: Some(true)
    /// when a network covers it, Some(false) when no network does and there are
    /// no domain entries, None when its names decide.
    pub fn by_address(&self, ip: IpAddr) -> Option<bool> {
        if self.nets.iter().any(|n| n.contains(&ip)) {
            Some(true)
        } else if self.domains.is_empty() {
            Some(false)
        } else {
            None
        }
    }

    pub fn matches(&self, ip: IpAddr, names: &[String]) -> Option<String> {
        if let Some(n) = self.nets.iter().find(|n| n.contains(&ip)) {
            return Some(n.to_string());
        }
        for name in names {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            for d in &self.domains {
                if name == *d || name.ends_with(&format!(".{d}")) {
                    return Some(d.clone());
                }
            }
        }
        None
    }
}

/// Parses a host or CIDR (`10.0.0.5` or `10.0.0.0/24`).
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{s}' is not an address or CIDR"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let n = Netscope::new(Netscope::default_internal());
        assert_eq!(n.class("10.1.2.3".parse().unwrap()), AddrClass::Internal);
        assert_eq!(n.class("100.64.1.1".parse().unwrap()), AddrClass::Internal);
        assert_eq!(n.class("8.8.8.8".parse().unwrap()), AddrClass::External);
        assert_eq!(
            n.class("224.0.0.251".parse().unwrap()),
            AddrClass::NonRouted
        );
        assert_eq!(n.class("fd00::1".parse().unwrap()), AddrClass::Internal);
        assert_eq!(n.class("2001:db8::1".parse().unwrap()), AddrClass::External);
    }

    /// The by-first-octet table gives what the first matching network in
    /// table order (internal, then non-routed) gives, also for prefixes
    /// shorter than 8 bits and networks that overlap.
    #[test]
    fn octet_table_equals_first_match() {
        let nets: Vec<IpNet> = [
            "10.0.0.0/8",
            "8.0.0.0/6",
            "0.0.0.0/1",
            "224.1.0.0/16",
            "203.0.113.7/32",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let n = Netscope::new(nets.clone());
        let non_routed: Vec<IpNet> = NON_ROUTED.iter().map(|s| s.parse().unwrap()).collect();
        let check = |ip: IpAddr| {
            let want = if nets.iter().any(|n| n.contains(&ip)) {
                AddrClass::Internal
            } else if non_routed.iter().any(|n| n.contains(&ip)) {
                AddrClass::NonRouted
            } else {
                AddrClass::External
            };
            assert_eq!(n.class(ip), want, "{ip}");
        };
        let mut x: u32 = 0x9e37_79b9;
        for i in 0..20_000u32 {
            // A walk over all first octets, the rest pseudo-random.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            check(IpAddr::from(std::net::Ipv4Addr::from(
                ((i % 256) << 24) | (x & 0x00ff_ffff),
            )));
        }
        for ip in [
            "255.255.255.255",
            "0.0.0.0",
            "203.0.113.7",
            "203.0.113.8",
            "127.255.255.255",
        ] {
            check(ip.parse().unwrap());
        }
    }

    #[test]
    fn allowlist_by_cidr_and_suffix() {
        let a = Allowlist::parse(&["198.51.100.50/32".into(), "backup.example".into()]).unwrap();
        assert!(a.matches("198.51.100.50".parse().unwrap(), &[]).is_some());
        assert!(
            a.matches("1.2.3.4".parse().unwrap(), &["s3.backup.example.".into()])
                .is_some()
        );
        assert!(
            a.matches("1.2.3.4".parse().unwrap(), &["notbackup.example".into()])
                .is_none()
        );
        assert!(Allowlist::parse(&["not a thing".into()]).is_err());
    }
}
