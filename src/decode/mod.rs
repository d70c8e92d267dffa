//! Bytes to borrowed protocol views. The single dispatch table: link type, then
//! ethertype, then IP protocol; tunnels (GRE, ERSPAN, VXLAN, Geneve, Teredo,
//! IP-in-IP, GTP-U) are followed one level so the inner packet can be recorded
//! next to the outer one. Never allocates; every length is checked before use,
//! and anything malformed becomes a counted [`Weird`], not an error.
//!
//! Byte accounting rule: `ip_len` is taken from the IP header (IPv4 total length,
//! IPv6 40 + payload length, or the Hop-by-Hop jumbo payload length), never from
//! the captured length, so snaplen-cut captures still count what crossed the wire.
//! Only when the header says 0 (TSO/GSO/BIG TCP captures) is the wire length of
//! the frame used instead, and that is flagged.

pub mod app;
mod link;
pub mod netflow;
mod tunnel;

use crate::diag::{Weird, Weirds};
use crate::model::proto;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use link::link_payload;

/// TCP flag bits.
pub mod tcpflags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frag {
    /// Not fragmented.
    None,
    /// First fragment (offset 0, more fragments follow): carries the L4 header.
    First { id: u32 },
    /// A later fragment: no L4 header, matched to its flow by IP ID. `offset` is
    /// its byte offset in the reassembled IP payload.
    Later { id: u32, offset: u32 },
}

#[derive(Clone, Copy, Debug)]
pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// TCP header length (data offset × 4).
    pub hdr_len: u16,
    /// Payload length from the IP header minus the TCP header.
    pub payload_len: u64,
    /// The captured part of the payload (may be shorter than `payload_len`).
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub enum L4<'a> {
    Tcp(Tcp<'a>),
    Udp {
        sport: u16,
        dport: u16,
        payload_len: u64,
        payload: &'a [u8],
    },
    Icmp {
        v6: bool,
        typ: u8,
        code: u8,
        /// Bytes 4..8 of the ICMP header: identifier and sequence for echo.
        id: u16,
        seq: u16,
        payload_len: u64,
        payload: &'a [u8],
    },
    /// A TCP or UDP header cut by the snaplen after the ports.
    PortsOnly {
        sport: u16,
        dport: u16,
        payload_len: u64,
    },
    /// No transport header available (later fragment, other protocol, or cut).
    None {
        payload_len: u64,
    },
}

impl L4<'_> {
    pub fn payload_len(&self) -> u64 {
        match *self {
            L4::Tcp(t) => t.payload_len,
            L4::Udp { payload_len, .. }
            | L4::Icmp { payload_len, .. }
            | L4::PortsOnly { payload_len, .. }
            | L4::None { payload_len } => payload_len,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct IpPkt<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// IP bytes on the wire for this packet (see module doc).
    pub ip_len: u64,
    pub frag: Frag,
    pub l4: L4<'a>,
}

#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    /// The outermost IP packet: what crosses the boundary, what the ledger counts.
    pub outer: IpPkt<'a>,
    /// The packet inside a tunnel, if the outer packet is one.
    pub inner: Option<IpPkt<'a>>,
    pub tunnel: Option<&'static str>,
}

/// Decodes one frame. `origlen` is the frame's length on the wire (used only
/// when an IP header declares length 0).
pub fn decode<'a>(
    linktype: u32,
    data: &'a [u8],
    origlen: u32,
    w: &mut Weirds,
) -> Option<Decoded<'a>> {
    let ip = link_payload(linktype, data, w)?;
    let l2 = (ip.as_ptr() as usize).saturating_sub(data.as_ptr() as usize);
    let wire_ip = u64::from(origlen).saturating_sub(l2 as u64);
    let outer = parse_ip(ip, wire_ip, w)?;
    let (inner, tunnel) = match tunnel::inner(&outer, ip, w) {
        Some((inner_bytes, name)) => {
            let inner_wire = inner_bytes.len() as u64;
            let mut scratch = Weirds::default();
            match parse_ip(inner_bytes, inner_wire, &mut scratch) {
                Some(p) => {
                    w.merge(&scratch);
                    if tunnel::is_tunnel(&p) {
                        w.add(Weird::NestedTunnelNotFollowed);
                    }
                    (Some(p), Some(name))
                }
                None => {
                    w.add(Weird::TunnelDecodeFailed);
                    (None, None)
                }
            }
        }
        None => (None, None),
    };
    Some(Decoded {
        outer,
        inner,
        tunnel,
    })
}

