"""The one configuration tree: UI -> engine, saved as config.json in every run folder.

Each section is a plain dataclass with documented fields; `RunConfig.validate()` is the
one place where values are checked, so the CLI and the GUI report the same messages.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

QUANTIZATIONS = ("none", "8bit", "4bit")
LONG_ROWS = ("truncate", "skip")
CONFIG_VERSION = 2  # 2: the request only; what the planner resolved lives in plan.json


@dataclass
class ModelConfig:
    source: str = "demo"
    """'demo', a local Hugging Face folder, a .gguf file, or a Hub id (owner/name)."""
    quantization: str | None = None
    """'none', '8bit' or '4bit' (bitsandbytes NF4 with double quantization); CUDA only.
    None: the planner chooses."""
    gradient_checkpointing: bool | None = None
    """Recompute activations in the backward pass: less memory, ~30% slower. None: planner."""
    embeddings_on_cpu: bool | None = None
    """Keep the input embedding table in RAM (untied models): frees ~1 GiB on 7B/8B. None: planner."""
    lean_memory: bool | None = None
    """Long-sequence mode (with gradient checkpointing): checkpointed layer inputs in RAM,
    no LoRA dropout (engine/models/lean.py). 3-19% slower. None: the planner chooses."""
    trust_remote_code: bool = False
    """Run Python code shipped with a model. Off unless the user explicitly consents."""
    allow_pickle: bool = False
    """Accept .bin/.pt (pickle) weights. Off: safetensors only, unless the user consents."""
    revision: str | None = None
    """Hub branch, tag or commit for Hub ids."""

    def as_planned(self, plan: dict[str, Any]) -> "ModelConfig":
        """These settings with the loading choices a plan made (a Plan's or plan.json's
        fields): how a run loaded its base model, and how chat and export load it again."""
        return dataclasses.replace(
            self,
            quantization=plan.get("quantization", self.quantization) or "none",
            gradient_checkpointing=plan.get("gradient_checkpointing", self.gradient_checkpointing),
            embeddings_on_cpu=bool(plan.get("embeddings_on_cpu", self.embeddings_on_cpu)),
            lean_memory=plan.get("lean_memory", self.lean_memory),
        )


@dataclass
class DataConfig:
    path: str = ""
    """The dataset file; with `from_hub`, a Hugging Face Hub dataset id (owner/name) or a
    folder laid out like a Hub dataset repository."""
    from_hub: bool = False
    """Read `path` through the `datasets` library (engine/data/hub.py) instead of as a file."""
    hub_config: str | None = None
    """A Hub dataset's configuration (subset), e.g. 'plain_text'. None: its default."""
    hub_split: str | None = None
    """A Hub dataset's split. None: 'train'."""
    max_seq_len: int | None = None
    """Most tokens per example. None: the planner chooses from the data's lengths (the
    longest row when it fits the card)."""
    long_rows: str = "truncate"
    """Rows longer than the length: 'truncate' (the start of the prompt is cut, the answer
    kept, counts reported) or 'skip' (left out and listed). Plain text is always split."""
    val_share: float = 0.05
    """Share of rows held out for the validation loss."""
    max_val_rows: int = 200
    min_val_rows: int = 1
    max_samples: int | None = None
    """Use at most this many rows (after shuffling with `seed`); of a Hub dataset, its first
    N rows, streamed (the whole split is not downloaded)."""
    seed: int = 42
    """Seed of the train/validation split and of the subset."""
    system_prompt: str | None = None
    """Added as the system message of rows that have none (None: the template's default)."""
    format: str | None = None
    """Override detection: the name of a format in engine/data/formats (None: detect). The
    data layer, which owns that registry, checks the name when it reads the file."""
    mapping: dict[str, str] | None = None
    """Override fields, e.g. {'prompt': 'Question', 'answer': 'Response', 'reasoning': 'Complex_CoT'}."""
    labels: list[str] | None = None
    """Names of integer labels, in order (0 -> the first), for the labeled format. None: a
    ClassLabel feature's names, or the labels as written."""
    instruction: str | None = None
    """The labeled format's instruction before each text. None: made from the field names
    and labels, e.g. 'Classify the sentiment of this review as one of: negative, positive.'"""
    reasoning: str = "auto"
    """Chain of thought: 'auto' (in <think> for reasoning models, dropped otherwise), 'keep', 'drop'."""
    max_bad_share: float = 0.5
    """Stop instead of training when more than this share of the rows is unusable."""
    cache: bool = True
    """Reuse tokenized data for the same file, tokenizer and settings."""


