#!/usr/bin/env bash
# Benchmark exfilcheck next to peer tools on the same generated capture.
#
#   bench/run.sh [SIZE_GIB [OUTDIR]]      (defaults: 1.0 and <repo>/bench-data)
#
# A benchmark, not a test: it never fails on slow numbers; a peer that is
# missing or fails gets a row saying so. See bench/README.md.
#
# Environment:
#   EXFILCHECK=PATH   binary to measure (default <repo>/target/release/exfilcheck)
#   BENCH_BUILD=1     run `cargo build --release` first (off by default)
#   BENCH_INSTALL=0   do not apt-get install missing peers (default: install when root)
#   BENCH_RUNS=N      timed runs per command (default 3; the median is reported)
set -u -o pipefail
export LC_ALL=C
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

SIZE="${1:-1.0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUTDIR="${2:-$ROOT/bench-data}"
SEED=20261128
RUNS="${BENCH_RUNS:-3}"
GEN="$ROOT/../shared/bench/gen_pcap.py"
EXF="${EXFILCHECK:-$ROOT/target/release/exfilcheck}"
TIME_BIN=/usr/bin/time

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

[[ "$SIZE" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || die "SIZE must be a number of GiB, got '$SIZE'"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
command -v python3 >/dev/null || die "python3 is needed (generator and JSON parsing)"
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"

# ------------------------------------------------------------------ peers: install if missing
# command -> Debian package (bookworm names, checked with apt-cache policy)
declare -A PKG=([tshark]=tshark [argus]=argus-server [nfpcapd]=nfdump [hyperfine]=hyperfine)
install_missing() {
    local missing=() c p cand ok=()
    for c in tshark argus nfpcapd hyperfine; do
        command -v "$c" >/dev/null 2>&1 || missing+=("${PKG[$c]}")
    done
    [[ -x "$TIME_BIN" ]] || missing+=(time)
    ((${#missing[@]})) || return 0
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

if [[ "${BENCH_BUILD:-0}" == 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release >&2) || log "cargo build failed; measuring whatever binary exists"
fi

# ------------------------------------------------------------------ input capture
TARGET="$(python3 -c 'import sys; print(int(float(sys.argv[1]) * (1 << 30)))' "$SIZE")"
meta_ok() { # FILE -> 0 if FILE.meta.json has our seed and size and the file is complete
    [[ -f "$1" && -f "$1.meta.json" ]] || return 1
    python3 - "$1" "$SEED" "$TARGET" <<'PY'
import json, os, sys
f, seed, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    m = json.load(open(f + '.meta.json'))
    ok = m['seed'] == seed and m['target_bytes'] == target and m['file_bytes'] == os.path.getsize(f)
except Exception:
    ok = False
sys.exit(0 if ok else 1)
PY
}
FILE=""
for cand in "$OUTDIR/bench.pcap" "$OUTDIR/bench-${SIZE}g.pcap"; do
    if meta_ok "$cand"; then FILE="$cand"; break; fi
done
if [[ -z "$FILE" ]]; then
    FILE="$OUTDIR/bench-${SIZE}g.pcap"
    [[ -f "$GEN" ]] || die "generator not found: $GEN"
    log "generating $FILE ($SIZE GiB, seed $SEED)"
    rm -f "$FILE.meta.json"
    python3 "$GEN" --out "$FILE" --size "$SIZE" --seed "$SEED" >&2 || die "generator failed"
    meta_ok "$FILE" || die "generated file does not match its .meta.json"
else
    log "reusing $FILE"
fi
BYTES="$(stat -c %s "$FILE")"
PACKETS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$FILE.meta.json")"

log "warming the page cache"
cat "$FILE" >/dev/null

# ------------------------------------------------------------------ the commands
WORK="$OUTDIR/bench-work-${SIZE}g"
rm -rf "$WORK" && mkdir -p "$WORK" || die "cannot create $WORK"
# Measure a snapshot of the binary, so a concurrent `cargo build` cannot swap it mid-run.
EXF_BUILT=""
if [[ -x "$EXF" ]] && "$EXF" --version 2>/dev/null | grep -q '^exfilcheck'; then
    EXF_BUILT="$(date -u -r "$EXF" '+%Y-%m-%d %H:%M UTC')"
    cp "$EXF" "$WORK/exfilcheck" && EXF="$WORK/exfilcheck"
fi
qF="$(printf %q "$FILE")"; qW="$(printf %q "$WORK")"; qX="$(printf %q "$EXF")"
INTERNAL="--internal 10.0.0.0/8 --internal fd00::/8"

# nfpcapd 1.7.x takes the flow directory with -w, older releases with -l.
NFDIR_FLAG=-w
if command -v nfpcapd >/dev/null 2>&1 && ! nfpcapd -h 2>&1 | grep -q -- '-w flowdir'; then NFDIR_FLAG=-l; fi

NAMES=(); TOOLS=(); LABELS=(); CMDS=(); PREPS=(); OKS=(); CHECKS=(); NOTES=()
add() { # name tool label ok-exit-codes prepare check note command
    NAMES+=("$1"); TOOLS+=("$2"); LABELS+=("$3"); OKS+=("$4"); PREPS+=("$5"); CHECKS+=("$6"); NOTES+=("$7"); CMDS+=("$8")
}
add cat cat '`cat > /dev/null`' 0 '' '' 'read floor' \
    "cat $qF > /dev/null"
add tshark tshark '`tshark -q -n -z conv,ip -z conv,ipv6`' 0 '' \
    "grep -q 'IPv4 Conversations' $qW/tshark-conv.txt" '' \
    "tshark -q -n -r $qF -z conv,ip -z conv,ipv6 > $qW/tshark-conv.txt"
add argus argus '`argus -r -w`' 0 "rm -f $qW/argus.out" "test -s $qW/argus.out" \
    'wall includes argus waiting out its 1 s timer at EOF; compare CPU s' \
    "argus -r $qF -w $qW/argus.out"
add nfpcapd nfpcapd "\`nfpcapd -r $NFDIR_FLAG\`" 0 "rm -rf $qW/nfpcapd && mkdir -p $qW/nfpcapd" \
    "ls $qW/nfpcapd/nfcapd.* >/dev/null 2>&1" '' \
    "nfpcapd -r $qF $NFDIR_FLAG $qW/nfpcapd"
add ex-flows exfilcheck '`exfilcheck flows -o /dev/null`' 0 '' '' '' \
    "$qX flows $qF -o /dev/null"
add ex-analyze exfilcheck '`exfilcheck analyze --quiet`' '0 1 3' '' '' "default threads (nproc)" \
    "$qX analyze $qF --quiet $INTERNAL"
add ex-analyze-j1 exfilcheck '`exfilcheck analyze --quiet -j1`' '0 1 3' '' '' 'one worker thread' \
    "$qX analyze $qF --quiet -j1 $INTERNAL"
add ex-analyze-json exfilcheck '`exfilcheck analyze --quiet --json`' '0 1 3' "rm -f $qW/report.json" \
    "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' $qW/report.json" 'JSON report written' \
    "$qX analyze $qF --quiet $INTERNAL --json $qW/report.json"

have_tool() {
    if [[ "$1" == exfilcheck ]]; then [[ -n "$EXF_BUILT" ]]; else command -v "$1" >/dev/null 2>&1; fi
}
in_list() { local x; for x in $2; do [[ "$x" == "$1" ]] && return 0; done; return 1; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) exit 1; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
fmt() { awk -v x="$1" -v d="$2" 'BEGIN {printf "%.*f", d, x}'; }
oneline() { printf '%s' "$1" | tr -s '\n\t|' '   ' | cut -c1-"${2:-120}" | sed 's/ *$//'; }

declare -A VERDICT=([1]=CONTRADICTED [3]=INCONCLUSIVE)
HAVE_HF=0; command -v hyperfine >/dev/null 2>&1 && HAVE_HF=1
HAVE_TIME=0; [[ -x "$TIME_BIN" ]] && HAVE_TIME=1

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 | $8 |"); }

for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}"; tool="${TOOLS[$i]}"; label="${LABELS[$i]}"; cmd="${CMDS[$i]}"
    prep="${PREPS[$i]}"; oks="${OKS[$i]}"; check="${CHECKS[$i]}"; note="${NOTES[$i]}"
    if ! have_tool "$tool"; then
        if [[ "$tool" == exfilcheck ]]; then note="not measured: no working exfilcheck binary at $EXF (cargo build --release)"
        else note="not measured: $tool not installed (Debian package ${PKG[$tool]:-?})"; fi
        row "$label" – – – – – – "$note"; log "$name: $note"; continue
    fi
    log "$name: $cmd"

    # One untimed-by-hyperfine run under /usr/bin/time: exit code, output check, peak RSS.
    [[ -n "$prep" ]] && bash -c "$prep"
    rss="–"
    if ((HAVE_TIME)); then
        "$TIME_BIN" -f '%e %U %S %M' -o "$WORK/$name.time" bash -c "$cmd" >"$WORK/$name.out" 2>"$WORK/$name.err"
        rc=$?
        t="$(tail -n 1 "$WORK/$name.time" 2>/dev/null)"
        [[ "$t" =~ ^[0-9.]+\ [0-9.]+\ [0-9.]+\ ([0-9]+)$ ]] && rss="$(fmt "$(awk -v k="${BASH_REMATCH[1]}" 'BEGIN {print k/1024}')" 0)"
    else
        bash -c "$cmd" >"$WORK/$name.out" 2>"$WORK/$name.err"; rc=$?
    fi
    if ! in_list "$rc" "$oks"; then
        err="$(oneline "$(grep -v 'Running as user' "$WORK/$name.err" | tail -n 2)")"
        row "$label" – – – – – "$rss" "FAILED: exit $rc${err:+: $err}"; log "$name failed (exit $rc)"; continue
    fi
    if [[ -n "$check" ]] && ! bash -c "$check"; then
        row "$label" – – – – – "$rss" "FAILED: exit $rc but output check failed ($check)"; log "$name: output check failed"; continue
    fi

    if [[ "$rc" != 0 ]]; then # accepted non-zero exit: exfilcheck's verdict
        v=""; [[ "$tool" == exfilcheck ]] && v="${VERDICT[$rc]:-}"
        note="exit $rc${v:+ = $v}${note:+; $note}"
    fi

    # Timed runs.
    med=""; lo=""; hi=""; cpu=""; bad=""
    if ((HAVE_HF)); then
        hf=(hyperfine --runs "$RUNS" --style none --export-json "$WORK/$name.json" -n "$name")
        [[ -n "$prep" ]] && hf+=(--prepare "$prep")
        [[ "$oks" != 0 ]] && hf+=(--ignore-failure)
        if "${hf[@]}" -- "$cmd" >"$WORK/$name.hyperfine.log" 2>&1; then
            read -r med lo hi cpu bad < <(python3 - "$WORK/$name.json" "$oks" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['results'][0]
oks = {int(x) for x in sys.argv[2].split()}
bad = [c for c in (r.get('exit_codes') or []) if c is not None and c not in oks]
times = sorted(r['times'])
n = len(times)
med = r.get('median', times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2)
print(med, min(times), max(times), r['user'] + r['system'], bad[0] if bad else '')
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
                "$TIME_BIN" -f '%U %S' -o "$WORK/$name.t" bash -c "$cmd" >/dev/null 2>>"$WORK/$name.err"; rc=$?
            else
                bash -c "$cmd" >/dev/null 2>>"$WORK/$name.err"; rc=$?
            fi
            t1=$(date +%s%N)
            in_list "$rc" "$oks" || bad="$rc"
            c="$( ((HAVE_TIME)) && awk 'END {print $1 + $2}' "$WORK/$name.t" || echo nan)"
            echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}') $c" >>"$WORK/$name.runs"
        done
        med="$(awk '{print $1}' "$WORK/$name.runs" | median)"
        lo="$(awk '{print $1}' "$WORK/$name.runs" | sort -g | head -n 1)"
        hi="$(awk '{print $1}' "$WORK/$name.runs" | sort -g | tail -n 1)"
        cpu="$(awk '$2 != "nan" {s += $2; n++} END {if (n) print s / n; else print "nan"}' "$WORK/$name.runs")"
    fi
    if [[ -n "$bad" || -z "$med" ]]; then
        [[ "$bad" =~ ^[0-9]+$ ]] && bad="exit $bad in a timed run"
        row "$label" – – – – – "$rss" "FAILED: ${bad:-no timing}"; log "$name: ${bad:-no timing}"; continue
    fi
    mbs="$(fmt "$(awk -v b="$BYTES" -v s="$med" 'BEGIN {print (s > 0) ? b / 1e6 / s : 0}')" 0)"
    mps="$(fmt "$(awk -v p="$PACKETS" -v s="$med" 'BEGIN {print (s > 0) ? p / 1e6 / s : 0}')" 2)"
    cpu_s="$( [[ "$cpu" == nan || -z "$cpu" ]] && echo – || fmt "$cpu" 3)"
    row "$label" "$(fmt "$med" 3)" "$(fmt "$lo" 3)–$(fmt "$hi" 3)" "$cpu_s" "$mbs" "$mps" "$rss" "$note"
done

# ------------------------------------------------------------------ report
ver() { "$@" 2>/dev/null | grep -v 'Running as user' | head -n 1; }
V_EXF="exfilcheck: not built"; [[ -n "$EXF_BUILT" ]] && V_EXF="$(ver "$EXF" --version)"
GIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]] && GIT="$GIT+uncommitted changes"
[[ -n "$EXF_BUILT" ]] && V_EXF="$V_EXF (git $GIT, binary built $EXF_BUILT)"
V_TSH="$(command -v tshark >/dev/null && ver tshark --version | sed 's/ (Git.*//' || echo 'tshark: missing')"
V_ARG="$(command -v argus >/dev/null && { argus -h 2>&1 | grep -m1 -i 'version' || true; } || echo 'argus: missing')"
V_NFP="$(command -v nfpcapd >/dev/null && { nfpcapd -V 2>&1 | head -n 1 | sed 's/: Version: */ /' || true; } || echo 'nfpcapd: missing')"
V_HF="$( ((HAVE_HF)) && ver hyperfine --version || echo 'hyperfine: missing (own timing loop)')"
V_CAT="$(ver cat --version)"
CPU="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: *//')"
LOAD="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
SIZE_H="$(python3 -c 'import sys; b=int(sys.argv[1]); print(f"{b:,} B ({b/2**30:.3f} GiB)")' "$BYTES")"
PK_H="$(python3 -c 'import sys; print(f"{int(sys.argv[1]):,}")' "$PACKETS")"

RESULT="$OUTDIR/results.md"
{
    echo "**$(date -u '+%Y-%m-%d %H:%M UTC')** · nproc $(nproc) · CPU ${CPU:-?} · load avg ${LOAD:-?} at start · input \`$(basename "$FILE")\` $SIZE_H, $PK_H packets (seed $SEED) · $V_EXF · $V_TSH · $V_ARG · $V_NFP · $V_HF · $V_CAT"
    echo
    echo "| command | median s | min–max s | CPU s | MB/s | M pkt/s | peak RSS MiB | note |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Warm page cache; wall time is the median of $RUNS runs ($( ((HAVE_HF)) && echo 'hyperfine, shell spawn time subtracted' || echo 'own loop, date +%s%N')); CPU s = user + system (mean); MB/s = file bytes / 1e6 / median s; M pkt/s = packets / 1e6 / median s; peak RSS from one extra \`/usr/bin/time -f %M\` run, which also checks the exit code and output. Only comparable with runs on the same machine."
    echo
    echo "Commands:"
    echo
    for i in "${!NAMES[@]}"; do echo "    ${CMDS[$i]}"; done
} >"$RESULT.tmp" && mv "$RESULT.tmp" "$RESULT"
cat "$RESULT"
log "written to $RESULT (raw timings in $WORK)"
