#!/usr/bin/env bash
# Foundation smoke test on the GPU machine (../shared/GPU.md): a random-weight model in
# the exact shape of Qwen2.5-0.5B with the demo tokenizer, trained 20 steps through the
# real CLI in 4-bit, 8-bit and bf16; then the adapter is loaded back with plain peft.
# Needs: .whl/ (bitsandbytes, platformdirs) and .gpu/tok/ (the demo tokenizer files).
# Writes its results under $OUT (or ./bench/results/gpu_smoke when OUT is unset).
set -uo pipefail
OUT=${OUT:-bench/results/gpu_smoke}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TUNEDESK_HOME=/tmp/tunedesk-home
python3 -m bench.make_random_model qwen2.5-0.5b /tmp/qwen2.5-0.5b-random --tokenizer .gpu/tok --device cuda || exit 1
for q in 4bit 8bit none; do
  python3 -m engine.cli train resources/samples/pirate_trivia.jsonl --model /tmp/qwen2.5-0.5b-random \
    --quant $q --max-steps 20 --eval-every 10 --out /tmp/runs --name q-$q --json-events > "$OUT/train_$q.jsonl"
  echo "quant=$q rc=$?"; tail -n 1 "$OUT/train_$q.jsonl"; ls /tmp/runs/q-$q/adapter
done
python3 - <<'PY' | tee "$OUT/adapter_check.txt"
import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
from peft import PeftModel
q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
base = AutoModelForCausalLM.from_pretrained("/tmp/qwen2.5-0.5b-random", quantization_config=q, device_map={"": 0})
ids = torch.tensor([[1, 520, 9531, 198, 1780, 314]], device="cuda")
with torch.no_grad():
    before = base(ids).logits.float()
    tuned = PeftModel.from_pretrained(base, "/tmp/runs/q-4bit/adapter")
    after = tuned(ids).logits.float()
print("4bit adapter loaded; max |logit change| =", (after - before).abs().max().item())
print("gpu:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
