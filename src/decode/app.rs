//! Application hints that name destinations: TLS ClientHello SNI (also when the
//! ClientHello spans several TCP segments: the caller buffers), HTTP Host, and
//! DNS answers (IP → names). Bounded parsers over untrusted bytes; the strings
//! they return are raw and must be sanitized before output.

use std::net::IpAddr;

/// Result of looking for a TLS server name in the first client bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Sni {
    /// Found it.
    Name(String),
    /// A ClientHello that is not complete yet: buffer more bytes.
    NeedMore,
    /// Not a ClientHello, or one without a server name.
    No,
}

/// Looks for the SNI in a TLS ClientHello at the start of `b`.
pub fn tls_sni(b: &[u8]) -> Sni {
    // Record header: type 22 (handshake), version 3.x, length.
    if b.len() < 5 {
        return if b.first().is_none_or(|t| *t == 0x16) {
            Sni::NeedMore
        } else {
            Sni::No
        };
    }
    if b[0] != 0x16 || b[1] != 3 {
        return Sni::No;
    }
    // Collect handshake bytes across records until the ClientHello is complete.
    let mut hs: Vec<u8> = Vec::new();
    let mut i = 0;
    loop {
        if b.len() < i + 5 {
            break;
        }
        if b[i] != 0x16 {
            break;
        }
        let rl = usize::from(u16::from_be_bytes([b[i + 3], b[i + 4]]));
        let end = (i + 5 + rl).min(b.len());
        hs.extend_from_slice(&b[i + 5..end]);
        if end < i + 5 + rl {
            break;
        }
        i = end;
        if hs.len() >= 4 {
            let need =
                4 + (usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]));
            if hs.len() >= need {
                break;
            }
        }
    }
    if hs.len() < 4 {
        return Sni::NeedMore;
    }
    if hs[0] != 1 {
        return Sni::No;
    }
    let len = usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]);
    if hs.len() < 4 + len {
        return Sni::NeedMore;
    }
    parse_client_hello(&hs[4..4 + len]).map_or(Sni::No, Sni::Name)
}

fn parse_client_hello(h: &[u8]) -> Option<String> {
    let mut p = 2 + 32; // version + random
    let sid = usize::from(*h.get(p)?);
    p += 1 + sid;
    let cs = usize::from(u16::from_be_bytes([*h.get(p)?, *h.get(p + 1)?]));
    p += 2 + cs;
    let cm = usize::from(*h.get(p)?);
    p += 1 + cm;
    let el = usize::from(u16::from_be_bytes([*h.get(p)?, *h.get(p + 1)?]));
    p += 2;
    let end = (p + el).min(h.len());
    while p + 4 <= end {
        let t = u16::from_be_bytes([h[p], h[p + 1]]);
        let l = usize::from(u16::from_be_bytes([h[p + 2], h[p + 3]]));
        let body = h.get(p + 4..p + 4 + l)?;
        if t == 0 {
            // server_name_list: list length, then entries (type, length, name).
            let mut q = 2;
            while q + 3 <= body.len() {
                let nt = body[q];
                let nl = usize::from(u16::from_be_bytes([body[q + 1], body[q + 2]]));
                let name = body.get(q + 3..q + 3 + nl)?;
                if nt == 0 {
                    return Some(String::from_utf8_lossy(name).into_owned());
                }
                q += 3 + nl;
            }
            return None;
        }
        p += 4 + l;
    }
    None
}

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"PROPFIND ",
];

/// Whether `b` looks like the start of an HTTP/1 request.
pub fn is_http_request(b: &[u8]) -> bool {
    METHODS.iter().any(|m| b.starts_with(m))
}

