"""Measure the peak GPU memory of training steps and compare it with engine.fit.memory.

    python3 -m bench.memory_probe MODEL_FOLDER --out results.json [--shapes 4bit:1:1:512,...]

Each shape is quant:checkpointing(0/1):micro_batch:seq_len[:optimizer[:embeddings[:attention[:copies]]]]:
the optimizer adamw (default) or adamw_8bit; the embeddings gpu (default) or cpu (the table
in RAM); the attention sdpa (default, what the engine loads) or eager; copies bf16 (default)
or fp32, the fp32 copies of embeddings / lm_head / norms that peft's
prepare_model_for_kbit_training makes (the common QLoRA recipe; the engine skips it). Two
shapes that differ in one field measure that one lever. Each shape runs in its own process
(bench/child.py), so nothing of one shape's model stays on the GPU for the next; the model
is loaded through the engine's own loader, LoRA r16 on all linear layers is attached, and
--steps (3) steps run, after --warmup (0) untimed ones, on random token ids with every
token trained; peak allocated / reserved bytes are recorded beside the memory model's
prediction and its terms. Raw data for calibrating engine/fit/memory.py; bench/planner_check.py
builds on it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import traceback
from pathlib import Path

import torch

from bench.child import cap_allocator, child_args, report, run_child, save_json
from engine.config import LoraConfig, ModelConfig
from engine.fit.memory import StepShape, breakdown
from engine.models import model_info
from engine.models.loading import add_lora, choose_placement, load_model
from engine.models.loss import loss_sum

DEFAULT_SHAPES = "none:0:1:512,none:0:1:2048,none:1:1:2048,none:0:4:512,4bit:0:1:512,4bit:1:1:2048,4bit:1:2:1024,4bit:0:2:1024"


def measure(folder: Path, quant: str, ckpt: bool, mb: int, seq: int, steps: int = 3, warmup: int = 0,
            optimizer: str = "adamw", embeddings_on_cpu: bool = False, lora_r: int = 16, lean: bool = False,
            attention: str = "sdpa", copies: str = "bf16") -> dict:
    """Peak memory and speed of `steps` training steps, loaded the way the engine loads
    (unless attention / copies ask for what the engine does not do)."""
    from engine.config import TrainConfig
    from engine.training.optim import make_optimizer

    cfg = ModelConfig(source=str(folder), quantization=quant, gradient_checkpointing=ckpt, embeddings_on_cpu=embeddings_on_cpu)
    placement = choose_placement(cfg, "cuda", print)
    base = load_model(folder, cfg, placement, embedding_module=model_info.from_folder(folder).embedding_module)
    if attention != "sdpa":
        base.set_attn_implementation(attention)
    if copies == "fp32":
        from peft import prepare_model_for_kbit_training

        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)  # add_lora sets checkpointing
    model = add_lora(base, LoraConfig(r=lora_r, alpha=2 * lora_r), gradient_checkpointing=ckpt, lean=lean)
    model.train()
    opt = make_optimizer(model, TrainConfig(lr=1e-4), optimizer)
    torch.cuda.synchronize()
    weights = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    vocab = model.config.vocab_size
    t0 = time.perf_counter()
    result: dict = {}
    try:
        for i in range(warmup + steps):
            if i == warmup:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
            ids = torch.randint(0, min(vocab, 49152), (mb, seq), device="cuda")
            with torch.autocast("cuda", dtype=placement.dtype):
                loss = loss_sum(model, ids, torch.ones_like(ids), ids) / ids.numel()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        result["ok"] = True
    except torch.OutOfMemoryError as e:  # which step, and the allocation that failed
        result.update(ok=False, error=f"step {i}: " + str(e).split(". GPU")[0][:300],
                      where=[f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(e.__traceback__)][-12:])
    result.update(
        seconds_per_step=(time.perf_counter() - t0) / steps,
        tokens_per_s=mb * seq * steps / (time.perf_counter() - t0),
        weights_allocated=weights,
        peak_allocated=torch.cuda.max_memory_allocated(),
        peak_reserved=torch.cuda.max_memory_reserved(),
    )
    del base, model, opt
    gc.collect()
    torch.cuda.empty_cache()
    return result


def measure_in_child(folder: Path, quant: str, ckpt: bool, mb: int, seq: int, *, cap_gib: float = 0, steps: int = 3,
                     warmup: int = 0, optimizer: str = "adamw", embeddings_on_cpu: bool = False, lora_r: int = 16,
                     lean: bool = False, attention: str = "sdpa", copies: str = "bf16") -> dict:
    """measure() in a fresh process, its allocator capped at cap_gib (0: the whole GPU)."""
    return run_child("bench.memory_probe", "--model", folder, "--cap", cap_gib, "--quant", quant, "--ckpt", int(ckpt),
                     "--mb", mb, "--seq", seq, "--steps", steps, "--warmup", warmup, "--optimizer", optimizer,
                     "--cpu-embed", int(embeddings_on_cpu), "--rank", lora_r, "--lean", int(lean), "--attention", attention,
                     "--copies", copies)


def child() -> None:
    a = child_args(model=Path, cap=float, quant=str, ckpt=int, mb=int, seq=int, steps=int, warmup=int, optimizer=str,
                   cpu_embed=int, rank=int, lean=int, attention=str, copies=str)
    if a.cap:
        cap_allocator(a.cap)
    report(measure(a.model, a.quant, a.ckpt == 1, a.mb, a.seq, steps=a.steps, warmup=a.warmup, optimizer=a.optimizer,
                   embeddings_on_cpu=a.cpu_embed == 1, lora_r=a.rank, lean=a.lean == 1, attention=a.attention,
                   copies=a.copies))


def parse_shape(spec: str) -> dict:
    """quant:ckpt:mb:seq[:optimizer[:embeddings[:attention[:copies]]]] -> measure()'s arguments."""
    parts = spec.split(":")
    if not 4 <= len(parts) <= 8:
        raise ValueError(f"{spec}: expected quant:ckpt:mb:seq[:optimizer[:embeddings[:attention[:copies]]]]")
    quant, ckpt, mb, seq, optimizer, embeddings, attention, copies = parts + ["adamw", "gpu", "sdpa", "bf16"][len(parts) - 4 :]
    return dict(quant=quant, ckpt=ckpt == "1", mb=int(mb), seq=int(seq), optimizer=optimizer,
                embeddings_on_cpu=embeddings == "cpu", attention=attention, copies=copies)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--shapes", default=DEFAULT_SHAPES)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per shape")
    ap.add_argument("--warmup", type=int, default=0, help="untimed steps before them (the peak counts them too)")
    a = ap.parse_args()
    info = model_info.from_folder(a.model)
    rows = []
    for spec in a.shapes.split(","):
        k = parse_shape(spec)
        shape = StepShape(k["quant"], 2, k["mb"], k["seq"], k["ckpt"], optimizer=k["optimizer"],
                          embeddings_on_cpu=k["embeddings_on_cpu"])
        predicted = breakdown(info, shape)
        got = measure_in_child(a.model, k.pop("quant"), k.pop("ckpt"), k.pop("mb"), k.pop("seq"), steps=a.steps,
                               warmup=a.warmup, **k)
        row = {"shape": spec, **got, "predicted": sum(predicted.values()), "terms": predicted}
        row["ratio"] = round(row.get("peak_allocated", 0) / row["predicted"], 3)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "terms"}), flush=True)
    save_json(a.out, {"model": str(a.model), "gpu": torch.cuda.get_device_name(0), "rows": rows})


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
