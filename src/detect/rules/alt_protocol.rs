//! D6 alt_protocol: uploads over file-transfer protocols (FTP, SSH/SFTP/SCP, SMB, rsync).

use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::{Keyed, Seen, mb};
use crate::model::Flow;
use std::net::IpAddr;

/// More than 1 MB outbound (methodology D6, a design choice).
pub const BYTES: u64 = 1_000_000;

fn service(port: u16) -> Option<&'static str> {
    Some(match port {
        20 | 21 => "ftp",
        22 => "ssh/sftp/scp",
        139 | 445 => "smb",
        873 => "rsync",
        989 | 990 => "ftps",
        _ => return None,
    })
}

pub struct AltProtocol;

impl Detector for AltProtocol {
    fn code(&self) -> &'static str {
        "D6"
    }
    fn name(&self) -> &'static str {
        "alt_protocol_upload"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Fires when an internal host sends more than 1 MB in total over FTP (20/21), SSH/SFTP/SCP (22), \
SMB (139/445), rsync (873) or FTPS (989/990), or SSH on any port (recognised by its banner), \
to an external destination not on the allowlist, in flows the internal host originated.\n\n\
## Why it matters\n\
MITRE ATT&CK T1048 (Exfiltration Over Alternative Protocol); Akira and Black Basta affiliates \
use rclone with SFTP back ends; scp and SMB to the internet are rare in healthy networks.\n\n\
## Defaults and sources\n\
1 MB: methodology D6 (design choice). Ports are the IANA defaults; SSH is also recognised by \
its banner on any port; the other services on other ports are not (a known false negative).\n\n\
## Known false positives\n\
Administrators copying files to external servers; partner SFTP exchanges (allowlist them)."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

/// Per host, destination and service: bytes the host sent and the flows seen.
#[derive(Default)]
struct State {
    acc: Keyed<(IpAddr, IpAddr, &'static str), (u64, Seen)>,
}

impl Pass for State {
    fn observe(&mut self, _: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        let Some((host, dest, o, _, host_is_orig)) = ob else {
            return;
        };
        if !host_is_orig {
            return;
        }
        // By port, or by the protocol the client spoke (SSH on any port).
        let by_content = match f.app_proto {
            Some("ssh") => Some("ssh/sftp/scp"),
            _ => None,
        };
        if let Some(s) = by_content.or_else(|| service(f.resp.port)) {
            let e = self.acc.entry((host, dest, s));
            e.0 += o.bytes;
            e.1.add(f);
        }
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        self.acc
            .merge(super::super::downcast::<State>(other).acc, super::add_seen);
    }

    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((host, dest, svc), (bytes, seen)) in self.acc.into_sorted() {
            if bytes <= BYTES || inp.allowed(dest) {
                continue;
            }
            out.push(Finding {
                severity: Severity::Fire,
                protocol: svc.to_string(),
                bytes,
                text: format!(
                    "{host} sent {} over {svc} to {dest} in {} flow(s)",
                    mb(bytes),
                    seen.flows
                ),
                text_de: format!(
                    "{host} hat {} über {svc} an {dest} gesendet ({} Verbindung(en))",
                    mb(bytes),
                    seen.flows
                ),
                metrics: vec![Metric {
                    name: "bytes_out",
                    value: bytes as f64,
                    threshold: Some(BYTES as f64),
                }],
                ..Finding::for_pair(&AltProtocol, inp, host, dest, &seen)
            });
        }
        out
    }
}
