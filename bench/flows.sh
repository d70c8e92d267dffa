#!/usr/bin/env bash
# Benchmark exfilcheck on flow exports: the same generated records as a Zeek conn.log,
# nfdump CSV, NetFlow v9 and IPFIX datagrams in pcaps, next to nfdump on nfcapd files.
#
#   bench/flows.sh [RECORDS [OUTDIR]]     (defaults: 10000000 and <repo>/bench-data/flows)
#
# A benchmark, not a test: it never fails on slow numbers; a peer that is missing or
# fails gets a row saying so. See bench/README.md.
#
# Environment:
#   EXFILCHECK=PATH      binary to measure (default <repo>/target/release/exfilcheck)
#   BENCH_BUILD=1        run `cargo build --release` first (off by default)
#   BENCH_INSTALL=0      do not apt-get install missing peers (default: install when root)
#   BENCH_RUNS=N         timed runs per command (default 3; the median is reported)
#   BENCH_TIMEOUT=S      give up a command after S seconds (default 3600)
#   BENCH_REPEAT_MAX=S   a command whose check run took longer than S seconds is not
#                        repeated; its row reports that one run (default 600)
#   BENCH_IPFIX=0        no IPFIX variant
#   BENCH_PPS=N          datagrams per second when replaying NetFlow v9 to nfcapd (default 20000;
#                        halved and retried when nfcapd did not store every record)
#   BENCH_NFCAPD_PORT=P  loopback UDP port for nfcapd (default 39055)
# shellcheck disable=SC2016  # the backticks in row labels are Markdown
set -u -o pipefail
export LC_ALL=C TZ=UTC
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

RECORDS="${1:-10000000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUTDIR="${2:-$ROOT/bench-data/flows}"
SEED=20261127
RUNS="${BENCH_RUNS:-3}"
TIMEOUT="${BENCH_TIMEOUT:-3600}"
REPEAT_MAX="${BENCH_REPEAT_MAX:-600}"
PPS="${BENCH_PPS:-20000}"
PORT="${BENCH_NFCAPD_PORT:-39055}"
WANT_IPFIX="${BENCH_IPFIX:-1}"
GEN="$HERE/gen_flows.py"
EXF="${EXFILCHECK:-$ROOT/target/release/exfilcheck}"
TIME_BIN=/usr/bin/time
INTERNAL="--internal 10.0.0.0/8 --internal 192.168.0.0/16"

LOAD0="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"

log() { printf '[flows] %s\n' "$*" >&2; }
thou() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
die() { log "error: $*"; exit 2; }

[[ "$RECORDS" =~ ^[1-9][0-9]*$ ]] || die "RECORDS must be a positive integer, got '$RECORDS'"
for v in RUNS TIMEOUT REPEAT_MAX PPS PORT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
command -v python3 >/dev/null || die "python3 is needed (generator, replay and JSON parsing)"
[[ -f "$GEN" ]] || die "generator not found: $GEN"
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"

