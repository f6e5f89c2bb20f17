"""TuneDesk beside Unsloth on the same model shape, data, simulated card and effective batch
(GPU machine; Unsloth from `.peers/unsloth-site.tgz`, see ../shared/GPU.md).

    python3 -m bench.peers --tokenizer .gpu/tok --out bench/results/peers/peers.json \\
        [--speed deepseek-r1-distill-qwen-1.5b:12,llama-3.1-8b:8,llama-3.1-8b:12] \\
        [--longest llama-3.1-8b:8,qwen2.5-7b:8,...] [--steps 6] [--warmup 2]

Every measurement runs in its own process (bench/child.py).
- speed: `tunedesk train --packing` with its automatic plan on the card (bench/throughput.py
  tunedesk_run), then Unsloth on the same rows, the same card and the same examples per
  optimizer step as TuneDesk's plan. Unsloth is set up as its notebooks set it up
  (FastLanguageModel, 4-bit, LoRA r16 on every linear layer, dropout 0,
  use_gradient_checkpointing="unsloth", 8-bit AdamW), with the best batching a plain loop
  gives it: each step's rows sorted by length, padded per micro-batch, as many rows per
  micro-batch as TuneDesk's plan (which packs them instead), halved on out-of-memory.
  Useful tokens are the non-padding tokens; tokens/s is over the steps after `--warmup`
  (Unsloth compiles every layer on its first step).
- longest: the longest batch-1 sequence that trains `--longest-steps` steps (Unsloth's own
  method for its published table: 4-bit QLoRA on every linear layer, batch 1, rows padded
  to the length), for TuneDesk through bench/max_context.py's child (the planner's
  long-sequence setting) and for Unsloth through the same search, both starting from the
  length TuneDesk's planner predicts for the card, up to `--limit`.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import time
from pathlib import Path

from bench.child import CAPS, GiB, bench_parser, cap_allocator, child_args, random_model, report, run_child, save_json

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _unsloth_model(folder: str, max_len: int):
    import unsloth  # noqa: F401  (must come before transformers)
    from unsloth import FastLanguageModel

    model, tok = FastLanguageModel.from_pretrained(model_name=folder, max_seq_length=max_len, load_in_4bit=True,
                                                   dtype=None, local_files_only=True)
    model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=32, lora_dropout=0, bias="none",
                                             target_modules=TARGETS, use_gradient_checkpointing="unsloth",
                                             random_state=0)
    import bitsandbytes as bnb

    opt = bnb.optim.AdamW8bit([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, tok, opt


def _peaks() -> dict:
    import torch

    return {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GiB, 3),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GiB, 3)}


def unsloth_speed(a) -> dict:
    import torch

    cap_allocator(a.cap)
    model, tok, opt = _unsloth_model(a.model, a.max_len)
    rows = [json.loads(line) for line in open(a.data, encoding="utf-8")]
    seqs = [tok.apply_chat_template([{"role": "user", "content": r["question"]},
                                     {"role": "assistant", "content": r["answer"]}], tokenize=True)
            for r in rows]
    seqs = [list(s["input_ids"] if isinstance(s, dict) else s)[: a.max_len] for s in seqs]
    rng = random.Random(0)
    order = list(range(len(seqs)))
    rng.shuffle(order)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    model.train()
    at = 0
    per_micro = a.micro

    def next_step_rows() -> list[list[int]]:
        nonlocal at
        idx = [order[(at + i) % len(order)] for i in range(a.per_step)]
        at += a.per_step
        return sorted((seqs[i] for i in idx), key=len)  # length-grouped within the step

    def micro_batches(step_rows):
        batch: list[list[int]] = []
        for s in step_rows:  # as many rows as fit TuneDesk's tokens per micro-batch, padded to the longest
            if batch and (len(batch) + 1) * len(s) > a.tokens_per_micro or len(batch) >= per_micro:
                yield batch
                batch = []
            batch.append(s)
        if batch:
            yield batch

    def step() -> int:
        step_rows = next_step_rows()
        useful = 0
        for b in micro_batches(step_rows):
            n = max(map(len, b))
            ids = torch.tensor([s + [pad] * (n - len(s)) for s in b], device="cuda")
            mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in b], device="cuda")
            labels = ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            (loss * len(b) / len(step_rows)).backward()
            useful += int(mask.sum())
        opt.step()
        opt.zero_grad(set_to_none=True)
        return useful

    torch.cuda.reset_peak_memory_stats()
    while True:
        try:
            for _ in range(a.warmup):
                step()
            torch.cuda.synchronize()
            t0, useful = time.perf_counter(), 0
            for _ in range(a.steps):
                useful += step()
            torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            return {"ok": True, "useful_tokens_per_s": useful / seconds, "rows_per_micro_batch_max": per_micro,
                    "examples_per_step": a.per_step, **_peaks()}
        except torch.OutOfMemoryError as e:
            opt.zero_grad(set_to_none=True)
            gc.collect()
            torch.cuda.empty_cache()
            if per_micro == 1:
                return {"ok": False, "oom": True, "error": str(e).splitlines()[0], **_peaks()}
            per_micro //= 2
            a.tokens_per_micro //= 2


def unsloth_longest(a) -> dict:
    import torch

    from bench.max_context import longest

    cap_allocator(a.cap)
    model, tok, opt = _unsloth_model(a.model, a.limit)
    model.train()
    vocab = min(model.config.vocab_size, 49152)

    def trains(length: int) -> dict | None:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            for _ in range(a.steps):
                ids = torch.randint(0, vocab, (1, length), device="cuda")
                model(input_ids=ids, labels=ids).loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            return {"length": length, **_peaks()}
        except torch.OutOfMemoryError:
            opt.zero_grad(set_to_none=True)
            return None

    return longest(trains, a.start, a.limit)


def _cases(text: str) -> list[tuple[str, int]]:
    return [(c.split(":")[0], int(c.split(":")[1])) for c in text.split(",") if c]


def main() -> None:
    from bench.max_context import planner_longest
    from bench.synthetic import write_instruction_jsonl
    from bench.throughput import tunedesk_run

    ap = bench_parser("", workdir="/tmp/peers")
    ap.add_argument("--speed", default="deepseek-r1-distill-qwen-1.5b:12,llama-3.1-8b:8,llama-3.1-8b:12")
    ap.add_argument("--longest", default="llama-3.1-8b:8,llama-3.1-8b:12,qwen2.5-7b:8,qwen2.5-7b:12")
    ap.add_argument("--peers", default="tunedesk,unsloth")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--longest-steps", type=int, default=2)
    ap.add_argument("--limit", type=int, default=32768)
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    a.data = a.workdir / "instructions.jsonl"
    write_instruction_jsonl(a.data, 800)
    peers = a.peers.split(",")
    rows: list[dict] = []
    done = json.loads(a.out.read_text())["rows"] if a.out.is_file() else []
    models_used = [p for p, _ in _cases(a.speed) + _cases(a.longest)]

    def add(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        save_json(a.out, {"rows": done + rows})

    for i, (preset, card) in enumerate(_cases(a.speed)):
        folder = a.model = random_model(preset, a.workdir, a.tokenizer)
        cap, runs = CAPS[card], a.workdir / f"runs-{preset}"
        ours = tunedesk_run(a, cap, True, runs) if "tunedesk" in peers else {}
        add({"kind": "speed", "preset": preset, "card_gb": card, "peer": "tunedesk", **ours})
        if "unsloth" in peers and ours.get("ok"):
            plan = json.loads((runs / f"packed-{cap}" / "plan.json").read_text())
            per_step = plan["micro_batch"] * plan["grad_accum"] * plan.get("processes", 1)
            r = run_child("bench.peers", "speed", "--model", folder, "--data", a.data, "--cap", cap, "--steps", a.steps,
                          "--warmup", a.warmup, "--per-step", per_step, "--micro", plan["micro_batch"],
                          "--tokens-per-micro", plan["micro_batch"] * plan["seq_len"], "--max-len", plan["seq_len"])
            if r.get("ok"):
                r["tunedesk_vs_unsloth"] = round(ours["useful_tokens_per_s"] / r["useful_tokens_per_s"], 3)
            add({"kind": "speed", "preset": preset, "card_gb": card, "peer": "unsloth", **r})
        _drop_model(a, preset, models_used[i + 1:])
    for j, (preset, card) in enumerate(_cases(a.longest)):
        folder = random_model(preset, a.workdir, a.tokenizer)
        cap = CAPS[card]
        # Both searches start where TuneDesk's planner says batch 1 fits: fewer lengths to
        # try than doubling from 4,096 (a long step of an 8B model takes seconds); the search
        # doubles or bisects from there to the same answer whichever peer it is.
        start = planner_longest(preset, cap, a.limit) or 4096
        for peer in peers:
            module = "bench.max_context" if peer == "tunedesk" else "bench.peers"
            extra = [] if peer == "tunedesk" else ["longest"]
            r = run_child(module, *extra, "--model", folder, "--cap", cap, "--limit", a.limit, "--start", start,
                          "--steps", a.longest_steps)
            add({"kind": "longest", "preset": preset, "card_gb": card, "peer": peer, "search_start": start, **r})
        _drop_model(a, preset, models_used[len(_cases(a.speed)) + j + 1:])


def _drop_model(a, preset: str, still_needed: list[str]) -> None:
    """The GPU machine's disk holds ~3 random 8B folders: remove one no later case needs."""
    if preset not in still_needed:
        import shutil

        shutil.rmtree(Path(a.workdir) / preset, ignore_errors=True)


if __name__ == "__main__":
    if "--child" in sys.argv:
        what = sys.argv.pop(sys.argv.index("--child") + 1)
        if what == "speed":
            report(unsloth_speed(child_args(model=str, data=str, cap=float, steps=int, warmup=int, per_step=int,
                                            micro=int, tokens_per_micro=int, max_len=int)))
        else:
            report(unsloth_longest(child_args(model=str, cap=float, limit=int, start=int, steps=int)))
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        main()