@dataclass
class LoraConfig:
    r: int | None = None
    """LoRA rank. None: sized to the data (engine/fit/schedule.py; 16 for most files)."""
    alpha: int | None = None
    """None: twice the rank."""
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"
    """Module names to adapt, or 'all-linear' (every linear layer but the output head)."""


@dataclass
class TrainConfig:
    epochs: float | None = None
    """Passes over the training rows. None: sized to the data (3 for most files, more for small ones)."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides epochs)."""
    lr: float | None = None
    """Peak learning rate. None: sized to the run's steps (5e-4 for short runs, 2e-4 for longer ones)."""
    micro_batch: int | None = None
    """Examples per forward pass. None: the planner chooses (the most that fits)."""
    grad_accum: int | None = None
    """Micro-batches per optimizer step. None: effective batch / micro-batch."""
    effective_batch: int | None = None
    """Examples per optimizer step. None: 16 on a GPU, 4 on the CPU."""
    optimizer: str | None = None
    """'adamw' (fp32 states) or 'adamw_8bit' (bitsandbytes, CUDA). None: the planner chooses."""
    packing: bool = False
    """Lay a step's examples end to end in rows of up to max_seq_len tokens (no attention
    across examples): fewer, fuller forward passes for the same examples per step."""
    vram_gb: float | None = None
    """Plan for a card of this many GB instead of the GPU's free memory."""
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_every: int | None = None
    """Validation loss every N optimizer steps (and always at step 0 and at the end). None:
    about 12 evaluations per run."""
    early_stop: bool = True
    """Stop when the validation loss has not improved for `patience` evaluations (with a
    validation split); the run's adapter is the best evaluation's either way."""
    patience: int = 3
    """Evaluations without a new best validation loss before an early stop."""
    replay_share: float | None = None
    """Share of the training mix made of the base model's own answers to general prompts
    (engine/training/replay.py), against forgetting. None: the default; 0: off."""
    checkpoint_every: int = 50
    """Save a resumable checkpoint every N optimizer steps."""
    checkpoint_minutes: float = 5.0
    """…and at least every this many minutes, so a crash never costs more than that."""
    keep_checkpoints: int = 2
    seed: int = 42
    device: str = "auto"
    """'auto' (CUDA when present), 'cuda' or 'cpu'."""
    gpus: int = 1
    """GPUs to spread the run over, one process each (planned for the smallest card)."""
    shard: bool | None = None
    """With gpus > 1: shard the model over the cards (True), copy it whole to each (False), or
    let the planner choose by memory (None; engine/fit/sharding.py)."""


METHODS = ("sft", "dpo", "orpo", "grpo")
REWARDS = ("match", "format", "length", "regex")
# A sharded model's every forward pass is a collective (engine/training/sharding.py), and each
# card samples answers of its own lengths: the cards would wait on each other for ever.
GRPO_SHARD_REFUSED = ("GRPO cannot be sharded: each card samples answers of its own length, and a sharded model needs "
                      "every card to run the same passes. Use --no-shard (each card holds the whole model) or one GPU.")


