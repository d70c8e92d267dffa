//! The pipeline, written as straight-line code: open inputs, fan out over files
//! with rayon (each file gets its own flow table), merge, attribute, assess,
//! build the report, write. The only module that wires stages together.

use crate::attribution::{self, netscope::AddrClass};
use crate::config::{AnalyzeConfig, InputConfig, MAX_GAP_NS};
use crate::decode;
use crate::detect::{self, DetectInput};
use crate::diag::{Weirds, sanitize};
use crate::evidence::{self, Verdict, VerdictInputs};
use crate::flow::dedup::{Filter, Plan, Planner};
use crate::flow::features::DnsAgg;
use crate::flow::{FlowOutput, FlowTable};
use crate::input::{self, InputPath, InputSummary, PacketSink, RawPacket};
use crate::model::{Flow, NameObservation, Ts, flow_uid, proto_name};
use crate::progress::Progress;
use crate::report::{self, CaseEcho, FlowRow, Report, ToolInfo, Totals, flows_out};
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Exit codes (documented in docs/exit-codes.md).
pub mod exit {
    pub const SUPPORTED: u8 = 0;
    pub const CONTRADICTED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INCONCLUSIVE: u8 = 3;
    pub const RUNTIME: u8 = 4;
    pub const INPUT_ERRORS: u8 = 5;
}

/// `flows` hands the flows made from export records on as they are made (so
/// they are never all held); `analyze` keeps them.
type StreamFn<'a> = &'a mut (dyn FnMut(&mut Vec<Flow>) + Send);

/// Record flows gathered before they are handed on.
const STREAM_BATCH: usize = 4096;

/// Makes, for one thread reading pieces of a text export, what turns a
/// record into its flow (with the table's maker) and writes the flow's row.
type RowsFactory =
    std::sync::Arc<dyn Fn(crate::flow::RecordMaker) -> input::RecordOutput + Send + Sync>;

/// Rows made where the records of a text export are read (its parallel
/// pieces, each on a pool thread): what makes a thread's row writer, and
/// where the pieces' rows go, in file order.
struct PieceRows<'s> {
    make: RowsFactory,
    out: &'s mut (dyn FnMut(&mut Vec<u8>) + Send),
}

struct Sink<'a> {
    table: FlowTable,
    /// Packets inside the baseline window go here instead.
    baseline: Option<(FlowTable, (Ts, Ts))>,
    weirds: Weirds,
    window: Option<(Ts, Ts)>,
    outside: u64,
    stream: Option<StreamFn<'a>>,
    /// Takes the flows made from export records of the baseline window as
    /// they are made (else the baseline table keeps them to the input's end).
    base_stream: Option<StreamFn<'a>>,
    /// Rows made in the pieces of a text export read in parallel, and what
    /// makes them there (no window: every record is the main table's).
    rows: Option<PieceRows<'a>>,
    piece_out: Option<input::PieceOutput>,
}

impl Sink<'_> {
    #[inline]
    fn hand_on(&mut self, at_least: usize) {
        if let Some(f) = self.stream.as_mut()
            && self.table.record_flows_len() >= at_least
        {
            f(self.table.record_flows_mut());
        }
    }

    fn hand_on_base(&mut self, at_least: usize) {
        if let (Some(f), Some((table, _))) = (self.base_stream.as_mut(), self.baseline.as_mut())
            && table.record_flows_len() >= at_least
        {
            f(table.record_flows_mut());
        }
    }
}

impl PacketSink for Sink<'_> {
    fn export(&mut self, payload: &[u8], origin: crate::model::Origin) {
        for r in self.table.export_message(payload, origin) {
            self.record(r);
        }
        self.hand_on(STREAM_BATCH);
    }

    fn piece_output(&self) -> Option<input::PieceOutput> {
        self.piece_out.clone()
    }

    fn piece_done(&mut self, out: &mut Vec<u8>, tally: &crate::model::RecordTally) {
        self.table.add_records(tally);
        if let Some(r) = self.rows.as_mut() {
            (r.out)(out);
        }
    }

    fn record(&mut self, r: crate::model::FlowRecord) {
        if let Some((table, (s, e))) = self.baseline.as_mut()
            && r.start >= *s
            && r.start <= *e
        {
            table.record(r);
            self.hand_on_base(STREAM_BATCH);
            return;
        }
        if let Some((s, e)) = self.window
            && (r.end < s || r.start > e)
        {
            self.outside += 1;
            return;
        }
        self.table.record(r);
        self.hand_on(STREAM_BATCH);
    }

    #[inline]
    fn packet(&mut self, p: &RawPacket<'_>) {
        if let Some((table, (s, e))) = self.baseline.as_mut()
            && p.ts >= *s
            && p.ts <= *e
        {
            if let Some(d) = decode::decode(p.linktype, p.data, p.origlen, &mut self.weirds) {
                table.packet(&d, p.ts, p.frame);
            }
            return;
        }
        if let Some((s, e)) = self.window
            && (p.ts < s || p.ts > e)
        {
            self.outside += 1;
            return;
        }
        if let Some(d) = decode::decode(p.linktype, p.data, p.origlen, &mut self.weirds) {
            self.table.packet(&d, p.ts, p.frame);
        }
        self.hand_on(STREAM_BATCH);
    }
}

type Parsed = (InputSummary, FlowOutput, Option<FlowOutput>);

fn parse_all(
    cfg: &InputConfig,
    window: Option<(Ts, Ts)>,
    baseline: Option<(Ts, Ts)>,
    inc: &(dyn Fn(u64) + Sync),
) -> Vec<Parsed> {
    cfg.inputs
        .par_iter()
        .enumerate()
        .map(|(i, path)| parse_one(i, path, cfg, window, baseline, inc, None, None, None))
        .collect()
}

