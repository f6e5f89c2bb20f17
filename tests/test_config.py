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


def test_for_new_run_keeps_settings_and_drops_the_runs_own_state():
    from engine.config import RunConfig

    old = RunConfig()
    old.name, old.out_dir, old.train.micro_batch, old.train.skip_longer_than = "r1", "/a", 4, 900
    new = old.for_new_run("/b")
    assert (new.name, new.out_dir, new.train.micro_batch, new.train.skip_longer_than) == ("", "/b", 4, None)
    assert old.train.skip_longer_than == 900 and old.name == "r1"  # the past run's config is untouched
