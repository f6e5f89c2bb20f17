#!/usr/bin/env bash
# GPU check of `tunedesk train` with its automatic plan on simulated 8 GB and 12 GB cards
# (allocator capped at 7.0 / 10.5 GiB): the DeepSeek-R1-Distill-Qwen-7B shape with random
# weights, instruction-style data (median ~200, p95 ~800 tokens). The run must plan,
# calibrate, train 12 steps and finish without an out-of-memory error.
# Needs what bench/gpu_smoke.sh needs; writes under $OUT.
set -uo pipefail
OUT=${OUT:-bench/results/auto_plan_train}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TUNEDESK_HOME=/tmp/tunedesk-home
PRESET=${PRESET:-deepseek-r1-distill-qwen-7b}
M=${M:-/tmp/planner_check/$PRESET}  # planner_check --keep leaves it there
[ -f $M/config.json ] || python3 -m bench.make_random_model $PRESET $M --tokenizer .gpu/tok --device cuda
python3 -c "from bench.synthetic import write_instruction_jsonl as w; w('/tmp/instr.jsonl', 400)"
for gib in ${CAPS:-7 10.5}; do
  TUNEDESK_SIMULATE_VRAM_GB=$gib python3 -m engine.cli train /tmp/instr.jsonl --model $M --max-steps 12 --eval-every 12 \
    --out /tmp/runs --name auto-$gib --json-events > "$OUT/${PRESET}_${gib}gib.jsonl"
  echo "cap=$gib rc=$?"
  grep -E "\"(started|oom_recovery|finished)\"|[Pp]lan|[Cc]alibrat" "$OUT/${PRESET}_${gib}gib.jsonl" | cut -c1-600
  cp /tmp/runs/auto-$gib/plan.json "$OUT/${PRESET}_${gib}gib_plan.json" 2>/dev/null
done
