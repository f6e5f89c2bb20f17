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
activations  tokens T = micro_batch x sequences x seq_len (a preference pair is 2 sequences). Without checkpointing each of L blocks
             keeps ~ (A_H h + A_I i) bytes per token (SDPA attention: linear in T, no T²
             score matrix); with checkpointing only each block's input (B h) is kept,
             plus one block recomputed during backward. Lean memory (engine/models/lean.py)
             keeps the block inputs in RAM and has no LoRA dropout: what remains is
             the recomputed block, (LEAN_H h + LEAN_I i) bytes per token.
logits       one chunk of the chunked linear cross-entropy (engine/models/loss.py: never the
             full T x vocab logits) + the final hidden states and their trained-row copy.
generation   GRPO only (engine/training/objectives/grpo.py): sampling G answers per prompt
             holds a KV cache of layers x 2 x kv_heads x head_dim x dtype bytes per token for
             micro_batch x G x seq_len tokens, the prefill's one block of activations and a
             row of logits per sequence. It is freed before the training pass (the same
             allocator blocks are reused), so the peak is the larger of the two phases: this
             term is what generation needs beyond the pass (mostly 0: the pass over G
             sequences of prompt + answer with gradients holds more). The pass itself is
             the SFT terms above for micro_batch x G sequences of seq_len tokens.
overhead     allocator slack (FRAG of the transient terms) + cuBLAS/cuDNN workspaces.
             The embedding table in RAM costs nothing here: it is looked up on the CPU
             (engine/models/loading.py look_up_in_ram), not copied to the GPU per forward.

The per-token constants are bytes measured on the GPU machine (bench/planner_check.py)
and are kept here in one place so the planner can be recalibrated.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.lean import MLP_TILE
from ..models.loss import BYTES_PER_LOGIT, rows_per_chunk
from ..models.model_info import ModelInfo

