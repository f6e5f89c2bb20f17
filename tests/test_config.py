import json

import pytest

from engine.config import RunConfig
from engine.errors import ConfigError


def test_round_trip_through_json():
    cfg = RunConfig()
    cfg.data.path = "x.jsonl"
    cfg.lora.r = 8
    cfg.train.max_steps = 7
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    "section, field, value, words",
    [
        ("model", "quantization", "3bit", "quantization"),
        ("train", "lr", 5.0, "learning rate"),
        ("train", "micro_batch", 0, "micro-batch"),
        ("lora", "r", 0, "LoRA rank"),
        ("data", "val_share", 0.9, "validation share"),
    ],
)
def test_validation_names_the_setting(section, field, value, words):
    cfg = RunConfig()
    setattr(getattr(cfg, section), field, value)
    with pytest.raises(ConfigError, match=words):
        cfg.validate()


def test_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match="unknown TrainConfig setting"):
        RunConfig.from_dict({"train": {"lr": 1e-4, "learning_rate": 1e-4}})


def test_for_new_run_keeps_the_request_and_drops_the_runs_name():
    from engine.config import RunConfig

    old = RunConfig()
    old.name, old.out_dir, old.train.micro_batch = "r1", "/a", 4
    new = old.for_new_run("/b")
    assert (new.name, new.out_dir, new.train.micro_batch, new.data.max_seq_len) == ("", "/b", 4, None)
    assert old.name == "r1" and old.out_dir == "/a"  # the past run's config is untouched


def test_a_version_1_config_loads_without_recoverys_length_limit():
    """Version 1 kept out-of-memory recovery's length limit in the request; it now lives
    in plan.json, and an old run folder still opens."""
    cfg = RunConfig.from_dict({"version": 1, "train": {"lr": 1e-4, "skip_longer_than": 900}})
    assert cfg.train.lr == 1e-4 and cfg.version == 2 and not hasattr(cfg.train, "skip_longer_than")


def test_method_settings_round_trip_and_are_checked():
    cfg = RunConfig()
    cfg.data.path = "x.jsonl"
    cfg.method.name, cfg.method.rewards = "grpo", ["match", "length:10-200"]
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again.method.name == "grpo" and again.method.rewards == ["match", "length:10-200"]
    for field, value, words in (("name", "ppo", "method must be one of"), ("group", 1, "at least 2"),
                                ("rewards", ["match", "vibes"], "unknown reward .vibes.")):
        bad = RunConfig.from_dict(cfg.to_dict())
        setattr(bad.method, field, value)
        with pytest.raises(ConfigError, match=words):
            bad.validate()
