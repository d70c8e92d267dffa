//! D1 volume_anomaly: an hour in which a host uploaded far more than in the same
//! hour of the baseline (robust modified z-score).

use super::super::stats::median;
use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::{Keyed, Largest, Seen, mb, order_key};
use crate::attribution::netscope::Allowlist;
use crate::model::{Flow, NS_PER_SEC, Ts};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Iglewicz & Hoaglin: modified z above 3.5 is an outlier.
pub const Z: f64 = 3.5;
/// Hours below 10 MB are ignored (df00tech's lowest tier, 10 MB/h).
pub const FLOOR: u64 = 10_000_000;
const HOUR: i64 = 3600 * NS_PER_SEC;

/// Seasonal key of an hour: hour of the week when the baseline covers four weeks,
/// else hour of the day.
fn key(hour_index: i64, weekly: bool) -> i64 {
    if weekly {
        // 1970-01-01 00:00 was a Thursday; shift so 0 = Monday 00:00.
        (hour_index + 72).rem_euclid(168)
    } else {
        hour_index.rem_euclid(24)
    }
}

/// Outbound application bytes per host, hour index and destination (flows that
/// sent any); with `detail`, also per host and hour the destination of the
/// largest outbound flow and the frames of all of them.
#[derive(Default)]
pub(crate) struct Hourly {
    /// Per host and hour, to destinations the allow-list does not cover as far
    /// as their address decides ([`Allowlist::by_address`]).
    decided: Keyed<(IpAddr, i64), u64>,
    /// Per host, hour and destination whose names decide (the allow-list's
    /// domains match names known only at the end).
    bytes: Keyed<(IpAddr, i64, IpAddr), u64>,
    hours: Keyed<(IpAddr, i64), (Largest, Option<IpAddr>, Seen)>,
}

impl Hourly {
    pub(crate) fn add(&mut self, f: &Flow, ob: Option<Outbound>, allow: &Allowlist, detail: bool) {
        let Some((host, dest, o, _, _)) = ob else {
            return;
        };
        let hour = f.first_ts.div_euclid(HOUR);
        if o.bytes > 0 {
            match allow.by_address(dest) {
                Some(true) => {}
                Some(false) => *self.decided.entry((host, hour)) += o.bytes,
                None => *self.bytes.entry((host, hour, dest)) += o.bytes,
            }
        }
        if detail {
            let e = self.hours.entry((host, hour));
            if e.1.is_none() {
                e.0 = (0, (Ts::MIN, 0, 0));
            }
            let k = (o.bytes, order_key(f));
            if k >= e.0 {
                e.0 = k;
                e.1 = Some(dest);
            }
            e.2.add(f);
        }
    }

    pub(crate) fn merge(&mut self, o: Hourly) {
        self.bytes.merge(o.bytes, |a, b| *a += b);
        self.decided.merge(o.decided, |a, b| *a += b);
        self.hours.merge(o.hours, |a, b| {
            if b.0 > a.0 {
                a.0 = b.0;
                a.1 = b.1;
            }
            a.2.merge(&b.2);
        });
    }

    /// Bytes per (host, hour) to destinations not on the allow-list.
    fn sums(&self, inp: &DetectInput<'_>) -> BTreeMap<(IpAddr, i64), u64> {
        let mut m = BTreeMap::new();
        for &(k, b) in self.decided.iter() {
            *m.entry(k).or_insert(0) += b;
        }
        for &((host, hour, dest), b) in self.bytes.iter() {
            if !inp.allowed(dest) {
                *m.entry((host, hour)).or_insert(0) += b;
            }
        }
        m
    }
}

pub struct VolumeAnomaly;

