#!/usr/bin/env bash
# GPU check of out-of-memory recovery: a run deliberately too big for a simulated 3 GiB
# card (micro-batch 32 without gradient checkpointing, both forced, on the Qwen2.5-0.5B
# shape) must recover and finish.
# Needs what bench/gpu_smoke.sh needs; writes under $OUT.
set -uo pipefail
OUT=${OUT:-bench/results/oom_recovery}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TUNEDESK_HOME=/tmp/tunedesk-home
[ -d /tmp/qwen2.5-0.5b-random ] || python3 -m bench.make_random_model qwen2.5-0.5b /tmp/qwen2.5-0.5b-random --tokenizer .gpu/tok --device cuda
TUNEDESK_SIMULATE_VRAM_GB=3 python3 -m engine.cli train resources/samples/support_desk.json --model /tmp/qwen2.5-0.5b-random \
  --batch 32 --grad-accum 1 --no-gradient-checkpointing --max-steps 6 --eval-every 6 --out /tmp/runs --name oom --json-events > "$OUT/oom_run.jsonl"
echo "rc=$?"; grep -E '"oom_recovery"|"finished"' "$OUT/oom_run.jsonl"
