#!/usr/bin/env bash
# The README's benchmark figures: every compare row measured 5 times over (each the median of
# COMPARE_RUNS interleaved rounds, 5 here), reported as the median of the 5 with their range.
#
#   benches/run.sh                 # all rows, --repeat 5 (REPEAT=N to change)
#   benches/run.sh rt_             # only the rows whose name contains "rt_"
#   benches/run.sh --quick         # smoke run: one round, one repeat (what CI runs)
#   benches/run.sh http_hello_rt   # hyper hello on both runtimes, driven by wrk when it runs
#                                  # (HTTP_LOAD=own: the project's own keep-alive client)
#   benches/run.sh echo_server_rt  # spindle's Server against tokio's accept loop, 256 conns
#   COMPARE_FEATURES=mimalloc benches/run.sh timers_shuffled_1m
#                                  # both sides on mimalloc instead of the system allocator
#
# Other arguments go to compare as they are. The tables go to stdout, progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPARE_RUNS="${COMPARE_RUNS:-5}"
repeat=(--repeat "${REPEAT:-5}")
for arg in "$@"; do
  if [[ "$arg" == "--quick" ]]; then repeat=(); fi
done
features=()
if [[ -n "${COMPARE_FEATURES:-}" ]]; then features=(--features "$COMPARE_FEATURES"); fi
cargo build --release -q -p spindle-benches --bin compare "${features[@]}"
exec target/release/compare "${repeat[@]}" "$@"