/// Parses an IPv4 or IPv6 packet (by version nibble). `wire_len` is how many
/// bytes of this IP packet crossed the wire, per the frame's original length.
pub fn parse_ip<'a>(b: &'a [u8], wire_len: u64, w: &mut Weirds) -> Option<IpPkt<'a>> {
    match b.first().map(|v| v >> 4) {
        Some(4) => parse_v4(b, wire_len, w),
        Some(6) => parse_v6(b, wire_len, w),
        Some(_) => {
            w.add(Weird::BadIpVersion);
            None
        }
        None => {
            w.add(Weird::TruncatedIpHeader);
            None
        }
    }
}

fn parse_v4<'a>(b: &'a [u8], wire_len: u64, w: &mut Weirds) -> Option<IpPkt<'a>> {
    if b.len() < 20 {
        w.add(Weird::TruncatedIpHeader);
        return None;
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    if ihl < 20 {
        w.add(Weird::BadIpHeaderLength);
        return None;
    }
    if b.len() < ihl {
        w.add(Weird::TruncatedIpHeader);
        return None;
    }
    let total = u16::from_be_bytes([b[2], b[3]]);
    let id = u16::from_be_bytes([b[4], b[5]]);
    let ff = u16::from_be_bytes([b[6], b[7]]);
    let more = ff & 0x2000 != 0;
    let offset = ff & 0x1fff;
    let proto_n = b[9];
    let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    let ip_len: u64 = if total == 0 {
        w.add(Weird::IpTotalLenZero);
        wire_len.max(b.len() as u64)
    } else {
        if usize::from(total) < ihl {
            w.add(Weird::IpTotalLenShorterThanHeader);
        }
        u64::from(total)
    };
    let declared_payload = ip_len.saturating_sub(ihl as u64);
    let end = (ihl as u64 + declared_payload).min(b.len() as u64) as usize;
    let payload = &b[ihl..end.max(ihl)];
    if (payload.len() as u64) < declared_payload {
        w.add(Weird::SnaplenTruncated);
    }
    let frag = if offset > 0 {
        Frag::Later {
            id: u32::from(id),
            offset: u32::from(offset) * 8,
        }
    } else if more {
        Frag::First { id: u32::from(id) }
    } else {
        Frag::None
    };
    let l4 = if matches!(frag, Frag::Later { .. }) {
        L4::None {
            payload_len: declared_payload,
        }
    } else {
        parse_l4(proto_n, false, payload, declared_payload, w)
    };
    Some(IpPkt {
        src,
        dst,
        proto: proto_n,
        ip_len,
        frag,
        l4,
    })
}

