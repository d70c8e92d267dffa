//! Run diagnostics: decode anomalies counted under stable names ("weirds", as Zeek
//! calls them), and escaping of strings that come from captures before they reach
//! a terminal, an HTML page or a spreadsheet.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// A decode anomaly. The `name()` strings are stable: reports and tests use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weird {
    UnknownLinkType,
    TruncatedLinkHeader,
    NonIpFrame,
    TruncatedIpHeader,
    BadIpVersion,
    BadIpHeaderLength,
    IpTotalLenZero,
    IpTotalLenShorterThanHeader,
    Ipv6Jumbogram,
    TruncatedIpv6ExtensionHeader,
    SnaplenTruncated,
    TruncatedTcpHeader,
    BadTcpHeaderLength,
    TruncatedUdpHeader,
    TruncatedIcmpHeader,
    FragmentWithoutFirst,
    TunnelDecodeFailed,
    NestedTunnelNotFollowed,
    TcpSeqRangesCapped,
    InvalidTimestamp,
    UnknownInterface,
    MplsNotIp,
    PppoeNotIp,
}

impl Weird {
    pub fn name(self) -> &'static str {
        match self {
            Weird::UnknownLinkType => "unknown_link_type",
            Weird::TruncatedLinkHeader => "truncated_link_header",
            Weird::NonIpFrame => "non_ip_frame",
            Weird::TruncatedIpHeader => "truncated_ip_header",
            Weird::BadIpVersion => "bad_ip_version",
            Weird::BadIpHeaderLength => "bad_ip_header_length",
            Weird::IpTotalLenZero => "ip_total_len_zero_tso",
            Weird::IpTotalLenShorterThanHeader => "ip_total_len_shorter_than_header",
            Weird::Ipv6Jumbogram => "ipv6_jumbogram",
            Weird::TruncatedIpv6ExtensionHeader => "truncated_ipv6_extension_header",
            Weird::SnaplenTruncated => "snaplen_truncated",
            Weird::TruncatedTcpHeader => "truncated_tcp_header",
            Weird::BadTcpHeaderLength => "bad_tcp_header_length",
            Weird::TruncatedUdpHeader => "truncated_udp_header",
            Weird::TruncatedIcmpHeader => "truncated_icmp_header",
            Weird::FragmentWithoutFirst => "fragment_without_first",
            Weird::TunnelDecodeFailed => "tunnel_decode_failed",
            Weird::NestedTunnelNotFollowed => "nested_tunnel_not_followed",
            Weird::TcpSeqRangesCapped => "tcp_seq_ranges_capped",
            Weird::InvalidTimestamp => "invalid_timestamp",
            Weird::UnknownInterface => "unknown_pcapng_interface",
            Weird::MplsNotIp => "mpls_payload_not_ip",
            Weird::PppoeNotIp => "pppoe_payload_not_ip",
        }
    }
}

/// Weird counters of one input. Ordered, so reports are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Weirds {
    counts: BTreeMap<&'static str, u64>,
}

impl Weirds {
    #[inline]
    pub fn add(&mut self, w: Weird) {
        *self.counts.entry(w.name()).or_insert(0) += 1;
    }
    pub fn add_n(&mut self, name: &'static str, n: u64) {
        if n > 0 {
            *self.counts.entry(name).or_insert(0) += n;
        }
    }
    pub fn merge(&mut self, o: &Weirds) {
        for (k, v) in &o.counts {
            *self.counts.entry(k).or_insert(0) += v;
        }
    }
    pub fn get(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (*k, *v))
    }
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// Writes one line to stderr, ignoring failure (a closed stderr must not abort
/// the run: the report and the exit code are what matter).
#[macro_export]
macro_rules! warn_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width and direction marks
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}')
}

/// Escapes control characters, bidi overrides and zero-width characters as
/// `\u{..}` (following fd's `sanitize_for_terminal`). Strings from captures
/// (host names, SNI, HTTP headers) and file names pass through here before any
/// output.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Escapes bytes that are not valid UTF-8 as `\xNN`, then sanitizes.
pub fn sanitize_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for x in chunk.invalid() {
            s.push_str(&format!("\\x{x:02x}"));
        }
    }
    sanitize(&s).into_owned()
}

/// Guards a CSV cell against formula injection in spreadsheet programs (OWASP):
/// a cell that starts with `=`, `+`, `-`, `@`, tab or carriage return gets a
/// leading apostrophe. Applied to text cells only, never to numbers.
pub fn csv_text(s: &str) -> Cow<'_, str> {
    let s = sanitize(s);
    // A lone "-" (Zeek's unset marker, stdin) cannot be a formula.
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if s.len() > 1 => Cow::Owned(format!("'{s}")),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi() {
        assert_eq!(sanitize("example.com"), "example.com");
        assert_eq!(sanitize("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(sanitize("evil\u{202E}moc.x"), "evil\\u{202e}moc.x");
        assert_eq!(sanitize_bytes(b"ab\xffc"), "ab\\xffc");
    }

    #[test]
    fn csv_formula_guard() {
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_text("@cmd"), "'@cmd");
        assert_eq!(csv_text("example.com"), "example.com");
    }

    #[test]
    fn weirds_are_ordered_and_merge() {
        let mut a = Weirds::default();
        a.add(Weird::SnaplenTruncated);
        a.add(Weird::BadIpVersion);
        let mut b = Weirds::default();
        b.add(Weird::SnaplenTruncated);
        a.merge(&b);
        let v: Vec<_> = a.iter().collect();
        assert_eq!(v, vec![("bad_ip_version", 1), ("snaplen_truncated", 2)]);
    }
}
