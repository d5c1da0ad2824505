#!/usr/bin/env bash
# GPU checks in two halves, for a GPU machine that has CUDA, PyTorch and compute-sanitizer but no
# Rust toolchain and no network.
#
#   scripts/gpu-check.sh build   # HERE, on the build machine: builds the test binaries, the GPU
#                                # bench binary and liblatent.so, strips them and puts them with
#                                # a manifest into gpu-bundle/ (git-ignored; keep it < 64 MiB)
#   scripts/gpu-check.sh run     # ON the GPU machine, from the repository-root copy that was sent
#                                # with gpu-bundle/ carried: GPU tests, compute-sanitizer memcheck
#                                # and racecheck, the GPU bench, the PyTorch GPU peer; output and
#                                # logs under ${OUT:-gpu-out}/; about 9 minutes at most
#
# With the device `run` tool:  command "bash scripts/gpu-check.sh run", carry ["gpu-bundle"],
# timeout_s 600. See benches/gpu_notes.md.
#
# build, environment:
#   CARGO_FEATURES   extra --features for cargo (the crate's default features include cuda)
#   GPU_TESTS        extended regex on the test target names to bundle (default '^(cuda|gpu|backend|nvrtc)');
#                    the lib's unit-test binary is always bundled; BUNDLE_ALL=1 bundles every test
#                    binary (about 2 MB each stripped: it will not fit in 64 MiB)
#   GPU_BENCH        the bench target to build (default gpu_workloads); missing = a warning
# run, environment:
#   OUT              output folder (default gpu-out)
#   BATCHES          batches of the GPU bench and the PyTorch peer (default 256,1024)
#   GPU_TEST_ARGS    extra arguments to the GPU test binaries (e.g. --test-threads=1)
#   LIB_TEST_FILTER  filter for the lib's unit tests on the GPU (default cuda)
#   GPU_SANITIZE_FILTER  test-name filter for the compute-sanitizer runs (default none: all tests
#                    of the GPU test binaries)
#   GPU_BENCH_ARGS   extra arguments to the GPU bench binary
#   TORCH_ARGS       extra arguments to bench_torch_gpu.py (e.g. --tf32); PYTHON: its interpreter
#   T_TESTS T_LIBTESTS T_MEMCHECK T_RACECHECK T_BENCH T_TORCH  per-step time limits in seconds
#                    (defaults 75 20 60 60 110 170; the peer also gets --budget-s limit-45)
#   T_TOTAL          deadline for all steps together (default 540 s): a step gets at most what is
#                    left, and one with under 15 s left is not run (and counts as failed)
# Data sets under ../shared/data are not bundled (too big): the tests that need them skip there.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUNDLE="$ROOT/gpu-bundle"

die() { echo "gpu-check: $*" >&2; exit 1; }
human() { numfmt --to=iec-i --suffix=B "$1" 2>/dev/null || echo "$1 bytes"; }

