#!/bin/bash
# After the structure work (engine/ regrouped, the training loop split, the ranks added):
# the same product path on the GPU, `tunedesk train` with the automatic plan through
# bench.fit_check on cases of every kind (a 7B preset with lean memory and the table in
# RAM at 5,000-6,300 tokens; 4-bit and bf16 architecture runs, a LayerNorm model in 4
# bits), and `--gpus 2` on a one-GPU machine (refused in one sentence).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m bench.fit_check --only qwen2.5-7b_8gb_5k-6.3k stablelm-2-1.6b_6gb_long phi-4-mini-instruct_8gb_short \
    pythia-1.4b_8gb_long gemma-3-1b_12gb_long qwen3-1.7b_16gb_long --parallel 6 --out "$OUT/fc_after.json" \
    --time-limit "${FIT_LIMIT:-420}" > "$OUT/fc.log" 2>&1
tail -3 "$OUT/fc.log"
python3 -m engine.cli train resources/samples/pirate_trivia.jsonl --gpus 2 > "$OUT/gpus2.txt" 2>&1; echo "rc=$?" >> "$OUT/gpus2.txt"
cat "$OUT/gpus2.txt"
