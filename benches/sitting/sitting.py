"""One sitting of W1-W3 against JAX: alternating rounds, each run labelled by the machine's L3
state, and the table benches/README.md keeps per machine.

Why rounds and labels: on the 2-core cloud machines this project is measured on, a process runs
in a fast or a slow state (the two vCPUs on one L3 or on two; benches/README.md, stop 39), so a
single run of each side mostly measures which state it drew. Each round runs every side once per
workload, in turn; the round trip of a cache line between the two CPUs is read before and after
each run; the table gives each run's median epoch, marked where the L3s were split, and the
per-round ratios with their median.

usage:
    python3 benches/sitting/sitting.py              # runs the sitting (about 3.5 min a round)
    python3 benches/sitting/sitting.py --parse LOG  # the table of a saved log

environment: ROUNDS (3), ONLY (W1,W2,W3), EPOCHS (3), THREADS (2), SIDES (latent-f32,
latent-bf16,jax-f32,jax-bf16; the bf16 sides are left out on a CPU without AVX-512 BF16),
PEERS_ENV (~/.cache/latent-peers: the venvs of ../shared/bench/peers/setup.sh), LOG
(target/sitting.log).
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
PEERS = os.path.join(ROOT, "../shared/bench/peers")
SIDES = ["latent-f32", "latent-bf16", "jax-f32", "jax-bf16"]
# (numerator, denominator) of the ratio columns, where both sides ran.
RATIOS = [("latent-bf16", "jax-f32"), ("latent-bf16", "jax-bf16"), ("latent-f32", "jax-f32")]


def bench_binary():
    out = subprocess.run(["cargo", "bench", "--bench", "workloads", "--no-run"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    m = re.search(r"Executable benches/workloads\.rs \((\S+)\)", out.stderr + out.stdout)
    if not m:
        sys.exit("could not find the workloads bench binary in cargo's output:\n" + out.stderr)
    return os.path.join(ROOT, m[1])


def bf16_cpu():
    try:
        return any("avx512_bf16" in line.split() for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except OSError:
        return False


def command(side, w, epochs, threads, binary, env_dir, results):
    """(argv, cwd, extra environment) of one run."""
    if side.startswith("latent"):
        precision = side.split("-")[1]
        env = dict(LATENT_MATMUL_PRECISION=precision, ONLY=w, PEERS="none", EPOCHS=str(epochs), THREADS=str(threads))
        return [binary, "--bench"], ROOT, env
    env = dict(OMP_NUM_THREADS=str(threads), PEERS_RESULTS=results,
               XLA_FLAGS=f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}")
    script = "bench_jax.py" if side == "jax-f32" else os.path.join(ROOT, "benches/sitting/jax_bf16.py")
    python = os.path.join(env_dir, "venv-jax/bin/python")
    return [python, script, "--epochs", str(epochs), "--scan", "--workloads", w], PEERS, env


def round_trip(binary):
    """The bench's L3 label: "shared (65 ns)", "split (340 ns)", "busy (5000 ns)" or "-"."""
    out = subprocess.run([binary], env=dict(os.environ, ROUND_TRIP_ONLY="1"), capture_output=True, text=True)
    m = re.search(r"round trip (.+)", out.stdout)
    return m[1].strip() if m else "-"