fn parse_v6<'a>(b: &'a [u8], wire_len: u64, w: &mut Weirds) -> Option<IpPkt<'a>> {
    if b.len() < 40 {
        w.add(Weird::TruncatedIpHeader);
        return None;
    }
    let plen = u16::from_be_bytes([b[4], b[5]]);
    let mut next = b[6];
    let mut s = [0u8; 16];
    s.copy_from_slice(&b[8..24]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&b[24..40]);
    let src = IpAddr::V6(Ipv6Addr::from(s));
    let dst = IpAddr::V6(Ipv6Addr::from(d));
    let mut ip_len = 40 + u64::from(plen);
    let mut jumbo: Option<u64> = None;
    let mut pos = 40usize;
    let mut frag = Frag::None;
    let mut truncated_ext = false;
    // Walk the extension headers.
    loop {
        match next {
            0 | 43 | 60 | 135 | 139 | 140 => {
                if b.len() < pos + 2 {
                    truncated_ext = true;
                    break;
                }
                let len = (usize::from(b[pos + 1]) + 1) * 8;
                if b.len() < pos + len {
                    truncated_ext = true;
                    break;
                }
                if next == 0 {
                    jumbo = jumbo_len(&b[pos + 2..pos + len]);
                }
                next = b[pos];
                pos += len;
            }
            44 => {
                if b.len() < pos + 8 {
                    truncated_ext = true;
                    break;
                }
                let fo = u16::from_be_bytes([b[pos + 2], b[pos + 3]]);
                let id = u32::from_be_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]);
                let offset = fo >> 3;
                let more = fo & 1 != 0;
                frag = if offset > 0 {
                    Frag::Later {
                        id,
                        offset: u32::from(offset) * 8,
                    }
                } else if more {
                    Frag::First { id }
                } else {
                    Frag::None
                };
                next = b[pos];
                pos += 8;
            }
            51 => {
                if b.len() < pos + 2 {
                    truncated_ext = true;
                    break;
                }
                let len = (usize::from(b[pos + 1]) + 2) * 4;
                if b.len() < pos + len {
                    truncated_ext = true;
                    break;
                }
                next = b[pos];
                pos += len;
            }
            _ => break,
        }
        if pos > 40 + 2048 {
            // A chain this long is not a real packet; stop walking.
            truncated_ext = true;
            break;
        }
    }
    if plen == 0 {
        if let Some(j) = jumbo {
            w.add(Weird::Ipv6Jumbogram);
            ip_len = 40 + j;
        } else if wire_len > 40 {
            w.add(Weird::IpTotalLenZero);
            ip_len = wire_len;
        }
    }
    let declared_payload = ip_len.saturating_sub(pos as u64);
    if truncated_ext {
        w.add(Weird::TruncatedIpv6ExtensionHeader);
        return Some(IpPkt {
            src,
            dst,
            proto: next,
            ip_len,
            frag,
            l4: L4::None {
                payload_len: ip_len.saturating_sub(40),
            },
        });
    }
    let end = (ip_len.min(b.len() as u64) as usize).max(pos);
    let payload = &b[pos..end];
    if (payload.len() as u64) < declared_payload {
        w.add(Weird::SnaplenTruncated);
    }
    let l4 = if matches!(frag, Frag::Later { .. }) {
        L4::None {
            payload_len: declared_payload,
        }
    } else {
        parse_l4(next, true, payload, declared_payload, w)
    };
    Some(IpPkt {
        src,
        dst,
        proto: next,
        ip_len,
        frag,
        l4,
    })
}

/// The Jumbo Payload option (RFC 2675) inside Hop-by-Hop options.
fn jumbo_len(opts: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        if t == 0 {
            i += 1;
            continue;
        }
        if i + 1 >= opts.len() {
            return None;
        }
        let l = usize::from(opts[i + 1]);
        if t == 0xc2 && l == 4 && i + 6 <= opts.len() {
            let v = u32::from_be_bytes([opts[i + 2], opts[i + 3], opts[i + 4], opts[i + 5]]);
            return Some(u64::from(v));
        }
        i += 2 + l;
    }
    None
}