/// Reads one input into its own flow table. With `stream`, flows made from
/// export records are handed to it as they are made (the rest at the end).
/// With `rows` (and no window), a text export read in parallel pieces has
/// its records' rows made in the pieces instead, handed to `rows.out`.
#[allow(clippy::too_many_arguments)]
fn parse_one<'s>(
    i: usize,
    path: &InputPath,
    cfg: &InputConfig,
    window: Option<(Ts, Ts)>,
    baseline: Option<(Ts, Ts)>,
    inc: &(dyn Fn(u64) + Sync),
    stream: Option<StreamFn<'s>>,
    base_stream: Option<StreamFn<'s>>,
    rows: Option<PieceRows<'s>>,
) -> Parsed {
    let table = || {
        let mut t = FlowTable::new(i);
        t.set_export_options(&cfg.export_ports, cfg.sampling);
        t
    };
    let main = table();
    let piece_out = rows
        .as_ref()
        .filter(|_| window.is_none() && baseline.is_none())
        .map(|r| {
            let make = r.make.clone();
            let maker = main.record_maker();
            std::sync::Arc::new(move || make(maker)) as input::PieceOutput
        });
    let mut sink = Sink {
        table: main,
        baseline: baseline.map(|w| (table(), w)),
        weirds: Weirds::default(),
        window,
        outside: 0,
        stream,
        base_stream,
        rows,
        piece_out,
    };
    // Archive files whose name or header shows they lie wholly outside
    // the window are not read, and listed as skipped.
    if let Some((s, e)) = window
        && let Some(((fs, fe), source)) = input::timehint::span(path)
        && (fe < s || fs > e)
    {
        if let InputPath::File(p) = path {
            inc(std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
        }
        let summary = InputSummary {
            path: path.display(),
            format: "skipped".into(),
            skipped: Some(format!(
                "outside the window by its {source}: data from {} to {}",
                crate::model::fmt_rfc3339(fs),
                if fe == Ts::MAX {
                    "open end".to_string()
                } else {
                    crate::model::fmt_rfc3339(fe)
                }
            )),
            ..Default::default()
        };
        return (summary, sink.table.finish(), None);
    }
    let mut summary = input::read_input_with(path, &cfg.read, &mut sink, inc);
    sink.hand_on(1);
    sink.hand_on_base(1);
    let out = sink.table.finish();
    let base = sink.baseline.map(|(t, _)| t.finish());
    summary.flow_records = summary.flow_records.max(out.records);
    summary.records_first_ts = out.records_span.map(|x| x.0);
    summary.records_last_ts = out.records_span.map(|x| x.1);
    summary.export_missing = out.export_missing;
    summary.undecodable_records = out.undecodable_records;
    summary.sampling_interval = out.sampling.max(1);
    summary.deterministic_sampling = out.deterministic_sampling;
    summary.export_errors = out.export_errors;
    if let Some((origin, message)) = &out.export_first_error
        && summary.error.is_none()
    {
        summary.error = Some(export_error(*origin, message));
    }
    summary.weirds.merge(&sink.weirds);
    summary.weirds.merge(&out.weirds);
    summary.weirds.add_n("outside_window", sink.outside);
    (summary, out, base)
}

/// A NetFlow/IPFIX decoding error as the input's error: the message number and
/// byte offset in an export file, the frame in a capture (offset unknown, 0).
fn export_error(origin: crate::model::Origin, message: &str) -> input::InputError {
    input::InputError {
        offset: origin.offset.unwrap_or(0),
        decompressed: false,
        message: match origin.offset {
            Some(_) => format!("message {}: {message}", origin.record),
            None => format!("export datagram in frame {}: {message}", origin.record),
        },
        record: Some(origin.record),
    }
}

/// Export data that waited for a template decoded with the templates of other
/// inputs (templates and data often sit in different files); what is still
/// undecodable is counted on its input.
fn resolve_exports(results: &mut [Parsed], cfg: &InputConfig, window: Option<(Ts, Ts)>) {
    let mut states: Vec<decode::netflow::ExportState> = results
        .iter_mut()
        .map(|r| std::mem::take(&mut r.1.export))
        .collect();
    for i in 0..results.len() {
        if states[i].held_sets() == 0 {
            continue;
        }
        let mut own = std::mem::take(&mut states[i]);
        let others: Vec<&decode::netflow::ExportState> = states.iter().collect();
        let resolved = own.resolve(&others);
        let mut recs = resolved.records;
        states[i] = own;
        let (summary, out, _) = &mut results[i];
        summary.undecodable_records += resolved.undecodable;
        summary.export_errors += resolved.errors;
        if let Some((origin, message)) = resolved.first_error
            && summary.error.is_none()
        {
            summary.error = Some(export_error(origin, &message));
        }
        let before = recs.len() as u64;
        recs.retain(|r| window.is_none_or(|(s, e)| r.end >= s && r.start <= e));
        summary
            .weirds
            .add_n("outside_window", before - recs.len() as u64);
        for r in recs.iter_mut().filter(|r| r.sampling <= 1) {
            r.sampling = cfg.sampling.max(1);
        }
        summary.flow_records += recs.len() as u64;
        if let Some(m) = recs.iter().map(|r| r.sampling).max() {
            summary.sampling_interval = summary.sampling_interval.max(m);
        }
        out.flows.extend(crate::flow::records_to_flows(recs, i));
    }
}

/// One line on stderr per input that failed (the report lists them too).
fn warn_failures(inputs: &[InputSummary]) {
    for s in inputs {
        if let Some(e) = &s.error {
            if e.record.is_some() && e.offset == 0 {
                // An export datagram inside a capture: the message names the frame.
                crate::warn_line!(
                    "exfilcheck: {}: {}",
                    sanitize(&s.path),
                    sanitize(&e.message)
                );
            } else {
                crate::warn_line!(
                    "exfilcheck: {}: {} (at {}byte offset {})",
                    sanitize(&s.path),
                    sanitize(&e.message),
                    if e.decompressed { "decompressed " } else { "" },
                    e.offset
                );
            }
        }
    }
}

pub struct Analysed {
    pub inputs: Vec<InputSummary>,
    /// Per-exporter record and byte totals, with what de-duplication removed.
    pub exporters: Vec<crate::model::ExporterTotals>,
    pub flows: Vec<Flow>,
    pub names: Vec<NameObservation>,
    /// DNS query statistics per (client, registered domain), merged over inputs.
    pub dns: Vec<((std::net::IpAddr, String), DnsAgg)>,
    /// Flows of the baseline window (packets before the incident), if one was given.
    pub baseline_flows: Vec<Flow>,
}

/// Bytes of all input files (for the progress bar).
fn input_bytes(cfg: &InputConfig) -> u64 {
    cfg.inputs
        .iter()
        .map(|p| match p {
            InputPath::File(f) => std::fs::metadata(f).map(|m| m.len()).unwrap_or(0),
            InputPath::Stdin => 0,
        })
        .sum()
}

fn thread_pool(cfg: &InputConfig) -> io::Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = cfg.threads {
        builder = builder.num_threads(n);
    }
    builder.build().map_err(io::Error::other)
}

/// Reads and decodes every input in parallel; results are in input order and
/// independent of the thread count.
/// `hash`: compute the SHA-256 of every file (the report needs it; `flows` does not).
pub fn analyse_inputs(
    cfg: &InputConfig,
    window: Option<(Ts, Ts)>,
    baseline: Option<(Ts, Ts)>,
    hash: bool,
) -> io::Result<Analysed> {
    let progress = Progress::new(input_bytes(cfg), cfg.quiet);
    let inc = |n: u64| progress.inc(n);
    let pool = thread_pool(cfg)?;
    let (hashes, results): (Vec<Option<String>>, Vec<Parsed>) = pool.install(|| {
        rayon::join(
            || {
                if hash {
                    cfg.inputs.par_iter().map(input::hash_file).collect()
                } else {
                    vec![None; cfg.inputs.len()]
                }
            },
            || parse_all(cfg, window, baseline, &inc),
        )
    });
    progress.finish();
    let mut results = results;
    resolve_exports(&mut results, cfg, window);
    let mut a = join_parsed(results, hashes);
    a.flows.sort_unstable_by_key(Flow::order_key);
    a.exporters = crate::flow::dedup::dedup_exporters(&mut a.flows, &cfg.exporter_priority);
    // The baseline's own duplicates (its records count on no exporter's totals).
    crate::flow::dedup::dedup_exporters(&mut a.baseline_flows, &cfg.exporter_priority);
    Ok(a)
}

