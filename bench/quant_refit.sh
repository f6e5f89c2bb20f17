#!/bin/bash
# The 4-bit refit of engine/fit/memory.py (QUANT_CKPT_ACT, and norms handing bf16 on in
# quantized models), measured in one GPU command (../shared/GPU.md):
#   - bench.fit_check, through `tunedesk train`, on every architecture run whose plan is
#     4-bit (the runs the refit can change);
#   - bench.planner_check on the presets whose recorded plan the refit changed
#     (`python3 -m bench.planner_check --report` lists them as "remeasure"), in three chains
#     so that no more than three random models sit on disk at once (the 14B in /dev/shm).
# Results: $OUT/{fc_4bit,pc_a,pc_b,pc_14b}.json; merge with --report (see bench/README.md).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /dev/shm/pc
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True  # as the product runs (engine/hardware.py)
FIT="gemma-3-1b_6gb_long phi-4-mini-instruct_12gb_long phi-4-mini-instruct_6gb_long phi-4-mini-instruct_6gb_short
     phi-4-mini-instruct_8gb_long phi-4-mini-instruct_8gb_short qwen3-1.7b_6gb_long qwen3-1.7b_8gb_long stablelm-2-1.6b_6gb_long"
python3 -m bench.fit_check --only $FIT --parallel 6 --gpu-gib 50 --out "$OUT/fc_4bit.json" --time-limit "${FIT_LIMIT:-480}" > "$OUT/fc.log" 2>&1 &
pc() { python3 -m bench.planner_check "$@" >> "$OUT/pc.log" 2>&1; }
(pc --presets deepseek-r1-distill-qwen-14b --cards 24 --workdir /dev/shm/pc --out "$OUT/pc_14b.json") &
(pc --presets qwen2.5-3b,llama-3.2-3b --cards 8 --workdir /tmp/pca --out "$OUT/pc_a.json"
 pc --presets deepseek-llm-7b --cards 8,12 --workdir /tmp/pca --out "$OUT/pc_a.json") &
(pc --presets deepseek-r1-distill-qwen-7b,qwen2.5-7b --cards 12 --workdir /tmp/pcb --out "$OUT/pc_b.json"
 pc --presets deepseek-r1-distill-llama-8b,llama-3.1-8b --cards 8,12 --workdir /tmp/pcb --out "$OUT/pc_b.json") &
wait
rm -rf /dev/shm/pc
tail -2 "$OUT/fc.log"; grep -c '"preset"' "$OUT"/pc_*.json