def run_sitting():
    rounds = int(os.environ.get("ROUNDS", "3"))
    only = os.environ.get("ONLY", "W1,W2,W3").split(",")
    epochs = int(os.environ.get("EPOCHS", "3"))
    threads = int(os.environ.get("THREADS", "2"))
    sides = os.environ.get("SIDES", ",".join(SIDES)).split(",")
    unknown = [s for s in sides if s not in SIDES]
    if unknown:
        sys.exit(f"unknown sides {unknown} in SIDES: choose from {','.join(SIDES)}")
    env_dir = os.path.expanduser(os.environ.get("PEERS_ENV", "~/.cache/latent-peers"))
    log_path = os.environ.get("LOG", os.path.join(ROOT, "target/sitting.log"))
    if not bf16_cpu():
        print("no AVX-512 BF16 on this CPU: the bf16 sides are left out", file=sys.stderr)
        sides = [s for s in sides if not s.endswith("bf16")]
    if any(s.startswith("jax") for s in sides) and not os.path.exists(os.path.join(env_dir, "venv-jax/bin/python")):
        sys.exit(f"no JAX venv in {env_dir}: run ../shared/bench/peers/setup.sh (or set PEERS_ENV)")
    binary = bench_binary()
    results = tempfile.mkdtemp(prefix="sitting-peers-")
    with open(log_path, "w") as log:
        def say(line):
            log.write(line + "\n")
            log.flush()
            print(line, file=sys.stderr)

        say(f"sitting {time.strftime('%Y-%m-%d %H:%M:%S')} rounds {rounds} epochs {epochs} threads {threads} "
            f"cpu {cpu_name()}")
        for r in range(1, rounds + 1):
            for w in only:
                for side in sides:
                    argv, cwd, extra = command(side, w, epochs, threads, binary, env_dir, results)
                    say(f"run {r} {w} {side} {time.strftime('%H:%M:%S')} rt {round_trip(binary)}")
                    out = subprocess.run(argv, cwd=cwd, env=dict(os.environ, **extra), capture_output=True, text=True)
                    for line in (out.stdout + out.stderr).splitlines():
                        if "per-epoch samples/s" in line or re.search(r"jax-scan \S+ epoch \d+:", line):
                            say(line)
                    if out.returncode != 0:
                        say(f"failed {out.returncode}: {(out.stderr or out.stdout)[-300:]!r}")
                    say(f"end rt {round_trip(binary)}")
    print(f"log: {log_path}", file=sys.stderr)
    return open(log_path).read()


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def parse(text):
    """{(round, workload, side): ([epoch samples/s], [L3 labels before and after])} from a log."""
    runs, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"run (\d+) (\S+) (\S+) \S+ rt (\S+)", line)
        if m:
            cur = (int(m[1]), m[2], m[3])
            runs[cur] = ([], [m[4]])
            continue
        m = re.match(r"end rt (\S+)", line)
        if m and cur:
            runs[cur][1].append(m[1])
            cur = None
            continue
        if cur is None:
            continue
        m = re.search(r"per-epoch samples/s \[(.*)\]", line)
        if m:
            runs[cur][0].extend(float(v) for v in m[1].split(","))
        m = re.search(r"jax-scan \S+ epoch \d+: \S+\s+(\d+) samples/s", line)
        if m:
            runs[cur][0].append(float(m[1]))
    return runs


def mark(labels):
    """'' both probes shared, '*' both split, '†' switched, '?' a probe that read another
    process (or none): from the bench's labels, which hold the thresholds."""
    if any(label not in ("shared", "split") for label in labels):
        return "?"
    split = [label == "split" for label in labels]
    return "*" if all(split) else ("" if not any(split) else "†")


def table(runs):
    rounds = sorted({k[0] for k in runs})
    workloads = sorted({k[1] for k in runs})
    sides = [s for s in SIDES if any(k[2] == s for k in runs)]
    ratios = [(a, b) for a, b in RATIOS if a in sides and b in sides]
    head = ["workload"] + sides + [f"{a} / {b}, per round (median)" for a, b in ratios]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in workloads:
        med = {}
        cells = [w]
        for s in sides:
            vals = []
            for r in rounds:
                epochs, labels = runs.get((r, w, s), ([], []))
                med[(r, s)] = statistics.median(epochs) if epochs else None
                vals.append("-" if med[(r, s)] is None else f"{med[(r, s)]:,.0f}{mark(labels)}")
            cells.append(" / ".join(vals))
        for a, b in ratios:
            per = [med[(r, a)] / med[(r, b)] for r in rounds if med.get((r, a)) and med.get((r, b))]
            cells.append(" / ".join(f"{x:.2f}" for x in per) + (f" (**{statistics.median(per):.2f}**)" if per else "-"))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Median epoch samples/s of each run, rounds in order; `*` the two CPUs on different L3s before "
                 "and after the run, `†` switched during it, `?` a probe that read another process's load.")
    return "\n".join(lines)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--parse":
        text = open(sys.argv[2]).read()
    elif len(sys.argv) == 1:
        text = run_sitting()
    else:
        sys.exit(__doc__)
    print(table(parse(text)))


if __name__ == "__main__":
    main()