# ------------------------------------------------------------------------------------ build
build() {
  set -e
  command -v cargo >/dev/null || die "cargo not found (the build half runs on the build machine)"
  command -v python3 >/dev/null || die "python3 not found"
  local feats=()
  if [ -n "${CARGO_FEATURES:-}" ]; then feats=(--features "$CARGO_FEATURES"); fi
  local bench="${GPU_BENCH:-gpu_workloads}"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN

  echo "== cargo build --release --lib ${feats[*]}"
  cargo build --release --lib "${feats[@]}"
  echo "== cargo test --release --no-run ${feats[*]}"
  cargo test --release --no-run "${feats[@]}" --message-format=json >"$tmp/tests.json"
  echo "== cargo bench --no-run --bench $bench ${feats[*]}"
  local have_bench=1
  if ! cargo bench --no-run --bench "$bench" "${feats[@]}" --message-format=json >"$tmp/bench.json" 2>"$tmp/bench.err"; then
    have_bench=0
    echo "gpu-check: WARNING: the bench '$bench' did not build (not written yet?); bundling without it:" >&2
    grep -E "error|no bench target" "$tmp/bench.err" | head -5 >&2 || true
    : >"$tmp/bench.json"
  fi

  # kind <TAB> target name <TAB> executable, one line per built executable
  python3 - "$tmp/tests.json" "$tmp/bench.json" >"$tmp/exes.tsv" <<'EOF'
import json, sys
seen = set()
for path in sys.argv[1:]:
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        m = json.loads(line)
        if m.get("reason") != "compiler-artifact" or not m.get("executable"):
            continue
        kinds = m["target"]["kind"]
        kind = "bench" if "bench" in kinds else "test" if "test" in kinds else \
            "lib" if any(k in kinds for k in ("lib", "rlib", "cdylib", "staticlib")) else kinds[0]
        exe = m["executable"]
        if exe in seen:
            continue
        seen.add(exe)
        print(f"{kind}\t{m['target']['name']}\t{exe}")
EOF
  echo "== built executables"
  cat "$tmp/exes.tsv"

  rm -rf "$BUNDLE"
  mkdir -p "$BUNDLE/bin" "$BUNDLE/lib" "$BUNDLE/scripts" "$BUNDLE/tree"
  local re="${GPU_TESTS:-^(cuda|gpu|backend|nvrtc)}"
  local man="$BUNDLE/manifest.txt"
  {
    echo "# gpu-bundle manifest: kind name path-in-bundle (tab-separated); made by scripts/gpu-check.sh build"
    echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(ldd --version 2>&1 | head -1)"
    echo "# git $(git rev-parse HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (dirty)') features '${CARGO_FEATURES:-default}'"
    printf 'manifest_dir\t-\t%s\n' "$ROOT"
  } >"$man"
  local n_tests=0
  while IFS=$'\t' read -r kind name exe; do
    local keep=0
    case "$kind" in
      lib) keep=1 ;;
      bench) [ "$name" = "$bench" ] && keep=1 ;;
      test) if [ "${BUNDLE_ALL:-0}" = 1 ] || [[ "$name" =~ $re ]]; then keep=1; fi ;;
    esac
    [ "$keep" = 1 ] || continue
    local dest="bin/$kind-$name"
    objcopy --strip-debug "$exe" "$BUNDLE/$dest"
    printf '%s\t%s\t%s\n' "$kind" "$name" "$dest" >>"$man"
    [ "$kind" = test ] && n_tests=$((n_tests + 1))
  done <"$tmp/exes.tsv"
  [ "$n_tests" -gt 0 ] || echo "gpu-check: WARNING: no test target matches '$re' (no GPU integration tests yet?)" >&2
  [ "$have_bench" = 1 ] && ! grep -q "^bench	$bench	" "$man" && \
    echo "gpu-check: WARNING: bench '$bench' built but no executable was reported" >&2

  objcopy --strip-debug target/release/liblatent.so "$BUNDLE/lib/liblatent.so"
  printf 'lib_so\tliblatent.so\tlib/liblatent.so\n' >>"$man"
  cp scripts/bench_torch_gpu.py "$BUNDLE/scripts/"
  printf 'script\tbench_torch_gpu.py\tscripts/bench_torch_gpu.py\n' >>"$man"
  # what the tests read at run time relative to CARGO_MANIFEST_DIR (baked in at compile time)
  for d in src/backend/cuda tests/cuda_shim include; do
    if [ -d "$d" ]; then
      mkdir -p "$BUNDLE/tree/$(dirname "$d")"
      cp -r "$d" "$BUNDLE/tree/$d"
      printf 'tree\t%s\ttree/%s\n' "$d" "$d" >>"$man"
    else
      echo "gpu-check: WARNING: $d missing, not bundled" >&2
    fi
  done
  cp Cargo.toml "$BUNDLE/tree/"

  echo "== $man"
  cat "$man"
  echo "== sizes"
  (cd "$BUNDLE" && du -ab bin lib scripts tree | sort -k2 | awk '{printf "%10d  %s\n", $1, $2}' | grep -E ' (bin|lib|scripts|tree)(/[^/]+)?$' || true)
  local total
  total=$(du -sb "$BUNDLE" | cut -f1)
  echo "gpu-bundle total: $total bytes ($(human "$total"))"
  if [ "$total" -gt $((64 * 1024 * 1024)) ]; then
    die "gpu-bundle is over 64 MiB: the device run tool will not carry it (narrow GPU_TESTS)"
  fi
  echo "gpu-check build: done. On the GPU machine: bash scripts/gpu-check.sh run (carry [\"gpu-bundle\"])"
}

# ------------------------------------------------------------------------------------ run
FAILED=()
STEP_SUMMARY=()

