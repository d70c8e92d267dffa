//! Zeek conn.log: TSV with its `#separator`/`#fields` header (several header
//! blocks with different field sets in one file are fine) and JSON lines. Each
//! connection is a bidirectional record: IP bytes and packets per direction,
//! Zeek's application bytes and missed_bytes.

use super::{InputSummary, PacketSink, Window, blank};
use crate::model::{Endpoint, FlowRecord, parse_proto_bytes};
use std::borrow::Cow;

pub fn is_zeek_tsv(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(16);
    w.avail().starts_with(b"#separator")
}

pub fn is_zeek_json(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(4096);
    let a = w.avail();
    a.starts_with(b"{") && a.windows(11).any(|x| x == b"\"id.orig_h\"")
}

/// The conn.log fields a record is built from.
const KEYS: [&str; 14] = [
    "ts",
    "duration",
    "id.orig_h",
    "id.resp_h",
    "orig_bytes",
    "resp_bytes",
    "proto",
    "id.orig_p",
    "id.resp_p",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "missed_bytes",
];

/// The values of `KEYS` in one JSON line: strings as they are, numbers as
/// their JSON text (as `serde_json::Value` prints them), anything else and
/// other keys ignored; a key given twice keeps its last value.
struct JsonLine<'a>([Option<Cow<'a, str>>; 14]);

/// One value: a string or a number's text; `None` for other types.
struct JsonText<'a>(Option<Cow<'a, str>>);

