#!/usr/bin/env bash
# A compute-limited run (issue 16, "realism"): an H200 has roughly 15x an RTX 4060's
# arithmetic, so a gain that comes from hiding launch overhead may vanish on a consumer
# card. CUDA MPS limits each client to a share of the GPU's SMs
# (CUDA_MPS_ACTIVE_THREAD_PERCENTAGE); bench/throughput.py then runs the seed recipe and
# `tunedesk train --packing` (rows packed first-fit, and spread evenly as the product does)
# under that limit. If the MPS daemon cannot start (a container without the rights), the
# reason is written to $OUT/compute_limited_error.txt instead.
#
#   OUT=bench/results/throughput PERCENT=7 [PRESET=qwen3-1.7b] [VARIANTS=…] [STEPS=3] bash bench/compute_limited.sh
#
# Needs .whl/ installed on PYTHONPATH and .gpu/tok (../shared/GPU.md).
set -uo pipefail
OUT=${OUT:-bench/results/throughput}; PERCENT=${PERCENT:-7}; mkdir -p "$OUT"
export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
if ! nvidia-cuda-mps-control -d > "$OUT/mps_start.txt" 2>&1; then
  { echo "nvidia-cuda-mps-control -d failed:"; cat "$OUT/mps_start.txt"; } > "$OUT/compute_limited_error.txt"
  exit 0
fi
trap 'echo quit | nvidia-cuda-mps-control; cp -r "$CUDA_MPS_LOG_DIRECTORY" "$OUT/mps-log" 2>/dev/null' EXIT
# A client that cannot reach the daemon still runs, on the whole GPU: the check below says
# whether the limit held (its SM count as the client sees it).
CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=$PERCENT python3 -c "
import json, torch
p = torch.cuda.get_device_properties(0)
print(json.dumps({'percent': $PERCENT, 'sm_count_seen': p.multi_processor_count}))" > "$OUT/mps_client.json" 2>&1
cat "$OUT/mps_client.json"
CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=$PERCENT python3 -m bench.throughput --tokenizer .gpu/tok --cards 12 \
  --preset "${PRESET:-deepseek-r1-distill-qwen-1.5b}" \
  --variants "${VARIANTS:-seed,packed_first_fit,packed}" --steps "${STEPS:-3}" --warmup 1 \
  --out "$OUT/compute_limited_${PRESET:+${PRESET}_}${PERCENT}pct.json" --workdir /tmp/tp
