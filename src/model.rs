//! Plain data shared between the stages: timestamps, endpoints, flow keys and the
//! per-flow record every later stage reads. No I/O and no logic beyond
//! constructors, ordering and formatting helpers.

use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// Nanoseconds since the Unix epoch (UTC). Every timestamp is normalised to this
/// at the reader boundary.
pub type Ts = i64;

pub const NS_PER_SEC: i64 = 1_000_000_000;

/// Formats a timestamp as Zeek does in conn.log: seconds with six decimals.
pub fn fmt_epoch(ts: Ts) -> String {
    let mut b = Vec::with_capacity(24);
    push_epoch(&mut b, ts);
    String::from_utf8(b).unwrap_or_default()
}

/// `fmt_epoch` appended to a byte buffer (the flows output writes millions).
pub fn push_epoch(out: &mut Vec<u8>, ts: Ts) {
    let secs = ts.div_euclid(NS_PER_SEC);
    let mut us = ts.rem_euclid(NS_PER_SEC) / 1000;
    out.extend_from_slice(itoa::Buffer::new().format(secs).as_bytes());
    out.push(b'.');
    let mut frac = [b'0'; 6];
    for d in frac.iter_mut().rev() {
        *d = b'0' + (us % 10) as u8;
        us /= 10;
    }
    out.extend_from_slice(&frac);
}

/// Formats a duration in nanoseconds as seconds with six decimals.
pub fn fmt_secs(ns: i64) -> String {
    fmt_epoch(ns)
}

/// RFC 3339 in UTC with microseconds, e.g. `2026-11-28T10:41:24.371461Z`.
pub fn fmt_rfc3339(ts: Ts) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ts)) {
        Ok(t) => {
            let us = ts.rem_euclid(NS_PER_SEC) / 1000;
            let whole = jiff::Timestamp::from_second(t.as_second()).unwrap_or(t);
            let s = whole.to_string(); // e.g. 2026-11-28T10:41:24Z
            let base = s.trim_end_matches('Z');
            format!("{base}.{us:06}Z")
        }
        Err(_) => fmt_epoch(ts),
    }
}

/// Parses an RFC 3339 timestamp (fractions allowed) or plain epoch seconds.
pub fn parse_time(s: &str) -> Option<Ts> {
    parse_time_bytes(s.as_bytes())
}

/// [`parse_time`] of a field as bytes (the text is made only when the fast
/// path does not read it: record lines are read as bytes).
pub fn parse_time_bytes(b: &[u8]) -> Option<Ts> {
    fast_epoch(b).or_else(|| general_time(std::str::from_utf8(b).ok()?))
}

/// `parse_time` without the fast path.
fn general_time(s: &str) -> Option<Ts> {
    let s = s.trim();
    // Epoch seconds first, without allocating (flow exports carry millions of
    // them); an RFC 3339 text never reads as a number, so the order does not
    // change any result.
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let plain = !int.is_empty() && int.len() <= 18 && int.bytes().all(|c| c.is_ascii_digit());
    let secs = if plain {
        Ok(int.bytes().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
    } else {
        int.parse::<i64>()
    };
    if let Ok(secs) = secs {
        if frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut ns = 0i64;
        for i in 0..9 {
            ns = ns * 10 + frac.as_bytes().get(i).map_or(0, |d| i64::from(d - b'0'));
        }
        return secs.checked_mul(NS_PER_SEC)?.checked_add(ns);
    }
    let t = s.parse::<jiff::Timestamp>().ok()?;
    i64::try_from(t.as_nanosecond()).ok()
}

/// Epoch seconds of up to ten digits with up to nine decimals, in one pass
/// (Zeek's `ts` and `duration`, millions per log); `None` for anything else,
/// which `parse_time` then reads the general way with the same result.
#[inline]
fn fast_epoch(b: &[u8]) -> Option<Ts> {
    let (mut secs, mut ns, mut i) = (0i64, 0i64, 0usize);
    // At most eleven digits are read (then the text is too long anyway): no
    // overflow whatever the input.
    while i < b.len() && i <= 10 && b[i].is_ascii_digit() {
        secs = secs * 10 + i64::from(b[i] - b'0');
        i += 1;
    }
    if i == 0 || i > 10 {
        return None;
    }
    if i < b.len() {
        let frac = &b[i + 1..];
        if b[i] != b'.' || frac.len() > 9 {
            return None;
        }
        // The fraction as an integer, scaled once at the end (a division of
        // the scale per digit was a chain of dependent multiplications).
        ns = digits(frac)? as i64 * 10i64.pow(9 - frac.len() as u32);
    }
    secs.checked_mul(NS_PER_SEC)?.checked_add(ns)
}

/// Default collector ports: UDP datagrams to or from them are decoded as
/// NetFlow/IPFIX exports (`--flow-port` adds more).
pub const EXPORT_PORTS: [u16; 4] = [2055, 4739, 9995, 9996];

/// Where an export message came from: frame number in a capture, or message
/// number and byte offset in an export file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin {
    pub record: u64,
    pub offset: Option<u64>,
}

