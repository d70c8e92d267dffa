//! The validated, resolved settings of a run: case file merged with flags
//! (flags win), CIDR sets parsed, window and threshold resolved. Built once.

use crate::attribution::netscope::{Allowlist, Netscope, parse_net};
use crate::cli::{AnalyzeArgs, InputArgs};
use crate::input::{InputPath, expand, sha256_hex};
use crate::model::{AllowEcho, Ts, parse_time};
use ipnet::IpNet;
use serde::Deserialize;
use std::path::PathBuf;

/// Default threshold: 1 MiB of application bytes per host in scope. Source:
/// MITRE ATT&CK DET0348 (T1041), whose analytic flags flows with
/// `bytes_out > bytes_in` above a mutable DataVolumeThreshold, "e.g., >1MB".
pub const DEFAULT_THRESHOLD: u64 = 1 << 20;
/// Silence between capture files longer than this is a coverage gap (methodology C2: 5 min).
pub const MAX_GAP_NS: Ts = 5 * 60 * crate::model::NS_PER_SEC;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(default)]
    pub case: CaseMeta,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub scope: ScopeSection,
    #[serde(default)]
    pub window: Option<WindowSection>,
    #[serde(default)]
    pub allow: Vec<AllowEntry>,
    #[serde(default)]
    pub verdict: VerdictSection,
    #[serde(default)]
    pub iocs: IocSection,
    #[serde(default)]
    pub coverage: CoverageSection,
    #[serde(default)]
    pub baseline: BaselineSection,
    pub business_hours: Option<BusinessHoursSection>,
    /// Extra exfiltration-service domains for D5.
    #[serde(default)]
    pub exfil_services: ExfilServicesSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExfilServicesSection {
    #[serde(default)]
    pub domains: Vec<String>,
}

