"""Lean memory's levers at long lengths, one at a time (GPU machine, ../shared/GPU.md):
MLP tiles (engine/lean.tile_mlps) on / off, and compact allocations (expandable
segments, engine/hardware.keep_allocations_compact) on / off, on a 7B / 8B shape, 4-bit,
checkpointing, lean memory, 8-bit AdamW, the embedding table in RAM, LoRA r16, batch 1,
no cap: the raw peak, so the memory model's lean terms can be fitted.

    python3 -m bench.lean_tiles --tokenizer .gpu/tok --out bench/results/lean_tiles/lean_tiles.json \\
        [--presets llama-3.1-8b] [--runs 24576:2048:1,16384:2048:1,16384:0:1,16384:2048:0]

Each run is seq:tile:expandable; each is measured in its own process (bench/memory_probe).
"""

from __future__ import annotations

import os

from bench.child import bench_parser, random_model, save_json
from bench.memory_probe import measure_in_child
from engine.fit.memory import GiB, StepShape, breakdown
from engine.models import model_info


def main() -> None:
    ap = bench_parser("llama-3.1-8b", workdir="/tmp/lean_tiles")
    ap.add_argument("--runs", default="24576:2048:1,16384:2048:1,16384:0:1,16384:2048:0")
    ap.add_argument("--steps", type=int, default=2)
    a = ap.parse_args()
    rows = []
    for name in a.presets.split(","):
        folder = random_model(name, a.workdir, a.tokenizer)
        info = model_info.from_folder(folder)
        for spec in a.runs.split(","):
            seq, tile, expandable = map(int, spec.split(":"))
            os.environ["TUNEDESK_MLP_TILE"] = str(tile)
            os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True" if expandable else ""
            got = measure_in_child(folder, "4bit", True, 1, seq, steps=a.steps, warmup=1, optimizer="adamw_8bit",
                                   embeddings_on_cpu=True, lora_r=16, lean=True)
            shape = StepShape("4bit", 2, 1, seq, True, 16, optimizer="adamw_8bit", embeddings_on_cpu=True, lean=True)
            terms = breakdown(info, shape)
            row = {"preset": name, "seq": seq, "tile": tile, "expandable": bool(expandable), **got,
                   "predicted": sum(terms.values()), "terms": terms}
            row["peak_allocated_gib"] = round(got.get("peak_allocated", 0) / GiB, 3)
            row["peak_reserved_gib"] = round(got.get("peak_reserved", 0) / GiB, 3)
            rows.append(row)
            print({k: v for k, v in row.items() if k not in ("terms", "where")}, flush=True)
            save_json(a.out, {"rows": rows})


if __name__ == "__main__":
    main()
