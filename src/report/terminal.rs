//! The terminal summary: verdict first, then reasons with their evidence, a
//! coverage line, aligned top-N tables and the input inventory. Readable in ten
//! seconds; every string from a capture is sanitized.

use super::{Report, human};
use crate::diag::sanitize;
use crate::evidence::Effect;
use crate::model::fmt_rfc3339;
use std::io::{self, Write};

fn table(
    out: &mut dyn Write,
    head: &[&str],
    rows: &[Vec<String>],
    right: &[bool],
) -> io::Result<()> {
    let mut wid: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            wid[i] = wid[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut s = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            let pad = wid[i] - c.chars().count();
            if right.get(i).copied().unwrap_or(false) {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < cells.len() {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    writeln!(
        out,
        "{}",
        line(head.iter().map(|s| s.to_string()).collect())
    )?;
    for r in rows {
        writeln!(out, "{}", line(r.clone()))?;
    }
    Ok(())
}

pub fn write(r: &Report, top: usize, german: bool, out: &mut dyn Write) -> io::Result<()> {
    let a = &r.assessment;
    writeln!(out, "VERDICT: {}", a.verdict.as_str())?;
    writeln!(out, "{}", if german { &a.headline_de } else { &a.headline })?;
    writeln!(out)?;
    if !a.reasons.is_empty() {
        writeln!(out, "{}", if german { "Gründe" } else { "Reasons" })?;
        for reason in &a.reasons {
            let tag = match reason.effect {
                Effect::Contradicts => "CONTRADICTS ",
                Effect::Inconclusive => "INCONCLUSIVE",
                Effect::Note => "note        ",
            };
            let text = if german {
                &reason.text_de
            } else {
                &reason.text
            };
            let label = reason.detector.as_deref().unwrap_or(reason.code);
            writeln!(out, "  [{tag}] {label}: {}", sanitize(text))?;
            for rf in reason.references.iter().take(3) {
                writeln!(
                    out,
                    "      evidence: {} frames {}-{}  filter: {}",
                    sanitize(&rf.file),
                    rf.first_frame,
                    rf.last_frame,
                    rf.display_filter
                )?;
            }
        }
        writeln!(out)?;
    }
    let c = &a.coverage;
    let window = match (c.window_start, c.window_end) {
        (Some(s), Some(e)) => format!(
            "{} .. {} ({:.1} s, {})",
            fmt_rfc3339(s),
            fmt_rfc3339(e),
            (e - s) as f64 / 1e9,
            match c.window_source {
                "inputs" => "span of the inputs",
                "given" => "--window",
                _ => "case file",
            }
        ),
        _ => "none (no packets)".to_string(),
    };
    let pct = if c.window_ns > 0 {
        format!("{:.1} %", 100.0 * c.covered_ns as f64 / c.window_ns as f64)
    } else if c.inputs_total > c.inputs_failed && c.first_packet.is_some() {
        "100.0 %".into()
    } else {
        "0.0 %".into()
    };
    let packets: u64 = r.inputs.iter().map(|s| s.packets).sum();
    writeln!(out, "Coverage")?;
    writeln!(out, "  window     {window}")?;
    writeln!(
        out,
        "  observed   {pct} of the window; {} input(s), {} failed; {} packets; drops {}; snaplen-cut packets {}; one-sided TCP flows {}/{}",
        c.inputs_total,
        c.inputs_failed,
        packets,
        c.dropped_packets.map_or_else(
            || "not recorded in the files".to_string(),
            |d| d.to_string()
        ),
        c.truncated_packets,
        c.one_sided_tcp_flows,
        c.one_sided_tcp_flows + c.two_sided_tcp_flows
    )?;
    for s in r.inputs.iter().filter(|s| s.skipped.is_some()).take(top) {
        writeln!(
            out,
            "  skipped    {}: {}",
            sanitize(&s.path),
            s.skipped.as_deref().unwrap_or_default()
        )?;
    }
    for e in r.exporters.iter().take(top) {
        writeln!(
            out,
            "  exporter   {}: {} records, {}; {} duplicate records ({}) of a preferred exporter dropped",
            e.exporter,
            e.records,
            human(e.ip_bytes),
            e.duplicate_records,
            human(e.duplicate_ip_bytes)
        )?;
    }
    writeln!(
        out,
        "  scope      {}{}; threshold {} ({}); allowlist: {}",
        if r.case.scope_default {
            "all internal hosts".to_string()
        } else {
            r.case.scope.join(", ")
        },
        if c.scope_hosts_unseen.is_empty() {
            String::new()
        } else {
            format!(" (never seen: {})", c.scope_hosts_unseen.join(", "))
        },
        human(r.case.threshold_bytes),
        r.case.threshold_source,
        if r.case.allowlist.is_empty() {
            "none".to_string()
        } else {
            r.case.allowlist.join(", ")
        }
    )?;
    let t = &r.totals;
    writeln!(
        out,
        "  outbound   {} app bytes ({} IP bytes) from internal to external, {} of it to non-allowlisted destinations; {} outer flows, {} inner (tunnelled), {} with direction from the first packet only",
        human(t.outbound.bytes),
        human(t.outbound.ip_bytes),
        human(t.outbound_unallowed.bytes),
        t.outer_flows,
        t.inner_flows,
        t.uncertain_direction_flows
    )?;
    let gates: Vec<String> = c
        .gates
        .iter()
        .map(|g| format!("{} {}", g.id, g.status))
        .collect();
    writeln!(out, "  gates      {}", gates.join("  "))?;
    for g in c
        .gates
        .iter()
        .filter(|g| g.status == "FAIL" || g.status == "FLAG")
    {
        writeln!(
            out,
            "             {} {} {}: {}",
            g.id,
            g.status,
            g.name,
            sanitize(&g.figure)
        )?;
    }
    writeln!(out)?;
    if !a.upper_bounds.is_empty() {
        writeln!(
            out,
            "Upper bound U(H,W) per host in scope (materiality {}, {})",
            human(a.materiality_bytes),
            a.materiality_source
        )?;
        let rows: Vec<Vec<String>> = a
            .upper_bounds
            .iter()
            .take(top)
            .map(|u| {
                vec![
                    u.host.to_string(),
                    u.total.map_or_else(|| "unbounded".into(), human),
                    human(u.observed),
                    human(u.sampling),
                    human(u.gap),
                    human(u.loss),
                    human(u.dns_information),
                    human(u.icmp_payload),
                    human(u.multi_tenant),
                ]
            })
            .collect();
        table(
            out,
            &[
                "HOST",
                "U",
                "OBSERVED",
                "SAMPLING",
                "UNOBSERVED-TIME",
                "DROPS",
                "DNS",
                "ICMP",
                "MULTI-TENANT",
            ],
            &rows,
            &[false, true, true, true, true, true, true, true, true],
        )?;
        writeln!(out)?;
    }
    let l = &r.ledger;
    if !l.hosts.is_empty() {
        writeln!(out, "Internal hosts by outbound bytes (top {top})")?;
        let rows: Vec<Vec<String>> = l
            .hosts
            .iter()
            .take(top)
            .map(|h| {
                vec![
                    h.host.to_string(),
                    human(h.out.bytes),
                    human(h.out.ip_bytes),
                    human(h.inb.bytes),
                    h.out_in_ratio
                        .map_or_else(|| "-".into(), |r| format!("{r:.2}")),
                    human(h.out_unallowed.bytes),
                    h.flows.to_string(),
                    h.destinations.to_string(),
                ]
            })
            .collect();
        table(
            out,
            &[
                "HOST",
                "OUT",
                "OUT(IP)",
                "IN",
                "OUT/IN",
                "NOT-ALLOWED",
                "FLOWS",
                "DESTS",
            ],
            &rows,
            &[false, true, true, true, true, true, true, true],
        )?;
        writeln!(out)?;
    }
    if !l.pairs.is_empty() {
        writeln!(out, "Outbound by host and destination (top {top})")?;
        let by_dest: std::collections::BTreeMap<_, _> =
            l.destinations.iter().map(|d| (d.dest, d)).collect();
        let names = |ip: &std::net::IpAddr| -> String {
            by_dest
                .get(ip)
                .map(|d| {
                    let mut v: Vec<String> = Vec::new();
                    for n in &d.names {
                        let s = sanitize(&n.name).into_owned();
                        if !v.contains(&s) {
                            v.push(s);
                        }
                    }
                    v.truncate(2);
                    v.join(",")
                })
                .unwrap_or_default()
        };
        let rows: Vec<Vec<String>> = l
            .pairs
            .iter()
            .take(top)
            .map(|p| {
                vec![
                    p.host.to_string(),
                    p.dest.to_string(),
                    {
                        let n = names(&p.dest);
                        if n.is_empty() { "-".into() } else { n }
                    },
                    human(p.out.bytes),
                    human(p.inb.bytes),
                    p.flows.to_string(),
                    p.dest_ports
                        .iter()
                        .take(3)
                        .map(|(pr, port)| format!("{port}/{pr}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    p.allowed_by.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        table(
            out,
            &[
                "HOST",
                "DESTINATION",
                "NAMES",
                "OUT",
                "IN",
                "FLOWS",
                "SERVICES",
                "ALLOWED-BY",
            ],
            &rows,
            &[false, false, false, true, true, true, false, false],
        )?;
        writeln!(out)?;
    }
    writeln!(out, "Inputs")?;
    let rows: Vec<Vec<String>> = r
        .inputs
        .iter()
        .map(|s| {
            let weirds: u64 = s.weirds.iter().map(|(_, n)| n).sum();
            vec![
                sanitize(&s.path).into_owned(),
                s.format.clone(),
                s.packets.to_string(),
                s.first_ts.map_or_else(|| "-".into(), fmt_rfc3339),
                s.sha256.get(..16).unwrap_or("").to_string(),
                weirds.to_string(),
                s.error.as_ref().map_or_else(
                    || "ok".into(),
                    |e| format!("ERROR at offset {}: {}", e.offset, sanitize(&e.message)),
                ),
            ]
        })
        .collect();
    table(
        out,
        &[
            "FILE", "FORMAT", "PACKETS", "FIRST", "SHA256", "WEIRDS", "STATUS",
        ],
        &rows,
        &[false, false, true, false, false, true, false],
    )?;
    Ok(())
}