/// The inputs' results joined in input order: summaries (with their SHA-256),
/// flows, names, DNS aggregates merged, baseline flows sorted; failed inputs
/// warned about. Exporter totals are left to the caller.
fn join_parsed(results: Vec<Parsed>, hashes: Vec<Option<String>>) -> Analysed {
    let mut inputs = Vec::with_capacity(results.len());
    let mut flows = Vec::new();
    let mut names = Vec::new();
    let mut dns: std::collections::BTreeMap<(std::net::IpAddr, String), DnsAgg> =
        std::collections::BTreeMap::new();
    let mut baseline_flows = Vec::new();
    // One vector of the exact size (10 M record flows are gigabytes).
    let total_flows: usize = results.iter().map(|r| r.1.flows.len()).sum();
    for ((mut s, o, b), h) in results.into_iter().zip(hashes) {
        if let Some(h) = h {
            s.sha256 = h;
        }
        if let Some(b) = b {
            baseline_flows.extend(b.flows);
        }
        inputs.push(s);
        if flows.is_empty() && total_flows == o.flows.len() {
            flows = o.flows;
        } else {
            flows.reserve_exact(total_flows - flows.len());
            flows.extend(o.flows);
        }
        names.extend(o.names);
        for (k, agg) in o.dns {
            let regdom = k.1.clone();
            dns.entry(k).or_default().merge(agg, &regdom);
        }
    }
    warn_failures(&inputs);
    baseline_flows.sort_unstable_by_key(Flow::order_key);
    Analysed {
        inputs,
        exporters: Vec::new(),
        flows,
        names,
        dns: dns.into_iter().collect(),
        baseline_flows,
    }
}

fn input_path<'a>(inputs: &'a [InputSummary], f: &Flow) -> &'a str {
    inputs.get(f.span.input).map_or("", |s| s.path.as_str())
}

/// The output row of one flow.
fn flow_row<'a>(
    f: &'a Flow,
    file: &'a str,
    netscope: &attribution::netscope::Netscope,
) -> FlowRow<'a> {
    FlowRow {
        uid: f.uid(),
        ts: f.first_ts,
        ts_ns: f.first_ts,
        duration_ns: f.last_ts - f.first_ts,
        proto: proto_name(f.key.proto),
        ip_proto: f.key.proto,
        orig: f.orig,
        resp: f.resp,
        orig_stats: f.orig_stats,
        resp_stats: f.resp_stats,
        local_orig: netscope.class(f.orig.ip) == AddrClass::Internal,
        local_resp: netscope.class(f.resp.ip) == AddrClass::Internal,
        direction: f.direction,
        tunnel_parent: f.tunnel_parent().map(|(k, t)| flow_uid(&k, t)),
        file,
        first_frame: f.span.first_frame,
        last_frame: f.span.last_frame,
        server_name: f.sni().or(f.http_host()),
        exporter: f.export.and_then(|x| x.exporter),
        sampling: f.export.map_or(1, |x| x.sampling),
    }
}

fn open_out(path: &std::path::Path) -> io::Result<Box<dyn Write + Send>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(BufWriter::new(io::stdout())))
    } else {
        Ok(Box::new(BufWriter::new(File::create(path).map_err(
            |e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())),
        )?)))
    }
}

/// Output written in input order by workers that finish out of order: the
/// worker of the input whose turn it is writes as it goes, the others buffer
/// (up to `BUFFER_CAP`, then wait for their turn).
struct Ordered {
    turn: AtomicUsize,
    out: Mutex<(Box<dyn Write + Send>, Option<io::Error>)>,
    cv: Condvar,
}

/// Bytes of formatted rows a worker holds before it waits for its turn.
const BUFFER_CAP: usize = 256 << 20;

impl Ordered {
    fn lock(&self) -> MutexGuard<'_, (Box<dyn Write + Send>, Option<io::Error>)> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(g: &mut (Box<dyn Write + Send>, Option<io::Error>), buf: &mut Vec<u8>) {
        if g.1.is_none()
            && let Err(e) = g.0.write_all(buf)
        {
            g.1 = Some(e);
        }
        buf.clear();
    }

    fn wait_turn(&self, i: usize) -> MutexGuard<'_, (Box<dyn Write + Send>, Option<io::Error>)> {
        let mut g = self.lock();
        while self.turn.load(Ordering::Acquire) != i {
            g = self.cv.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
        g
    }

    /// Writes `buf` if it is input `i`'s turn, or when the buffer is full
    /// (after waiting for the turn); otherwise keeps it.
    fn offer(&self, i: usize, buf: &mut Vec<u8>) {
        if self.turn.load(Ordering::Acquire) == i || buf.len() >= BUFFER_CAP {
            let mut g = self.wait_turn(i);
            Self::put(&mut g, buf);
        }
    }

    /// Input `i` is done: its rest is written and the next input's turn begins.
    fn finish(&self, i: usize, buf: &mut Vec<u8>) {
        let mut g = self.wait_turn(i);
        Self::put(&mut g, buf);
        self.turn.store(i + 1, Ordering::Release);
        drop(g);
        self.cv.notify_all();
    }
}

/// What a thread of [`stream_input`] does with each flow: write its row to the
/// buffer, fold it, or both.
trait Consume: Send {
    fn take(&mut self, f: &Flow, buf: &mut Vec<u8>);
}

impl<F: FnMut(&Flow, &mut Vec<u8>) + Send> Consume for F {
    fn take(&mut self, f: &Flow, buf: &mut Vec<u8>) {
        self(f, buf)
    }
}

