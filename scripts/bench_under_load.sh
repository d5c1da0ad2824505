#!/usr/bin/env bash
# W1-W3 training throughput of latent under each wait policy, and of JAX, on a quiet machine and
# with BUSY competing CPU-bound processes (one per core by default), alternating in one sitting.
# Prints one table: median samples/s over ROUNDS rounds per (workload, condition, runner), the
# 1-minute load average before each run, and latent/JAX ratios.
#
#   scripts/bench_under_load.sh                       # 3 rounds, 2 epochs, quiet + 1 busy loop per core
#   ROUNDS=1 EPOCHS=1 POLICIES="spin park" scripts/bench_under_load.sh
#   JAX=0 scripts/bench_under_load.sh                 # latent only
#
# Env: ROUNDS (3), EPOCHS (2), BUSY (number of cores), PIN (1: busy loop i on core i; 0: let
# the scheduler place them), THREADS (2: latent's threads and
# OMP_NUM_THREADS for JAX), POLICIES ("spin spin-then-park park"), SPIN_US (LATENT_WAIT_SPIN_US
# for spin-then-park, default: the library's), ONLY (W1,W2,W3), JAX (1), PEERS_ENV (the peers'
# venvs, ~/.cache/latent-peers: run ../shared/bench/peers/setup.sh once), OUT (a log folder,
# target/bench_under_load). Each latent run is `cargo bench --bench workloads` with PEERS=none;
# JAX is ../shared/bench/peers/bench_jax.py --scan (the better of its per-step jit and its scan
# epochs, each a median over EPOCHS epochs, as the peers' table takes it).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"
EPOCHS="${EPOCHS:-2}"
BUSY="${BUSY:-$(nproc)}"
THREADS="${THREADS:-2}"
POLICIES="${POLICIES:-spin spin-then-park park}"
ONLY="${ONLY:-W1,W2,W3}"
JAX="${JAX:-1}"
PIN="${PIN:-1}"
ENV="${PEERS_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/latent-peers}"
PEERS="$ROOT/../shared/bench/peers"
OUT="${OUT:-$ROOT/target/bench_under_load}"
mkdir -p "$OUT"
RES="$OUT/results.tsv"
: > "$RES"

if [ "$JAX" = 1 ] && [ ! -x "$ENV/venv-jax/bin/python" ]; then
  echo "no JAX venv at $ENV/venv-jax (run $PEERS/setup.sh, or JAX=0)" >&2; exit 1
fi
BIN=$(cargo bench --bench workloads --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$BIN" ] || { echo "could not build the workloads bench" >&2; exit 1; }

BUSY_PIDS=()
stop_busy() { for p in "${BUSY_PIDS[@]}"; do kill "$p" 2>/dev/null; done; BUSY_PIDS=(); }
trap stop_busy EXIT
# PIN=1: busy loop i runs on core i mod nproc. Unpinned, the scheduler sometimes puts both of
# latent's threads on one core (latent then runs at its one-thread speed) and sometimes one
# beside each busy loop (then each product waits for the half whose thread lost its core), so
# single rounds of W3 read 14k or 27k on the Intel machine (stop 32); pinned, every round is
# the second case, and rounds agree within a few percent.
start_busy() {
  for i in $(seq 0 $((BUSY - 1))); do
    if [ "$PIN" = 1 ]; then
      taskset -c $((i % $(nproc))) nice -n 0 sh -c 'while :; do :; done' &
    else
      nice -n 0 sh -c 'while :; do :; done' &
    fi
    BUSY_PIDS+=($!)
  done
  sleep 1
}
load1() { cut -d' ' -f1 /proc/loadavg; }

run_latent() {  # run_latent ROUND COND POLICY
  local log="$OUT/latent_$1_$2_$3.log" l
  l=$(load1)
  local spin=()
  [ -n "${SPIN_US:-}" ] && spin=(LATENT_WAIT_SPIN_US="$SPIN_US")
  env "${spin[@]}" LATENT_WAIT_POLICY="$3" PEERS=none EPOCHS="$EPOCHS" ONLY="$ONLY" THREADS="$THREADS" \
    "$BIN" --bench > "$log" 2>&1
  sed -n 's/^\(W[0-9]\): \([0-9]*\) samples\/s$/\1 \2/p' "$log" | while read -r w v; do
    printf '%s\t%s\t%s\tlatent %s\t%s\t%s\n' "$1" "$2" "$w" "$3" "$v" "$l" >> "$RES"
  done
}

run_jax() {  # run_jax ROUND COND
  local log="$OUT/jax_$1_$2.log" l
  l=$(load1)
  (cd "$PEERS" && PEERS_RESULTS="$OUT/jax_results" OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
    "$ENV/venv-jax/bin/python" bench_jax.py --epochs "$EPOCHS" --scan --workloads "$ONLY") > "$log" 2>&1
  python3 - "$log" "$1" "$2" "$l" >> "$RES" <<'PY'
import re, statistics, sys
log, rnd, cond, load = sys.argv[1:]
v = {}
for line in open(log):
    m = re.match(r"\s*jax-(jit|scan) (W\d) epoch \d+: \S+\s+(\d+) samples/s", line)
    if m:
        v.setdefault((m[2], m[1]), []).append(float(m[3]))
for w in sorted({w for w, _ in v}):
    best = max(statistics.median(s) for (ww, _), s in v.items() if ww == w)
    print(f"{rnd}\t{cond}\t{w}\tJAX\t{best:.0f}\t{load}")
PY
}

for r in $(seq 1 "$ROUNDS"); do
  for cond in quiet busy; do
    [ "$cond" = busy ] && start_busy
    for p in $POLICIES; do
      echo "round $r, $cond: latent $p (load $(load1))" >&2
      run_latent "$r" "$cond" "$p"
      if [ "$JAX" = 1 ] && [ "$p" = "$(echo $POLICIES | cut -d' ' -f1)" ]; then
        echo "round $r, $cond: JAX (load $(load1))" >&2
        run_jax "$r" "$cond"
      fi
    done
    [ "$cond" = busy ] && stop_busy
  done
done

python3 - "$RES" "$BUSY" "$ROUNDS" "$EPOCHS" <<'PY'
import statistics, sys
res, busy, rounds, epochs = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(res) if l.strip()]
d, loads = {}, {}
for rnd, cond, w, who, v, load in rows:
    d.setdefault((w, cond, who), []).append(float(v))
    loads.setdefault((cond, who), []).append(float(load))
whos = [w for w in dict.fromkeys(r[3] for r in rows)]
print(f"median samples/s over {rounds} rounds of {epochs} epochs each; busy = {busy} competing busy loops")
print()
print("| workload | condition | " + " | ".join(whos) + " | " + " | ".join(f"{w} / JAX" for w in whos if w != "JAX") + " |")
print("|---|---|" + "---|" * (2 * len(whos) - ("JAX" in whos)))
for w in sorted({r[2] for r in rows}):
    for cond in ("quiet", "busy"):
        med = {who: statistics.median(d[(w, cond, who)]) if (w, cond, who) in d else float("nan") for who in whos}
        jax = med.get("JAX", float("nan"))
        cells = [f"{med[who]:,.0f}" for who in whos]
        ratios = [f"{med[who] / jax:.2f}" if jax == jax else "-" for who in whos if who != "JAX"]
        print(f"| {w} | {cond} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
print()
print("1-minute load average before the runs (min-max): " + "; ".join(
    f"{cond} {who}: {min(v):.1f}-{max(v):.1f}" for (cond, who), v in loads.items()))
PY