@dataclass
class MethodConfig:
    """How the model learns from the rows (engine/training/objectives/)."""

    name: str = "sft"
    """'sft' (imitate the answers), 'dpo' or 'orpo' (prefer the chosen answer to the rejected one),
    'grpo' (sample answers, reward the ones that check out)."""
    beta: float = 0.1
    """DPO: how far the tuned model may move from the base model (larger: less far). ORPO: the
    weight of the preference term beside the chosen answer's loss."""
    group: int = 4
    """GRPO: answers sampled per prompt; their rewards are compared within the group."""
    completion_tokens: int = 256
    """GRPO: the longest sampled answer, in tokens."""
    kl: float = 0.0
    """GRPO: weight of the pull back towards the base model (0: none)."""
    rewards: list[str] = field(default_factory=lambda: ["match"])
    """GRPO: reward functions, summed: match (the final answer equals the reference, numbers
    compared as numbers), format (<think>…</think> then an answer), length:MIN-MAX (tokens),
    regex:PATTERN (the answer matches)."""
    temperature: float = 1.0
    """GRPO: sampling temperature of the answers (TRL's default 1.0; lower: answers nearer the
    greedy one, for a small model more often right, so its groups have more to learn from)."""


def parse_reward(spec: str) -> tuple[str, Any]:
    """A reward's kind and its argument: ('length', (MIN, MAX)), ('regex', compiled pattern),
    ('match' | 'format', None). The one parser: validation refuses with its message, and
    engine/training/rewards.py builds the functions from what it returns."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in REWARDS:
        raise ConfigError(f"unknown reward '{spec}': use {', '.join(REWARDS)} (e.g. match,format,length:20-200)")
    if kind == "length":
        lo, dash, hi = arg.partition("-")
        if not (dash and lo.strip().isdigit() and hi.strip().isdigit() and 0 <= int(lo) <= int(hi) and int(hi) > 0):
            raise ConfigError(f"the length reward needs its bounds in tokens as length:MIN-MAX (e.g. length:20-200), "
                              f"not '{spec}'")
        return kind, (int(lo), int(hi))
    if kind == "regex":
        if not arg:
            raise ConfigError("the regex reward needs a pattern after the colon, e.g. regex:^[0-9]+$")
        try:
            return kind, re.compile(arg)
        except re.error as e:
            raise ConfigError(f"the regex reward's pattern '{arg}' is not a valid regular expression ({e}); "
                              "fix it or leave the regex reward out") from None
    if arg:
        raise ConfigError(f"the {kind} reward takes no setting ('{spec}'): write just '{kind}'")
    return kind, None


def _reward_problem(m: MethodConfig) -> str:
    """The first reward that cannot be used, in parse_reward's words ('' when all can)."""
    if m.name != "grpo":  # only GRPO reads the rewards: a DPO run is not refused for them
        return ""
    if not m.rewards:
        return f"GRPO needs at least one reward: {', '.join(REWARDS)}"
    for spec in m.rewards:
        try:
            parse_reward(spec)
        except ConfigError as e:
            return str(e)
    return ""