fn parse_l4<'a>(p: u8, v6: bool, b: &'a [u8], declared: u64, w: &mut Weirds) -> L4<'a> {
    match p {
        proto::TCP => {
            if b.len() < 20 {
                w.add(Weird::TruncatedTcpHeader);
                if b.len() >= 4 {
                    return L4::PortsOnly {
                        sport: u16::from_be_bytes([b[0], b[1]]),
                        dport: u16::from_be_bytes([b[2], b[3]]),
                        payload_len: declared.saturating_sub(20),
                    };
                }
                return L4::None {
                    payload_len: declared,
                };
            }
            let doff = usize::from(b[12] >> 4) * 4;
            if doff < 20 {
                w.add(Weird::BadTcpHeaderLength);
                return L4::PortsOnly {
                    sport: u16::from_be_bytes([b[0], b[1]]),
                    dport: u16::from_be_bytes([b[2], b[3]]),
                    payload_len: declared.saturating_sub(20),
                };
            }
            let payload_len = declared.saturating_sub(doff as u64);
            let payload = if b.len() > doff { &b[doff..] } else { &[][..] };
            L4::Tcp(Tcp {
                sport: u16::from_be_bytes([b[0], b[1]]),
                dport: u16::from_be_bytes([b[2], b[3]]),
                seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                ack: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                flags: b[13],
                hdr_len: doff as u16,
                payload_len,
                payload: &payload[..payload.len().min(payload_len as usize)],
            })
        }
        proto::UDP => {
            if b.len() < 8 {
                w.add(Weird::TruncatedUdpHeader);
                if b.len() >= 4 {
                    return L4::PortsOnly {
                        sport: u16::from_be_bytes([b[0], b[1]]),
                        dport: u16::from_be_bytes([b[2], b[3]]),
                        payload_len: declared.saturating_sub(8),
                    };
                }
                return L4::None {
                    payload_len: declared,
                };
            }
            L4::Udp {
                sport: u16::from_be_bytes([b[0], b[1]]),
                dport: u16::from_be_bytes([b[2], b[3]]),
                payload_len: declared.saturating_sub(8),
                payload: &b[8..],
            }
        }
        proto::ICMP | proto::ICMPV6 => {
            if b.len() < 4 {
                w.add(Weird::TruncatedIcmpHeader);
                return L4::None {
                    payload_len: declared,
                };
            }
            L4::Icmp {
                v6: v6 || p == proto::ICMPV6,
                typ: b[0],
                code: b[1],
                id: if b.len() >= 6 {
                    u16::from_be_bytes([b[4], b[5]])
                } else {
                    0
                },
                seq: if b.len() >= 8 {
                    u16::from_be_bytes([b[6], b[7]])
                } else {
                    0
                },
                payload_len: declared.saturating_sub(8),
                payload: if b.len() > 8 { &b[8..] } else { &[][..] },
            }
        }
        _ => L4::None {
            payload_len: declared,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ethernet + IPv4 + TCP SYN (60-byte frame with padding), from a real trace.
    const ETH_TCP_SYN: [u8; 60] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08,
        0x00, // eth
        0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, // ip
        10, 0, 0, 5, 203, 0, 113, 9, // addrs
        0xc0, 0x01, 0x01, 0xbb, 0, 0, 0, 100, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0,
        0, // tcp
        0, 0, 0, 0, 0, 0, // padding
    ];

    #[test]
    fn ethernet_ipv4_tcp() {
        let mut w = Weirds::default();
        let d = decode(1, &ETH_TCP_SYN, 60, &mut w).unwrap();
        assert_eq!(d.outer.ip_len, 40); // from the header, padding not counted
        assert_eq!(d.outer.src.to_string(), "10.0.0.5");
        match d.outer.l4 {
            L4::Tcp(t) => {
                assert_eq!((t.sport, t.dport, t.seq), (49153, 443, 100));
                assert_eq!(t.flags, tcpflags::SYN);
                assert_eq!(t.payload_len, 0);
            }
            _ => panic!("not tcp"),
        }
        assert!(w.is_empty());
        // The same packet checked with etherparse as an independent oracle.
        let e = etherparse::SlicedPacket::from_ethernet(&ETH_TCP_SYN).unwrap();
        match e.net {
            Some(etherparse::NetSlice::Ipv4(v4)) => {
                assert_eq!(u64::from(v4.header().total_len()), d.outer.ip_len)
            }
            _ => panic!(),
        }
    }

    #[test]
    fn snaplen_cut_keeps_ip_length() {
        let mut f = ETH_TCP_SYN;
        f[16] = 0x05; // total length 1400
        f[17] = 0x78;
        let mut w = Weirds::default();
        let d = decode(1, &f[..54], 1414, &mut w).unwrap();
        assert_eq!(d.outer.ip_len, 1400);
        assert_eq!(d.outer.l4.payload_len(), 1360);
        assert_eq!(w.get("snaplen_truncated"), 1);
    }

    #[test]
    fn never_panics_on_prefixes_and_garbage() {
        let mut w = Weirds::default();
        for lt in [0u32, 1, 12, 101, 108, 113, 228, 229, 239, 276, 9999] {
            for n in 0..ETH_TCP_SYN.len() {
                let _ = decode(lt, &ETH_TCP_SYN[..n], n as u32, &mut w);
            }
        }
        let mut x: u32 = 12345;
        let mut buf = [0u8; 200];
        for _ in 0..20000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            buf[12] = 0x08;
            buf[13] = 0x00;
            buf[14] = 0x45;
            let n = (x as usize) % buf.len();
            let _ = decode(1, &buf[..n], n as u32, &mut w);
            let _ = decode(101, &buf[14..n.max(14)], n as u32, &mut w);
        }
    }
}