impl<'de> serde::Deserialize<'de> for JsonText<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonText<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonText(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(JsonText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JsonText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(JsonText(
                    serde_json::Number::from_f64(v).map(|n| Cow::Owned(n.to_string())),
                ))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(JsonText(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(JsonText(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(JsonText(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(JsonText(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for JsonLine<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonLine<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out: [Option<Cow<'de, str>>; 14] = Default::default();
                while let Some(k) = a.next_key::<Cow<'de, str>>()? {
                    match KEYS.iter().position(|x| *x == k) {
                        Some(i) => out[i] = a.next_value::<JsonText<'de>>()?.0,
                        None => {
                            a.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(JsonLine(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A record from one line's values in the order of `KEYS` (`None`: unset or
/// absent), from a TSV or a JSON line; `None` when time or addresses are
/// missing. Times are read exactly (no float rounding: Zeek writes µs).
fn record(
    v: &[Option<&[u8]>; 14],
    line: u64,
    ips: &mut crate::model::IpCache,
) -> Option<FlowRecord> {
    let num = |i: usize| v[i].and_then(count);
    let secs = crate::model::parse_time_bytes;
    let start = secs(v[0]?)?;
    let dur = v[1].and_then(secs).unwrap_or(0);
    let sa = ips.parse(v[2]?)?;
    let da = ips.parse(v[3]?)?;
    Some(FlowRecord {
        start,
        end: start + dur.max(0),
        proto: v[6].and_then(parse_proto_bytes).unwrap_or(0),
        src: Endpoint {
            ip: sa,
            port: num(7).unwrap_or(0) as u16,
        },
        dst: Endpoint {
            ip: da,
            port: num(8).unwrap_or(0) as u16,
        },
        pkts: num(9).unwrap_or(0),
        bytes: num(10).unwrap_or(0),
        tcp_flags: 0,
        sampling: 1,
        record: line,
        rev_pkts: num(11).unwrap_or(0),
        rev_bytes: num(12).unwrap_or(0),
        app_bytes: Some((num(4).unwrap_or(0), num(5).unwrap_or(0))),
        missed: num(13).unwrap_or(0),
        exporter: None,
    })
}

/// A count: an integer, else a float truncated.
fn count(v: &[u8]) -> Option<u64> {
    crate::model::parse_u64_bytes(v).or_else(|| {
        let v = std::str::from_utf8(v).ok()?.trim();
        v.parse::<u64>()
            .ok()
            .or_else(|| v.parse::<f64>().ok().map(|f| f as u64))
    })
}

/// What the header lines read so far say: the field names, where each of
/// `KEYS` sits among them, and the unset marker.
#[derive(Clone)]
pub(crate) struct Header {
    fields: Vec<String>,
    idx: [Option<usize>; 14],
    unset: String,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            fields: Vec::new(),
            idx: [None; 14],
            unset: "-".to_string(),
        }
    }
}

pub fn parse(
    w: &mut Window<'_>,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
    json: bool,
) -> Result<(), (u64, String)> {
    let mut h = Header::default();
    if let Some(start) = parallel_start(w, json) {
        // The header block, then the records in parallel pieces.
        let data = w.avail().get(..start).unwrap_or_default().to_vec();
        let mut head = Window::slice(&data);
        let mut line_no = 0;
        lines(&mut head, &mut h, json, &mut line_no, sink, sum)?;
        let (h, json) = (&h, json);
        return super::parallel_lines(w, start, line_no, sink, sum, &|w, first, sink, sum| {
            let mut h = h.clone();
            let mut line_no = first;
            lines(w, &mut h, json, &mut line_no, sink, sum).map(|()| (line_no - first, false))
        });
    }
    let mut line_no = 0u64;
    lines(w, &mut h, json, &mut line_no, sink, sum)
}

/// Where the records start when the file can be read in parallel pieces: a
/// mapped file large enough, whose only header lines after the first block
/// are `#close` (several field sets in one file are read in order).
fn parallel_start(w: &Window<'_>, json: bool) -> Option<usize> {
    if !super::parallel_worthwhile(w) {
        return None;
    }
    let data = w.avail();
    if json {
        return Some(0);
    }
    // End of the leading header block.
    let mut start = 0;
    while data.get(start) == Some(&b'#') {
        start += memchr::memchr(b'\n', &data[start..])? + 1;
    }
    if start == 0 {
        return None;
    }
    // Searched in parallel (a pass over the whole file before the pieces
    // start), part by part; the byte before a '#' is read from the whole
    // file, so a line end at a part's last byte is seen.
    use rayon::prelude::*;
    const PART: usize = 4 << 20;
    let later_headers_ok = (start..data.len())
        .step_by(PART)
        .collect::<Vec<_>>()
        .par_iter()
        .all(|&a| {
            let b = (a + PART).min(data.len());
            // A '#' is rare in record lines: looking for it alone is faster
            // than for the pair; then whether a line starts with it.
            memchr::memchr_iter(b'#', &data[a..b]).all(|p| {
                let q = a + p;
                data[q - 1] != b'\n' || data[q..].starts_with(b"#close")
            })
        });
    later_headers_ok.then_some(start)
}

/// Reads lines until the window ends; header lines update `h`.
fn lines<S: PacketSink + Send + ?Sized>(
    w: &mut Window<'_>,
    h: &mut Header,
    json: bool,
    line_no: &mut u64,
    sink: &mut S,
    sum: &mut InputSummary,
) -> Result<(), (u64, String)> {
    let Header { fields, idx, unset } = h;
    let mut split = super::Fields::default();
    let mut ips = crate::model::IpCache::default();
    let stream = w.is_stream();
    while let Some((off, line)) = w.next_line_bytes()? {
        *line_no += 1;
        let line_no = *line_no;
        if blank(line) {
            continue;
        }
        // A TSV record line is read as bytes, whether it is UTF-8 seen in the
        // pass that splits it (a separate check cost a twentieth of the time);
        // header and JSON lines as text.
        let rec = if !json && line.first() != Some(&b'#') {
            let ascii = split.split(line, b'\t');
            if !ascii && std::str::from_utf8(line).is_err() {
                sum.bad_record(off, stream, format!("line {line_no}: not UTF-8"));
                continue;
            }
            if fields.is_empty() {
                bad(sum, off, line_no, stream);
                continue;
            }
            if split.len() != fields.len() {
                sum.bad_record(
                    off,
                    stream,
                    format!(
                        "line {line_no}: {} fields, #fields names {}",
                        split.len(),
                        fields.len()
                    ),
                );
                continue;
            }
            let mut vals: [Option<&[u8]>; 14] = [None; 14];
            // Byte by byte: a call to compare every value would cost more.
            let is =
                |v: &[u8], m: &[u8]| v.len() == m.len() && v.iter().zip(m).all(|(a, b)| a == b);
            for (v, i) in vals.iter_mut().zip(idx.iter()) {
                *v = i
                    .and_then(|i| split.get(line, i))
                    .filter(|v| !is(v, unset.as_bytes()) && !is(v, b"(empty)"));
            }
            record(&vals, line_no, &mut ips)
        } else {
            let Ok(text) = std::str::from_utf8(line) else {
                sum.bad_record(off, stream, format!("line {line_no}: not UTF-8"));
                continue;
            };
            if json {
                let Ok(JsonLine(v)) = serde_json::from_str::<JsonLine<'_>>(text) else {
                    bad(sum, off, line_no, stream);
                    continue;
                };
                let mut vals: [Option<&[u8]>; 14] = [None; 14];
                for (o, v) in vals.iter_mut().zip(&v) {
                    *o = v.as_deref().map(str::as_bytes);
                }
                record(&vals, line_no, &mut ips)
            } else {
                let rest = &text[1..];
                if let Some(f) = rest.strip_prefix("fields\t") {
                    *fields = f.split('\t').map(String::from).collect();
                    for (k, key) in KEYS.iter().enumerate() {
                        idx[k] = fields.iter().position(|f| f == key);
                    }
                    let has = |k: &str| fields.iter().any(|f| f == k);
                    if !(has("id.orig_h") && has("id.resp_h") && has("ts")) {
                        // Another Zeek log (dns.log, http.log ...) or a cut-down
                        // field set: its lines are counted as unreadable records.
                        sum.bad_record(
                            off,
                            stream,
                            format!(
                                "line {line_no}: #fields lacks ts, id.orig_h or id.resp_h: not a conn.log field set"
                            ),
                        );
                        fields.clear();
                    }
                } else if let Some(u) = rest.strip_prefix("unset_field\t") {
                    *unset = u.to_string();
                }
                continue;
            }
        };
        match rec {
            Some(r) => {
                sum.flow_records += 1;
                sink.record(r);
            }
            None => bad(sum, off, line_no, stream),
        }
    }
    Ok(())
}

fn bad(sum: &mut InputSummary, off: u64, line: u64, decompressed: bool) {
    sum.bad_record(
        off,
        decompressed,
        format!("line {line}: not a Zeek conn.log record"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings and numbers as text (numbers printed as serde_json prints
    /// them), other types and other keys ignored, the last of a repeated key.
    #[test]
    fn json_line_values() {
        let line = r#"{"ts":1795737591.829,"id.orig_h":"10.1.6.24","id.orig_p":41228,"id.resp_h":"x","id.resp_h":"175.145.91.129","id.resp_p":-1,"proto":"udp","orig_bytes":null,"resp_bytes":true,"missed_bytes":[1,2],"id":{"a":1},"duration":"8.241","orig_ip_bytes":1e3}"#;
        let JsonLine(v) = serde_json::from_str(line).unwrap();
        let get = |k: &str| v[KEYS.iter().position(|x| *x == k).unwrap()].as_deref();
        assert_eq!(get("ts"), Some("1795737591.829"));
        assert_eq!(get("id.orig_h"), Some("10.1.6.24"));
        assert_eq!(get("id.orig_p"), Some("41228"));
        assert_eq!(get("id.resp_h"), Some("175.145.91.129"));
        assert_eq!(get("id.resp_p"), Some("-1"));
        assert_eq!(get("orig_bytes"), None);
        assert_eq!(get("resp_bytes"), None);
        assert_eq!(get("missed_bytes"), None);
        assert_eq!(get("duration"), Some("8.241"));
        assert_eq!(get("orig_ip_bytes"), Some("1000.0"));
        for (k, x) in [("ts", 1795737591.829f64), ("orig_ip_bytes", 1e3)] {
            let want = serde_json::Value::from(x).to_string();
            assert_eq!(get(k), Some(want.as_str()), "{k}");
        }
        assert!(serde_json::from_str::<JsonLine<'_>>("[1,2]").is_err());
        assert!(serde_json::from_str::<JsonLine<'_>>("{\"ts\":1} x").is_err());
    }

    /// A header line after the first block makes the file read in order
    /// (`#close` does not), wherever it lies relative to the parts the check
    /// is split into: also when its line break is a part's last byte.
    #[test]
    fn later_header_lines_are_found_at_part_edges() {
        let head = b"#separator \\x09\n#fields\tts\tuid\n";
        let start = head.len();
        let build = |at: usize, line: &[u8]| {
            let mut d = head.to_vec();
            d.resize(start + (20 << 20), b'x');
            for k in (start + 100..d.len()).step_by(100) {
                d[k] = b'\n';
            }
            d[at] = b'\n';
            d[at + 1..at + 1 + line.len()].copy_from_slice(line);
            d
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            for at in [
                start + (4 << 20) - 1,
                start + (4 << 20),
                start + (8 << 20) - 2,
            ] {
                let d = build(at, b"#fields\tuid\tts\n");
                assert_eq!(parallel_start(&Window::slice(&d), false), None, "{at}");
                let d = build(at, b"#close\t2024\n");
                assert_eq!(parallel_start(&Window::slice(&d), false), Some(start));
            }
        });
    }
}