GiB = 1024**3
# Calibrated on an H100 against peak *reserved* memory (what a capped allocator runs out
# of): least squares over bench/results/planner_check/planner_check_small.json (7 presets
# x 3 cards), then rounded up a little so the estimate errs high.
A_H = 34.5  # bytes per token per block per hidden unit, without checkpointing (bf16)
A_I = 8.6  # bytes per token per block per intermediate unit
B_H = 2.4  # bytes per token per block per hidden unit kept with checkpointing
RECOMPUTE = 1.4  # the one block recomputed in backward holds this many times a block's activations
# Lean memory's recomputed block. Without MLP tiles: least squares over the 7B / 8B shapes
# at 2,048 and 8,192 tokens (bench/results/levers/levers.json: 11.2, 10.8), rounded up.
# With MLP tiles (engine/lean.tile_mlps) the intermediate-size term holds for one tile
# only, and what stays per token is the layer's attention side and its two norms'
# fp32 copies (LEAN_TILED_H, counted from the tensors autograd keeps for a Llama layer;
# bench/lean_tiles.py measures it).
LEAN_H = 12.0
LEAN_I = 11.5
LEAN_TILED_H = 28.0
# A plain (GELU) MLP keeps half the intermediate-size tensors of a gated one: Pythia-1.4B's
# 12 / 16 GB runs were estimated 29% high with the gated figure (bench/results/fit_check).
PLAIN_MLP = 0.5
# Sliding-window attention past its window: transformers materializes a [rows x T x T]
# mask for SDPA (a bool mask, its additive bf16 form and their copies): bytes per element,
# from Gemma-3-1B at 8,960 tokens (about 0.4 GiB more per row of the micro-batch).
MASK_BYTES = 5.0
# Checkpointed (not lean) steps of a quantized model hold less than the unquantized
# figures above: peft's LoRA layers on bitsandbytes linears take the autocast input as it
# is, while on plain linears they first make an fp32 copy of it for the fp32 LoRA weights.
# Measured through `tunedesk train` on the H200 with compact allocations
# (bench/results/fit_check: Gemma-3-1B, Phi-4-mini, Qwen3-1.7B in 4 bits at 1,856-8,960
# tokens needed 0.66-0.70 of the unquantized activation term); 0.8 keeps the estimate
# on the high side (+3 to +11% of calibration).
QUANT_CKPT_ACT = 0.8
# Since issue 16 no LoRA layer copies its input to fp32 under autocast (engine/models/speed.py),
# quantized or not; unquantized checkpointed steps measured 0.83 of the old term
# (bench/results/levers/, the 1.5B shape): PLAIN_CKPT_ACT.
PLAIN_CKPT_ACT = 0.85
# With liger's RMSNorm / SwiGLU / RoPE too (StepShape.fused_kernels), measured through the
# planner on the 1.5B and Qwen2.5-3B shapes at 8 / 12 / 24 GB (bench/results/planner_check/
# planner_check_fast.json): checkpointed steps held 0.58-0.70 of the stock activation
# term (4-bit and unquantized alike), steps without checkpointing 0.755-0.763. Rounded up.
FUSED_CKPT_ACT = 0.72
FUSED_ACT = 0.8
FRAG = 0.05
WORKSPACE = 320 * 1024**2
# The CPU (fp32): the GPU's per-token terms hold at fp32 (bench/cpu_ram.py: the demo model
# at 4 x 2,048 tokens without checkpointing measured 18.5 GiB of RSS, the terms give 17),
# plus the process. (A first reading at 1 x 1,024 tokens looked far cheaper per token: the
# memory the model's loading had freed was reused before the process grew.)
CPU_ACT = 1.1  # x the GPU's per-token activation terms at fp32
CPU_PROCESS = int(1.0 * GiB)  # PyTorch, transformers, tokenizer and data in RAM
GPU_PROCESS_RAM = int(3.0 * GiB)  # a CUDA process's own RAM: driver, libraries, tokenizer, data
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
    lean: bool = False  # lean memory (with checkpointing): engine/models/lean.py
    fused_kernels: bool = False  # liger's RMSNorm / SwiGLU / RoPE (engine/models/speed.py)
    sequences: int = 1  # sequences per example: 2 for a preference pair (engine/fit/methods.py)
    group: int = 1  # sequences per example: GRPO's G sampled answers per prompt
    completion: int = 0  # GRPO: tokens sampled per answer (0: no generation), within seq_len


def kv_cache_bytes(m: ModelInfo, tokens: int, dtype_bytes: int) -> int:
    """A generation's KV cache: keys and values of every layer for `tokens` tokens."""
    return int(tokens * m.layers * 2 * m.kv_heads * m.head_dim * dtype_bytes)


