//! Zeek conn.log: TSV with its `#separator`/`#fields` header (several header
//! blocks with different field sets in one file are fine) and JSON lines. Each
//! connection is a bidirectional record: IP bytes and packets per direction,
//! Zeek's application bytes and missed_bytes.

use super::{InputSummary, PacketSink, Window};
use crate::model::{Endpoint, FlowRecord, Ts, parse_proto};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub fn is_zeek_tsv(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(16);
    w.avail().starts_with(b"#separator")
}

pub fn is_zeek_json(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(4096);
    let a = w.avail();
    a.starts_with(b"{") && a.windows(11).any(|x| x == b"\"id.orig_h\"")
}

/// Seconds with a fraction, exactly (no float rounding: Zeek writes µs).
fn secs(v: &str) -> Option<Ts> {
    crate::model::parse_time(v.trim())
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

/// Builds a record from named values; `None` when addresses are missing.
fn record<'a>(get: &dyn Fn(&str) -> Option<Cow<'a, str>>, line: u64) -> Option<FlowRecord> {
    let num = |k: &str| {
        get(k).and_then(|v| {
            let v = v.trim();
            v.parse::<u64>()
                .ok()
                .or_else(|| v.parse::<f64>().ok().map(|f| f as u64))
        })
    };
    let start = secs(&get("ts")?)?;
    let dur = get("duration").and_then(|d| secs(&d)).unwrap_or(0);
    let sa: IpAddr = get("id.orig_h")?.parse().ok()?;
    let da: IpAddr = get("id.resp_h")?.parse().ok()?;
    let orig_bytes = num("orig_bytes");
    let resp_bytes = num("resp_bytes");
    Some(FlowRecord {
        start,
        end: start + dur.max(0),
        proto: get("proto").and_then(|p| parse_proto(&p)).unwrap_or(0),
        src: Endpoint {
            ip: sa,
            port: num("id.orig_p").unwrap_or(0) as u16,
        },
        dst: Endpoint {
            ip: da,
            port: num("id.resp_p").unwrap_or(0) as u16,
        },
        pkts: num("orig_pkts").unwrap_or(0),
        bytes: num("orig_ip_bytes").unwrap_or(0),
        tcp_flags: 0,
        sampling: 1,
        record: line,
        rev_pkts: num("resp_pkts").unwrap_or(0),
        rev_bytes: num("resp_ip_bytes").unwrap_or(0),
        app_bytes: Some((orig_bytes.unwrap_or(0), resp_bytes.unwrap_or(0))),
        missed: num("missed_bytes").unwrap_or(0),
        exporter: None,
    })
}

pub fn parse(
    w: &mut Window<'_>,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
    json: bool,
) -> Result<(), (u64, String)> {
    let mut fields: Vec<String> = Vec::new();
    // Position of each of KEYS in the current #fields.
    let mut idx: [Option<usize>; 14] = [None; 14];
    let mut unset = "-".to_string();
    let mut line_no = 0u64;
    while let Some((off, text)) = w.next_line()? {
        line_no += 1;
        if text.trim().is_empty() {
            continue;
        }
        if text.contains('\u{fffd}') {
            sum.bad_record(off, w.is_stream(), format!("line {line_no}: not UTF-8"));
            continue;
        }
        let rec = if json {
            let Ok(v) = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&text) else {
                bad(sum, off, line_no, w.is_stream());
                continue;
            };
            let get = |k: &str| {
                v.get(k).and_then(|x| match x {
                    serde_json::Value::String(s) => Some(Cow::Owned(s.clone())),
                    serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
                    _ => None,
                })
            };
            record(&get, line_no)
        } else if let Some(rest) = text.strip_prefix('#') {
            if let Some(f) = rest.strip_prefix("fields\t") {
                fields = f.split('\t').map(String::from).collect();
                for (k, key) in KEYS.iter().enumerate() {
                    idx[k] = fields.iter().position(|f| f == key);
                }
                let has = |k: &str| fields.iter().any(|f| f == k);
                if !(has("id.orig_h") && has("id.resp_h") && has("ts")) {
                    // Another Zeek log (dns.log, http.log ...) or a cut-down
                    // field set: its lines are counted as unreadable records.
                    sum.bad_record(
                        off,
                        w.is_stream(),
                        format!(
                            "line {line_no}: #fields lacks ts, id.orig_h or id.resp_h: not a conn.log field set"
                        ),
                    );
                    fields.clear();
                }
            } else if let Some(u) = rest.strip_prefix("unset_field\t") {
                unset = u.to_string();
            }
            continue;
        } else {
            if fields.is_empty() {
                bad(sum, off, line_no, w.is_stream());
                continue;
            }
            let vals: Vec<&str> = text.split('\t').collect();
            if vals.len() != fields.len() {
                sum.bad_record(
                    off,
                    w.is_stream(),
                    format!(
                        "line {line_no}: {} fields, #fields names {}",
                        vals.len(),
                        fields.len()
                    ),
                );
                continue;
            }
            let get = |k: &str| {
                KEYS.iter()
                    .position(|x| *x == k)
                    .and_then(|i| idx[i])
                    .and_then(|i| vals.get(i))
                    .filter(|v| **v != unset && **v != "(empty)")
                    .map(|v| Cow::Borrowed(*v))
            };
            record(&get, line_no)
        };
        match rec {
            Some(r) => {
                sum.flow_records += 1;
                sink.record(&r);
            }
            None => bad(sum, off, line_no, w.is_stream()),
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