def method_checks(m: MethodConfig) -> list[tuple[bool, str]]:
    problem = _reward_problem(m)
    return [
        (m.name in METHODS, f"method must be one of {', '.join(METHODS)}, not '{m.name}'"),
        (m.beta > 0, f"beta {m.beta} must be positive"),
        (m.group >= 2, f"GRPO's group of {m.group} must be at least 2 answers per prompt"),
        (m.completion_tokens >= 1, "completion tokens must be at least 1"),
        (m.kl >= 0, f"KL weight {m.kl} must not be negative"),
        (0 < m.temperature <= 2, f"GRPO's sampling temperature {m.temperature} must be above 0 and at most 2"),
        (not problem, problem),
    ]


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    name: str = ""
    """Run folder name; empty: derived from model, dataset and time."""
    out_dir: str = ""
    """Parent folder of the run folders; empty: the user data folder's runs/."""
    version: int = CONFIG_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def for_new_run(self, out_dir: str) -> "RunConfig":
        """A past run's request for a new run folder (without that run's name): the
        planner resolves it anew, on today's card and data."""
        cfg = RunConfig.from_dict(self.to_dict())
        cfg.name, cfg.out_dir = "", out_dir
        return cfg

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        if d.get("version", CONFIG_VERSION) < 2:  # version 1 kept recovery's length limit in the request
            d = {**d, "train": {k: v for k, v in (d.get("train") or {}).items() if k != "skip_longer_than"}}

        def section(kind, values):
            known = {f.name for f in dataclasses.fields(kind)}
            unknown = set(values or {}) - known
            if unknown:
                raise ConfigError(f"unknown {kind.__name__} setting(s): {', '.join(sorted(unknown))}")
            return kind(**(values or {}))

        return cls(
            model=section(ModelConfig, d.get("model")),
            data=section(DataConfig, d.get("data")),
            lora=section(LoraConfig, d.get("lora")),
            train=section(TrainConfig, d.get("train")),
            method=section(MethodConfig, d.get("method")),
            name=d.get("name", ""),
            out_dir=d.get("out_dir", ""),
            version=CONFIG_VERSION,  # migrated above
        )

    def validate(self) -> "RunConfig":
        m, d, l, t = self.model, self.data, self.lora, self.train
        checks = [
            (m.quantization is None or m.quantization in QUANTIZATIONS, f"quantization must be one of {', '.join(QUANTIZATIONS)}, not '{m.quantization}'"),
            (bool(m.source), "no model given"),
            (d.max_seq_len is None or d.max_seq_len >= 16, f"sequence length {d.max_seq_len} is too short (at least 16 tokens)"),
            (0.0 <= d.val_share < 0.5, f"validation share {d.val_share} must be between 0 and 0.5"),
            (d.max_samples is None or d.max_samples >= 2, "max samples must be at least 2"),
            (d.from_hub or (d.hub_config is None and d.hub_split is None), "a configuration or split is only for Hub datasets"),
            (d.reasoning in ("auto", "keep", "drop"), f"reasoning must be auto, keep or drop, not '{d.reasoning}'"),
            (d.long_rows in LONG_ROWS, f"long rows must be truncate or skip, not '{d.long_rows}'"),
            (0.0 < d.max_bad_share <= 1.0, "max bad share must be in (0, 1]"),
            (l.r is None or l.r >= 1, f"LoRA rank {l.r} must be at least 1"),
            (l.alpha is None or l.alpha > 0, "LoRA alpha must be positive"),
            (0.0 <= l.dropout < 1.0, "LoRA dropout must be in [0, 1)"),
            (t.epochs is None or t.epochs > 0 or t.max_steps, "epochs must be positive"),
            (t.max_steps is None or t.max_steps >= 1, "max steps must be at least 1"),
            (t.lr is None or 0 < t.lr < 1, f"learning rate {t.lr} is out of range"),
            (t.micro_batch is None or t.micro_batch >= 1, "micro-batch must be at least 1"),
            (t.grad_accum is None or t.grad_accum >= 1, "gradient accumulation must be at least 1"),
            (t.effective_batch is None or t.effective_batch >= 1, "effective batch must be at least 1"),
            (t.optimizer in (None, "adamw", "adamw_8bit"), f"optimizer must be adamw or adamw_8bit, not '{t.optimizer}'"),
            (t.vram_gb is None or t.vram_gb > 1, "the card size (vram) must be more than 1 GB"),
            (0 <= t.warmup_ratio < 1, "warmup ratio must be in [0, 1)"),
            ((t.eval_every or 1) >= 1 and t.checkpoint_every >= 1, "eval / checkpoint intervals must be at least 1"),
            (t.keep_checkpoints >= 1, "keep at least one checkpoint"),
            (t.patience >= 1, f"patience {t.patience} must be at least 1 evaluation"),
            (t.replay_share is None or 0 <= t.replay_share < 0.9, f"replay share {t.replay_share} must be in [0, 0.9)"),
            (t.checkpoint_minutes > 0, "checkpoint minutes must be positive"),
            (t.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, not '{t.device}'"),
            (t.gpus >= 1, "gpus must be at least 1"),
            *method_checks(self.method),
            (not (self.method.name == "grpo" and t.shard), GRPO_SHARD_REFUSED),
            (not (self.method.name == "grpo" and d.max_seq_len and d.max_seq_len < self.method.completion_tokens + 64),
             f"sequence length {d.max_seq_len} leaves no room for a prompt beside GRPO's "
             f"{self.method.completion_tokens}-token answers: use at least {self.method.completion_tokens + 64}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self
