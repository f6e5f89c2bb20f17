"""GRPO's rewards on real strings (engine/training/rewards.py) and their validation."""

import pytest

from engine.config import RunConfig
from engine.errors import ConfigError
from engine.training import rewards
from engine.training.rewards import Sample, final_answer


def scores(specs, completion, reference="", tokens=0, opened=False):
    return rewards.score(rewards.build(specs), Sample(completion, reference, tokens, opened))


def test_final_answer_is_after_the_thought_or_answer_marker():
    assert final_answer("<think>\n12 + 56 = 68, check: 68\n</think>\n\nThe sum is 68.") == "The sum is 68."
    assert final_answer("Let me add 12 and 56. Answer: 68") == "68"
    assert final_answer("The final answer is: 68.") == "68."
    assert final_answer("  Paris  ") == "Paris"


def test_match_compares_numbers_as_numbers():
    ref = "<think>\nadd the tens, then the ones\n</think>\n\n68"
    assert scores(["match"], "12 + 56 = 68.", ref) == {"match": 1.0}
    assert scores(["match"], "<think>maybe 70</think> It is 68.0", ref) == {"match": 1.0}
    assert scores(["match"], "<think>it is 68</think> 680", ref) == {"match": 0.0}  # the final part counts
    assert scores(["match"], "I do not know", ref) == {"match": 0.0}
    assert scores(["match"], "Answer: 1,234", "1234") == {"match": 1.0}
    assert scores(["match"], "-3", "The answer is -3.") == {"match": 1.0}


def test_match_compares_text_without_case_or_end_punctuation():
    assert scores(["match"], "paris.", "Paris") == {"match": 1.0}
    assert scores(["match"], "The capital is Paris.", "Paris") == {"match": 0.0}


def test_format_wants_a_thought_then_an_answer():
    assert scores(["format"], "<think>\n2 and 2\n</think>\n\n4") == {"format": 1.0}
    assert scores(["format"], "<think>\n2 and 2\n</think>\n\n") == {"format": 0.0}  # no answer
    assert scores(["format"], "4") == {"format": 0.0}
    assert scores(["format"], "<think>a</think> b </think> c") == {"format": 0.0}
    assert scores(["format"], "2 and 2\n</think>\n\n4", opened=True) == {"format": 1.0}  # the prompt opened it


def test_length_scores_one_inside_and_falls_off_outside():
    spec = ["length:10-20"]
    assert [scores(spec, "x", tokens=n)["length"] for n in (10, 15, 20)] == [1.0, 1.0, 1.0]
    assert scores(spec, "x", tokens=30)["length"] == pytest.approx(0.5)
    assert scores(spec, "x", tokens=40)["length"] == 0.0
    assert scores(spec, "x", tokens=7)["length"] == pytest.approx(0.4)
    assert scores(spec, "x", tokens=5)["length"] == 0.0


def test_rewards_add_up_under_their_own_names():
    got = scores(["match", "format", "regex:^\\d+$", "regex:6"], "<think>sum</think>\n68", "68", tokens=6)
    assert got == {"match": 1.0, "format": 1.0, "regex": 1.0, "regex2": 1.0}
    assert scores(["regex:^\\d+$"], "<think>x</think> about 68") == {"regex": 0.0}


@pytest.mark.parametrize("spec, words", [
    ("regex:([0-9]", "not a valid regular expression"),
    ("regex:", "needs a pattern"),
    ("length:200-20", "length:MIN-MAX"),
    ("length:abc", "length:MIN-MAX"),
    ("vibes", "unknown reward 'vibes'"),
    ("match:exact", "takes no setting"),
])
def test_a_bad_reward_is_refused_at_validation_in_plain_words(spec, words):
    cfg = RunConfig()
    cfg.data.path = "x.jsonl"
    cfg.method.name, cfg.method.rewards = "grpo", ["match", spec]
    with pytest.raises(ConfigError, match=words):
        cfg.validate()
    cfg.method.name = "sft"  # only GRPO reads rewards
    cfg.validate()


def test_grpo_needs_room_for_a_prompt_beside_its_answers():
    cfg = RunConfig()
    cfg.data.path, cfg.method.name, cfg.method.completion_tokens, cfg.data.max_seq_len = "x.jsonl", "grpo", 256, 300
    with pytest.raises(ConfigError, match="sequence length 300 leaves no room for a prompt beside GRPO's 256-token"):
        cfg.validate()
    cfg.data.max_seq_len = 320
    cfg.validate()