/// One input read by this thread while other threads consume its flows, one
/// per consumer (each gets whole batches of flows and the output buffer;
/// batches go over a channel and come back empty to be refilled). With
/// `ordered` (then give one consumer: rows keep their order), what the
/// consumer wrote is written when it is this input's turn. Returns what was
/// parsed and the consumers (with what they gathered).
///
/// With `rows` (`flows`: one `ordered` consumer writing rows, the same rows
/// made by what `rows` makes), a text export read in parallel pieces has its
/// rows made in the pieces, by the threads that read them (see
/// `input::parallel_lines`): no thread then makes every flow and row in
/// turn. Batches sent before over the channel are consumed first, so rows
/// keep their order.
#[allow(clippy::too_many_arguments)]
fn stream_input<C: Consume>(
    i: usize,
    cfg: &InputConfig,
    window: Option<(Ts, Ts)>,
    baseline: Option<(Ts, Ts)>,
    ordered: Option<&Ordered>,
    inc: &(dyn Fn(u64) + Sync),
    consumers: Vec<C>,
    mut skip: Option<&mut (dyn FnMut(&Flow) -> bool + Send)>,
    base: Option<&mut (dyn FnMut(&Flow) + Send)>,
    rows: Option<RowsFactory>,
) -> (Parsed, Vec<C>) {
    let path = &cfg.inputs[i];
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Flow>>(8);
    let rx = Mutex::new(rx);
    let one_ordered = ordered.is_some() && consumers.len() == 1;
    // Each consumer with its output buffer; batches it has taken.
    let slots: Vec<Mutex<(C, Vec<u8>)>> = consumers
        .into_iter()
        .map(|c| {
            let cap = if ordered.is_some() { 2 << 20 } else { 0 };
            Mutex::new((c, Vec::with_capacity(cap)))
        })
        .collect();
    let taken = AtomicUsize::new(0);
    let consume = |slot: &Mutex<(C, Vec<u8>)>, batch: &mut Vec<Flow>| {
        let mut g = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let (consume, buf) = &mut *g;
        for f in batch.iter() {
            consume.take(f, buf);
        }
        batch.clear();
        if let Some(o) = ordered
            && buf.len() >= 1 << 20
        {
            o.offer(i, buf);
        }
    };
    let parsed = std::thread::scope(|ts| {
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<Flow>>();
        let rx = &rx;
        let (consume, taken) = (&consume, &taken);
        let handles: Vec<_> = slots
            .iter()
            .map(|slot| {
                let back_tx = back_tx.clone();
                ts.spawn(move || {
                    loop {
                        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(mut batch) = next else { break };
                        consume(slot, &mut batch);
                        taken.fetch_add(1, Ordering::Release);
                        let _ = back_tx.send(batch);
                    }
                })
            })
            .collect();
        drop(back_tx);
        let batch_tx = tx.clone();
        // Rows made in the pieces of a text export (the consumer's rows,
        // made by the reading threads) go to its buffer in file order.
        let piece_rows = rows.is_some() && one_ordered && skip.is_none();
        let skip_ref = &mut skip;
        let sent = &AtomicUsize::new(0);
        let slots = &slots;
        // Batches sent before over the channel are consumed first. (Rare: a
        // reader that streamed flows itself before its pieces began. The
        // consumer may wait for the input's turn, so this waits without
        // spinning.)
        let wait_sent = move || {
            while taken.load(Ordering::Acquire) < sent.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        };
        // A piece's rows are written as they are when it is the input's
        // turn and nothing waits before them (no copy), else kept.
        let mut rows_out = move |bytes: &mut Vec<u8>| {
            wait_sent();
            let mut g = slots[0].lock().unwrap_or_else(PoisonError::into_inner);
            let buf = &mut g.1;
            if let Some(o) = ordered {
                if buf.is_empty() {
                    o.offer(i, bytes);
                    if !bytes.is_empty() {
                        std::mem::swap(buf, bytes);
                    }
                } else {
                    buf.extend_from_slice(bytes);
                    bytes.clear();
                    if buf.len() >= 1 << 20 {
                        o.offer(i, buf);
                    }
                }
            }
        };
        let rows = rows.filter(|_| piece_rows).map(|make| PieceRows {
            make,
            out: &mut rows_out,
        });
        let mut stream = move |flows: &mut Vec<Flow>| {
            if let Some(skip) = skip_ref.as_mut() {
                flows.retain(|f| !skip(f));
            }
            let empty = back_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(STREAM_BATCH));
            if batch_tx.send(std::mem::replace(flows, empty)).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        };
        // Flows of the baseline window go to `base` on this thread.
        let mut base_stream = base.map(|b| {
            move |flows: &mut Vec<Flow>| {
                flows.iter().for_each(&mut *b);
                flows.clear();
            }
        });
        let mut parsed = parse_one(
            i,
            path,
            cfg,
            window,
            baseline,
            inc,
            Some(&mut stream),
            base_stream
                .as_mut()
                .map(|b| b as &mut (dyn FnMut(&mut Vec<Flow>) + Send)),
            rows,
        );
        drop(stream);
        // What is left: the flows of a capture (sorted by start).
        let mut rest = std::mem::take(&mut parsed.1.flows);
        if let Some(skip) = skip.as_mut() {
            rest.retain(|f| !skip(f));
        }
        let _ = tx.send(rest);
        drop(tx);
        for h in handles {
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
        }
        parsed
    });
    let mut out = Vec::new();
    let mut consumers = Vec::new();
    for slot in slots {
        let (consume, buf) = slot.into_inner().unwrap_or_else(PoisonError::into_inner);
        out.extend_from_slice(&buf);
        consumers.push(consume);
    }
    if let Some(o) = ordered {
        o.finish(i, &mut out);
    }
    (parsed, consumers)
}

/// `exfilcheck flows`. Rows are written input by input, in the order the inputs
/// were given: a flow export's records as they are read (never all held), then
/// the flows of a capture by start time. Inputs are read in parallel.
pub fn run_flows(
    cfg: &InputConfig,
    format: flows_out::FlowFormat,
    output: Option<&std::path::Path>,
) -> io::Result<u8> {
    // Open the output first so a bad path fails before the work.
    let out: Box<dyn Write + Send> = match output {
        Some(p) => open_out(p)?,
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
    };
    let mut head = Vec::new();
    flows_out::header(format, &mut head);
    let ordered = Ordered {
        turn: AtomicUsize::new(0),
        out: Mutex::new((out, None)),
        cv: Condvar::new(),
    };
    Ordered::put(&mut ordered.lock(), &mut head);
    let total = input_bytes(cfg);
    let progress = Progress::new(total, cfg.quiet);
    let inc = |n: u64| progress.inc(n);
    let pool = thread_pool(cfg)?;
    let n = cfg.inputs.len();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Parsed>>> = Mutex::new((0..n).map(|_| None).collect());
    let netscope = &cfg.netscope;
    pool.scope(|sc| {
        for _ in 0..pool.current_num_threads().min(n) {
            sc.spawn(|_| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    // The output is gone (a reader that stopped early, `| head`):
                    // later inputs are not read (their turn still passes in order).
                    if ordered.lock().1.is_some() {
                        ordered.finish(i, &mut Vec::new());
                        continue;
                    }
                    // A writer of rows: the consumer's, and one for each
                    // thread reading pieces of a text export, which makes
                    // the records' flows there too.
                    let writer = {
                        let file = std::sync::Arc::new(cfg.inputs[i].display());
                        let netscope = std::sync::Arc::new(netscope.clone());
                        move || {
                            let mut w = flows_out::RowWriter::new(format);
                            let (file, netscope) = (file.clone(), netscope.clone());
                            move |f: &Flow, buf: &mut Vec<u8>| {
                                w.row(&flow_row(f, &file, &netscope), buf);
                            }
                        }
                    };
                    let row = writer();
                    let make: RowsFactory =
                        std::sync::Arc::new(move |maker: crate::flow::RecordMaker| {
                            let mut row = writer();
                            Box::new(move |rec, buf: &mut Vec<u8>, tally: &mut _| {
                                let f = maker.flow(rec);
                                tally.add(&f);
                                row(&f, buf);
                            })
                        });
                    let (parsed, _) = stream_input(
                        i,
                        cfg,
                        None,
                        None,
                        Some(&ordered),
                        &inc,
                        vec![row],
                        None,
                        None,
                        Some(make),
                    );
                    results.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(parsed);
                }
            });
        }
    });
    progress.finish();
    let mut results: Vec<Parsed> = results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect();
    // Records that waited for another input's templates follow at the end.
    resolve_exports(&mut results, cfg, None);
    let mut buf = Vec::new();
    let mut g = ordered.lock();
    let mut w = flows_out::RowWriter::new(format);
    for (s, o, _) in &results {
        for f in &o.flows {
            w.row(&flow_row(f, &s.path, netscope), &mut buf);
        }
        Ordered::put(&mut g, &mut buf);
    }
    if g.1.is_none()
        && let Err(e) = g.0.flush()
    {
        g.1 = Some(e);
    }
    let err = g.1.take();
    drop(g);
    let inputs: Vec<InputSummary> = results.into_iter().map(|r| r.0).collect();
    warn_failures(&inputs);
    match err {
        // A reader that stops early (`| head`) does not hide failed inputs.
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Some(e) => return Err(e),
        None => {}
    }
    Ok(if inputs.iter().any(|s| s.error.is_some()) {
        exit::INPUT_ERRORS
    } else {
        0
    })
}

