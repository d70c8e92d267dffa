//! Link layers down to the IP header: Ethernet with 802.1Q/802.1ad/QinQ, VN-Tag,
//! MPLS label stacks (with pseudowire control word), PPPoE sessions, LLC/SNAP,
//! Linux SLL and SLL2, raw IPv4/IPv6, BSD null/loop and NFLOG.

use crate::diag::{Weird, Weirds};

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;

/// Returns the IP packet inside a frame of the given link type.
pub fn link_payload<'a>(linktype: u32, d: &'a [u8], w: &mut Weirds) -> Option<&'a [u8]> {
    match linktype {
        1 => ethernet(d, w, 0),
        // LINKTYPE_RAW and its historic DLT values, plus LINKTYPE_IPV4/IPV6.
        12 | 14 | 101 | 228 | 229 => raw_ip(d, w),
        0 | 108 => {
            if d.len() < 4 {
                w.add(Weird::TruncatedLinkHeader);
                return None;
            }
            // The family is in host byte order of the capturing machine (0) or
            // network order (108); accept either. 2 = AF_INET; 10, 24, 28, 30 = AF_INET6 variants.
            let le = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
            let be = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            let fam = if le < 256 { le } else { be };
            match fam {
                2 | 10 | 24 | 28 | 30 => raw_ip(&d[4..], w),
                _ => {
                    w.add(Weird::NonIpFrame);
                    None
                }
            }
        }
        113 => {
            if d.len() < 16 {
                w.add(Weird::TruncatedLinkHeader);
                return None;
            }
            ethertype(u16::from_be_bytes([d[14], d[15]]), &d[16..], w, 0)
        }
        276 => {
            if d.len() < 20 {
                w.add(Weird::TruncatedLinkHeader);
                return None;
            }
            ethertype(u16::from_be_bytes([d[0], d[1]]), &d[20..], w, 0)
        }
        239 => nflog(d, w),
        _ => {
            w.add(Weird::UnknownLinkType);
            None
        }
    }
}

fn raw_ip<'a>(d: &'a [u8], w: &mut Weirds) -> Option<&'a [u8]> {
    match d.first().map(|b| b >> 4) {
        Some(4 | 6) => Some(d),
        Some(_) => {
            w.add(Weird::BadIpVersion);
            None
        }
        None => {
            w.add(Weird::TruncatedLinkHeader);
            None
        }
    }
}

/// An Ethernet frame (also used for frames inside VXLAN, Geneve, GRE/ERSPAN, MPLS PW).
pub fn ethernet<'a>(d: &'a [u8], w: &mut Weirds, depth: u8) -> Option<&'a [u8]> {
    if d.len() < 14 {
        w.add(Weird::TruncatedLinkHeader);
        return None;
    }
    let t = u16::from_be_bytes([d[12], d[13]]);
    if t <= 1500 {
        // IEEE 802.3 length field: LLC, maybe SNAP carrying an ethertype.
        let p = &d[14..];
        if p.len() >= 8 && p[0] == 0xaa && p[1] == 0xaa && p[2] == 0x03 {
            return ethertype(u16::from_be_bytes([p[6], p[7]]), &p[8..], w, depth);
        }
        w.add(Weird::NonIpFrame);
        return None;
    }
    ethertype(t, &d[14..], w, depth)
}

/// Dispatches on an ethertype, unwrapping VLAN tags, VN-Tag, MPLS and PPPoE.
pub fn ethertype<'a>(mut t: u16, mut p: &'a [u8], w: &mut Weirds, depth: u8) -> Option<&'a [u8]> {
    // Bounded: at most 16 tags/labels before we give up on the frame.
    for _ in 0..16 {
        match t {
            ETH_IPV4 | ETH_IPV6 => {
                if p.is_empty() {
                    w.add(Weird::TruncatedIpHeader);
                    return None;
                }
                return Some(p);
            }
            0x8100 | 0x88a8 | 0x9100 | 0x9200 => {
                if p.len() < 4 {
                    w.add(Weird::TruncatedLinkHeader);
                    return None;
                }
                t = u16::from_be_bytes([p[2], p[3]]);
                p = &p[4..];
            }
            0x8926 => {
                // VN-Tag: 4 bytes of tag, then the ethertype.
                if p.len() < 6 {
                    w.add(Weird::TruncatedLinkHeader);
                    return None;
                }
                t = u16::from_be_bytes([p[4], p[5]]);
                p = &p[6..];
            }
            0x8847 | 0x8848 => {
                // MPLS: pop labels until bottom of stack.
                let mut q = p;
                loop {
                    if q.len() < 4 {
                        w.add(Weird::TruncatedLinkHeader);
                        return None;
                    }
                    let bos = q[2] & 0x01 != 0;
                    q = &q[4..];
                    if bos {
                        break;
                    }
                }
                return match q.first().map(|b| b >> 4) {
                    Some(4 | 6) => Some(q),
                    // Pseudowire control word (first nibble 0), then Ethernet.
                    Some(0) if q.len() >= 4 + 14 && depth < 2 => ethernet(&q[4..], w, depth + 1),
                    _ => {
                        w.add(Weird::MplsNotIp);
                        None
                    }
                };
            }
            0x8864 => {
                // PPPoE session: 6-byte header, then the 2-byte PPP protocol.
                if p.len() < 8 {
                    w.add(Weird::TruncatedLinkHeader);
                    return None;
                }
                let pp = u16::from_be_bytes([p[6], p[7]]);
                return match pp {
                    0x0021 => Some(&p[8..]),
                    0x0057 => Some(&p[8..]),
                    _ => {
                        w.add(Weird::PppoeNotIp);
                        None
                    }
                };
            }
            0x6558 if depth < 2 => return ethernet(p, w, depth + 1),
            _ => {
                w.add(Weird::NonIpFrame);
                return None;
            }
        }
    }
    w.add(Weird::TruncatedLinkHeader);
    None
}

/// NFLOG (LINKTYPE 239): a 4-byte header then TLVs; TLV type 9 is the packet.
fn nflog<'a>(d: &'a [u8], w: &mut Weirds) -> Option<&'a [u8]> {
    if d.len() < 4 {
        w.add(Weird::TruncatedLinkHeader);
        return None;
    }
    let mut i = 4;
    while i + 4 <= d.len() {
        // TLV length and type are in host byte order; captures are little-endian in practice.
        let len = usize::from(u16::from_le_bytes([d[i], d[i + 1]]));
        let typ = u16::from_le_bytes([d[i + 2], d[i + 3]]);
        if len < 4 {
            break;
        }
        if typ == 9 {
            let end = (i + len).min(d.len());
            return raw_ip(&d[i + 4..end], w);
        }
        i += (len + 3) & !3;
    }
    w.add(Weird::NonIpFrame);
    None
}