impl Detector for VolumeAnomaly {
    fn code(&self) -> &'static str {
        "D1"
    }
    fn name(&self) -> &'static str {
        "volume_anomaly"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Needs a baseline (`--baseline START..END`, `--baseline-input`, or `[baseline]` in the case \
file). Sums each internal host's outbound application bytes to non-allowlisted destinations \
per hour (a flow counts in the hour it started) and compares every hour of the incident \
window with the same hour of the week in the baseline (hour of the day when the baseline is \
shorter than four weeks), hours without traffic counting as zero. Flags hours of at least \
10 MB whose modified z-score 0.6745·(x − median)/MAD exceeds 3.5; when the MAD is zero the \
mean-absolute-deviation variant (x − median)/(1.253314·MeanAD) is used, and when that is zero \
too any hour above the floor is flagged. It fires when the host also has a new destination (D4) \
or an exfiltration-service upload (D5) in the window.\n\n\
## Why it matters\n\
Exfiltration moves more data than a host normally sends; comparing a host with its own history \
catches transfers that a fixed threshold misses or over-reports.\n\n\
## Defaults and sources\n\
Modified z > 3.5: Iglewicz & Hoaglin (1993), as cited in methodology §3.2. 10 MB floor: the \
lowest tier of df00tech's cloud-upload rule. MeanAD variant: IBM, cited in methodology §3.4. \
Four weeks for hour-of-week: methodology §3.4.\n\n\
## Known false positives\n\
Backups, patch days and month-end jobs that the baseline did not contain; a baseline that \
already contains the attacker's activity hides it (contaminated baseline)."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

#[derive(Default)]
struct State {
    window: Hourly,
}

impl Pass for State {
    fn observe(&mut self, cx: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        self.window.add(f, ob, cx.allow, true);
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        self.window
            .merge(super::super::downcast::<State>(other).window);
    }

    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        let Some(base) = inp.baseline else {
            return Vec::new();
        };
        let Some((b0, b1)) = base.span else {
            return Vec::new();
        };
        let weekly = b1 - b0 >= 28 * 24 * HOUR;
        let base_h = base.hourly.sums(inp);
        let win_h = self.window.sums(inp);
        let (h0, h1) = (b0.div_euclid(HOUR), b1.div_euclid(HOUR));
        let mut out = Vec::new();
        for (&(host, hour), &x) in &win_h {
            if x < FLOOR {
                continue;
            }
            // The host's baseline hours with the same key, zeros included.
            let k = key(hour, weekly);
            let mut vals: Vec<f64> = (h0..=h1)
                .filter(|h| key(*h, weekly) == k)
                .map(|h| base_h.get(&(host, h)).copied().unwrap_or(0) as f64)
                .collect();
            if vals.is_empty() {
                continue;
            }
            let med = median(&mut vals.clone());
            let mut dev: Vec<f64> = vals.iter().map(|v| (v - med).abs()).collect();
            let mad = median(&mut dev);
            let mean_ad = vals.iter().map(|v| (v - med).abs()).sum::<f64>() / vals.len() as f64;
            let xf = x as f64;
            let z = if mad > 0.0 {
                0.6745 * (xf - med) / mad
            } else if mean_ad > 0.0 {
                (xf - med) / (1.253314 * mean_ad)
            } else if xf > med {
                f64::INFINITY
            } else {
                0.0
            };
            if z <= Z {
                continue;
            }
            vals.clear();
            let top = self.window.hours.get(&(host, hour));
            let dest = top.and_then(|t| t.1);
            out.push(Finding {
                code: VolumeAnomaly.code(),
                name: VolumeAnomaly.name(),
                severity: Severity::Flag,
                host,
                destination: dest,
                destination_names: dest.map(|d| inp.names_of(d)).unwrap_or_default(),
                protocol: "any".into(),
                bytes: x,
                first_ts: hour * HOUR,
                last_ts: (hour + 1) * HOUR,
                text: format!(
                    "{host} uploaded {} in the hour starting {}, against a baseline median of {} for that hour (modified z {})",
                    mb(x),
                    crate::model::fmt_rfc3339(hour * HOUR),
                    mb(med as u64),
                    if z.is_finite() { format!("{z:.1}") } else { "unbounded".into() }
                ),
                text_de: format!(
                    "{host} hat in der Stunde ab {} {} hochgeladen, gegenüber einem Median von {} in dieser Stunde der Vergleichszeit",
                    crate::model::fmt_rfc3339(hour * HOUR),
                    mb(x),
                    mb(med as u64)
                ),
                metrics: vec![
                    Metric { name: "bytes_out_hour", value: xf, threshold: Some(FLOOR as f64) },
                    Metric { name: "modified_z", value: if z.is_finite() { z } else { f64::MAX }, threshold: Some(Z) },
                    Metric { name: "baseline_median", value: med, threshold: None },
                ],
                references: top
                    .and_then(|t| Some(t.2.spans(host, t.1?, 4)))
                    .unwrap_or_default(),
            });
        }
        out
    }
}