/// Everything `analyze` keeps of the flows: the folds of the stages that
/// look at them (detectors, ledger, evidence, server names) and per-exporter
/// totals. Flows are observed one at a time and not held; folds of different
/// inputs merge, and the result does not depend on the order of merging.
struct Folds<'a> {
    cx: detect::Scope<'a>,
    scope: &'a [ipnet::IpNet],
    passes: Vec<Box<dyn detect::Pass>>,
    icmp: detect::IcmpChannels,
    transfers: detect::rules::staging::InternalTransfers,
    ledger: attribution::LedgerFold,
    names: attribution::ServerNames,
    facts: evidence::FlowFacts,
    /// Per exporter: records and IP bytes.
    exporters: std::collections::BTreeMap<std::net::IpAddr, crate::model::ExporterTotals>,
    /// Flows observed (here and in the folds merged in).
    flows: u64,
}

impl<'a> Folds<'a> {
    fn new(cfg: &'a AnalyzeConfig) -> Self {
        Folds::empty(case_scope(cfg), &cfg.scope)
    }

    /// Empty folds for the case `cx` and `scope` describe.
    fn empty(cx: detect::Scope<'a>, scope: &'a [ipnet::IpNet]) -> Self {
        Folds {
            cx,
            scope,
            passes: detect::start_all(),
            icmp: Default::default(),
            transfers: Default::default(),
            ledger: Default::default(),
            names: Default::default(),
            facts: evidence::FlowFacts::new(scope),
            exporters: Default::default(),
            flows: 0,
        }
    }

    fn observe(&mut self, f: &Flow) {
        self.flows += 1;
        let ob = self.cx.outbound(f);
        for p in &mut self.passes {
            p.observe(&self.cx, f, ob);
        }
        self.icmp.observe(f, ob);
        self.transfers.observe(&self.cx, f, ob);
        self.ledger.observe(self.cx.netscope, f);
        self.names.observe(f);
        self.facts.observe(self.scope, f);
        crate::flow::dedup::count_exporter(&mut self.exporters, f);
    }

    fn merge(&mut self, o: Folds<'a>) {
        if self.flows == 0 {
            // Nothing here yet: take the other's state instead of copying it
            // entry by entry (which would need both at once).
            *self = o;
            return;
        }
        self.flows += o.flows;
        detect::merge_all(&mut self.passes, o.passes);
        self.icmp.merge(o.icmp);
        self.transfers.merge(o.transfers);
        self.ledger.merge(o.ledger);
        self.names.merge(o.names);
        self.facts.merge(o.facts);
        crate::flow::dedup::add_totals(&mut self.exporters, o.exporters.into_values());
    }

    fn exporter_totals(&self) -> Vec<crate::model::ExporterTotals> {
        self.exporters.values().cloned().collect()
    }
}

/// What the rules need of the case to look at a flow.
fn case_scope(cfg: &AnalyzeConfig) -> detect::Scope<'_> {
    detect::Scope {
        netscope: &cfg.input.netscope,
        iocs: &cfg.iocs,
        allow: &cfg.allow,
        business_hours: cfg.business_hours.as_ref(),
    }
}

/// Folds baseline flows into what the baseline rules keep of them.
fn fold_baseline(cfg: &AnalyzeConfig, into: &mut detect::Baseline, flows: &[Flow]) {
    let cx = case_scope(cfg);
    for f in flows {
        into.observe(&cx, f);
    }
}

/// Reads the `--baseline-input` files (in parallel) and folds their flows into
/// `into` as they are made; returns the files' summaries. Flows of several
/// exporters are de-duplicated like the inputs' (then they are held:
/// [`analyse_inputs`]); standard input is held as well.
fn fold_baseline_inputs(
    cfg: &AnalyzeConfig,
    into: &mut detect::Baseline,
) -> io::Result<Vec<InputSummary>> {
    let bcfg = &cfg.baseline_inputs;
    let held = |into: &mut detect::Baseline| -> io::Result<Vec<InputSummary>> {
        let b = analyse_inputs(bcfg, None, None, true)?;
        fold_baseline(cfg, into, &b.flows);
        Ok(b.inputs)
    };
    if bcfg.inputs.iter().any(|p| matches!(p, InputPath::Stdin)) {
        return held(into);
    }
    let progress = Progress::new(input_bytes(bcfg), bcfg.quiet);
    let inc = |n: u64| progress.inc(n);
    let pool = thread_pool(bcfg)?;
    let cx = case_scope(cfg);
    type Seen = (
        detect::Baseline,
        std::collections::BTreeSet<std::net::IpAddr>,
    );
    let take = |s: &mut Seen, flows: &[Flow], _baseline: bool| {
        for f in flows {
            if let Some(e) = f.export.and_then(|x| x.exporter) {
                s.1.insert(e);
            }
            s.0.observe(&cx, f);
        }
    };
    let (hashes, (results, parts)) = pool.install(|| {
        rayon::join(
            || {
                bcfg.inputs
                    .par_iter()
                    .map(input::hash_file)
                    .collect::<Vec<_>>()
            },
            || read_each(bcfg, None, None, &inc, &|_| Seen::default(), &take),
        )
    });
    progress.finish();
    let mut fold = detect::Baseline::default();
    let mut exporters = std::collections::BTreeSet::new();
    for (b, e) in parts {
        fold.merge(b);
        exporters.extend(e);
    }
    if exporters.len() >= 2 {
        // Duplicates are found by comparing the records.
        drop((fold, results));
        return held(into);
    }
    into.merge(fold);
    Ok(join_parsed(results, hashes).inputs)
}