def breakdown(m: ModelInfo, s: StepShape) -> dict[str, int]:
    per_linear = LINEAR_BYTES[s.quantization] or s.dtype_bytes
    weights = m.params_linear * per_linear
    if s.quantization == "8bit":
        weights += m.layers * sum(o for _, o in m.linear_shapes.values()) * 4  # fp32 row scales
    on_gpu_embedding = 0 if (s.embeddings_on_cpu and not m.tied_embeddings) else m.params_embedding
    weights += (on_gpu_embedding + m.params_lm_head + m.params_norm + m.params_other) * s.dtype_bytes

    lora = m.lora_params(s.lora_r, s.lora_targets) * (4 + 4 + (2 if s.optimizer == "adamw_8bit" else 8))

    rows = s.micro_batch * s.group * s.sequences  # GRPO's G answers per prompt; a preference pair is two rows
    tokens = rows * s.seq_len
    a_i = A_I if m.gated_mlp else A_I * PLAIN_MLP
    lean_i = LEAN_I if m.gated_mlp else LEAN_I * PLAIN_MLP
    per_block = tokens * (A_H * m.hidden_size + a_i * m.intermediate_size) * s.dtype_bytes / 2
    if s.gradient_checkpointing and s.lean and s.seq_len > MLP_TILE > 0:
        tile = rows * MLP_TILE
        activations = (tokens * LEAN_TILED_H * m.hidden_size + tile * lean_i * m.intermediate_size) * s.dtype_bytes / 2
    elif s.gradient_checkpointing and s.lean:
        activations = tokens * (LEAN_H * m.hidden_size + lean_i * m.intermediate_size) * s.dtype_bytes / 2
    elif s.gradient_checkpointing:
        activations = m.layers * tokens * B_H * m.hidden_size * s.dtype_bytes / 2 + RECOMPUTE * per_block
        # (fp32 on the CPU: no autocast, nothing was ever cast there)
        activations *= (FUSED_CKPT_ACT if s.fused_kernels else QUANT_CKPT_ACT if s.quantization != "none"
                        else PLAIN_CKPT_ACT if s.dtype_bytes == 2 else 1.0)
    else:
        activations = m.layers * per_block * (FUSED_ACT if s.fused_kernels else 1.0)

    if m.sliding_window and s.seq_len > m.sliding_window:
        activations += rows * s.seq_len**2 * MASK_BYTES
    # Chunked linear cross-entropy: one chunk of logits at a time, plus the final hidden
    # states and their trained-row copy.
    logits = min(tokens, rows_per_chunk(m.vocab_size)) * m.vocab_size * BYTES_PER_LOGIT + 2 * tokens * m.hidden_size * s.dtype_bytes
    parts = {"weights": weights, "lora": lora, "activations": activations, "logits": logits}
    if s.completion:
        parts["generation"] = max(0, generation_bytes(m, s) - activations - logits)
    transient = activations + logits + parts.get("generation", 0)
    parts["overhead"] = FRAG * transient + WORKSPACE
    return {k: int(v) for k, v in parts.items()}


def generation_bytes(m: ModelInfo, s: StepShape) -> int:
    """What sampling a micro-batch's answers holds at its peak: the KV cache of every sequence
    at full length, one block's prefill activations (no gradients: nothing is kept), and
    each sequence's next-token logits (bf16, with the fp32 copies sampling makes)."""
    rows = s.micro_batch * s.group
    prompt = max(1, s.seq_len - s.completion)
    a_i = A_I if m.gated_mlp else A_I * PLAIN_MLP
    prefill = rows * prompt * (A_H * m.hidden_size + a_i * m.intermediate_size) * s.dtype_bytes / 2
    return int(kv_cache_bytes(m, rows * s.seq_len, s.dtype_bytes) + prefill + rows * m.vocab_size * (s.dtype_bytes + 8))


def cpu_breakdown(m: ModelInfo, s: StepShape) -> dict[str, int]:
    """RAM of a CPU training step (fp32): the GPU's terms rescaled to what the CPU was
    measured to hold (CPU_ACT), plus the process itself. No attention-score term: doubling
    the length with a padding mask did not show a quadratic cost on the CPU."""
    s = StepShape(**{**s.__dict__, "dtype_bytes": 4, "quantization": "none", "lean": False, "embeddings_on_cpu": False})
    parts = breakdown(m, s)
    parts["weights"] = int(m.params_total * 4)
    parts["activations"] = int(parts["activations"] * CPU_ACT)
    parts["overhead"] = int(parts["overhead"] - WORKSPACE + CPU_PROCESS)
    return parts


def ram_bytes(m: ModelInfo, s: StepShape) -> int:
    """RAM a GPU run holds: the process (CUDA libraries, tokenizer, data), the embedding
    table when it stays in RAM, and lean memory's pinned copies of the layer inputs."""
    table = m.params_embedding * s.dtype_bytes if s.embeddings_on_cpu and not m.tied_embeddings else 0
    return int(GPU_PROCESS_RAM + table + offloaded_bytes(m, s))


def offloaded_bytes(m: ModelInfo, s: StepShape) -> int:
    """Pinned RAM that lean memory holds: every block's checkpointed input."""
    return (m.layers * s.micro_batch * s.group * s.sequences * s.seq_len * m.hidden_size * s.dtype_bytes
            if s.lean and s.gradient_checkpointing else 0)


def peak_bytes(m: ModelInfo, s: StepShape) -> int:
    return sum(breakdown(m, s).values())
