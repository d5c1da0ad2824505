#!/usr/bin/env bash
# Scaling of MPI data-parallel training on this machine: the MNIST autoencoder of
# c_examples/mpi_train.c (784-256-32-256-784, global minibatch 200, SGD) on 1 rank and on 2
# ranks, one thread each, and on 1 rank with 2 threads for comparison. Needs libopenmpi-dev,
# openmpi-bin and libclang-dev.
#   scripts/mpi-scaling.sh [rows] [epochs]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-12000}
epochs=${2:-2}
CARGO_TARGET_DIR=target/mpi cargo build --release --lib --features mpi -q
mkdir -p target/mpi/bench
mpicc -std=c99 -O2 -Wall -Wextra -Werror -Iinclude -Ic_examples c_examples/mpi_train.c \
  -Ltarget/mpi/release -llatent -Wl,-rpath,"$PWD/target/mpi/release" -o target/mpi/bench/mpi_train
# OpenMPI binds each rank to a core; the threaded run must not be bound (--bind-to none).
run() { mpirun --allow-run-as-root --oversubscribe --bind-to "$4" -np "$1" target/mpi/bench/mpi_train "$rows" "$epochs" - "$2" "$3" | grep "rank 0/"; }
rate() { sed -E 's/.* ([0-9]+) samples\/s.*/\1/'; }
one=$(run 1 mpi 1 core | rate)
two=$(run 2 mpi 1 core | rate)
threads=$(run 1 alone 2 none | rate)
echo "| setup | samples/s | speedup over 1 rank | efficiency |"
echo "|---|---|---|---|"
echo "| 1 rank, 1 thread | $one | 1.00 | 100% |"
awk -v a="$one" -v b="$two" 'BEGIN { printf "| 2 ranks, 1 thread each | %d | %.2f | %.0f%% |\n", b, b / a, 50 * b / a }'
awk -v a="$one" -v b="$threads" 'BEGIN { printf "| 1 process, 2 threads (no MPI) | %d | %.2f | %.0f%% |\n", b, b / a, 50 * b / a }'