/// Reads the inputs of `icfg` in parallel (in the current pool) and hands each
/// input's flows, a batch at a time, to a state of its own (`make(i)`) with
/// `take`, in the order that input hands them out: flows made from its
/// records as they are made (`true` for those of the baseline window), a
/// capture's at its end, then records that waited for another input's
/// templates. Returns the parsed inputs (their flows taken) and the states,
/// in input order.
fn read_each<S: Send>(
    icfg: &InputConfig,
    window: Option<(Ts, Ts)>,
    baseline: Option<(Ts, Ts)>,
    inc: &(dyn Fn(u64) + Sync),
    make: &(dyn Fn(usize) -> S + Sync),
    take: &(dyn Fn(&mut S, &[Flow], bool) + Sync),
) -> (Vec<Parsed>, Vec<S>) {
    let parts: Vec<(Parsed, S)> = icfg
        .inputs
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            // The window's and the baseline's streams share the state.
            let state = Mutex::new(make(i));
            let hand = |flows: &mut Vec<Flow>, base: bool| {
                take(
                    &mut state.lock().unwrap_or_else(PoisonError::into_inner),
                    flows,
                    base,
                );
                flows.clear();
            };
            let mut stream = |flows: &mut Vec<Flow>| hand(flows, false);
            let mut base_stream = |flows: &mut Vec<Flow>| hand(flows, true);
            let mut parsed = parse_one(
                i,
                path,
                icfg,
                window,
                baseline,
                inc,
                Some(&mut stream),
                Some(&mut base_stream),
                None,
            );
            // A capture's flows, made at its end.
            hand(&mut std::mem::take(&mut parsed.1.flows), false);
            if let Some(mut b) = parsed.2.take() {
                hand(&mut b.flows, true);
            }
            (
                parsed,
                state.into_inner().unwrap_or_else(PoisonError::into_inner),
            )
        })
        .collect();
    let (mut results, mut states): (Vec<Parsed>, Vec<S>) = parts.into_iter().unzip();
    resolve_exports(&mut results, icfg, window);
    for ((_, o, _), s) in results.iter_mut().zip(&mut states) {
        take(s, &std::mem::take(&mut o.flows), false);
    }
    (results, states)
}

/// Flows a worker folds before it merges them into the shared folds: memory
/// is one copy of the aggregates plus, per worker, those of this many flows.
const FOLD_CHUNK: u64 = 1 << 20;

/// A thread of [`stream_input`] for `analyze`: folds the flows it gets (into
/// the shared folds every [`FOLD_CHUNK`] flows) and, for `--csv`, writes their rows.
struct Folder<'a, 's> {
    folds: Folds<'a>,
    shared: &'s Mutex<Folds<'a>>,
    rows: Option<(flows_out::RowWriter, String)>,
}

impl Consume for Folder<'_, '_> {
    fn take(&mut self, f: &Flow, buf: &mut Vec<u8>) {
        self.folds.observe(f);
        if let Some((w, file)) = &mut self.rows {
            w.row(&flow_row(f, file, self.folds.cx.netscope), buf);
        }
        if self.folds.flows >= FOLD_CHUNK {
            let fresh = Folds::empty(self.folds.cx, self.folds.scope);
            let part = std::mem::replace(&mut self.folds, fresh);
            self.shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .merge(part);
        }
    }
}

/// What `analyze` gathered from its inputs.
struct Gathered<'a> {
    inputs: Vec<InputSummary>,
    exporters: Vec<crate::model::ExporterTotals>,
    folds: Folds<'a>,
    names: Vec<NameObservation>,
    dns: Vec<((std::net::IpAddr, String), DnsAgg)>,
    /// The baseline period's flows as the baseline rules keep them.
    baseline: detect::Baseline,
    /// The flows, when they had to be held (standard input); None when they
    /// streamed past.
    held: Option<Vec<Flow>>,
    /// Duplicates of records of several exporters, dropped as the inputs were
    /// read (a second read, D13's, drops them too).
    plan: Option<Plan>,
}

/// Reads every input in parallel and folds its flows as they are made, without
/// holding them (a capture's flows are held while that capture is read). With
/// `csv`, flows.csv is written on the way, input by input in the order given.
/// Records of several exporters need de-duplication, which compares records:
/// then the inputs are read again to find the duplicates (one compact entry
/// per export flow, [`Planner`]) and once more to fold the flows without them.
fn gather<'a>(cfg: &'a AnalyzeConfig, csv: Option<&std::path::Path>) -> io::Result<Gathered<'a>> {
    gather_with(cfg, csv, None)
}

/// The duplicates among the export flows of all inputs: a read of every input,
/// in parallel, numbering each input's export flows in the order that input
/// hands them out (as [`replay_inputs`] and [`gather_with`] see them).
fn plan_dedup(cfg: &AnalyzeConfig) -> io::Result<Plan> {
    let icfg = &cfg.input;
    let n = icfg.inputs.len();
    let pool = thread_pool(icfg)?;
    let make = |_| Planner::new(&icfg.exporter_priority, n);
    let take = |p: &mut Planner, flows: &[Flow], baseline: bool| {
        for f in flows {
            match baseline {
                true => p.add_baseline(f),
                false => p.add(f),
            }
        }
    };
    let (_, planners) =
        pool.install(|| read_each(icfg, cfg.window, cfg.baseline_window, &|_| {}, &make, &take));
    Ok(Planner::join(planners).finish())
}

