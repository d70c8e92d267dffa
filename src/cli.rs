//! Command-line flags as the user typed them (clap derive). `config` turns them
//! into the validated settings (config.rs); stages never see these types.

use crate::report::flows_out::FlowFormat;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "exfilcheck",
    version,
    about = "Verify or refute \"no customer data was exfiltrated\" from packet captures and flow exports",
    long_about = "Reads packet captures (pcap, pcapng) and flow exports (NetFlow v5/v9, IPFIX, nfcapd, \
nfdump CSV, Zeek conn.log, AWS VPC flow logs, CSV with --columns), also .gz/.zst, directories \
and - for stdin, \
attributes every outbound byte to an internal host and an external destination, and gives a \
verdict on the claim that no customer data left the network: CONTRADICTED, SUPPORTED (no \
evidence found in the examined captures) or INCONCLUSIVE, with the reasons.\n\n\
Exit codes: 0 SUPPORTED / success, 1 CONTRADICTED, 2 usage error, 3 INCONCLUSIVE, \
4 runtime error (no report could be written), 5 `flows`: some inputs could not be read."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse captures and give a verdict on the claim "no customer data left".
    Analyze(Box<AnalyzeArgs>),
    /// List the flows of captures and flow exports, one row per flow (Zeek conn.log column names).
    Flows(FlowsArgs),
    /// Write a commented case file (case.toml) to fill in.
    Init(InitArgs),
    /// List the detectors, or explain one.
    Detectors(DetectorsArgs),
}

#[derive(Debug, Args)]
pub struct DetectorsArgs {
    /// Print the documentation of this detector (code like D7, or its name).
    #[arg(long, value_name = "CODE")]
    pub explain: Option<String>,
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// Captures (pcap, pcapng) and flow exports (NetFlow/IPFIX, nfcapd, nfdump CSV,
    /// Zeek conn.log, VPC flow logs), optionally .gz/.zst; directories (read
    /// recursively, sorted) or - for stdin. Formats are detected by content.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Internal network (CIDR); repeatable. Replaces the default (RFC 1918,
    /// RFC 6598, RFC 4193, link-local, loopback).
    #[arg(long = "internal", value_name = "CIDR")]
    pub internal: Vec<String>,
    /// Worker threads (default: number of CPUs). Results do not depend on it.
    #[arg(short = 'j', long = "threads", value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bar and no terminal summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Read every input as this format instead of detecting it from the content.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = crate::input::InputFormat::Auto)]
    pub input_format: crate::input::InputFormat,
    /// Column mapping for CSV flow exports, e.g. `src=SrcIP,dst=DstIP,bytes=Sent`
    /// (keys: src dst bytes sport dport proto pkts start end rev_bytes rev_pkts;
    /// a value is a header name or #N for the N-th column).
    #[arg(long, value_name = "MAP")]
    pub columns: Option<String>,
    /// Also decode UDP datagrams to/from this port as NetFlow/IPFIX exports
    /// (2055, 4739, 9995 and 9996 always are); repeatable.
    #[arg(long = "flow-port", value_name = "PORT")]
    pub flow_port: Vec<u16>,
    /// Packet sampling interval N (1 in N) of flow exports that do not announce
    /// one; volumes are scaled by N (see docs/verdict.md).
    #[arg(long, value_name = "N")]
    pub sampling: Option<u32>,
    /// Exporters in order of preference (IP addresses, comma-separated) when two
    /// exporters report the same flow; the rest follow by address.
    #[arg(long, value_name = "IP,IP,...", value_delimiter = ',')]
    pub exporter_priority: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Host or CIDR holding or reaching customer data; repeatable (default: all internal hosts).
    #[arg(long = "scope", value_name = "HOST_OR_CIDR")]
    pub scope: Vec<String>,
    /// Legitimate destination (CIDR or domain suffix); repeatable.
    #[arg(long = "allow", value_name = "CIDR_OR_DOMAIN")]
    pub allow: Vec<String>,
    /// Investigation window START..END in RFC 3339 (fractions allowed) or epoch
    /// seconds (default: the span of the inputs).
    #[arg(long, value_name = "START..END")]
    pub window: Option<String>,
    /// Outbound application bytes per host in scope to non-allowlisted
    /// destinations above which the verdict is CONTRADICTED (e.g. 1MiB, 500k, 0).
    /// Default 1 MiB (see docs/verdict.md).
    #[arg(long, value_name = "BYTES")]
    pub threshold: Option<String>,
    /// Baseline period within the inputs, START..END (before the incident); packets
    /// in it feed the baseline detectors (D1, D2, D4) instead of the verdict.
    #[arg(long, value_name = "START..END")]
    pub baseline: Option<String>,
    /// Captures of a normal period, used only as baseline; repeatable.
    #[arg(long = "baseline-input", value_name = "PATH")]
    pub baseline_input: Vec<PathBuf>,
    /// Materiality M: the smallest volume that would matter; SUPPORTED needs the
    /// upper bound below it (default: the threshold).
    #[arg(long, value_name = "BYTES")]
    pub materiality: Option<String>,
    /// Legitimate but shared destination (cloud storage, SaaS: an attacker could own a
    /// tenant there); repeatable. Like --allow, marked multi-tenant.
    #[arg(long = "multi-tenant", value_name = "CIDR_OR_DOMAIN")]
    pub multi_tenant: Vec<String>,
    /// Declared egress point NAME=OBSERVED_BY (part of a capture's path or a pcapng
    /// interface name); repeatable. Replaces the case file's [[coverage.egress]].
    #[arg(long = "egress", value_name = "NAME=OBSERVED_BY")]
    pub egress: Vec<String>,
    /// Egress link capacity for the upper bound, e.g. 1Gbit, 100Mbit, 125MB (per second).
    #[arg(long = "link-capacity", value_name = "RATE")]
    pub link_capacity: Option<String>,
    /// Business hours for D11, e.g. "Mon-Fri 08:00-18:00 +01:00" (fixed UTC offset).
    #[arg(long = "business-hours", value_name = "DAYS HH:MM-HH:MM [OFFSET]")]
    pub business_hours: Option<String>,
    /// Extra exfiltration-service domain for D5 (suffix match); repeatable.
    #[arg(long = "exfil-service", value_name = "DOMAIN")]
    pub exfil_service: Vec<String>,
    /// Indicator of compromise (address, CIDR or domain); repeatable. Adds to the case file's [iocs].
    #[arg(long = "ioc", value_name = "IP_CIDR_OR_DOMAIN")]
    pub ioc: Vec<String>,
    /// Case file (see `exfilcheck init`); flags given on the command line win.
    #[arg(long = "case", value_name = "FILE")]
    pub case: Option<PathBuf>,
    /// Write the JSON report here (- for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write hosts.csv, destinations.csv, pairs.csv and flows.csv into this directory.
    #[arg(long, value_name = "DIR")]
    pub csv: Option<PathBuf>,
    /// Rows in each terminal table.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Language of the terminal summary (the JSON carries both).
    #[arg(long, value_enum, default_value_t = Lang::En)]
    pub lang: Lang,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    En,
    De,
}

#[derive(Debug, Args)]
pub struct FlowsArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FlowFormat::Csv)]
    pub format: FlowFormat,
    /// Output file (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the case file.
    #[arg(
        short = 'o',
        long = "output",
        default_value = "case.toml",
        value_name = "FILE"
    )]
    pub output: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
