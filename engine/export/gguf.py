"""Write a merged model folder as one GGUF file (f16 or q8_0), for llama.cpp, LM Studio
and Ollama. Llama and Qwen2 architectures, byte-level BPE tokenizers (the families
TuneDesk's presets cover). The layout follows llama.cpp's own converter
(convert_hf_to_gguf.py): the same tensor names (gguf-py's name map), the same
rotary permutation of Llama's q/k weights, the same tokenizer keys.

As an export target, a run's model is merged exactly (fp32) first, then written."""

from __future__ import annotations

import json
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import TuneDeskError
from ..runs import RunDir
from .merged import merge
from .target import Options, Target

ARCHS = {"llama": "LLAMA", "qwen2": "QWEN2"}
QTYPES = ("f16", "q8_0")
PRE_TOKENIZER = {"qwen2": "qwen2", "llama": "llama-bpe"}  # llama.cpp's names; SmolLM has its own


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """HF → llama.cpp rotary layout of q/k rows (interleaved halves), as llama.cpp does it."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _vocab(folder: Path, tokenizer) -> tuple[list[str], list[int], list[str]]:
    import gguf

    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "BPE":
        raise TuneDeskError(f"{folder}: only byte-level BPE tokenizers can be written to GGUF here (found {model.get('type')})")
    vocab = dict(model["vocab"])
    special = {t["content"]: t for t in spec.get("added_tokens", [])}
    for content, t in special.items():
        vocab[content] = t["id"]
    size = max(vocab.values()) + 1
    tokens, types = [f"[PAD{i}]" for i in range(size)], [gguf.TokenType.UNUSED] * size
    for text, i in vocab.items():
        tokens[i] = text
        t = special.get(text)
        types[i] = gguf.TokenType.NORMAL if t is None else gguf.TokenType.CONTROL if t.get("special") else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return tokens, [int(t) for t in types], merges


def write_gguf(folder: str | Path, out_file: str | Path, qtype: str = "q8_0", *, name: str = "",
               status: Callable[[str], None] = lambda _: None) -> Path:
    import gguf
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    folder, out_file = Path(folder), Path(out_file)
    if qtype not in QTYPES:
        raise TuneDeskError(f"GGUF type must be one of {', '.join(QTYPES)}, not '{qtype}'")
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    arch = cfg.get("model_type")
    if arch not in ARCHS:
        raise TuneDeskError(f"GGUF export supports the Llama and Qwen2 architectures, not '{arch}'")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    heads, kv_heads, layers = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"]), cfg["num_hidden_layers"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads

    w = gguf.GGUFWriter(str(out_file), arch)
    w.add_name(name or folder.name)
    w.add_context_length(cfg.get("max_position_embeddings", 4096))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(layers)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    # transformers 5 keeps rope_theta under rope_parameters; older configs at the top level
    theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta") or 10000.0
    w.add_rope_freq_base(float(theta))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if qtype == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)

    tokens, types, merges = _vocab(folder, tokenizer)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm" if "smollm" in str(cfg.get("_name_or_path", folder)).lower() or cfg["vocab_size"] == 49152
                        else PRE_TOKENIZER[arch])
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    for key, add in (("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id)):
        value = getattr(tokenizer, key, None)
        if value is not None:
            add(int(value))
    if tokenizer.pad_token_id is not None:
        w.add_pad_token_id(int(tokenizer.pad_token_id))
    w.add_add_bos_token(False)  # the chat template writes any BOS itself
    if getattr(tokenizer, "chat_template", None):
        w.add_chat_template(tokenizer.chat_template)

    names = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, ARCHS[arch]), layers)
    qt = gguf.GGMLQuantizationType
    status(f"Writing {out_file.name} ({qtype})…")
    for shard in sorted(folder.glob("*.safetensors")):
        for hf_name, data in load_file(shard).items():
            if hf_name == "lm_head.weight" and cfg.get("tie_word_embeddings"):
                continue  # llama.cpp uses the token embedding when there is no output tensor
            new = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if new is None:
                raise TuneDeskError(f"GGUF export: no llama.cpp name for tensor '{hf_name}'")
            data = data.astype(np.float32)
            if arch == "llama" and hf_name.endswith("q_proj.weight"):
                data = _permute(data, heads)
            elif arch == "llama" and hf_name.endswith("k_proj.weight"):
                data = _permute(data, kv_heads)
            if data.ndim == 1:  # norms and biases stay f32, as llama.cpp keeps them
                w.add_tensor(new, data)
            elif qtype == "q8_0" and data.shape[-1] % 32 == 0:
                w.add_tensor(new, gguf.quants.quantize(data, qt.Q8_0), raw_dtype=qt.Q8_0)
            else:
                w.add_tensor(new, data.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out_file


# -- the export target ------------------------------------------------------------------
def model_name(run: RunDir) -> str:
    """The exported model's name (files, GGUF metadata, Ollama): the run folder's, tidied."""
    return re.sub(r"[^a-z0-9._-]+", "-", run.path.name.lower()).strip("-") or "tunedesk-model"


@contextmanager
def merged_fp32(run: RunDir, folder: Path, status: Callable[[str], None], adapter: str = "best") -> Iterator[Path]:
    """The run's model merged in fp32 (exact) inside the export folder, removed once used."""
    merged = folder / ".merged"
    merge(run, merged, "fp32", status, adapter)
    yield merged
    shutil.rmtree(merged)


def write_files(run: RunDir, merged: Path, folder: Path, quant: str, status: Callable[[str], None]) -> list[Path]:
    """One GGUF file per weight type (`quant` all: f16 and q8_0), named `<model>-<type>.gguf`."""
    name = model_name(run)
    return [write_gguf(merged, folder / f"{name}-{q}.gguf", q, name=name, status=status)
            for q in (QTYPES if quant == "all" else [quant])]


def write(run: RunDir, folder: Path, opts: Options) -> None:
    with merged_fp32(run, folder, opts.status, opts.adapter) as merged:
        write_files(run, merged, folder, opts.quant, opts.status)


TARGET = Target("gguf", "GGUF (llama.cpp, LM Studio)",
                "the merged model as GGUF for llama.cpp and LM Studio, Llama and Qwen2 architectures (--quant)", write)