/// [`gather`], dropping the duplicates `plan` names (a first read has none).
fn gather_with<'a>(
    cfg: &'a AnalyzeConfig,
    csv: Option<&std::path::Path>,
    plan: Option<&Plan>,
) -> io::Result<Gathered<'a>> {
    let icfg = &cfg.input;
    if icfg.inputs.iter().any(|p| matches!(p, InputPath::Stdin)) {
        return gather_held(cfg, csv);
    }
    let (window, baseline) = (cfg.window, cfg.baseline_window);
    let out: Box<dyn Write + Send> = match csv {
        Some(dir) => open_out(&dir.join("flows.csv"))?,
        None => Box::new(io::sink()),
    };
    let ordered = Ordered {
        turn: AtomicUsize::new(0),
        out: Mutex::new((out, None)),
        cv: Condvar::new(),
    };
    let mut head = Vec::new();
    flows_out::header(flows_out::FlowFormat::Csv, &mut head);
    Ordered::put(&mut ordered.lock(), &mut head);
    let ordered = csv.map(|_| &ordered);
    let progress = Progress::new(input_bytes(icfg), icfg.quiet);
    let inc = |n: u64| progress.inc(n);
    let pool = thread_pool(icfg)?;
    let n = icfg.inputs.len();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Parsed>>> = Mutex::new((0..n).map(|_| None).collect());
    let merged: Mutex<Folds<'a>> = Mutex::new(Folds::new(cfg));
    let filters: Mutex<Vec<Option<Filter<'_>>>> = Mutex::new((0..n).map(|_| None).collect());
    let base_fold = Mutex::new(detect::Baseline::default());
    let dups = Mutex::new(std::collections::BTreeMap::new());
    let netscope = &icfg.netscope;
    let hashes: Vec<Option<String>> = pool.install(|| {
        rayon::join(
            || icfg.inputs.par_iter().map(input::hash_file).collect(),
            || {
                rayon::scope(|sc| {
                    for _ in 0..rayon::current_num_threads().min(n) {
                        sc.spawn(|_| {
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= n {
                                    break;
                                }
                                let file = icfg.inputs[i].display();
                                // Rows for flows.csv keep their order: one
                                // consumer then; else one per thread of the pool.
                                let n_consumers = if ordered.is_some() {
                                    1
                                } else {
                                    rayon::current_num_threads().clamp(1, 2)
                                };
                                let consumers = (0..n_consumers)
                                    .map(|_| Folder {
                                        folds: Folds::new(cfg),
                                        shared: &merged,
                                        rows: ordered.map(|_| {
                                            (
                                                flows_out::RowWriter::new(
                                                    flows_out::FlowFormat::Csv,
                                                ),
                                                file.clone(),
                                            )
                                        }),
                                    })
                                    .collect();
                                let mut filter = plan.map(|p| p.filter(i));
                                let mut dup = std::collections::BTreeMap::new();
                                let mut skip = |f: &Flow| {
                                    filter.as_mut().is_some_and(|x| x.is_duplicate(f, &mut dup))
                                };
                                // The baseline window's flows, folded as they are made
                                // (without duplicates of several exporters' records).
                                let mut fold = detect::Baseline::default();
                                let cx = case_scope(cfg);
                                let mut base_filter = plan.map(|p| p.baseline_filter(i));
                                let mut base_dup = std::collections::BTreeMap::new();
                                let mut base = |f: &Flow| {
                                    if !base_filter
                                        .as_mut()
                                        .is_some_and(|x| x.is_duplicate(f, &mut base_dup))
                                    {
                                        fold.observe(&cx, f);
                                    }
                                };
                                let (mut parsed, consumers) = stream_input(
                                    i,
                                    icfg,
                                    window,
                                    baseline,
                                    ordered,
                                    &inc,
                                    consumers,
                                    plan.map(|_| {
                                        &mut skip as &mut (dyn FnMut(&Flow) -> bool + Send)
                                    }),
                                    Some(&mut base),
                                    None,
                                );
                                // The input's late flows (below) go on with its filter.
                                filters.lock().unwrap_or_else(PoisonError::into_inner)[i] = filter;
                                // The rest of its baseline flows (a capture's), folded and let go.
                                if let Some(b) = parsed.2.as_mut() {
                                    for f in std::mem::take(&mut b.flows) {
                                        base(&f);
                                    }
                                }
                                base_fold
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .merge(fold);
                                crate::flow::dedup::add_totals(
                                    &mut dups.lock().unwrap_or_else(PoisonError::into_inner),
                                    dup.into_values(),
                                );
                                for c in consumers {
                                    merged
                                        .lock()
                                        .unwrap_or_else(PoisonError::into_inner)
                                        .merge(c.folds);
                                }
                                results.lock().unwrap_or_else(PoisonError::into_inner)[i] =
                                    Some(parsed);
                            }
                        });
                    }
                })
            },
        )
        .0
    });
    progress.finish();
    let mut results: Vec<Parsed> = results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect();
    let mut folds = merged.into_inner().unwrap_or_else(PoisonError::into_inner);
    // Records that waited for another input's templates: folded (and written) last.
    resolve_exports(&mut results, icfg, window);
    let mut buf = Vec::new();
    let mut filters = filters.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut dups = dups.into_inner().unwrap_or_else(PoisonError::into_inner);
    {
        let mut g = ordered.map(|o| o.lock());
        let mut w = flows_out::RowWriter::new(flows_out::FlowFormat::Csv);
        for ((s, o, _), filter) in results.iter().zip(&mut filters) {
            for f in &o.flows {
                if filter
                    .as_mut()
                    .is_some_and(|x| x.is_duplicate(f, &mut dups))
                {
                    continue;
                }
                folds.observe(f);
                if let Some(g) = g.as_mut() {
                    w.row(&flow_row(f, &s.path, netscope), &mut buf);
                    if buf.len() >= 1 << 20 {
                        Ordered::put(g, &mut buf);
                    }
                }
            }
        }
        if let Some(g) = g.as_mut() {
            Ordered::put(g, &mut buf);
            if g.1.is_none()
                && let Err(e) = g.0.flush()
            {
                g.1 = Some(e);
            }
            if let Some(e) = g.1.take() {
                return Err(e);
            }
        }
    }
    if plan.is_none() && folds.exporters.len() >= 2 {
        // Several exporters: find the duplicates, then read without them.
        drop(filters);
        let plan = plan_dedup(cfg)?;
        return gather_with(cfg, csv, Some(&plan)).map(|g| Gathered {
            plan: Some(plan),
            ..g
        });
    }
    crate::flow::dedup::add_totals(&mut folds.exporters, dups.into_values());
    // The flows left in the results (records decoded late) are folded already.
    let a = join_parsed(results, hashes);
    let mut baseline = base_fold
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    fold_baseline(cfg, &mut baseline, &a.baseline_flows);
    Ok(Gathered {
        inputs: a.inputs,
        exporters: folds.exporter_totals(),
        folds,
        names: a.names,
        dns: a.dns,
        baseline,
        held: None,
        plan: None,
    })
}

/// [`gather`] with every flow held: for standard input (which cannot be read
/// a second time, as de-duplication and D13 may need).
fn gather_held<'a>(
    cfg: &'a AnalyzeConfig,
    csv: Option<&std::path::Path>,
) -> io::Result<Gathered<'a>> {
    let icfg = &cfg.input;
    let netscope = &icfg.netscope;
    let a = analyse_inputs(icfg, cfg.window, cfg.baseline_window, true)?;
    let mut folds = Folds::new(cfg);
    for f in &a.flows {
        folds.observe(f);
    }
    if let Some(dir) = csv {
        let mut out = open_out(&dir.join("flows.csv"))?;
        let rows = a
            .flows
            .iter()
            .map(|f| flow_row(f, input_path(&a.inputs, f), netscope));
        flows_out::write(rows, flows_out::FlowFormat::Csv, &mut out)?;
    }
    Ok(Gathered {
        inputs: a.inputs,
        exporters: a.exporters,
        folds,
        names: a.names,
        dns: a.dns,
        baseline: {
            let mut b = detect::Baseline::default();
            fold_baseline(cfg, &mut b, &a.baseline_flows);
            b
        },
        held: Some(a.flows),
        plan: None,
    })
}

