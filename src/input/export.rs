//! Export files: NetFlow v5/v9 datagrams and IPFIX messages stored one after the
//! other without any capture framing (RFC 5655 IPFIX files, and the raw UDP
//! payloads collectors and test suites keep). Each message goes to the sink's
//! `export()`; decoding (templates, held data, sequence numbers) is the flow
//! stage's collector, the same one that decodes export datagrams in captures.

use super::{InputSummary, PacketSink, Window};
use crate::model::Origin;

/// Largest message: IPFIX's 16-bit length; v9 sets are walked up to this much.
const MAX_MESSAGE: usize = 65_535;

/// Whether the window starts with a plausible NetFlow v5/v9 or IPFIX message.
pub fn is_export_file(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(MAX_MESSAGE);
    let b = w.avail();
    if b.len() < 20 {
        return false;
    }
    let set_id_ok = |id: u16, version: u16| match version {
        9 => id <= 1 || id >= 256,
        _ => id == 2 || id == 3 || id >= 256,
    };
    match u16::from_be_bytes([b[0], b[1]]) {
        5 => message_len(b).is_ok() && b[20..24] != [0xff; 4],
        9 => {
            let count = u16::from_be_bytes([b[2], b[3]]);
            b.len() >= 24
                && count < 4096
                && set_id_ok(u16::from_be_bytes([b[20], b[21]]), 9)
                && message_len(b).is_ok()
        }
        10 => {
            b.len() >= 20
                && set_id_ok(u16::from_be_bytes([b[16], b[17]]), 10)
                && message_len(b).is_ok()
        }
        _ => false,
    }
}

/// Reads the messages of an export file. A message that cannot be framed (bad
/// version, truncated) ends the file with an error at its offset: what follows
/// cannot be found again reliably.
pub fn parse(
    w: &mut Window<'_>,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
) -> Result<(), (u64, String)> {
    let mut n = 0u64;
    loop {
        let off = w.offset();
        let _ = w.ensure(MAX_MESSAGE);
        let b = w.avail();
        if b.is_empty() {
            return Ok(());
        }
        n += 1;
        let len = message_len(&b[..b.len().min(MAX_MESSAGE)])
            .map_err(|e| (off, format!("message {n}: {e}")))?;
        sum.packets += 1;
        sink.export(
            &b[..len],
            Origin {
                record: n,
                offset: Some(off),
            },
        );
        w.consume(len);
    }
}

/// Length of the export message at the start of `b` (v5: header and records,
/// v9: header and the flow sets up to the next v9 header or the end, IPFIX:
/// its length field), or why it cannot be one. `b` holds the rest of the file.
pub fn message_len(b: &[u8]) -> Result<usize, String> {
    match be16(b, 0) {
        Some(5) => {
            let count = usize::from(be16(b, 2).unwrap_or(0));
            if !(1..=30).contains(&count) {
                return Err(format!(
                    "NetFlow v5 header with {count} records (1-30 allowed)"
                ));
            }
            let len = 24 + 48 * count;
            if b.len() < len {
                return Err(format!(
                    "truncated NetFlow v5 datagram: {count} records need {len} bytes, {} left",
                    b.len()
                ));
            }
            Ok(len)
        }
        Some(9) => {
            if b.len() < 20 {
                return Err("truncated NetFlow v9 header".into());
            }
            let mut pos = 20;
            while pos + 4 <= b.len() {
                let id = be16(b, pos).unwrap_or(0);
                // A flow set id of 9 is reserved: a v9 header starts here.
                if id == 9 {
                    break;
                }
                let l = usize::from(be16(b, pos + 2).unwrap_or(0));
                if l < 4 {
                    return Err(format!(
                        "NetFlow v9 flow set of length {l} at message byte {pos}"
                    ));
                }
                if pos + l > b.len() {
                    return Err(format!(
                        "truncated NetFlow v9 datagram: flow set at message byte {pos} needs {l} bytes, {} left",
                        b.len() - pos
                    ));
                }
                pos += l;
            }
            if pos < b.len() && pos + 4 > b.len() {
                return Err("trailing bytes after the last NetFlow v9 flow set".into());
            }
            Ok(pos)
        }
        Some(10) => {
            let len = usize::from(be16(b, 2).unwrap_or(0));
            if len < 16 {
                return Err(format!("IPFIX message length {len} (at least 16)"));
            }
            if b.len() < len {
                return Err(format!(
                    "truncated IPFIX message: length {len}, {} bytes left",
                    b.len()
                ));
            }
            Ok(len)
        }
        Some(v) => Err(format!("not a NetFlow/IPFIX message (version {v})")),
        None => Err("truncated message header".into()),
    }
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}
