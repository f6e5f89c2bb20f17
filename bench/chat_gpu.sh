#!/usr/bin/env bash
# GPU check of the before / after chat on a run that keeps the embedding table in RAM:
# the DeepSeek-R1-Distill-Llama-8B shape (random weights) on a simulated 8 GB card
# (allocator capped at 7.0 GiB), whose automatic plan puts the table in RAM. Trains 2
# steps with `tunedesk train`, then `tunedesk compare` answers one prompt with the base
# and the tuned model. Needs what bench/gpu_smoke.sh needs; writes under $OUT.
set -uo pipefail
OUT=${OUT:-bench/results/chat_gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TUNEDESK_HOME=/tmp/tunedesk-home TUNEDESK_SIMULATE_VRAM_GB=7
PRESET=deepseek-r1-distill-llama-8b
M=${M:-/tmp/planner_check/$PRESET}
[ -f $M/config.json ] || python3 -m bench.make_random_model $PRESET $M --tokenizer .gpu/tok --device cuda > /dev/null
python3 -c "from bench.synthetic import write_instruction_jsonl as w; w('/tmp/instr.jsonl', 400)"
rm -rf /tmp/runs/chat-gpu
python3 -m engine.cli train /tmp/instr.jsonl --model $M --max-steps 2 --eval-every 2 --out /tmp/runs --name chat-gpu \
  --json-events > "$OUT/${PRESET}_7gib_train.jsonl"
echo "train rc=$?"
cp /tmp/runs/chat-gpu/plan.json "$OUT/${PRESET}_7gib_plan.json"
python3 -m engine.cli compare /tmp/runs/chat-gpu --prompt "What is the capital of France?" --max-new-tokens 12 \
  > "$OUT/${PRESET}_7gib_compare.txt" 2> "$OUT/${PRESET}_7gib_compare.err"
echo "compare rc=$?"
cat "$OUT/${PRESET}_7gib_compare.txt"