/// Hands every flow of the window to `g` once more, reading the inputs again
/// (for the rare rule that needs a second look), without the duplicates
/// `plan` names. The inputs are read in parallel ([`read_each`]): each input's
/// flows come in their order, the inputs' interleaved (see `DetectInput::replay`).
fn replay_inputs(cfg: &AnalyzeConfig, plan: Option<&Plan>, g: &mut (dyn FnMut(&Flow) + Send)) {
    let icfg = &cfg.input;
    let g = Mutex::new(g);
    // Per input: its duplicate filter, and the duplicates' totals (counted in
    // `gather`; here they are only left out).
    type State<'p> = (
        Option<Filter<'p>>,
        std::collections::BTreeMap<std::net::IpAddr, crate::model::ExporterTotals>,
    );
    let make = |i| (plan.map(|p| p.filter(i)), Default::default());
    let take = |s: &mut State<'_>, flows: &[Flow], baseline: bool| {
        if baseline {
            return;
        }
        let mut g = g.lock().unwrap_or_else(PoisonError::into_inner);
        for f in flows {
            if !s.0.as_mut().is_some_and(|x| x.is_duplicate(f, &mut s.1)) {
                g(f);
            }
        }
    };
    let read = || read_each(icfg, cfg.window, cfg.baseline_window, &|_| {}, &make, &take);
    match thread_pool(icfg) {
        Ok(pool) => pool.install(read),
        Err(_) => read(),
    };
}

/// `exfilcheck analyze`.
pub fn run_analyze(cfg: &AnalyzeConfig) -> io::Result<u8> {
    let mut json_out = match &cfg.json {
        Some(p) => Some(open_out(p)?),
        None => None,
    };
    if let Some(dir) = &cfg.csv {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let mut a = gather(cfg, cfg.csv.as_deref())?;
    // Baseline captures given separately: every packet of them is baseline.
    let mut baseline_inputs = Vec::new();
    if !cfg.baseline_inputs.inputs.is_empty() {
        baseline_inputs = fold_baseline_inputs(cfg, &mut a.baseline)?;
    }
    let Folds {
        passes,
        icmp,
        transfers,
        ledger: ledger_fold,
        names: server_names,
        facts,
        ..
    } = a.folds;
    let ledger = ledger_fold.finish(&a.names, &server_names, &cfg.allow);
    let name_index = detect::name_index(&server_names, &a.names);
    let dns_info = detect::rules::dns_tunnel::information_bounds(&a.dns);
    let held = a.held.take();
    let plan = a.plan.take();
    let replay = |g: &mut (dyn FnMut(&Flow) + Send)| match &held {
        Some(flows) => flows.iter().for_each(&mut *g),
        None => replay_inputs(cfg, plan.as_ref(), g),
    };
    let detect_input = DetectInput {
        ledger: &ledger,
        dns: &a.dns,
        dns_info: &dns_info,
        replay: &replay,
        allowed_memo: Default::default(),
        names: &name_index,
        netscope: &cfg.input.netscope,
        allow: &cfg.allow,
        iocs: &cfg.iocs,
        baseline: (a.baseline.flows > 0
            || cfg.baseline_window.is_some()
            || !baseline_inputs.is_empty())
        .then_some(&a.baseline),
        business_hours: cfg.business_hours.as_ref(),
        extra_services: &cfg.exfil_services,
    };
    let findings = detect::finish_all(&detect_input, passes);
    let channels = detect::channel_bounds(&detect_input, &icmp);
    let transfers = transfers.into_map();
    let vin = VerdictInputs {
        scope: &cfg.scope,
        scope_given: !cfg.scope.is_empty(),
        threshold: cfg.threshold,
        // With a baseline window inside the inputs and no investigation window, the
        // verdict covers what follows the baseline.
        window: cfg.window.or_else(|| {
            let (_, be) = cfg.baseline_window?;
            let last = a
                .inputs
                .iter()
                .filter_map(|s| s.last_ts.max(s.records_last_ts))
                .max()?;
            (last > be).then_some((be + 1, last))
        }),
        window_given: cfg.window_given,
        max_gap: MAX_GAP_NS,
        materiality: cfg.materiality,
        materiality_source: cfg.materiality_source,
        egress: &cfg.egress,
        capacity: cfg.capacity,
        channels: &channels,
        internal_transfers: &transfers,
        baseline_failures: &baseline_inputs
            .iter()
            .filter_map(|s| {
                s.error
                    .as_ref()
                    .map(|e| (s.path.clone(), e.message.clone()))
            })
            .collect::<Vec<_>>(),
    };
    let assessment = evidence::assess(&vin, &a.inputs, &ledger, &facts, &findings, &cfg.allow);
    let verdict = assessment.verdict;
    let totals = Totals {
        outbound: ledger.total_out,
        inbound: ledger.total_in,
        outbound_unallowed: ledger.total_out_unallowed,
        internal_ip_bytes: ledger.internal_bytes,
        external_only_ip_bytes: ledger.external_only_bytes,
        outer_flows: ledger.outer_flows,
        inner_flows: ledger.inner_flows,
        uncertain_direction_flows: ledger.uncertain_direction_flows,
        internal_hosts_seen: ledger.internal_hosts_seen.len() as u64,
    };
    let report = Report {
        schema_version: report::SCHEMA_VERSION,
        tool: ToolInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            exfil_service_list_version: detect::rules::exfil_service::version(),
            exfil_service_list_sha256: crate::input::sha256_hex(
                detect::rules::exfil_service::LIST.as_bytes(),
            ),
        },
        assessment,
        case: CaseEcho {
            internal_networks: cfg.input.internal_text.clone(),
            scope: cfg.scope_text.clone(),
            scope_default: cfg.scope.is_empty(),
            allowlist: cfg.allow_text.clone(),
            allowlist_entries: cfg.allow_entries.clone(),
            case_name: cfg.case_name.clone(),
            analyst: cfg.analyst.clone(),
            threshold_bytes: cfg.threshold,
            threshold_source: cfg.threshold_source,
            case_file: cfg.case_file.as_ref().map(|c| c.0.clone()),
            case_file_sha256: cfg.case_file.as_ref().map(|c| c.1.clone()),
        },
        totals,
        inputs: a.inputs,
        exporters: a.exporters,
        baseline_inputs,
        baseline_window: cfg
            .baseline_window
            .map(|(s, e)| (crate::model::fmt_rfc3339(s), crate::model::fmt_rfc3339(e))),
        baseline_flows: a.baseline.flows,
        findings,
        ledger,
    };
    // A reader that stops early (`| head`) does not change the verdict: a broken
    // pipe ends that output, and the exit code still carries the verdict.
    let ignore_pipe = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    };
    if let Some(out) = json_out.as_mut() {
        ignore_pipe(report::json::write(&report, out).and_then(|()| out.flush()))?;
    }
    if let Some(dir) = &cfg.csv {
        report::csv_out::write(&report, dir)?;
    }
    if !cfg.input.quiet {
        let stdout = io::stdout();
        let mut lock = stdout.lock();
        ignore_pipe(
            report::terminal::write(&report, cfg.top, cfg.german, &mut lock)
                .and_then(|()| lock.flush()),
        )?;
    }
    Ok(match verdict {
        Verdict::Supported => exit::SUPPORTED,
        Verdict::Contradicted => exit::CONTRADICTED,
        Verdict::Inconclusive => exit::INCONCLUSIVE,
    })
}
