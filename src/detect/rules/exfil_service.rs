//! D5 exfil_service: uploads to cloud storage, file transfer, paste, webhook and
//! code-hosting services, recognised by name (SNI, DNS answer, HTTP Host).

use super::super::{DetectInput, Detector, Finding, Metric, Pass, Severity};
use super::AtEnd;
use super::{Seen, mb};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::OnceLock;

/// The shipped category list (versioned; see data/exfil-services.toml).
pub const LIST: &str = include_str!("../../../data/exfil-services.toml");
/// df00tech's tiering for uploads to cloud storage: > 10 MB medium.
pub const FIRE_BYTES: u64 = 10_000_000;
/// Below that, uploads of at least 1 MB are flagged.
pub const FLAG_BYTES: u64 = 1_000_000;

#[derive(Deserialize)]
struct ListFile {
    version: String,
    category: Vec<Category>,
}

#[derive(Deserialize)]
struct Category {
    name: String,
    domains: Vec<String>,
}

fn list() -> &'static ListFile {
    static L: OnceLock<ListFile> = OnceLock::new();
    L.get_or_init(|| toml::from_str(LIST).expect("data/exfil-services.toml is valid (tested)"))
}

pub fn version() -> &'static str {
    &list().version
}

/// The category of a name, if it is a known exfiltration service.
pub fn category(name: &str) -> Option<(&'static str, &'static str)> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    for c in &list().category {
        for d in &c.domains {
            if n == *d || n.ends_with(&format!(".{d}")) {
                return Some((c.name.as_str(), d.as_str()));
            }
        }
    }
    None
}

pub struct ExfilService;

impl Detector for ExfilService {
    fn code(&self) -> &'static str {
        "D5"
    }
    fn name(&self) -> &'static str {
        "exfil_service_upload"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Sums what each internal host uploads to destinations whose names (TLS SNI, DNS answers, HTTP \
Host seen in the capture) belong to a cloud-storage, file-transfer, paste, webhook or \
code-hosting service in data/exfil-services.toml. Fires at 10 MB or more per host and \
destination, flags from 1 MB.\n\n\
## Why it matters\n\
Ransomware crews commonly exfiltrate with rclone to MEGA and similar services (MITRE ATT&CK \
T1567.002; NCC Group; Red Canary). Such uploads blend with normal HTTPS.\n\n\
## Defaults and sources\n\
10 MB: df00tech's T1567.002 rule (>10 MB medium, >50 MB high, >100 MB critical). The list's \
sources are in the file's header; its version is in every report.\n\n\
## Known false positives\n\
Sanctioned use of the same services (company OneDrive or Dropbox). Allowlist the tenant's \
addresses or names and mark them multi-tenant; names are only known when the capture contains \
the DNS answer, the SNI or the Host header (ECH and DoH hide them)."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::new(AtEnd(decide))
    }
}
/// Reads the ledger's host/destination rows when it decides; keeps nothing.
fn decide(inp: &DetectInput<'_>) -> Vec<Finding> {
    let mut cats: BTreeMap<IpAddr, Option<(&'static str, &'static str, String)>> = BTreeMap::new();
    let mut out = Vec::new();
    for p in &inp.ledger.pairs {
        let (host, dest, bytes) = (p.host, p.dest, p.out.bytes);
        // The cheap test first: most pairs send little.
        if bytes < FLAG_BYTES {
            continue;
        }
        let c = cats.entry(dest).or_insert_with(|| {
            inp.names_of(dest).into_iter().find_map(|n| {
                category(&n).map(|(c, d)| (c, d, n.clone())).or_else(|| {
                    let l = n.to_ascii_lowercase();
                    inp.extra_services
                        .iter()
                        .any(|d| l == *d || l.ends_with(&format!(".{d}")))
                        .then_some(("case-listed", "", n))
                })
            })
        });
        let Some((cat, _, name)) = c.clone() else {
            continue;
        };
        if inp.allowed(dest) {
            continue;
        }
        let severity = if bytes >= FIRE_BYTES {
            Severity::Fire
        } else {
            Severity::Flag
        };
        out.push(Finding {
            severity,
            protocol: cat.to_string(),
            bytes,
            text: format!(
                "{host} uploaded {} to {name} ({cat} service, {dest})",
                mb(bytes)
            ),
            text_de: format!(
                "{host} hat {} zu {name} hochgeladen (Dienst der Kategorie {cat}, {dest})",
                mb(bytes)
            ),
            metrics: vec![Metric {
                name: "bytes_out",
                value: bytes as f64,
                threshold: Some(FIRE_BYTES as f64),
            }],
            ..Finding::for_pair(&ExfilService, inp, host, dest, &Seen::of_pair(p))
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parses_and_matches_suffixes() {
        assert!(!version().is_empty());
        assert_eq!(
            category("g.api.mega.co.nz").map(|c| c.0),
            Some("cloud-storage")
        );
        assert_eq!(category("transfer.sh").map(|c| c.0), Some("file-transfer"));
        assert_eq!(category("notmega.nz"), None);
        assert_eq!(category("example.com"), None);
    }
}
