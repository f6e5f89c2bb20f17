"""bench/planner_check.py --report: the acceptance checks over measured GPU rows (no GPU needed)."""

import json
from pathlib import Path

import pytest

from bench.planner_check import RECORD, report
from bench.planner_check import RESULTS as RECORD_DIR

RESULTS = RECORD_DIR / "planner_check_fast2.json"  # measured with the speed levers of issue 16


def _write(tmp_path, rows) -> Path:
    f = tmp_path / "rows.json"
    f.write_text(json.dumps({"rows": rows}))
    return f


def test_report_passes_the_recorded_rows_and_flags_each_kind_of_failure(tmp_path):
    rows = [r for r in json.loads(RESULTS.read_text())["rows"] if r["preset"] == "llama-3.2-1b"]
    assert len(rows) == 3
    assert report([_write(tmp_path, rows)])
    table = (tmp_path / "table.md").read_text()
    assert table.count("| llama-3.2-1b |") == 3 and "Problems: none" in table

    bad = [dict(r) for r in rows]
    bad[0]["measured_reserved_gib"] = bad[0]["predicted_gib"] / 1.3  # estimate 30% high
    bad[1]["oom"] = True
    bad[2]["micro_batch"] += 1  # measured at a plan the planner no longer makes
    assert not report([_write(tmp_path, bad)])
    problems = json.loads((tmp_path / "planner_check.json").read_text())["problems"]
    assert any("predicted/measured 1.3" in p for p in problems)
    assert any("out of memory at the planned setting" in p for p in problems)
    assert any("plan changed since measured (micro_batch)" in p for p in problems)


def test_the_runs_of_record_still_pass_with_todays_planner(tmp_path):
    """Issue 4's acceptance over the committed GPU runs: none ran out of memory, every estimate
    is within 15% of the measured peak, and a plan that changed since it was measured is a
    problem, except for rows measured before issue 16's speed levers (a step the engine no
    longer runs): those are listed to be measured again on the GPU, by name, never compared."""
    assert report([RECORD_DIR / f for f in RECORD], out=tmp_path)
    table = (tmp_path / "table.md").read_text()
    assert table.count("| 8 GB |") == table.count("| 12 GB |") == table.count("| 24 GB |") == 13
    assert table.strip().endswith("Problems: none")
    result = json.loads((tmp_path / "planner_check.json").read_text())
    rows = {(r["preset"], r["card_gb"]): r for r in result["rows"]}
    for entry in result["remeasure"]:
        name, card = entry.split(" GB")[0].rsplit(" ", 1)
        assert "fused_kernels" not in rows[name, int(card)]  # only rows from before the levers wait
    fast = [r for r in rows.values() if "fused_kernels" in r]
    assert len(fast) >= 12 and all(abs(r["predicted_over_reserved"] - 1) <= 0.15 and not r["oom"] for r in fast)


def test_memory_probe_shapes_name_one_lever_each():
    from bench.memory_probe import parse_shape

    assert parse_shape("4bit:1:2:1024") == dict(quant="4bit", ckpt=True, mb=2, seq=1024, optimizer="adamw",
                                                embeddings_on_cpu=False, attention="sdpa", copies="bf16")
    assert parse_shape("none:0:1:512:adamw_8bit:cpu:eager:fp32") == dict(
        quant="none", ckpt=False, mb=1, seq=512, optimizer="adamw_8bit", embeddings_on_cpu=True, attention="eager",
        copies="fp32")
    with pytest.raises(ValueError, match="4bit:1: expected"):
        parse_shape("4bit:1")


def test_padding_shares_of_the_batching_schemes():
    """bench/padding.py: with one example per forward pass nothing is padded (except by
    the seed's fixed 512); with 9, length grouping pads far less than random order."""
    from bench.padding import shares
    from bench.synthetic import instruction_lengths

    lengths = instruction_lengths(600)
    one = shares(lengths, 1, 16, 2112)
    assert one["random"] == one["grouped"] == one["packed"] == 1.0 and one["pad_512"] < 0.6
    nine = shares(lengths, 9, 2, 2112)
    assert nine["random"] < 0.5 < 0.75 < nine["grouped"] and 0.5 < nine["packed"] <= 1.0