/// Link types the decoder understands: Ethernet (1), raw IP (12, 14, 101, 228,
/// 229), BSD null/loop (0, 108), Linux SLL (113) and SLL2 (276), NFLOG (239).
pub const SUPPORTED_LINKTYPES: [u32; 11] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 239, 276];

/// IP protocol numbers we name.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6: u8 = 41;
    pub const GRE: u8 = 47;
    pub const ICMPV6: u8 = 58;
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` (or with `T`, with or without `Z`) read as UTC,
/// as nfdump and many CSV exports print times.
pub fn parse_utc_datetime(s: &str) -> Option<Ts> {
    parse_utc_datetime_in(s.as_bytes(), &mut DateCache::default())
}

/// The last date [`parse_utc_datetime_in`] read and its midnight: the
/// timestamps of an export mostly share their day, whose reading is then
/// skipped.
#[derive(Default)]
pub struct DateCache {
    date: [u8; 10],
    midnight: Option<Ts>,
}

/// [`parse_utc_datetime`] with the day of the previous call kept in `cache`
/// (the same result for every input).
pub fn parse_utc_datetime_in(s: &[u8], cache: &mut DateCache) -> Option<Ts> {
    if let Some(t) = fast_datetime(s.trim_ascii(), cache) {
        return Some(t);
    }
    let s = std::str::from_utf8(s).ok()?.trim();
    let (date, time) = s.split_once([' ', 'T'])?;
    parse_time(&format!("{date}T{}Z", time.trim_end_matches('Z')))
}

/// The value of a run of ASCII digits (empty: 0), `None` if any byte is not
/// one; without a branch per byte (the lengths vary from value to value).
/// The caller bounds the length (at most 19 digits fit).
#[inline]
fn digits(b: &[u8]) -> Option<u64> {
    let (mut a, mut ok) = (0u64, true);
    for &d in b {
        ok &= d.is_ascii_digit();
        a = a
            .wrapping_mul(10)
            .wrapping_add(u64::from(d.wrapping_sub(b'0')));
    }
    ok.then_some(a)
}

/// `YYYY-MM-DD HH:MM:SS[.f{1,9}]` (space or `T`, optional `Z`) without the
/// general parser: flow exports carry millions of these. `None` for anything
/// else, which the general parser then reads (or rejects).
fn fast_datetime(b: &[u8], cache: &mut DateCache) -> Option<Ts> {
    let b = b.strip_suffix(b"Z").unwrap_or(b);
    if b.len() < 19 || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let midnight = match cache.midnight {
        Some(m) if b[..10] == cache.date => m,
        _ => {
            let m = midnight(&b[..10])?;
            cache.date.copy_from_slice(&b[..10]);
            cache.midnight = Some(m);
            m
        }
    };
    let n = |r: std::ops::Range<usize>| digits(&b[r]).map(|v| v as i64);
    let (h, mi, sec) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut ns = 0i64;
    if b.len() > 19 {
        let frac = &b[20..];
        if b[19] != b'.' || frac.is_empty() || frac.len() > 9 {
            return None;
        }
        ns = digits(frac)? as i64 * 10i64.pow(9 - frac.len() as u32);
    }
    Some(midnight + ((h * 60 + mi) * 60 + sec) * NS_PER_SEC + ns)
}

/// `YYYY-MM-DD` as its midnight (UTC, nanoseconds since the epoch).
fn midnight(b: &[u8]) -> Option<Ts> {
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits(&b[r]).map(|v| v as i64);
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 * NS_PER_SEC)
}

/// An IP address as text, like `str::parse::<IpAddr>` (the same result for
/// every input), with dotted-quad IPv4 read without the general parser: flow
/// exports carry two or three addresses per record.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    parse_ip_bytes(s.as_bytes())
}

/// [`parse_ip`] of a field as bytes.
pub fn parse_ip_bytes(b: &[u8]) -> Option<IpAddr> {
    let general = || std::str::from_utf8(b).ok()?.parse().ok();
    if b.len() < 7 || b.len() > 15 {
        return general();
    }
    let mut oct = [0u8; 4];
    let (mut n, mut v, mut digits) = (0usize, 0u32, 0u32);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                // A leading zero ("010") is for the general parser to judge.
                if digits == 1 && v == 0 {
                    return general();
                }
                v = v * 10 + u32::from(c - b'0');
                digits += 1;
                if v > 255 {
                    return general();
                }
            }
            b'.' if digits > 0 && n < 3 => {
                oct[n] = v as u8;
                n += 1;
                v = 0;
                digits = 0;
            }
            _ => return general(),
        }
        if i + 1 == b.len() {
            if digits == 0 || n != 3 {
                return general();
            }
            oct[3] = v as u8;
        }
    }
    Some(IpAddr::V4(std::net::Ipv4Addr::from(oct)))
}

/// Addresses read lately, by their text: flow records name the same hosts
/// over and over (the thousand most frequent addresses of the benchmark are
/// seven in ten of all), and finding one here is cheaper than reading it.
/// A direct-mapped table of dotted quads of 8 to 15 characters, keyed by
/// their first and last eight bytes (together the whole text) and length.
pub struct IpCache {
    slots: Vec<(u64, u64, u32, u8)>,
}

impl Default for IpCache {
    fn default() -> Self {
        IpCache {
            slots: vec![(0, 0, 0, 0); 1 << IpCache::BITS],
        }
    }
}

impl IpCache {
    const BITS: u32 = 12;

    /// A text's key words and slot; `None` for lengths the table does not take.
    #[inline]
    fn key(b: &[u8]) -> Option<(u64, u64, usize)> {
        let n = b.len();
        if !(8..=15).contains(&n) {
            return None;
        }
        let w0 = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
        let w1 = u64::from_le_bytes(b.get(n - 8..)?.try_into().ok()?);
        let h = (w0 ^ w1.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Some((w0, w1, (h >> (64 - Self::BITS)) as usize))
    }

    /// [`parse_ip_bytes`], the same result for every input.
    #[inline]
    pub fn parse(&mut self, b: &[u8]) -> Option<IpAddr> {
        let Some((w0, w1, k)) = Self::key(b) else {
            return parse_ip_bytes(b);
        };
        let n = b.len();
        let slot = &mut self.slots[k];
        if slot.0 == w0 && slot.1 == w1 && usize::from(slot.3) == n {
            return Some(IpAddr::V4(std::net::Ipv4Addr::from(slot.2)));
        }
        let a = parse_ip_bytes(b);
        if let Some(IpAddr::V4(v4)) = a {
            *slot = (w0, w1, u32::from(v4), n as u8);
        }
        a
    }
}

/// A decimal count as `str::parse::<u64>` reads it (the same result for every
/// input), plain digits without the general parser ([`digits`]).
#[inline]
pub fn parse_u64(s: &str) -> Option<u64> {
    parse_u64_bytes(s.as_bytes())
}

/// [`parse_u64`] of a field as bytes.
#[inline]
pub fn parse_u64_bytes(b: &[u8]) -> Option<u64> {
    if !b.is_empty()
        && b.len() <= 19
        && let Some(v) = digits(b)
    {
        return Some(v);
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// An IP protocol as exports write it: a name (`TCP`, `udp`, `ICMP6`,
/// `ipv6-icmp`, `GRE`, `ESP`, any case) or a number; empty is 0 (unknown).
pub fn parse_proto(s: &str) -> Option<u8> {
    const NAMES: [(&str, u8); 8] = [
        ("tcp", proto::TCP),
        ("udp", proto::UDP),
        ("icmp", proto::ICMP),
        ("icmp6", 58),
        ("icmpv6", 58),
        ("ipv6-icmp", 58),
        ("gre", 47),
        ("esp", 50),
    ];
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    match NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        Some(&(_, p)) => Some(p),
        None => s.parse().ok(),
    }
}

/// [`parse_proto`] of a field as bytes: `tcp` and `udp` (any case) are
/// matched without making text; anything else takes the general way.
pub fn parse_proto_bytes(b: &[u8]) -> Option<u8> {
    let t = b.trim_ascii();
    for (n, p) in [(b"tcp", proto::TCP), (b"udp", proto::UDP)] {
        if t.eq_ignore_ascii_case(n) {
            return Some(p);
        }
    }
    parse_proto(std::str::from_utf8(b).ok()?)
}

/// Zeek's name for an IP protocol in conn.log's `proto` column.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        proto::TCP => "tcp",
        proto::UDP => "udp",
        proto::ICMP | proto::ICMPV6 => "icmp",
        _ => "unknown_transport",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Canonical (direction-free) key of a bidirectional flow: `a <= b`.
/// `depth` is 0 for packets as they cross the wire and 1 for the packet inside
/// a tunnel, so an inner flow never merges with an outer one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub proto: u8,
    pub depth: u8,
    pub a: Endpoint,
    pub b: Endpoint,
}

impl FlowKey {
    /// Builds the canonical key and says whether `src` is the `a` side.
    pub fn new(proto: u8, depth: u8, src: Endpoint, dst: Endpoint) -> (FlowKey, bool) {
        // Two IPv4 endpoints (most flows) ordered as 48-bit numbers, address
        // then port, which is their order: picked without a branch (which
        // side is lower is a coin toss from flow to flow).
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip, dst.ip) {
            let n = |a: Ipv4Addr, p: u16| u64::from(a.to_bits()) << 16 | u64::from(p);
            let (x, y) = (n(s, src.port), n(d, dst.port));
            let e = |v: u64| Endpoint {
                ip: IpAddr::V4(Ipv4Addr::from_bits((v >> 16) as u32)),
                port: v as u16,
            };
            let key = FlowKey {
                proto,
                depth,
                a: e(x.min(y)),
                b: e(x.max(y)),
            };
            return (key, x <= y);
        }
        if src <= dst {
            (
                FlowKey {
                    proto,
                    depth,
                    a: src,
                    b: dst,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    proto,
                    depth,
                    a: dst,
                    b: src,
                },
                false,
            )
        }
    }
}

/// Why one side of a flow was taken as its originator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionReason {
    /// A SYN without ACK was seen from the originator.
    Syn,
    /// A SYN-ACK was seen from the responder.
    Synack,
    /// The responder uses a well-known service port (or ICMP request/reply types).
    Port,
    /// The sender of the first packet seen.
    First,
}

impl DirectionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DirectionReason::Syn => "syn",
            DirectionReason::Synack => "synack",
            DirectionReason::Port => "port",
            DirectionReason::First => "first",
        }
    }
}

/// Byte and packet counters of one direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirStats {
    pub pkts: u64,
    /// IP bytes from the header (IPv4 total length, IPv6 40 + payload length).
    pub ip_bytes: u64,
    /// Transport payload bytes summed over packets (retransmissions included).
    pub payload_bytes: u64,
    /// Zeek-style size: TCP sequence-space span (retransmissions counted once,
    /// gaps included), payload bytes for other protocols.
    pub bytes: u64,
    /// TCP sequence-space bytes never seen in the capture (Zeek `missed_bytes`).
    pub missed_bytes: u64,
}

impl DirStats {
    pub fn add(&mut self, o: &DirStats) {
        self.pkts += o.pkts;
        self.ip_bytes += o.ip_bytes;
        self.payload_bytes += o.payload_bytes;
        self.bytes += o.bytes;
        self.missed_bytes += o.missed_bytes;
    }
}

/// Where a flow was seen: input index and 1-based frame numbers as Wireshark shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SourceSpan {
    pub input: usize,
    pub first_frame: u64,
    pub last_frame: u64,
}

/// A hash map whose values live in a vector: growing the table moves only the
/// small key/index entries, never the (large) rows. Used for the aggregates
/// `analyze` keeps per host and destination while flows pass.
pub struct Slots<K, V> {
    index: std::collections::HashMap<K, u32, foldhash::fast::FixedState>,
    rows: Vec<V>,
}

impl<K, V> Default for Slots<K, V> {
    fn default() -> Self {
        Slots {
            index: Default::default(),
            rows: Vec::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq, V> Slots<K, V> {
    /// The row of `k` (made by `make` when new).
    pub fn row(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        let n = self.rows.len() as u32;
        let i = *self.index.entry(k).or_insert(n);
        if i == n {
            self.rows.push(make());
        }
        &mut self.rows[i as usize]
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.index.get(k).map(|&i| &self.rows[i as usize])
    }

    /// Adds the row `v` of key `k`: combined with `f` into an existing row, or new.
    pub fn add(&mut self, k: K, v: V, f: impl FnOnce(&mut V, V)) {
        match self.index.get(&k) {
            Some(&i) => f(&mut self.rows[i as usize], v),
            None => {
                self.index.insert(k, self.rows.len() as u32);
                self.rows.push(v);
            }
        }
    }

    pub fn rows(&self) -> &[V] {
        &self.rows
    }

    /// The rows, in the order their keys were first seen.
    pub fn into_rows(self) -> Vec<V> {
        self.rows
    }
}

/// Frame (or record) ranges per input, sorted by input: what findings and
/// ledger rows cite. The first range is held inline (most groups of flows come
/// from one input), further ones in a vector.
#[derive(Clone, Debug, Default)]
pub struct FrameSet {
    head: Option<(usize, u64, u64)>,
    tail: Vec<(usize, u64, u64)>,
}

impl FrameSet {
    /// Widens the range of `input` to cover `first..=last`.
    pub fn add(&mut self, input: usize, first: u64, last: u64) {
        let widen = |r: &mut (usize, u64, u64)| {
            r.1 = r.1.min(first);
            r.2 = r.2.max(last);
        };
        match &mut self.head {
            None => self.head = Some((input, first, last)),
            Some(h) if h.0 == input => widen(h),
            Some(h) if input < h.0 => {
                let old = std::mem::replace(h, (input, first, last));
                self.tail.insert(0, old);
            }
            Some(_) => match self.tail.binary_search_by_key(&input, |r| r.0) {
                Ok(i) => widen(&mut self.tail[i]),
                Err(i) => self.tail.insert(i, (input, first, last)),
            },
        }
    }

    pub fn merge(&mut self, o: &FrameSet) {
        for (input, a, b) in o.iter() {
            self.add(input, a, b);
        }
    }

    /// (input, first, last), by input.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        self.head.iter().chain(self.tail.iter()).copied()
    }
}

/// One finished flow, as the flow stage hands it on.
#[derive(Clone, Debug)]
pub struct Flow {
    pub key: FlowKey,
    pub first_ts: Ts,
    pub last_ts: Ts,
    pub orig: Endpoint,
    pub resp: Endpoint,
    pub direction: DirectionReason,
    pub orig_stats: DirStats,
    pub resp_stats: DirStats,
    pub span: SourceSpan,
    /// Tunnel parent and server names, which few flows have (boxed: the
    /// flows of millions of export records carry none).
    pub extra: Option<Box<FlowExtra>>,
    /// TCP flags history summary: SYN seen from originator, etc.
    pub tcp_state: Option<TcpSummary>,
    /// ICMP echo statistics (echo flows only; boxed: most flows have none).
    pub icmp: Option<Box<IcmpStats>>,
    /// Application protocol recognised from the client's first bytes
    /// (`tls`, `http`, `ssh`), whatever the port.
    pub app_proto: Option<&'static str>,
    /// Flows made from a flow-export record: exporter and sampling.
    pub export: Option<ExportInfo>,
}

/// What is kept of export records made into flows: how many, their earliest
/// start and latest end, and their largest sampling interval (1 = unsampled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordTally {
    pub count: u64,
    pub span: Option<(Ts, Ts)>,
    pub max_sampling: u32,
}

impl Default for RecordTally {
    fn default() -> Self {
        RecordTally {
            count: 0,
            span: None,
            max_sampling: 1,
        }
    }
}

impl RecordTally {
    /// One record more: its flow.
    #[inline]
    pub fn add(&mut self, f: &Flow) {
        self.merge(&RecordTally {
            count: 1,
            span: Some((f.first_ts, f.last_ts)),
            max_sampling: f.export.map_or(1, |x| x.sampling),
        });
    }

    /// The records of `o` as well.
    #[inline]
    pub fn merge(&mut self, o: &RecordTally) {
        self.count += o.count;
        self.max_sampling = self.max_sampling.max(o.max_sampling);
        if let Some((s, e)) = o.span {
            self.span = Some(self.span.map_or((s, e), |(a, b)| (a.min(s), b.max(e))));
        }
    }
}

/// Per-exporter figures before and after de-duplication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExporterTotals {
    pub exporter: IpAddr,
    pub records: u64,
    pub ip_bytes: u64,
    /// Records (and their IP bytes) dropped as duplicates of a preferred exporter's.
    pub duplicate_records: u64,
    pub duplicate_ip_bytes: u64,
}

/// Where a flow from a flow export came from, and how it was sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ExportInfo {
    pub exporter: Option<IpAddr>,
    /// 1 in N packets sampled; the flow's counts are N times the counted ones
    /// (the Horvitz-Thompson estimate).
    pub sampling: u32,
    /// Counted (unscaled) IP bytes and packets per direction (orig, resp).
    pub counted_bytes: [u64; 2],
    pub counted_pkts: [u64; 2],
}

/// ICMP echo statistics of one flow (originator = the side sending requests).
#[derive(Clone, Debug, Default, Serialize)]
pub struct IcmpStats {
    pub requests: u64,
    pub replies: u64,
    /// Payload bytes after the 8-byte ICMP header, per direction.
    pub request_payload: u64,
    pub reply_payload: u64,
    pub max_request_payload: u64,
    /// Requests whose payload is at least 256 bytes (Elastic's threshold).
    pub large_requests: u64,
    /// Distinct request payload sizes (up to 64).
    pub request_sizes: std::collections::BTreeSet<u32>,
    /// Distinct request payload contents (by hash, counted up to 4096).
    pub distinct_payloads: u64,
    /// Replies whose payload differs from their request's (a real ping echoes it).
    pub mismatched_replies: u64,
    pub matched_replies: u64,
    #[serde(skip)]
    pub(crate) outstanding: std::collections::HashMap<(u16, u16), (u64, u64)>,
    #[serde(skip)]
    pub(crate) seen_payloads: std::collections::HashSet<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSummary {
    pub syn: bool,
    pub synack: bool,
    pub orig_fin: bool,
    pub resp_fin: bool,
    pub rst: bool,
}

/// The rarely present parts of a flow.
#[derive(Clone, Debug, Default)]
pub struct FlowExtra {
    /// For inner (tunnelled) flows: the key and start of the outer flow.
    pub tunnel_parent: Option<(FlowKey, Ts)>,
    /// TLS ClientHello server name, if seen.
    pub sni: Option<String>,
    /// HTTP Host header of the first request, if seen.
    pub http_host: Option<String>,
}

impl FlowExtra {
    /// `None` when there is nothing to keep.
    pub fn boxed(self) -> Option<Box<FlowExtra>> {
        (self.tunnel_parent.is_some() || self.sni.is_some() || self.http_host.is_some())
            .then(|| Box::new(self))
    }
}

impl Flow {
    /// For inner (tunnelled) flows: the key and start of the outer flow.
    pub fn tunnel_parent(&self) -> Option<(FlowKey, Ts)> {
        self.extra.as_ref().and_then(|e| e.tunnel_parent)
    }

    /// TLS ClientHello server name, if seen.
    pub fn sni(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.sni.as_deref())
    }

    /// HTTP Host header of the first request, if seen.
    pub fn http_host(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.http_host.as_deref())
    }

    /// The report order of flows: start time, input, first frame, key.
    pub fn order_key(&self) -> (Ts, usize, u64, FlowKey) {
        (
            self.first_ts,
            self.span.input,
            self.span.first_frame,
            self.key,
        )
    }

    /// A deterministic identifier (hex of a 64-bit FNV-1a hash of key and start).
    pub fn uid(&self) -> FlowUid {
        flow_uid(&self.key, self.first_ts)
    }
}

/// A flow's identifier: `F` and 16 hex digits (see [`flow_uid`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowUid(pub u64);

impl fmt::Display for FlowUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.bytes()).unwrap_or_default())
    }
}

impl FlowUid {
    /// The identifier's 17 bytes, without formatting machinery.
    /// Each half's eight nibbles are spread to the bytes of a word and
    /// turned into hex digits in the word's lanes (no lookup per digit).
    pub fn bytes(self) -> [u8; 17] {
        fn hex8(x: u32) -> [u8; 8] {
            // Nibbles to bytes, most significant first in memory.
            let x = u64::from(x.swap_bytes());
            let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
            let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
            // Each byte holds two nibbles, high one first: split them.
            let x = ((x & 0x0f0f_0f0f_0f0f_0f0f) << 8 | (x >> 4) & 0x0f0f_0f0f_0f0f_0f0f)
                & 0x0f0f_0f0f_0f0f_0f0f;
            // 0-9 -> '0'-'9', 10-15 -> 'a'-'f' (39 apart).
            let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
            (x + 0x3030_3030_3030_3030 + letters * 39).to_le_bytes()
        }
        let mut out = [b'F'; 17];
        out[1..9].copy_from_slice(&hex8((self.0 >> 32) as u32));
        out[9..].copy_from_slice(&hex8(self.0 as u32));
        out
    }
}

impl Serialize for FlowUid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.bytes();
        s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

pub fn flow_uid(key: &FlowKey, first_ts: Ts) -> FlowUid {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&[key.proto, key.depth]);
    for ep in [key.a, key.b] {
        match ep.ip {
            IpAddr::V4(a) => feed(&a.octets()),
            IpAddr::V6(a) => feed(&a.octets()),
        }
        feed(&ep.port.to_be_bytes());
    }
    feed(&first_ts.to_be_bytes());
    FlowUid(h)
}

/// One unidirectional flow record from an export (NetFlow v9, IPFIX, nfdump CSV):
/// `bytes` are IP-layer octets from src to dst, as exporters count them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    pub start: Ts,
    pub end: Ts,
    pub proto: u8,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub pkts: u64,
    pub bytes: u64,
    pub tcp_flags: u8,
    /// Packet sampling interval announced by the exporter (1 = unsampled).
    pub sampling: u32,
    /// 1-based record number within the input (or the export packet's frame number).
    pub record: u64,
    /// Bidirectional records (Zeek conn.log, IPFIX biflow): packets and IP bytes
    /// from dst back to src; 0 for unidirectional records.
    pub rev_pkts: u64,
    pub rev_bytes: u64,
    /// Application bytes per direction when the record has them (Zeek orig_bytes,
    /// resp_bytes), and Zeek's missed_bytes.
    pub app_bytes: Option<(u64, u64)>,
    pub missed: u64,
    /// The exporter's address (NetFlow/IPFIX datagrams in a capture; nfdump's
    /// exporter), `None` when the input does not name one.
    pub exporter: Option<IpAddr>,
}

/// An allowlist entry as applied, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct AllowEcho {
    pub destination: String,
    pub justification: String,
    pub multi_tenant: bool,
}

/// A name learned for an IP address, and how.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NameObservation {
    pub ip: IpAddr,
    pub name: String,
    /// `dns`, `sni` or `http_host`.
    pub source: &'static str,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub first_ts: Ts,
    pub input: usize,
    pub frame: u64,
}

/// Serializes a timestamp as RFC 3339 (UTC, microseconds).
pub fn ser_ts<S: serde::Serializer>(ts: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_rfc3339(*ts))
}

/// Serializes an optional timestamp as RFC 3339 or null.
pub fn ser_ts_opt<S: serde::Serializer>(ts: &Option<Ts>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(t) => s.serialize_str(&fmt_rfc3339(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identifier's digits (made in word lanes) equal `format!`'s hex.
    #[test]
    fn flow_uid_bytes_equal_hex_format() {
        let mut vals = vec![0, 1, 9, 10, 15, 16, u64::MAX, 0x0123_4567_89ab_cdef];
        let mut seed = 11u64;
        for _ in 0..100_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            vals.push(seed);
        }
        for v in vals {
            assert_eq!(FlowUid(v).bytes(), format!("F{v:016x}").as_bytes(), "{v:x}");
        }
    }

    #[test]
    fn epoch_seconds_and_formatting() {
        for (s, want) in [
            ("1795737600.003000", Some(1_795_737_600_003_000_000)),
            (" 12.5 ", Some(12_500_000_000)),
            ("7", Some(7_000_000_000)),
            ("7.", Some(7_000_000_000)),
            ("1.123456789", Some(1_123_456_789)),
            ("1.1234567891", None),
            ("1.2x", None),
            ("2026-11-28T10:41:24.5Z", Some(1_795_862_484_500_000_000)),
            ("", None),
        ] {
            assert_eq!(parse_time(s), want, "{s:?}");
        }
        assert_eq!(fmt_epoch(1_795_737_600_003_000_999), "1795737600.003000");
        assert_eq!(fmt_epoch(-1), "-1.999999");
        assert_eq!(FlowUid(0xab).to_string(), "F00000000000000ab");
    }

    #[test]
    fn fast_epoch_equals_the_general_parser() {
        let mut seed = 11u64;
        let mut taken = 0;
        for len in 0..2000 {
            let s: String = (0..len % 23)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let k = (seed >> 33) as usize % 16;
                    // Mostly digits, some dots, signs, spaces and letters.
                    b"0123456789..+- e"[k] as char
                })
                .collect();
            if let Some(t) = fast_epoch(s.as_bytes()) {
                taken += 1;
                assert_eq!(Some(t), general_time(&s), "{s:?}");
            } else {
                assert_eq!(parse_time(&s), general_time(&s), "{s:?}");
            }
        }
        assert!(taken > 100, "{taken}");
        for s in ["9223372036.854775807", "0", "0.", "1795737600.091000"] {
            assert_eq!(fast_epoch(s.as_bytes()), general_time(s), "{s}");
            assert!(fast_epoch(s.as_bytes()).is_some(), "{s}");
        }
        assert_eq!(fast_epoch(b"12345678901.5"), None);
        // A hostile run of digits: no overflow (a panic in debug builds).
        assert_eq!(fast_epoch(&[b'9'; 40]), None);
        // Overflow: no value from either path.
        assert_eq!(fast_epoch(b"9999999999.5"), None);
        assert_eq!(general_time("9999999999.5"), None);
    }

    #[test]
    fn fast_datetime_equals_the_general_parser() {
        for s in [
            "2026-11-27 00:00:00",
            "2026-11-27 00:00:01.601",
            "2024-02-29T23:59:59.123456789",
            "1970-01-01 00:00:00Z",
            "1969-12-31 23:59:59.5",
            "2000-03-01 12:34:56",
            "2100-02-28 01:02:03.000001",
        ] {
            let (date, time) = s.split_once([' ', 'T']).unwrap();
            let general = parse_time(&format!("{date}T{}Z", time.trim_end_matches('Z')));
            let mut fresh = DateCache::default();
            assert_eq!(fast_datetime(s.as_bytes(), &mut fresh), general, "{s}");
            assert!(general.is_some(), "{s}");
        }
        for s in [
            "2025-02-29 00:00:00",
            "2026-13-01 00:00:00",
            "2026-11-27 24:00:00",
            "2026-11-27",
        ] {
            assert_eq!(fast_datetime(s.as_bytes(), &mut DateCache::default()), None);
        }
        // A run of times through one cache (days repeat, change, turn invalid
        // after a valid day of the same digits) equals each read afresh.
        let mut cache = DateCache::default();
        let mut seed = 3u64;
        for _ in 0..20_000 {
            let mut r = |n: u64| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (seed >> 33) % n
            };
            let s = format!(
                "{}-{:02}-{:02}{}{:02}:{:02}:{:02}{}",
                [1969, 2024, 2025, 2100][r(4) as usize],
                1 + r(13),
                r(32),
                [" ", "T", "x"][r(3) as usize],
                r(25),
                r(61),
                r(61),
                ["", ".5", ".123456789", "Z", ".", ".1234567890"][r(6) as usize]
            );
            assert_eq!(
                parse_utc_datetime_in(s.as_bytes(), &mut cache),
                parse_utc_datetime(&s),
                "{s}"
            );
            let general = s.split_once([' ', 'T']).and_then(|(date, time)| {
                parse_time(&format!("{date}T{}Z", time.trim_end_matches('Z')))
            });
            assert_eq!(parse_utc_datetime(&s), general, "{s}");
        }
    }

    #[test]
    fn flow_key_order_equals_endpoint_order() {
        // The IPv4 fast path against the endpoints' own order, with equal
        // addresses, equal ports and both equal; IPv6 and mixed take the
        // general path.
        let mut seed = 17u64;
        let mut r = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seed >> 33
        };
        for i in 0..100_000 {
            let ip = |v: u64| -> IpAddr {
                if i % 50 == 0 {
                    IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v)))
                } else {
                    IpAddr::V4(Ipv4Addr::from((v % 8) as u32 * 0x2000_0001))
                }
            };
            let src = Endpoint {
                ip: ip(r()),
                port: [0, 40_000, 65_535][(r() % 3) as usize],
            };
            let dst = Endpoint {
                ip: ip(r()),
                port: [0, 40_000, 65_535][(r() % 3) as usize],
            };
            let (key, fwd) = FlowKey::new(6, 0, src, dst);
            let want = if src <= dst { (src, dst) } else { (dst, src) };
            assert_eq!((key.a, key.b, fwd), (want.0, want.1, src <= dst));
        }
    }

    #[test]
    fn parse_u64_equals_the_general_parser() {
        let mut seed = 23u64;
        for i in 0..200_000 {
            let s: String = (0..i % 23)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    b"0123456789012345678+- x"[(seed >> 33) as usize % 23] as char
                })
                .collect();
            assert_eq!(parse_u64(&s), s.parse::<u64>().ok(), "{s:?}");
        }
        for s in [
            "18446744073709551615",
            "18446744073709551616",
            "9999999999999999999",
            "0",
        ] {
            assert_eq!(parse_u64(s), s.parse::<u64>().ok(), "{s:?}");
        }
    }

    #[test]
    fn parse_ip_and_proto_equal_the_general_parsers() {
        for s in [
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "1.2.3.4",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3.4",
            "1..2.3",
            "1.2.3.4.5",
            "1.2.3.-4",
            "::1",
            "fe80::1",
            "2001:db8::8a2e:370:7334",
            "1.2.3.04",
            "100.200.250.99",
            "",
            "a.b.c.d",
            "9.99.199.255",
            "255.255.255.256",
            "1.2.3.4 ",
            "1.2.3.\u{e9}",
        ] {
            assert_eq!(parse_ip(s), s.parse::<IpAddr>().ok(), "{s:?}");
        }
        // Random strings of digits and dots (and a few others) of every length
        // the fast path takes, and every octet value in every position.
        let mut seed = 5u64;
        for i in 0..200_000 {
            let len = 5 + i % 13;
            let s: String = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    b"0123456789....0129x"[(seed >> 33) as usize % 19] as char
                })
                .collect();
            assert_eq!(parse_ip(&s), s.parse::<IpAddr>().ok(), "{s:?}");
        }
        // Valid addresses of every shape: each octet of 1-3 digits.
        for _ in 0..200_000 {
            let mut r = || {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (seed >> 33) as u8
            };
            let s = format!(
                "{}.{}.{}.{}",
                r() >> (r() % 8),
                r() >> (r() % 8),
                r() >> (r() % 8),
                r() >> (r() % 8)
            );
            assert_eq!(parse_ip(&s), s.parse::<IpAddr>().ok(), "{s:?}");
        }
        for o in 0..=300 {
            for s in [
                format!("{o}.1.2.3"),
                format!("1.{o}.2.3"),
                format!("1.2.{o}.3"),
                format!("1.2.3.{o}"),
                format!("{o}.{o}.{o}.{o}"),
                format!("0{o}.1.1.1"),
            ] {
                assert_eq!(parse_ip(&s), s.parse::<IpAddr>().ok(), "{s:?}");
            }
        }
        assert_eq!(parse_proto("TCP"), Some(6));
        assert_eq!(parse_proto(" Ipv6-ICMP "), Some(58));
        assert_eq!(parse_proto("132"), Some(132));
        assert_eq!(parse_proto(""), Some(0));
        assert_eq!(parse_proto("sctp"), None);
    }

    /// Addresses found in the cache equal fresh reads: strings drawn again
    /// and again from a pool larger than the table (hits, and slots taken over
    /// by other addresses), valid and not, near-equal texts, IPv6.
    #[test]
    fn ip_cache_equals_parse_ip() {
        let mut seed = 9u64;
        let mut r = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seed >> 33
        };
        let mut pool: Vec<String> = Vec::new();
        for k in 0..6000 {
            let o = |x: u64| x as u8 >> (x % 8);
            pool.push(match k % 6 {
                0..=2 => format!("{}.{}.{}.{}", o(r()), o(r()), o(r()), o(r())),
                3 => format!("10.0.{}.{}", k % 7, 100 + k % 50),
                4 => (0..8 + r() % 8)
                    .map(|_| b"0123456789..x"[r() as usize % 13] as char)
                    .collect(),
                _ => format!("2001:db8::{:x}", r() % 99),
            });
        }
        let mut cache = IpCache::default();
        for _ in 0..400_000 {
            let s = &pool[r() as usize % pool.len()];
            assert_eq!(cache.parse(s.as_bytes()), s.parse::<IpAddr>().ok(), "{s:?}");
        }
        // Two addresses of one slot, length and first eight bytes: the second
        // is read, not taken for the first.
        let mut by_slot = std::collections::HashMap::new();
        let pair = (0..=255u32)
            .flat_map(|c| (0..=255u32).map(move |d| format!("10.20.{c}.{d}")))
            .find_map(|s| {
                let (w0, _, k) = IpCache::key(s.as_bytes())?;
                let first = by_slot.insert((k, w0, s.len()), s.clone())?;
                Some((first, s))
            })
            .unwrap();
        let mut cache = IpCache::default();
        for s in [&pair.0, &pair.1, &pair.0] {
            assert_eq!(cache.parse(s.as_bytes()), s.parse::<IpAddr>().ok(), "{s:?}");
        }
    }

    #[test]
    fn epoch_and_rfc3339() {
        let ts = 1_795_862_484_371_461_000;
        assert_eq!(fmt_epoch(ts), "1795862484.371461");
        assert_eq!(fmt_rfc3339(ts), "2026-11-28T10:41:24.371461Z");
        assert_eq!(parse_time("2026-11-28T10:41:24.371461Z"), Some(ts));
        assert_eq!(parse_time("1795862484.371461"), Some(ts));
        assert_eq!(parse_time("nonsense"), None);
    }

    #[test]
    fn key_is_canonical() {
        let x = Endpoint {
            ip: "10.0.0.1".parse().unwrap(),
            port: 5,
        };
        let y = Endpoint {
            ip: "10.0.0.2".parse().unwrap(),
            port: 80,
        };
        let (k1, s1) = FlowKey::new(6, 0, x, y);
        let (k2, s2) = FlowKey::new(6, 0, y, x);
        assert_eq!(k1, k2);
        assert!(s1 && !s2);
    }
}
