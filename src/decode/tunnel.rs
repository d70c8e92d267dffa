//! Tunnel encapsulations. The outer packet is what crosses the boundary and is
//! what the ledger counts; the inner packet is returned so the flow stage can
//! record it as an inner flow that points at its outer flow.

use super::link::{ETH_IPV4, ETH_IPV6, ethernet, ethertype};
use super::{IpPkt, L4};
use crate::diag::Weirds;
use crate::model::proto;

pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
pub const TEREDO_PORT: u16 = 3544;
pub const GTPU_PORT: u16 = 2152;

/// Whether a decoded packet is itself a tunnel carrier.
pub fn is_tunnel(p: &IpPkt<'_>) -> bool {
    match p.proto {
        proto::IPIP | proto::IPV6 | proto::GRE => true,
        proto::UDP => match p.l4 {
            L4::Udp { sport, dport, .. } => [VXLAN_PORT, GENEVE_PORT, TEREDO_PORT, GTPU_PORT]
                .iter()
                .any(|x| *x == sport || *x == dport),
            _ => false,
        },
        _ => false,
    }
}

/// The inner IP packet of a tunnel, with the tunnel's name.
pub fn inner<'a>(
    outer: &IpPkt<'a>,
    ip: &'a [u8],
    w: &mut Weirds,
) -> Option<(&'a [u8], &'static str)> {
    if !matches!(outer.frag, super::Frag::None) {
        return None;
    }
    match outer.proto {
        proto::IPIP | proto::IPV6 => {
            // The IP payload: after the outer header (we know its size from the slice math).
            let hl = ip_header_len(ip)?;
            let p = ip.get(hl..)?;
            let v = p.first()? >> 4;
            if (outer.proto == proto::IPIP && v == 4) || (outer.proto == proto::IPV6 && v == 6) {
                Some((
                    p,
                    if outer.proto == proto::IPIP {
                        "ip-in-ip"
                    } else {
                        "ip6-in-ip"
                    },
                ))
            } else {
                None
            }
        }
        proto::GRE => {
            let hl = ip_header_len(ip)?;
            gre(ip.get(hl..)?, w).map(|p| (p, "gre"))
        }
        proto::UDP => {
            let L4::Udp {
                sport,
                dport,
                payload,
                ..
            } = outer.l4
            else {
                return None;
            };
            let is = |port: u16| sport == port || dport == port;
            if is(VXLAN_PORT) {
                if payload.len() < 8 + 14 || payload[0] & 0x08 == 0 {
                    return None;
                }
                ethernet(&payload[8..], w, 1).map(|p| (p, "vxlan"))
            } else if is(GENEVE_PORT) {
                if payload.len() < 8 {
                    return None;
                }
                let optlen = usize::from(payload[0] & 0x3f) * 4;
                let pt = u16::from_be_bytes([payload[2], payload[3]]);
                let body = payload.get(8 + optlen..)?;
                match pt {
                    0x6558 => ethernet(body, w, 1).map(|p| (p, "geneve")),
                    ETH_IPV4 | ETH_IPV6 => Some((body, "geneve")),
                    _ => None,
                }
            } else if is(TEREDO_PORT) {
                teredo(payload).map(|p| (p, "teredo"))
            } else if is(GTPU_PORT) {
                gtpu(payload).map(|p| (p, "gtp-u"))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn ip_header_len(ip: &[u8]) -> Option<usize> {
    match ip.first()? >> 4 {
        4 => Some(usize::from(ip[0] & 0x0f) * 4),
        // IPv6 tunnels with extension headers are rare; the fixed header covers the common case.
        6 => Some(40),
        _ => None,
    }
}

fn gre<'a>(g: &'a [u8], w: &mut Weirds) -> Option<&'a [u8]> {
    if g.len() < 4 {
        return None;
    }
    let flags = u16::from_be_bytes([g[0], g[1]]);
    let version = flags & 0x7;
    let pt = u16::from_be_bytes([g[2], g[3]]);
    let mut off = 4;
    if version == 0 {
        if flags & 0x8000 != 0 || flags & 0x4000 != 0 {
            off += 4;
        }
        if flags & 0x2000 != 0 {
            off += 4;
        }
        if flags & 0x1000 != 0 {
            off += 4;
        }
    } else if version == 1 {
        // Enhanced GRE (PPTP): key always present, sequence and ack optional.
        off += 4;
        if flags & 0x1000 != 0 {
            off += 4;
        }
        if flags & 0x0080 != 0 {
            off += 4;
        }
    } else {
        return None;
    }
    let p = g.get(off..)?;
    match pt {
        ETH_IPV4 | ETH_IPV6 => Some(p),
        0x6558 => ethernet(p, w, 1),
        0x88be => {
            // ERSPAN type II has an 8-byte header when the sequence flag is set; type I has none.
            if flags & 0x1000 != 0 {
                ethernet(p.get(8..)?, w, 1)
            } else {
                ethernet(p, w, 1)
            }
        }
        0x22eb => {
            // ERSPAN type III: 12 bytes, plus 8 of platform-specific subheader when O is set.
            let o = p.get(11)? & 0x01 != 0;
            ethernet(p.get(if o { 20 } else { 12 }..)?, w, 1)
        }
        0x880b => {
            // PPP in enhanced GRE: optional address/control bytes, then protocol.
            let mut q = p;
            if q.len() >= 2 && q[0] == 0xff && q[1] == 0x03 {
                q = &q[2..];
            }
            if q.len() < 2 {
                return None;
            }
            let (pp, rest) = if q[0] & 0x01 == 1 {
                (u16::from(q[0]), &q[1..])
            } else {
                (u16::from_be_bytes([q[0], q[1]]), &q[2..])
            };
            match pp {
                0x21 | 0x57 => Some(rest),
                _ => None,
            }
        }
        _ => ethertype(pt, p, w, 1),
    }
}

fn teredo(p: &[u8]) -> Option<&[u8]> {
    let mut q = p;
    // Authentication indicator.
    if q.len() >= 4 && q[0] == 0 && q[1] == 1 {
        let id_len = usize::from(q[2]);
        let au_len = usize::from(q[3]);
        q = q.get(4 + id_len + au_len + 8 + 1..)?;
    }
    // Origin indication.
    if q.len() >= 8 && q[0] == 0 && q[1] == 0 {
        q = &q[8..];
    }
    if q.len() >= 40 && q[0] >> 4 == 6 {
        Some(q)
    } else {
        None
    }
}

fn gtpu(p: &[u8]) -> Option<&[u8]> {
    if p.len() < 8 {
        return None;
    }
    let flags = p[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 || p[1] != 0xff {
        return None;
    }
    let mut off = 8;
    if flags & 0x07 != 0 {
        off = 12;
        if flags & 0x04 != 0 {
            let mut next = *p.get(11)?;
            let mut guard = 0;
            while next != 0 {
                let len = usize::from(*p.get(off)?) * 4;
                if len == 0 {
                    return None;
                }
                next = *p.get(off + len - 1)?;
                off += len;
                guard += 1;
                if guard > 16 {
                    return None;
                }
            }
        }
    }
    let q = p.get(off..)?;
    match q.first()? >> 4 {
        4 | 6 => Some(q),
        _ => None,
    }
}