# step NAME LIMIT_S COMMAND...: runs the command under timeout, its output to the terminal and to
# $OUT/NAME.log; records the status and the elapsed time; never stops the script.
step() {
  local name="$1" limit="$2"
  shift 2
  local t0 t1 rc left
  left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 15 ]; then skip_step "$name" "under 15 s left of T_TOTAL=${T_TOTAL:-540}"; return 0; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo
  echo "==================== $name (limit ${limit}s): $*"
  t0=$(date +%s.%N)
  timeout --signal=TERM --kill-after=15 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  local el
  el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  local verdict=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then verdict="TIMEOUT(rc $rc)"; elif [ "$rc" != 0 ]; then verdict="FAILED(rc $rc)"; fi
  echo "==================== $name: $verdict in ${el}s"
  STEP_SUMMARY+=("$(printf '%-28s %-16s %7ss' "$name" "$verdict" "$el")")
  [ "$verdict" = ok ] || FAILED+=("$name")
  return 0
}

skip_step() {  # skip_step NAME WHY: a step that could not run counts as failed
  echo
  echo "==================== $1: NOT RUN: $2"
  STEP_SUMMARY+=("$(printf '%-28s %-16s %s' "$1" "NOT RUN" "$2")")
  FAILED+=("$1")
}

run() {
  [ -f "$BUNDLE/manifest.txt" ] || die "$BUNDLE/manifest.txt missing: run 'scripts/gpu-check.sh build' on the build machine and carry gpu-bundle"
  OUT="${OUT:-gpu-out}"
  mkdir -p "$OUT"
  OUT="$(cd "$OUT" && pwd)"
  local T0 batches
  T0=$(date +%s)
  DEADLINE=$((T0 + ${T_TOTAL:-540}))
  batches="${BATCHES:-256,1024}"

  # CUDA libraries: the toolkit's, then the pip nvidia/*/lib folders of the installed torch
  local extra=""
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && extra="$extra:$d"
  done
  local pydirs
  pydirs=$(python3 - <<'EOF' 2>/dev/null
import glob, os
dirs = []
try:
    import nvidia
    for base in list(nvidia.__path__):
        dirs += sorted(glob.glob(os.path.join(base, "*", "lib")))
        dirs += sorted(glob.glob(os.path.join(base, "cu*", "lib")))  # CUDA 13 wheels: nvidia/cu13/lib
except Exception:
    pass
try:
    import torch
    dirs.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
except Exception:
    pass
seen = []
for d in dirs:
    if os.path.isdir(d) and d not in seen:
        seen.append(d)
print(":".join(seen))
EOF
)
  [ -n "$pydirs" ] && extra="$extra:$pydirs"
  export LD_LIBRARY_PATH="${extra#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="$PATH:/usr/local/cuda/bin"
  export LATENT_REQUIRE_GPU=1
  echo "gpu-check run: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(ldd --version 2>&1 | head -1)"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  grep '^#' "$BUNDLE/manifest.txt"

  # the manifest dir baked into the test binaries: make it resolve to a tree holding the files the
  # tests read (this repository copy if it has them, else the bundled tree)
  local mdir src
  mdir=$(awk -F'\t' '$1 == "manifest_dir" { print $3 }' "$BUNDLE/manifest.txt")
  if [ -d "$ROOT/src/backend/cuda" ]; then src="$ROOT"; else src="$BUNDLE/tree"; fi
  if [ "$mdir" = "$ROOT" ]; then
    echo "manifest dir $mdir is this copy"
  elif [ -e "$mdir" ]; then
    echo "manifest dir $mdir exists here; left as it is"
  elif mkdir -p "$(dirname "$mdir")" 2>/dev/null && ln -s "$src" "$mdir" 2>/dev/null; then
    echo "manifest dir $mdir -> $src (symlink made)"
  else
    echo "gpu-check: WARNING: cannot create $mdir: tests reading files under it will fail" >&2
  fi

  echo
  echo "==================== nvidia-smi"
  nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt" || echo "gpu-check: nvidia-smi failed" >&2
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit \
    --format=csv 2>&1 | tee -a "$OUT/nvidia-smi.txt" || true
  command -v nvcc >/dev/null && nvcc --version | tail -2
  cp "$BUNDLE/manifest.txt" "$OUT/manifest.txt"

  local tests=() benchbin="" libbin=""
  while IFS=$'\t' read -r kind name path; do
    case "$kind" in
      test) tests+=("$BUNDLE/$path") ;;
      bench) benchbin="$BUNDLE/$path" ;;
      lib) libbin="$BUNDLE/$path" ;;
    esac
  done < <(grep -v '^#' "$BUNDLE/manifest.txt")
  for b in "${tests[@]}" $benchbin $libbin; do
    if ldd "$b" 2>&1 | grep -q "not found"; then
      echo "gpu-check: WARNING: $b has missing shared libraries:" >&2
      ldd "$b" | grep "not found" >&2
    fi
  done

  # (a) GPU integration tests (and the lib's unit tests whose names contain LIB_TEST_FILTER)
  # shellcheck disable=SC2086
  if [ "${#tests[@]}" = 0 ]; then
    skip_step tests "no cuda*/gpu* test binary in the bundle"
  else
    for b in "${tests[@]}"; do
      step "test-$(basename "$b" | sed 's/^test-//')" "${T_TESTS:-75}" "$b" --nocapture ${GPU_TEST_ARGS:-}
    done
  fi
  if [ -n "$libbin" ]; then
    # shellcheck disable=SC2086
    step lib-unit-tests "${T_LIBTESTS:-20}" "$libbin" "${LIB_TEST_FILTER:-cuda}" --nocapture ${GPU_TEST_ARGS:-}
  fi

  # (b) compute-sanitizer memcheck and racecheck over the GPU test binaries
  if ! command -v compute-sanitizer >/dev/null; then
    skip_step compute-sanitizer "compute-sanitizer not on PATH (nor in /usr/local/cuda/bin)"
  elif [ "${#tests[@]}" = 0 ]; then
    skip_step compute-sanitizer "no GPU test binary"
  else
    local filt=() tool
    [ -n "${GPU_SANITIZE_FILTER:-}" ] && filt=("$GPU_SANITIZE_FILTER")
    for tool in memcheck racecheck; do
      local limit=${T_MEMCHECK:-60}
      [ "$tool" = racecheck ] && limit=${T_RACECHECK:-60}
      for b in "${tests[@]}"; do
        # Only the binaries that launch kernels (SANITIZE_TESTS, default cuda_device and backend_vae).
        basename "$b" | grep -Eq "${SANITIZE_TESTS:-cuda_device|backend_vae}" || continue
        step "$tool-$(basename "$b" | sed 's/^test-//')" "$limit" compute-sanitizer --tool "$tool" \
          --error-exitcode 97 --target-processes all --log-file "$OUT/$tool-$(basename "$b").sanitizer.txt" \
          "$b" "${filt[@]}" --nocapture --test-threads=1
        cat "$OUT/$tool-$(basename "$b").sanitizer.txt" 2>/dev/null | tail -20
      done
    done
  fi

  # (c) the GPU bench
  if [ -n "$benchbin" ]; then
    # shellcheck disable=SC2086
    step bench-gpu_workloads "${T_BENCH:-110}" env BATCHES="$batches" LATENT_BENCH_OUT="$OUT" \
      "$benchbin" --bench ${GPU_BENCH_ARGS:-}
  else
    skip_step bench-gpu_workloads "no bench binary in the bundle (was benches/gpu_workloads.rs written?)"
  fi

  # (d) the PyTorch peer on the same GPU
  local py="$ROOT/scripts/bench_torch_gpu.py"
  [ -f "$py" ] || py="$BUNDLE/scripts/bench_torch_gpu.py"
  local tt=${T_TORCH:-170} left
  left=$((DEADLINE - $(date +%s)))
  [ "$tt" -gt "$left" ] && tt=$left
  local budget=$((tt > 90 ? tt - 45 : tt / 2))
  # shellcheck disable=SC2086
  step bench_torch_gpu "$tt" "${PYTHON:-python3}" "$py" --batches "$batches" --modes eager,compile \
    --json "$OUT/bench_torch_gpu.json" --budget-s "$budget" ${TORCH_ARGS:-}

  echo
  echo "==================== summary ($(($(date +%s) - T0))s in all; output in $OUT)"
  printf '%s\n' "${STEP_SUMMARY[@]}" | tee "$OUT/summary.txt"
  if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "gpu-check: FAILED steps: ${FAILED[*]}" | tee -a "$OUT/summary.txt"
    exit 1
  fi
  echo "gpu-check: all steps passed" | tee -a "$OUT/summary.txt"
}

case "${1:-}" in
  build) build ;;
  run)
    mkdir -p "${OUT:-gpu-out}"
    run 2>&1 | tee "${OUT:-gpu-out}/gpu-check.log"
    exit "${PIPESTATUS[0]}"
    ;;
  *) echo "usage: $0 build|run   (see the comments at the top)" >&2; exit 2 ;;
esac
