//! The JSON report (`--json FILE`): one document.
//!
//! Top level: `schema_version` (string, currently "1.0"), `tool`, `verdict`
//! (`SUPPORTED`, `CONTRADICTED` or `INCONCLUSIVE`), `headline`/`headline_de`,
//! `reasons` (each with `code`, `effect`, `text`, `text_de`, `references` to
//! file and frame ranges with a Wireshark display filter), `coverage`, `case`,
//! `totals`, `inputs` (per file: SHA-256, size, format, link types, packets,
//! first/last timestamp, interfaces with drop counters, truncated packets,
//! weirds, error) and `ledger` (hosts, destinations, pairs, names).
//! Timestamps are RFC 3339 UTC strings with microseconds. Strings taken from
//! captures are emitted as JSON strings (JSON escaping makes them inert);
//! invalid UTF-8 was already replaced when they were read. The full schema is
//! in docs/report-schema.md. Output is deterministic: no wall-clock values.

use super::Report;
use std::io::Write;

pub fn write(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    // serde_json writes many small pieces: buffer them here, where the writer's
    // type is known, and hand `out` 64 KiB at a time.
    let mut buf = std::io::BufWriter::with_capacity(1 << 16, &mut *out);
    serde_json::to_writer_pretty(&mut buf, r).map_err(|e| match e.io_error_kind() {
        Some(kind) => std::io::Error::new(kind, e),
        None => std::io::Error::other(e),
    })?;
    buf.write_all(b"\n")?;
    buf.flush()
}