/// The Host header of an HTTP/1 request at the start of `b`, if the headers are complete.
/// `Err(())` means "need more bytes".
#[allow(clippy::result_unit_err)]
pub fn http_host(b: &[u8]) -> Result<Option<String>, ()> {
    let Some(hend) = find(b, b"\r\n\r\n") else {
        return Err(());
    };
    let head = &b[..hend];
    for line in head.split(|c| *c == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > 5 && line[..5].eq_ignore_ascii_case(b"host:") {
            let v = String::from_utf8_lossy(&line[5..]).trim().to_string();
            // Strip a port, keep IPv6 literals intact.
            let v = if !v.starts_with('[') {
                match v.rsplit_once(':') {
                    Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
                    _ => v,
                }
            } else {
                v
            };
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// What a DNS message says, as far as the detectors and the ledger need it.
#[derive(Debug, Default)]
pub struct DnsMsg {
    pub response: bool,
    pub nxdomain: bool,
    /// (name, qtype)
    pub questions: Vec<(String, u16)>,
    /// Address answers: (address, name); names are the owner and the question.
    pub answers: Vec<(IpAddr, String)>,
}

/// Parses a DNS message (UDP payload). `None` when it is not one. The question
/// section is parsed here (tunnels put arbitrary bytes in labels, which are kept,
/// non-printable ones escaped as `\xNN`); answers through simple-dns.
pub fn dns_message(payload: &[u8]) -> Option<DnsMsg> {
    if payload.len() < 12 {
        return None;
    }
    let response = payload[2] & 0x80 != 0;
    let opcode = (payload[2] >> 3) & 0x0f;
    if opcode > 5 {
        return None;
    }
    let rcode = payload[3] & 0x0f;
    let qd = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
    if qd == 0 || qd > 16 {
        return None;
    }
    let mut questions = Vec::new();
    let mut p = 12;
    for _ in 0..qd {
        let mut name = String::new();
        let mut total = 0;
        loop {
            let l = usize::from(*payload.get(p)?);
            if l == 0 {
                p += 1;
                break;
            }
            if l > 63 {
                return None; // compression in a question, or not DNS
            }
            let label = payload.get(p + 1..p + 1 + l)?;
            total += l + 1;
            if total > 255 {
                return None;
            }
            if !name.is_empty() {
                name.push('.');
            }
            for &c in label {
                if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                    name.push(char::from(c));
                } else {
                    name.push_str(&format!("\\x{c:02x}"));
                }
            }
            p += 1 + l;
        }
        let qtype = u16::from_be_bytes([*payload.get(p)?, *payload.get(p + 1)?]);
        p += 4;
        questions.push((name, qtype));
    }
    let answers = if response {
        simple_dns::Packet::parse(payload)
            .map(|pkt| dns_answers_of(&pkt))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Some(DnsMsg {
        response,
        nxdomain: response && rcode == 3,
        questions,
        answers,
    })
}

/// A DNS response's address answers: (address, owner name, question name).
pub fn dns_answers(payload: &[u8]) -> Vec<(IpAddr, String)> {
    let Ok(pkt) = simple_dns::Packet::parse(payload) else {
        return Vec::new();
    };
    if !pkt.has_flags(simple_dns::PacketFlag::RESPONSE) {
        return Vec::new();
    }
    dns_answers_of(&pkt)
}

fn dns_answers_of(pkt: &simple_dns::Packet<'_>) -> Vec<(IpAddr, String)> {
    let mut out = Vec::new();
    let questions: Vec<String> = pkt.questions.iter().map(|q| q.qname.to_string()).collect();
    for rr in &pkt.answers {
        let ip = match &rr.rdata {
            simple_dns::rdata::RData::A(a) => IpAddr::V4(std::net::Ipv4Addr::from(a.address)),
            simple_dns::rdata::RData::AAAA(a) => IpAddr::V6(std::net::Ipv6Addr::from(a.address)),
            _ => continue,
        };
        let owner = rr.name.to_string();
        for q in &questions {
            if !q.eq_ignore_ascii_case(&owner) {
                out.push((ip, q.clone()));
            }
        }
        out.push((ip, owner));
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_hello(name: &str) -> Vec<u8> {
        let mut ext = Vec::new();
        let n = name.as_bytes();
        let list_len = 3 + n.len();
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list_len as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
        ext.extend_from_slice(n);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn sni_whole_and_split() {
        let ch = client_hello("files.example.org");
        assert_eq!(tls_sni(&ch), Sni::Name("files.example.org".into()));
        assert_eq!(tls_sni(&ch[..20]), Sni::NeedMore);
        assert_eq!(tls_sni(b"GET / HTTP/1.1\r\n"), Sni::No);
        for n in 0..ch.len() {
            let _ = tls_sni(&ch[..n]);
        }
    }

    #[test]
    fn dns_questions_with_binary_labels() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&[4, b'a', 0xff, b'b', b'.', 2, b't', b'1', 7]);
        q.extend_from_slice(b"example");
        q.extend_from_slice(&[0, 0, 10, 0, 1]);
        let m = dns_message(&q).unwrap();
        assert!(!m.response);
        assert_eq!(
            m.questions,
            vec![("a\\xffb\\x2e.t1.example".to_string(), 10)]
        );
        for n in 0..q.len() {
            let _ = dns_message(&q[..n]);
        }
    }

    #[test]
    fn http_host_header() {
        let r = b"POST /upload HTTP/1.1\r\nUser-Agent: curl\r\nHost: evil.example:8080\r\n\r\nbody";
        assert!(is_http_request(r));
        assert_eq!(http_host(r), Ok(Some("evil.example".into())));
        assert_eq!(http_host(b"GET / HTTP/1.1\r\nHost: a"), Err(()));
    }
}
