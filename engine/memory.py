"""Peak GPU memory of a LoRA / QLoRA training step, term by term.

    peak = weights + lora_state + activations + logits + overhead

weights      (the input embedding table is left out when it is kept in RAM: a lookup
             needs no GPU, and untied models can spare it)
             block linears at 4 bits (NF4: 0.5 B/param + 1/64 B absmax with double
             quantization + its fp32 second level), 8 bits (1 B + fp32 row scale), or the
             compute dtype (2 B bf16/fp16); embeddings, lm_head and norms stay in the
             compute dtype (bitsandbytes never quantizes them, and TuneDesk makes no
             fp32 copies of them).
lora_state   LoRA params x (4 B fp32 weight + 4 B grad + optimizer: 8 B AdamW, 2 B 8-bit).
activations  tokens T = micro_batch x seq_len. Without checkpointing each of L blocks
             keeps ~ (A_H h + A_I i) bytes per token (SDPA attention: linear in T, no T²
             score matrix); with checkpointing only each block's input (B h) is kept,
             plus one block recomputed during backward. Lean memory (engine/lean.py)
             keeps the block inputs in RAM and has no LoRA dropout: what remains is
             the recomputed block, (LEAN_H h + LEAN_I i) bytes per token.
logits       one chunk of the chunked linear cross-entropy (engine/loss.py: never the
             full T x vocab logits) + the final hidden states and their trained-row copy.
overhead     allocator slack (FRAG of the transient terms) + cuBLAS/cuDNN workspaces.
             The embedding table in RAM costs nothing here: it is looked up on the CPU
             (engine/loading.py look_up_in_ram), not copied to the GPU per forward.

The per-token constants are bytes measured on the GPU machine (bench/planner_check.py)
and are kept here in one place so the planner can be recalibrated.
"""

from __future__ import annotations

from dataclasses import dataclass

from .loss import BYTES_PER_LOGIT, rows_per_chunk
from .model_info import ModelInfo

GiB = 1024**3
# Calibrated on an H100 against peak *reserved* memory (what a capped allocator runs out
# of): least squares over bench/results/planner_check/planner_check_small.json (7 presets
# x 3 cards), then rounded up a little so the estimate errs high.
A_H = 34.5  # bytes per token per block per hidden unit, without checkpointing (bf16)
A_I = 8.6  # bytes per token per block per intermediate unit
B_H = 2.4  # bytes per token per block per hidden unit kept with checkpointing
RECOMPUTE = 1.4  # the one block recomputed in backward holds this many times a block's activations
# Lean memory's recomputed block: least squares over the 7B / 8B shapes at 2,048 and
# 8,192 tokens (bench/results/levers/levers.json: 11.2, 10.8), rounded up.
LEAN_H = 12.0
LEAN_I = 11.5
FRAG = 0.05
WORKSPACE = 320 * 1024**2
LINEAR_BYTES = {"4bit": 0.5 + 1 / 64 + 4 / (64 * 256), "8bit": 1.0, "none": None}


@dataclass
class StepShape:
    quantization: str = "none"  # none | 8bit | 4bit
    dtype_bytes: int = 2  # compute dtype: 2 (bf16/fp16) on CUDA
    micro_batch: int = 1
    seq_len: int = 1024
    gradient_checkpointing: bool = False
    lora_r: int = 16
    lora_targets: list[str] | str = "all-linear"
    optimizer: str = "adamw"  # adamw | adamw_8bit
    embeddings_on_cpu: bool = False  # the input embedding table stays in RAM (untied models)
    lean: bool = False  # lean memory (with checkpointing): engine/lean.py


def breakdown(m: ModelInfo, s: StepShape) -> dict[str, int]:
    per_linear = LINEAR_BYTES[s.quantization] or s.dtype_bytes
    weights = m.params_linear * per_linear
    if s.quantization == "8bit":
        weights += m.layers * sum(o for _, o in m.linear_shapes.values()) * 4  # fp32 row scales
    on_gpu_embedding = 0 if (s.embeddings_on_cpu and not m.tied_embeddings) else m.params_embedding
    weights += (on_gpu_embedding + m.params_lm_head + m.params_norm + m.params_other) * s.dtype_bytes

    lora = m.lora_params(s.lora_r, s.lora_targets) * (4 + 4 + (2 if s.optimizer == "adamw_8bit" else 8))

    tokens = s.micro_batch * s.seq_len
    per_block = tokens * (A_H * m.hidden_size + A_I * m.intermediate_size) * s.dtype_bytes / 2
    if s.gradient_checkpointing and s.lean:
        activations = tokens * (LEAN_H * m.hidden_size + LEAN_I * m.intermediate_size) * s.dtype_bytes / 2
    elif s.gradient_checkpointing:
        activations = m.layers * tokens * B_H * m.hidden_size * s.dtype_bytes / 2 + RECOMPUTE * per_block
    else:
        activations = m.layers * per_block

    # Chunked linear cross-entropy: one chunk of logits at a time, plus the final hidden
    # states and their trained-row copy.
    logits = min(tokens, rows_per_chunk(m.vocab_size)) * m.vocab_size * BYTES_PER_LOGIT + 2 * tokens * m.hidden_size * s.dtype_bytes
    overhead = FRAG * (activations + logits) + WORKSPACE
    return {k: int(v) for k, v in dict(weights=weights, lora=lora, activations=activations, logits=logits, overhead=overhead).items()}


def offloaded_bytes(m: ModelInfo, s: StepShape) -> int:
    """Pinned RAM that lean memory holds: every block's checkpointed input."""
    return m.layers * s.micro_batch * s.seq_len * m.hidden_size * s.dtype_bytes if s.lean and s.gradient_checkpointing else 0


def peak_bytes(m: ModelInfo, s: StepShape) -> int:
    return sum(breakdown(m, s).values())