/// Parses "Mon-Fri 08:00-18:00 +01:00" (days as a range or a comma list).
pub fn parse_business_hours(s: &str) -> Result<BusinessHoursSection, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() < 2 {
        return Err(format!(
            "business hours '{s}' must look like \"Mon-Fri 08:00-18:00 +01:00\""
        ));
    }
    let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let idx = |d: &str| {
        let d = d.to_ascii_lowercase();
        names
            .iter()
            .position(|n| d.starts_with(n))
            .ok_or_else(|| format!("'{d}' is not a day"))
    };
    let mut days = Vec::new();
    for item in parts[0].split(',') {
        if let Some((a, b)) = item.split_once('-') {
            let (a, b) = (idx(a)?, idx(b)?);
            let mut i = a;
            loop {
                days.push(names[i].to_string());
                if i == b {
                    break;
                }
                i = (i + 1) % 7;
            }
        } else {
            days.push(names[idx(item)?].to_string());
        }
    }
    let (start, end) = parts[1]
        .split_once('-')
        .ok_or_else(|| format!("business hours '{}' must be HH:MM-HH:MM", parts[1]))?;
    Ok(BusinessHoursSection {
        days,
        start: start.to_string(),
        end: end.to_string(),
        utc_offset: parts.get(2).map(|o| o.to_string()),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSection {
    pub start: Option<String>,
    pub end: Option<String>,
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursSection {
    /// e.g. ["Mon", "Tue", "Wed", "Thu", "Fri"]
    pub days: Vec<String>,
    /// "08:00"
    pub start: String,
    /// "18:00"
    pub end: String,
    /// Local time's offset from UTC, e.g. "+01:00" (fixed; DST is not applied).
    #[serde(default)]
    pub utc_offset: Option<String>,
}

fn parse_hhmm(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("time '{s}' must be HH:MM"))?;
    let h: u32 = h.parse().map_err(|_| format!("time '{s}' must be HH:MM"))?;
    let m: u32 = m.parse().map_err(|_| format!("time '{s}' must be HH:MM"))?;
    if h > 24 || m > 59 {
        return Err(format!("time '{s}' out of range"));
    }
    Ok(h * 60 + m)
}

fn parse_offset(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (sign, rest) = match t.chars().next() {
        Some('+') => (1, &t[1..]),
        Some('-') => (-1, &t[1..]),
        _ => (1, t),
    };
    Ok(sign * i64::from(parse_hhmm(rest)?) * 60)
}

pub fn business_hours(b: &BusinessHoursSection) -> Result<crate::detect::BusinessHours, String> {
    let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let days = b
        .days
        .iter()
        .map(|d| {
            let d = d.trim().to_ascii_lowercase();
            names
                .iter()
                .position(|n| d.starts_with(n))
                .map(|p| p as u8)
                .ok_or_else(|| format!("business day '{d}' is not Mon..Sun"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::detect::BusinessHours {
        days,
        start_min: parse_hhmm(&b.start)?,
        end_min: parse_hhmm(&b.end)?,
        utc_offset_s: b
            .utc_offset
            .as_deref()
            .map(parse_offset)
            .transpose()?
            .unwrap_or(0),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IocSection {
    /// Addresses or networks tied to the intrusion.
    #[serde(default)]
    pub ips: Vec<String>,
    /// Domains tied to the intrusion (suffix match).
    #[serde(default)]
    pub domains: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseMeta {
    pub name: Option<String>,
    pub analyst: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    #[serde(default)]
    pub internal: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSection {
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSection {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    pub destination: String,
    #[serde(default)]
    pub justification: String,
    #[serde(default)]
    pub multi_tenant: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictSection {
    pub threshold: Option<String>,
    /// Materiality M: the smallest volume that would matter.
    pub materiality: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageSection {
    /// Capacity of the egress link(s), e.g. "1Gbit" or "125MB" (per second).
    pub link_capacity: Option<String>,
    #[serde(default)]
    pub egress: Vec<EgressEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressEntry {
    pub name: String,
    /// How the egress point appears in the evidence: part of a capture file's path,
    /// or a pcapng interface name.
    pub observed_by: String,
}

/// Parses a rate: bytes per second, or bits with a `bit` suffix (`1Gbit`, `100Mbit`).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("/s").trim_end_matches("ps");
    if let Some(b) = t.strip_suffix("bit") {
        let bytes = parse_bytes(&format!("{}b", b.trim()))?;
        Ok(bytes / 8)
    } else {
        parse_bytes(t)
    }
}

#[derive(Debug, Clone)]
pub struct InputConfig {
    pub inputs: Vec<InputPath>,
    pub netscope: Netscope,
    pub internal_text: Vec<String>,
    pub threads: Option<usize>,
    pub quiet: bool,
    /// Forced input format and CSV column mapping.
    pub read: crate::input::ReadOptions,
    /// UDP ports decoded as NetFlow/IPFIX exports.
    pub export_ports: Vec<u16>,
    /// Sampling interval for flow records that do not announce one (1 = none).
    pub sampling: u32,
    /// Exporter preference for flows reported by several exporters.
    pub exporter_priority: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone)]
pub struct AnalyzeConfig {
    pub input: InputConfig,
    pub scope: Vec<IpNet>,
    pub scope_text: Vec<String>,
    pub allow: Allowlist,
    pub allow_text: Vec<String>,
    pub allow_entries: Vec<AllowEcho>,
    pub case_name: Option<String>,
    pub analyst: Option<String>,
    pub window: Option<(Ts, Ts)>,
    pub window_given: bool,
    pub threshold: u64,
    pub threshold_source: &'static str,
    pub case_file: Option<(String, String)>,
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub top: usize,
    pub german: bool,
    pub command_line: Vec<String>,
    pub iocs: crate::detect::Iocs,
    pub materiality: u64,
    pub materiality_source: &'static str,
    pub egress: Vec<(String, String)>,
    pub capacity: Option<u64>,
    pub baseline_window: Option<(Ts, Ts)>,
    pub baseline_inputs: InputConfig,
    pub business_hours: Option<crate::detect::BusinessHours>,
    pub exfil_services: Vec<String>,
}

/// Parses `1MiB`, `500k`, `2MB`, `1048576`, `0`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a byte count (e.g. 1MiB, 500k, 0)"))?;
    let mul: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        _ => {
            return Err(format!(
                "'{s}': unknown unit (use B, k, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    Ok((v * mul).round() as u64)
}

/// Parses `START..END`.
pub fn parse_window(s: &str) -> Result<(Ts, Ts), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("window '{s}' must look like START..END"))?;
    let start = parse_time(a)
        .ok_or_else(|| format!("window start '{a}' is not RFC 3339 or epoch seconds"))?;
    let end = parse_time(b)
        .ok_or_else(|| format!("window end '{b}' is not RFC 3339 or epoch seconds"))?;
    if end < start {
        return Err(format!("window end {b} is before its start {a}"));
    }
    Ok((start, end))
}

pub fn input_config(a: &InputArgs, case_internal: &[String]) -> Result<InputConfig, String> {
    let internal_text: Vec<String> = if !a.internal.is_empty() {
        a.internal.clone()
    } else if !case_internal.is_empty() {
        case_internal.to_vec()
    } else {
        crate::attribution::netscope::DEFAULT_INTERNAL
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let nets = internal_text
        .iter()
        .map(|s| parse_net(s))
        .collect::<Result<Vec<_>, _>>()?;
    if a.threads == Some(0) {
        return Err("--threads must be at least 1".into());
    }
    let columns = a
        .columns
        .as_deref()
        .map(crate::input::csvmap::ColumnMap::parse)
        .transpose()
        .map_err(|e| format!("--columns: {e}"))?;
    if a.input_format == crate::input::InputFormat::Csv && columns.is_none() {
        return Err("--input-format csv needs --columns".into());
    }
    if a.sampling == Some(0) {
        return Err("--sampling must be at least 1".into());
    }
    let mut export_ports = crate::model::EXPORT_PORTS.to_vec();
    for p in &a.flow_port {
        if !export_ports.contains(p) {
            export_ports.push(*p);
        }
    }
    let exporter_priority = a
        .exporter_priority
        .iter()
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| format!("--exporter-priority: '{s}' is not an IP address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InputConfig {
        inputs: expand(&a.inputs),
        netscope: Netscope::new(nets),
        internal_text,
        threads: a.threads,
        quiet: a.quiet,
        read: crate::input::ReadOptions {
            format: a.input_format,
            columns,
        },
        export_ports,
        sampling: a.sampling.unwrap_or(1),
        exporter_priority,
    })
}

pub fn analyze_config(a: &AnalyzeArgs, command_line: Vec<String>) -> Result<AnalyzeConfig, String> {
    let (case, case_file) = match &a.case {
        Some(p) => {
            let bytes = std::fs::read(p)
                .map_err(|e| format!("cannot read case file {}: {e}", p.display()))?;
            let text = String::from_utf8(bytes.clone())
                .map_err(|_| format!("case file {} is not UTF-8", p.display()))?;
            let c: CaseFile =
                toml::from_str(&text).map_err(|e| format!("case file {}: {e}", p.display()))?;
            (c, Some((p.display().to_string(), sha256_hex(&bytes))))
        }
        None => (CaseFile::default(), None),
    };
    let mut input = input_config(&a.input, &case.network.internal)?;
    let scope_text: Vec<String> = if !a.scope.is_empty() {
        a.scope.clone()
    } else {
        case.scope.hosts.clone()
    };
    let scope = scope_text
        .iter()
        .map(|s| parse_net(s))
        .collect::<Result<Vec<_>, _>>()?;
    // A host that holds customer data is ours by definition: scope entries outside
    // the internal networks join them (and the report says so).
    for (net, text) in scope.iter().zip(&scope_text) {
        if !input.netscope.internal().iter().any(|n| n.contains(net)) {
            let mut nets = input.netscope.internal().to_vec();
            nets.push(*net);
            input.netscope = Netscope::new(nets);
            input.internal_text.push(format!("{text} (from --scope)"));
        }
    }
    let allow_entries: Vec<AllowEcho> = if !a.allow.is_empty() || !a.multi_tenant.is_empty() {
        a.allow
            .iter()
            .map(|d| AllowEcho {
                destination: d.clone(),
                justification: "given with --allow".into(),
                multi_tenant: false,
            })
            .chain(a.multi_tenant.iter().map(|d| AllowEcho {
                destination: d.clone(),
                justification: "given with --multi-tenant".into(),
                multi_tenant: true,
            }))
            .collect()
    } else {
        case.allow
            .iter()
            .map(|e| AllowEcho {
                destination: e.destination.clone(),
                justification: e.justification.clone(),
                multi_tenant: e.multi_tenant,
            })
            .collect()
    };
    let allow_text: Vec<String> = allow_entries
        .iter()
        .map(|e| e.destination.clone())
        .collect();
    let allow = Allowlist::parse_entries(
        &allow_entries
            .iter()
            .map(|e| (e.destination.clone(), e.multi_tenant))
            .collect::<Vec<_>>(),
    )?;
    let (window, window_given) = match (&a.window, &case.window) {
        (Some(w), _) => (Some(parse_window(w)?), true),
        (None, Some(w)) => (
            Some(parse_window(&format!("{}..{}", w.start, w.end))?),
            false,
        ),
        (None, None) => (None, false),
    };
    let (threshold, threshold_source) = match (&a.threshold, &case.verdict.threshold) {
        (Some(t), _) => (parse_bytes(t)?, "--threshold"),
        (None, Some(t)) => (parse_bytes(t)?, "case file"),
        (None, None) => (DEFAULT_THRESHOLD, "default: ATT&CK DET0348 example volume"),
    };
    let (materiality, materiality_source) = match (&a.materiality, &case.verdict.materiality) {
        (Some(m), _) => (parse_bytes(m)?, "--materiality"),
        (None, Some(m)) => (parse_bytes(m)?, "case file"),
        (None, None) => (threshold, "default: equal to the threshold"),
    };
    let capacity = a
        .link_capacity
        .as_deref()
        .or(case.coverage.link_capacity.as_deref())
        .map(parse_rate)
        .transpose()?;
    let baseline_window = match (&a.baseline, &case.baseline.start, &case.baseline.end) {
        (Some(w), _, _) => Some(parse_window(w).map_err(|e| format!("--baseline: {e}"))?),
        (None, Some(s), Some(e)) => {
            Some(parse_window(&format!("{s}..{e}")).map_err(|e| format!("[baseline]: {e}"))?)
        }
        _ => None,
    };
    // The baseline must not overlap the investigation window: packets in it would
    // silently leave the verdict.
    if let (Some((bs, be)), Some((ws, we))) = (baseline_window, window)
        && bs <= we
        && ws <= be
    {
        return Err("the baseline period overlaps the investigation window; it must end before the window starts".into());
    }
    let mut baseline_inputs = input.clone();
    baseline_inputs.inputs = expand(if a.baseline_input.is_empty() {
        &case.baseline.inputs
    } else {
        &a.baseline_input
    });
    let bh_flag = a
        .business_hours
        .as_deref()
        .map(parse_business_hours)
        .transpose()?;
    let business_hours = bh_flag
        .as_ref()
        .or(case.business_hours.as_ref())
        .map(business_hours)
        .transpose()?;
    let mut exfil_services: Vec<String> = case.exfil_services.domains.clone();
    exfil_services.extend(a.exfil_service.iter().cloned());
    let exfil_services = exfil_services
        .into_iter()
        .map(|d| {
            d.trim()
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .to_ascii_lowercase()
        })
        .filter(|d| !d.is_empty())
        .collect();
    let egress: Vec<(String, String)> = if !a.egress.is_empty() {
        a.egress
            .iter()
            .map(|e| {
                e.split_once('=')
                    .map(|(n, b)| (n.trim().to_string(), b.trim().to_string()))
                    .ok_or_else(|| format!("--egress '{e}' must be NAME=OBSERVED_BY"))
            })
            .collect::<Result<_, _>>()?
    } else {
        case.coverage
            .egress
            .iter()
            .map(|e| (e.name.clone(), e.observed_by.clone()))
            .collect()
    };
    for i in &a.ioc {
        let looks_like_address =
            i.contains('/') || i.contains(':') || i.chars().all(|c| c.is_ascii_digit() || c == '.');
        if looks_like_address && parse_net(i).is_err() {
            return Err(format!(
                "--ioc '{i}' is neither a valid address/CIDR nor a domain"
            ));
        }
    }
    let mut ioc_ips = case.iocs.ips.clone();
    ioc_ips.extend(a.ioc.iter().filter(|s| parse_net(s).is_ok()).cloned());
    let mut ioc_domains: Vec<String> = case
        .iocs
        .domains
        .iter()
        .map(|d| d.trim_start_matches("*.").to_ascii_lowercase())
        .collect();
    ioc_domains.extend(
        a.ioc
            .iter()
            .filter(|s| parse_net(s).is_err())
            .map(|d| d.trim_start_matches("*.").to_ascii_lowercase()),
    );
    let iocs = crate::detect::Iocs {
        nets: ioc_ips
            .iter()
            .map(|s| parse_net(s))
            .collect::<Result<Vec<_>, _>>()?,
        domains: ioc_domains,
    };
    Ok(AnalyzeConfig {
        input,
        scope,
        scope_text,
        allow,
        allow_text,
        allow_entries,
        case_name: case.case.name.clone(),
        analyst: case.case.analyst.clone(),
        window,
        window_given,
        threshold,
        threshold_source,
        case_file,
        json: a.json.clone(),
        csv: a.csv.clone(),
        top: a.top,
        german: a.lang == crate::cli::Lang::De,
        command_line,
        iocs,
        materiality,
        materiality_source,
        egress,
        capacity,
        baseline_window,
        baseline_inputs,
        business_hours,
        exfil_services,
    })
}

/// The commented case file `exfilcheck init` writes.
pub const CASE_TEMPLATE: &str = r#"# exfilcheck case file. Every field can also be given as a flag; flags win.
# Run: exfilcheck analyze --case case.toml CAPTURE...

[case]
# name = "INC-2026-042 ransomware, file server"
# analyst = "A. Analyst"

[network]
# Internal networks (CIDR). Default: RFC 1918, RFC 6598 (100.64/10), RFC 4193 (fc00::/7),
# link-local and loopback. Listing networks here replaces the default.
# internal = ["10.0.0.0/8", "192.168.0.0/16"]

[scope]
# Hosts holding or able to reach the customer data (addresses or CIDRs).
# Default: every internal host.
# hosts = ["10.20.1.10"]

# [window]
# The investigation window (RFC 3339, fractions allowed). Default: the span of the captures.
# Start it well before the first known attacker activity: exfiltration often precedes
# encryption by days.
# start = "2026-11-01T00:00:00Z"
# end   = "2026-11-28T12:00:00Z"

# Destinations that are legitimate (CIDR or domain suffix), each with a justification.
# Set multi_tenant to true for shared cloud services where an attacker could own a tenant.
# [[allow]]
# destination = "198.51.100.50/32"
# justification = "contracted off-site backup provider"
# multi_tenant = false

[iocs]
# Indicators of compromise from the investigation: any byte sent to them fires D12.
# ips = ["203.0.113.66"]
# domains = ["evil.example"]

[coverage]
# Capacity of the egress link, used to bound what could pass while nothing was captured.
# Default: the fastest flow seen in the captures.
# link_capacity = "1Gbit"
# Every egress path of the network and how it appears in the evidence (part of a capture
# file's path, or a pcapng interface name). An unobserved one makes the bound infinite.
# [[coverage.egress]]
# name = "ISP uplink"
# observed_by = "uplink"

[baseline]
# A normal period before the incident, for the baseline detectors (D1 volume per hour,
# D2 upload ratio, D4 new destinations). Either a window within the captures given to
# analyze (it should end before the first known attacker activity) or separate captures.
# Four weeks or more lets every hour of the week appear four times.
# start = "2026-10-01T00:00:00Z"
# end   = "2026-10-29T00:00:00Z"
# inputs = ["baseline/"]

# [business_hours]
# Off-hours uploads (D11). utc_offset is fixed (daylight saving time is not applied).
# days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
# start = "08:00"
# end = "18:00"
# utc_offset = "+01:00"

[exfil_services]
# Extra exfiltration-service domains for D5 (suffix match), added to the shipped list
# data/exfil-services.toml (cloud storage, file transfer, paste, webhooks).
# domains = ["files.partner-cloud.example"]

[verdict]
# Outbound application bytes per host in scope to non-allowlisted destinations above
# which the verdict is CONTRADICTED. Default 1MiB (ATT&CK DET0348 example threshold).
# threshold = "1MiB"
# Materiality M: the smallest volume that would matter (e.g. the export size of the
# smallest sensitive table). SUPPORTED needs the upper bound below it. Default: threshold.
# materiality = "5MB"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_windows() {
        assert_eq!(parse_bytes("1MiB"), Ok(1_048_576));
        assert_eq!(parse_bytes("500k"), Ok(500_000));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("lots").is_err());
        let (a, b) = parse_window("2026-11-28T10:41:24.5Z..2026-11-28T10:41:41Z").unwrap();
        assert_eq!(b - a, 16_500_000_000);
        assert!(parse_window("2026-11-28T10:41:41Z..2026-11-28T10:41:24Z").is_err());
    }

    #[test]
    fn business_hours_flag() {
        let b = parse_business_hours("Mon-Fri 08:00-18:00 +01:00").unwrap();
        assert_eq!(b.days, vec!["mon", "tue", "wed", "thu", "fri"]);
        let h = business_hours(&b).unwrap();
        assert_eq!((h.start_min, h.end_min, h.utc_offset_s), (480, 1080, 3600));
        let b = parse_business_hours("Sat,Sun 10:00-14:00").unwrap();
        assert_eq!(business_hours(&b).unwrap().days, vec![5, 6]);
        assert!(parse_business_hours("weekdays").is_err());
        assert_eq!(parse_rate("8Mbit"), Ok(1_000_000));
    }

    #[test]
    fn template_parses() {
        let c: CaseFile = toml::from_str(CASE_TEMPLATE).unwrap();
        assert!(c.allow.is_empty());
        let uncommented: String = CASE_TEMPLATE
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = ") || r.starts_with('['))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c: CaseFile = toml::from_str(&uncommented).unwrap();
        assert_eq!(c.scope.hosts, vec!["10.20.1.10"]);
        assert_eq!(c.allow[0].destination, "198.51.100.50/32");
    }
}
