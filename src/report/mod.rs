//! Renders results; computes nothing. One immutable, pre-sorted [`Report`] is
//! written by the terminal, JSON and CSV writers. Every string that came from a
//! capture (names, file names) is escaped by the writer that prints it.

pub mod csv_out;
pub mod flows_out;
pub mod json;
pub mod terminal;

use crate::attribution::Ledger;
use crate::detect::Finding;
use crate::evidence::Assessment;
use crate::input::InputSummary;
use crate::model::{DirStats, DirectionReason, Endpoint, FlowUid, Ts};
use serde::Serialize;

/// Bumped when a field changes meaning or disappears; additions keep it.
pub const SCHEMA_VERSION: &str = "1.0";

#[derive(Clone, Debug, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: &'static str,
    /// Version and SHA-256 of the shipped exfiltration-service list (data/exfil-services.toml).
    pub exfil_service_list_version: &'static str,
    pub exfil_service_list_sha256: String,
}

/// The case as it was applied (after merging case file and flags).
#[derive(Clone, Debug, Serialize)]
pub struct CaseEcho {
    pub internal_networks: Vec<String>,
    pub scope: Vec<String>,
    pub scope_default: bool,
    pub allowlist: Vec<String>,
    /// The allowlist with each entry's justification and multi-tenant mark.
    pub allowlist_entries: Vec<crate::model::AllowEcho>,
    pub case_name: Option<String>,
    pub analyst: Option<String>,
    pub threshold_bytes: u64,
    pub threshold_source: &'static str,
    pub case_file: Option<String>,
    pub case_file_sha256: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    pub outbound: DirStats,
    pub inbound: DirStats,
    pub outbound_unallowed: DirStats,
    pub internal_ip_bytes: u64,
    pub external_only_ip_bytes: u64,
    pub outer_flows: u64,
    pub inner_flows: u64,
    pub uncertain_direction_flows: u64,
    pub internal_hosts_seen: u64,
}

/// One row of `exfilcheck flows` and of flows.csv. Borrows its text from the
/// flow and the input list, so a row costs no allocation.
#[derive(Clone, Debug, Serialize)]
pub struct FlowRow<'a> {
    pub uid: FlowUid,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub ts: Ts,
    pub ts_ns: Ts,
    pub duration_ns: i64,
    pub proto: &'static str,
    pub ip_proto: u8,
    pub orig: Endpoint,
    pub resp: Endpoint,
    pub orig_stats: DirStats,
    pub resp_stats: DirStats,
    pub local_orig: bool,
    pub local_resp: bool,
    pub direction: DirectionReason,
    pub tunnel_parent: Option<FlowUid>,
    pub file: &'a str,
    pub first_frame: u64,
    pub last_frame: u64,
    pub server_name: Option<&'a str>,
    /// Flows from export records: the exporter, and the sampling interval the
    /// counts were scaled by (1 = unsampled, and for captures).
    pub exporter: Option<std::net::IpAddr>,
    pub sampling: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: &'static str,
    pub tool: ToolInfo,
    /// Carries the top-level `verdict` (flattened).
    #[serde(flatten)]
    pub assessment: Assessment,
    pub case: CaseEcho,
    pub totals: Totals,
    pub inputs: Vec<InputSummary>,
    /// Flow exporters seen (NetFlow/IPFIX/nfdump) with their record and byte
    /// totals and what de-duplication across exporters removed.
    pub exporters: Vec<crate::model::ExporterTotals>,
    /// Captures given as baseline only (`--baseline-input`).
    pub baseline_inputs: Vec<InputSummary>,
    /// The baseline window within the inputs, if given.
    pub baseline_window: Option<(String, String)>,
    pub baseline_flows: u64,
    /// Detector findings (FIRE first, then FLAG; bytes at stake descending).
    pub findings: Vec<Finding>,
    pub ledger: Ledger,
}

/// Human-readable size (binary units), e.g. `39.1 MiB`.
pub fn human(n: u64) -> String {
    crate::evidence::human(n)
}