# ------------------------------------------------------------------ peers: install if missing
declare -A PKG=([nfdump]=nfdump [nfcapd]=nfdump [hyperfine]=hyperfine [timeout]=coreutils)
install_missing() {
    local missing=() c p cand ok=()
    for c in nfdump nfcapd hyperfine; do
        command -v "$c" >/dev/null 2>&1 || missing+=("${PKG[$c]}")
    done
    [[ -x "$TIME_BIN" ]] || missing+=(time)
    ((${#missing[@]})) || return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [[ "${BENCH_INSTALL:-1}" == 0 || "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
        log "missing (not installing): ${missing[*]}"
        return 0
    fi
    log "installing from Debian: ${missing[*]}"
    apt-get update -q >"$OUTDIR/apt.log" 2>&1 || log "apt-get update failed (see $OUTDIR/apt.log)"
    for p in "${missing[@]}"; do
        cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
        if [[ -n "$cand" && "$cand" != "(none)" ]]; then ok+=("$p"); else log "no Debian package '$p'"; fi
    done
    ((${#ok[@]})) || return 0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${ok[@]}" >>"$OUTDIR/apt.log" 2>&1 \
        || log "apt-get install ${ok[*]} failed (see $OUTDIR/apt.log); those rows will say so"
}
install_missing
command -v timeout >/dev/null || die "timeout (coreutils) is needed"

if [[ "${BENCH_BUILD:-0}" == 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release >&2) || log "cargo build failed; measuring whatever binary exists"
fi

# ------------------------------------------------------------------ input data
if ((RECORDS % 1000000 == 0)); then LABEL="$((RECORDS / 1000000))m"; else LABEL="$RECORDS"; fi
DATA="$OUTDIR/data-$LABEL"
meta_ok() { # DIR -> 0 if DIR/meta.json matches seed, records, generator version and file sizes
    [[ -f "$1/meta.json" ]] || return 1
    python3 - "$1" "$SEED" "$RECORDS" "$WANT_IPFIX" "$GEN" <<'PY'
import json, os, re, sys
d, seed, records, ipfix, gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1', sys.argv[5]
ver = int(re.search(r'^GEN_VERSION = (\d+)', open(gen).read(), re.M).group(1))
try:
    m = json.load(open(os.path.join(d, 'meta.json')))
    ok = (m['seed'] == seed and m['target_records'] == records and m['gen_version'] == ver
          and all(os.path.getsize(os.path.join(d, f['name'])) == f['bytes'] for f in m['files'].values())
          and (not ipfix or 'ipfix' in m['files']))
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
}
GEN_NOTE="reused"
if meta_ok "$DATA"; then
    log "reusing $DATA"
else
    log "generating $RECORDS records into $DATA (seed $SEED)"
    rm -rf "$DATA"
    extra=(); [[ "$WANT_IPFIX" == 1 ]] || extra=(--no-ipfix)
    python3 "$GEN" --out "$DATA" --records "$RECORDS" --seed "$SEED" --progress "${extra[@]}" >&2 \
        || die "generator failed"
    meta_ok "$DATA" || die "generated files do not match their meta.json"
    GEN_NOTE="generated now"
fi
mj() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"m": m}))' "$DATA/meta.json" "$1"; }
CONNS="$(mj 'm["connections"]')"; RECS="$(mj 'm["records"]')"; DGRAMS="$(mj 'm["datagrams"]')"
GEN_S="$(mj 'm["generation_seconds"]')"; GEN_JOBS="$(mj 'm["jobs"]')"

# ------------------------------------------------------------------ nfcapd files (peer input)
NFDIR="$DATA/nfcapd"
nf_count() { # flows and sequence failures nfdump counts in $NFDIR
    nfdump -R "$NFDIR" -I 2>/dev/null | awk -F': ' '/^Flows: / {f += $2} /^Sequence failures: / {s += $2} END {printf "%d %d\n", f, s}'
}
NF_NOTE=""
NF_OK=0
if command -v nfcapd >/dev/null 2>&1 && command -v nfdump >/dev/null 2>&1; then
    if [[ -f "$DATA/nfcapd.complete" ]] && [[ "$(nf_count)" == "$RECS "* ]]; then
        log "reusing $NFDIR"
        NF_OK=1
        NF_NOTE="$(cat "$DATA/nfcapd.complete")"
    else
        pps="$PPS"; rm -f "$DATA/nfcapd.complete"
        for attempt in 1 2 3; do
            rm -rf "$NFDIR" && mkdir -p "$NFDIR"
            log "replaying $DGRAMS NetFlow v9 datagrams to nfcapd on 127.0.0.1:$PORT at $pps/s (attempt $attempt)"
            drops0="$(awk '/^Udp: [0-9]/ {print $6}' /proc/net/snmp)"
            nfcapd -w "$NFDIR" -b 127.0.0.1 -p "$PORT" -B 8000000 -I bench >"$DATA/nfcapd.log" 2>&1 &
            nfpid=$!
            for _ in $(seq 50); do grep -q 'Startup' "$DATA/nfcapd.log" 2>/dev/null && break; sleep 0.1; done
            if ! kill -0 "$nfpid" 2>/dev/null; then
                NF_NOTE="nfcapd did not start: $(tail -n 1 "$DATA/nfcapd.log")"; break
            fi
            python3 "$GEN" --replay "$DATA/netflow_v9.pcap" --port "$PORT" --pps "$pps" >"$DATA/replay.json" \
                || log "replay failed"
            sleep 2
            kill -TERM "$nfpid" 2>/dev/null; wait "$nfpid" 2>/dev/null
            drops1="$(awk '/^Udp: [0-9]/ {print $6}' /proc/net/snmp)"
            read -r got seqerr < <(nf_count)
            stored="$(grep -o 'Flows: [0-9]*' "$DATA/nfcapd.log" | tail -n 1)"
            log "nfcapd stored $got of $RECS records (${stored:-no summary}), sequence failures $seqerr, kernel UDP receive-buffer drops $((drops1 - drops0))"
            if [[ "$got" == "$RECS" && "$seqerr" == 0 ]]; then
                NF_OK=1
                NF_NOTE="all $RECS records stored by nfcapd (replay at $pps datagrams/s, attempt $attempt, 0 sequence failures)"
                echo "$NF_NOTE" >"$DATA/nfcapd.complete"
                break
            fi
            NF_NOTE="nfcapd stored $got of $RECS records at $pps datagrams/s (sequence failures $seqerr)"
            pps=$((pps / 2))
        done
    fi
else
    NF_NOTE="nfcapd/nfdump not installed (Debian package nfdump)"
fi
log "nfcapd: $NF_NOTE"

# ------------------------------------------------------------------ the commands
WORK="$OUTDIR/work-$LABEL"
{ rm -rf "$WORK" && mkdir -p "$WORK"; } || die "cannot create $WORK"
log "warming the page cache"
cat "$DATA"/conn.log "$DATA"/flows.csv "$DATA"/*.pcap "$NFDIR"/nfcapd.* >/dev/null 2>&1
# Measure a snapshot of the binary, so a concurrent `cargo build` cannot swap it mid-run.
EXF_BUILT=""; EXF_ORIG="$EXF"
if [[ -x "$EXF" ]] && "$EXF" --version 2>/dev/null | grep -q '^exfilcheck'; then
    EXF_BUILT="$(date -u -r "$EXF" '+%Y-%m-%d %H:%M UTC')"
    cp "$EXF" "$WORK/exfilcheck" && EXF="$WORK/exfilcheck"
fi
qD="$(printf %q "$DATA")"; qW="$(printf %q "$WORK")"; qX="$(printf %q "$EXF")"; qN="$(printf %q "$NFDIR")"

declare -A FILE=([conn]=conn.log [csv]=flows.csv [v9]=netflow_v9.pcap [ipfix]=ipfix.pcap [nfcapd]=nfcapd)
declare -A FMT_LABEL=([conn]="Zeek conn.log" [csv]="nfdump CSV" [v9]="NetFlow v9 pcap" [ipfix]="IPFIX pcap"
    [nfcapd]="nfcapd files")
FORMATS=(conn csv v9)
[[ "$WANT_IPFIX" == 1 && -f "$DATA/ipfix.pcap" ]] && FORMATS+=(ipfix)
# The nfcapd files nfdump reads, read by exfilcheck too (same input for both tools).
((NF_OK)) && FORMATS+=(nfcapd)
recs_of() { if [[ "$1" == conn ]]; then echo "$CONNS"; else echo "$RECS"; fi; }

NAMES=(); TOOLS=(); LABELS=(); CMDS=(); PREPS=(); OKS=(); CHECKS=(); NOTES=(); NRECS=(); INPUTS=()
add() { # name tool label ok-exit-codes prepare check note records input command
    NAMES+=("$1"); TOOLS+=("$2"); LABELS+=("$3"); OKS+=("$4"); PREPS+=("$5"); CHECKS+=("$6"); NOTES+=("$7")
    NRECS+=("$8"); INPUTS+=("$9"); CMDS+=("${10}")
}
for f in "${FORMATS[@]}"; do
    target="$qD/${FILE[$f]}"; [[ "$f" == nfcapd ]] && target="$qN/nfcapd.*"
    add "cat-$f" cat '`cat > /dev/null`' 0 '' '' 'read floor' "$(recs_of "$f")" "${FMT_LABEL[$f]}" \
        "cat $target > /dev/null"
done
for f in "${FORMATS[@]}"; do
    add "ex-flows-$f" exfilcheck '`exfilcheck flows --format csv`' 0 '' '' '' "$(recs_of "$f")" "${FMT_LABEL[$f]}" \
        "$qX flows --quiet --format csv -o /dev/null $qD/${FILE[$f]}"
done
for f in "${FORMATS[@]}"; do
    add "ex-analyze-$f" exfilcheck '`exfilcheck analyze --json`' '0 1 3' '' '' '' "$(recs_of "$f")" "${FMT_LABEL[$f]}" \
        "$qX analyze --quiet --json /dev/null $INTERNAL $qD/${FILE[$f]}"
done
add nfdump-top nfdump '`nfdump -R -s srcip/bytes`' 0 '' "grep -q '^Summary: total flows: $RECS,' $qW/nfdump-top.txt" 'top 10 sources' \
    "$RECS" "nfcapd files" "nfdump -R $qN -s srcip/bytes > $qW/nfdump-top.txt"
add nfdump-all nfdump '`nfdump -R -s srcip/bytes -n 0`' 0 '' "grep -q '^Summary: total flows: $RECS,' $qW/nfdump-all.txt" 'every source' \
    "$RECS" "nfcapd files" "nfdump -R $qN -s srcip/bytes -n 0 > $qW/nfdump-all.txt"
add nfdump-csv nfdump '`nfdump -R -o csv`' 0 '' '' 'every record as CSV' \
    "$RECS" "nfcapd files" "nfdump -R $qN -o csv > /dev/null"

have_tool() {
    if [[ "$1" == exfilcheck ]]; then [[ -n "$EXF_BUILT" ]]
    elif [[ "$1" == nfdump ]]; then ((NF_OK)) && command -v nfdump >/dev/null 2>&1
    else command -v "$1" >/dev/null 2>&1; fi
}
in_list() { local x; for x in $2; do [[ "$x" == "$1" ]] && return 0; done; return 1; }
fmt() { awk -v x="$1" -v d="$2" 'BEGIN {printf "%.*f", d, x}'; }
oneline() { printf '%s' "$1" | tr -s '\n\t|' '   ' | cut -c1-120 | sed 's/ *$//'; }

declare -A VERDICT=([1]=CONTRADICTED [3]=INCONCLUSIVE [124]="timed out")
HAVE_HF=0; command -v hyperfine >/dev/null 2>&1 && HAVE_HF=1
HAVE_TIME=0; [[ -x "$TIME_BIN" ]] && HAVE_TIME=1

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 | $8 | $9 |"); }

for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}"; tool="${TOOLS[$i]}"; label="${LABELS[$i]}"; cmd="${CMDS[$i]}"
    prep="${PREPS[$i]}"; oks="${OKS[$i]}"; check="${CHECKS[$i]}"; note="${NOTES[$i]}"
    nrec="${NRECS[$i]}"; input="${INPUTS[$i]}"
    nrec_h="$(thou "$nrec")"
    if ! have_tool "$tool"; then
        if [[ "$tool" == exfilcheck ]]; then note="not measured: no working exfilcheck binary at $EXF (cargo build --release)"
        elif [[ "$tool" == nfdump ]]; then note="not measured: ${NF_NOTE:-nfdump missing}"
        else note="not measured: $tool not installed"; fi
        row "$label" "$input" "$nrec_h" – – – – – "$note"; log "$name: $note"; continue
    fi
    log "$name: $cmd"
    tcmd="timeout $TIMEOUT bash -c $(printf %q "$cmd")"

    # Check run under /usr/bin/time: exit code, output check, peak RSS; it also decides
    # whether the command is quick enough to be repeated.
    [[ -n "$prep" ]] && bash -c "$prep"
    rss="–"; t0=$(date +%s%N)
    if ((HAVE_TIME)); then
        "$TIME_BIN" -f '%e %U %S %M' -o "$WORK/$name.time" bash -c "$tcmd" >"$WORK/$name.out" 2>"$WORK/$name.err"
        rc=$?
        t="$(tail -n 1 "$WORK/$name.time" 2>/dev/null)"
        [[ "$t" =~ ^[0-9.]+\ ([0-9.]+)\ ([0-9.]+)\ ([0-9]+)$ ]] && {
            rss="$(fmt "$(awk -v k="${BASH_REMATCH[3]}" 'BEGIN {print k/1024}')" 0)"
            cpu1="$(awk -v u="${BASH_REMATCH[1]}" -v s="${BASH_REMATCH[2]}" 'BEGIN {print u + s}')"
        }
    else
        bash -c "$tcmd" >"$WORK/$name.out" 2>"$WORK/$name.err"; rc=$?; cpu1=nan
    fi
    t1=$(date +%s%N); wall1="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')"
    if [[ "$rc" == 124 ]]; then
        row "$label" "$input" "$nrec_h" "> $TIMEOUT" – – – "$rss" "NOT FINISHED: stopped after BENCH_TIMEOUT=$TIMEOUT s"
        log "$name: timed out after $TIMEOUT s"; continue
    fi
    if ! in_list "$rc" "$oks"; then
        err="$(oneline "$(grep -v 'Running as user' "$WORK/$name.err" | tail -n 2)")"
        row "$label" "$input" "$nrec_h" – – – – "$rss" "FAILED: exit $rc${err:+: $err}"; log "$name failed (exit $rc)"; continue
    fi
    if [[ -n "$check" ]] && ! bash -c "$check"; then
        row "$label" "$input" "$nrec_h" – – – – "$rss" "FAILED: exit $rc but output check failed ($check)"; log "$name: output check failed"; continue
    fi
    if [[ "$rc" != 0 ]]; then # accepted non-zero exit: exfilcheck's verdict
        v=""; [[ "$tool" == exfilcheck ]] && v="${VERDICT[$rc]:-}"
        note="exit $rc${v:+ = $v}${note:+; $note}"
    fi

    med=""; lo=""; cpu=""; bad=""
    if awk -v w="$wall1" -v m="$REPEAT_MAX" 'BEGIN {exit !(w > m)}'; then
        # Too slow to repeat: report the check run.
        med="$wall1"; lo="$wall1"; cpu="$cpu1"
        note="${note:+$note; }1 run (check run took > BENCH_REPEAT_MAX=$REPEAT_MAX s)"
    elif ((HAVE_HF)); then
        hf=(hyperfine --runs "$RUNS" --style none --export-json "$WORK/$name.json" -n "$name")
        [[ -n "$prep" ]] && hf+=(--prepare "$prep")
        [[ "$oks" != 0 ]] && hf+=(--ignore-failure)
        if "${hf[@]}" -- "$tcmd" >"$WORK/$name.hyperfine.log" 2>&1; then
            read -r med lo cpu bad < <(python3 - "$WORK/$name.json" "$oks" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['results'][0]
oks = {int(x) for x in sys.argv[2].split()}
bad = [c for c in (r.get('exit_codes') or []) if c is not None and c not in oks]
times = sorted(r['times'])
n = len(times)
med = r.get('median', times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2)
print(med, min(times), r['user'] + r['system'], bad[0] if bad else '')
PY
            )
        else
            bad="hyperfine failed: $(oneline "$(tail -n 2 "$WORK/$name.hyperfine.log")")"
        fi
    else
        : >"$WORK/$name.runs"
        for ((k = 0; k < RUNS; k++)); do
            [[ -n "$prep" ]] && bash -c "$prep"
            t0=$(date +%s%N)
            if ((HAVE_TIME)); then
                "$TIME_BIN" -f '%U %S' -o "$WORK/$name.t" bash -c "$tcmd" >/dev/null 2>>"$WORK/$name.err"; rc=$?
            else
                bash -c "$tcmd" >/dev/null 2>>"$WORK/$name.err"; rc=$?
            fi
            t1=$(date +%s%N)
            in_list "$rc" "$oks" || bad="$rc"
            c="$( ((HAVE_TIME)) && awk 'END {print $1 + $2}' "$WORK/$name.t" || echo nan)"
            echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}') $c" >>"$WORK/$name.runs"
        done
        med="$(awk '{print $1}' "$WORK/$name.runs" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
        lo="$(awk '{print $1}' "$WORK/$name.runs" | sort -g | head -n 1)"
        cpu="$(awk '$2 != "nan" {s += $2; k++} END {if (k) print s / k; else print "nan"}' "$WORK/$name.runs")"
    fi
    if [[ -n "$bad" || -z "$med" ]]; then
        [[ "$bad" =~ ^[0-9]+$ ]] && bad="exit $bad in a timed run"
        row "$label" "$input" "$nrec_h" – – – – "$rss" "FAILED: ${bad:-no timing}"; log "$name: ${bad:-no timing}"; continue
    fi
    mrs="$(fmt "$(awk -v r="$nrec" -v s="$med" 'BEGIN {print (s > 0) ? r / 1e6 / s : 0}')" 2)"
    if [[ "$cpu" == nan || -z "$cpu" ]]; then cpu_s="–"; else cpu_s="$(fmt "$cpu" 2)"; fi
    row "$label" "$input" "$nrec_h" "$(fmt "$med" 2)" "$(fmt "$lo" 2)" "$cpu_s" "$mrs" "$rss" "$note"
done

# ------------------------------------------------------------------ agreement
# Bytes per source IP: exfilcheck's flows CSV (id.orig_h gets orig_ip_bytes, id.resp_h gets
# resp_ip_bytes, whichever way a record was oriented) against the generator's totals and
# nfdump -s srcip/bytes on the nfcapd files; record counts per format.
log "agreement: exfilcheck flows per format, nfdump -s srcip/bytes -n 50"
AGREE="$WORK/agreement.md"
for f in "${FORMATS[@]}"; do
    if [[ -n "$EXF_BUILT" ]]; then
        "$EXF" flows --quiet --format csv "$DATA/${FILE[$f]}" 2>"$WORK/agree-$f.err" | awk -F, '
            NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
            { n++; b[$c["id.orig_h"]] += $c["orig_ip_bytes"]; b[$c["id.resp_h"]] += $c["resp_ip_bytes"]
              t += $c["orig_ip_bytes"] + $c["resp_ip_bytes"] }
            END { printf "#flows %d %.0f\n", n, t; for (k in b) printf "%s %.0f\n", k, b[k] }' >"$WORK/agree-$f.txt"
    fi
done
if ((NF_OK)); then
    nfdump -R "$NFDIR" -s srcip/bytes -n 50 -o csv >"$WORK/agree-nfdump.csv" 2>/dev/null
    nfdump -R "$NFDIR" -I >"$WORK/agree-nfdump-info.txt" 2>/dev/null
fi
python3 - "$DATA/meta.json" "$WORK" "${FORMATS[*]}" >"$AGREE" <<'PY'
import json, os, sys
meta = json.load(open(sys.argv[1])); work = sys.argv[2]; fmts = sys.argv[3].split()
label = {'conn': 'conn.log', 'csv': 'nfdump CSV', 'v9': 'NetFlow v9', 'ipfix': 'IPFIX', 'nfcapd': 'nfcapd'}
ex = {}
for f in fmts:
    p = os.path.join(work, f'agree-{f}.txt')
    if not os.path.exists(p) or os.path.getsize(p) == 0:
        continue
    d = {}
    for line in open(p):
        k, *v = line.split()
        d[k] = v
    ex[f] = d
nf = {}
p = os.path.join(work, 'agree-nfdump.csv')
if os.path.exists(p):
    for line in open(p):
        x = line.strip().split(',')
        if len(x) >= 10 and x[0][:2] == '20':
            nf[x[4]] = int(x[9])
nf_flows = nf_bytes = None
p = os.path.join(work, 'agree-nfdump-info.txt')
if os.path.exists(p):
    info = open(p).read().splitlines()
    nf_flows = sum(int(l.split(':')[1]) for l in info if l.startswith('Flows:'))
    nf_bytes = sum(int(l.split(':')[1]) for l in info if l.startswith('Bytes:'))
cols = ['generator'] + (['nfdump -s srcip/bytes'] if nf else []) + [f'exfilcheck {label[f]}' for f in ex]
print('| | ' + ' | '.join(cols) + ' |')
print('|---|' + '---:|' * len(cols))
ok = True
want = {'conn': meta['connections']}
cells = [f"{meta['records']:,} records / {meta['connections']:,} connections"]
if nf:
    cells.append(f'{nf_flows:,}' if nf_flows is not None else '?')
    ok &= nf_flows == meta['records']
for f in ex:
    n = int(ex[f]['#flows'][0]); exp = want.get(f, meta['records'])
    ok &= n == exp
    cells.append(f'{n:,}' + ('' if n == exp else f' (expected {exp:,})'))
print('| flows (rows) | ' + ' | '.join(cells) + ' |')
cells = [f"{meta['bytes']:,}"]
if nf:
    ok &= nf_bytes == meta['bytes']
    cells.append('?' if nf_bytes is None else f'{nf_bytes:,}' + ('' if nf_bytes == meta['bytes'] else ' ≠'))
for f in ex:
    t = int(ex[f]['#flows'][1]); ok &= t == meta['bytes']
    cells.append(f'{t:,}' + ('' if t == meta['bytes'] else ' ≠'))
print('| IP bytes, all | ' + ' | '.join(cells) + ' |')
for h in meta['top_sources_by_bytes'][:10]:
    ip, b = h['ip'], h['bytes']
    cells = [f'{b:,}']
    if nf:
        v = nf.get(ip); ok &= v == b
        cells.append('–' if v is None else f'{v:,}' + ('' if v == b else ' ≠'))
    for f in ex:
        v = int(ex[f].get(ip, ['0'])[0]); ok &= v == b
        cells.append(f'{v:,}' + ('' if v == b else ' ≠'))
    print(f'| {ip} | ' + ' | '.join(cells) + ' |')
print()
print('All figures agree.' if ok else '**Some figures differ (marked ≠ or with the expected value).**')
PY

# ------------------------------------------------------------------ report
ver() { "$@" 2>/dev/null | grep -v 'Running as user' | head -n 1; }
V_EXF="exfilcheck: not built"; [[ -n "$EXF_BUILT" ]] && V_EXF="$(ver "$EXF" --version)"
GIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]] && GIT="$GIT+uncommitted changes"
if [[ -n "$EXF_BUILT" && "$EXF_ORIG" == "$ROOT/target/release/exfilcheck" ]]; then
    V_EXF="$V_EXF (git $GIT, binary built $EXF_BUILT)"
elif [[ -n "$EXF_BUILT" ]]; then # EXFILCHECK points elsewhere: this checkout's commit says nothing
    V_EXF="$V_EXF (binary $EXF_ORIG, built $EXF_BUILT)"
fi
V_NFD="$(command -v nfdump >/dev/null && { nfdump -V 2>&1 | head -n 1 | sed 's/: Version: */ /' || true; } || echo 'nfdump: missing')"
V_HF="$( ((HAVE_HF)) && ver hyperfine --version || echo 'hyperfine: missing (own timing loop)')"
CPU="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: *//')"
SIZES="$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
print(", ".join("%s %s MB" % (f["name"], format(round(f["bytes"] / 1e6), ",")) for f in m["files"].values()))' "$DATA/meta.json")"

RESULT="$OUTDIR/results.md"
{
    echo "**$(date -u '+%Y-%m-%d %H:%M UTC')** · nproc $(nproc) · CPU ${CPU:-?} · load avg $LOAD0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end · $V_EXF · $V_NFD · $V_HF"
    echo
    echo "Input \`$(basename "$DATA")\` (seed $SEED, $GEN_NOTE; generation took $GEN_S s with $GEN_JOBS processes): $(thou "$RECS") unidirectional flow records = $(thou "$CONNS") connections, in $(thou "$DGRAMS") export datagrams; $SIZES. nfcapd: $NF_NOTE."
    echo
    echo "| command | input | records | median s | min s | CPU s | M rec/s | peak RSS MiB | note |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Warm page cache; median and min of $RUNS runs ($( ((HAVE_HF)) && echo 'hyperfine, shell spawn time subtracted' || echo 'own loop, date +%s%N')) after one check run, unless the check run took longer than $REPEAT_MAX s (then that run is reported); CPU s = user + system (mean); M rec/s = records in that input / 1e6 / median s (conn.log: one record per connection, holding both directions); peak RSS from the check run under \`/usr/bin/time -f %M\` (includes the memory-mapped input)."
    echo
    echo "Agreement (IP-layer bytes per source address; exfilcheck rows from \`exfilcheck flows\` CSV: id.orig_h += orig_ip_bytes, id.resp_h += resp_ip_bytes):"
    echo
    cat "$AGREE"
    echo
    echo "Commands:"
    echo
    for i in "${!NAMES[@]}"; do echo "    ${CMDS[$i]}"; done
} >"$RESULT.tmp" && mv "$RESULT.tmp" "$RESULT"
cat "$RESULT"
log "written to $RESULT (logs and raw timings in $WORK)"
