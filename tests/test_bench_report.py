"""bench/planner_check.py --report: the acceptance checks over measured GPU rows (no GPU needed)."""

import json
from pathlib import Path

from bench.planner_check import report

RESULTS = Path(__file__).parent.parent / "bench" / "results" / "planner_check" / "planner_check_small.json"


def _write(tmp_path, rows) -> Path:
    f = tmp_path / "rows.json"
    f.write_text(json.dumps({"rows": rows}))
    return f


def test_report_passes_the_recorded_rows_and_flags_each_kind_of_failure(tmp_path):
    rows = [r for r in json.loads(RESULTS.read_text())["rows"] if r["preset"] == "smollm2-135m"]
    assert len(rows) == 3
    assert report([_write(tmp_path, rows)])
    table = (tmp_path / "table.md").read_text()
    assert table.count("| smollm2-135m |") == 3 and "Problems: none" in table

    bad = [dict(r) for r in rows]
    bad[0]["measured_reserved_gib"] = bad[0]["predicted_gib"] / 1.3  # estimate 30% high
    bad[1]["oom"] = True
    bad[2]["micro_batch"] += 1  # measured at a plan the planner no longer makes
    assert not report([_write(tmp_path, bad)])
    problems = json.loads((tmp_path / "planner_check.json").read_text())["problems"]
    assert any("predicted/measured 1.3" in p for p in problems)
    assert any("out of memory at the planned setting" in p for p in problems)
    assert any("plan changed since measured (micro_batch)" in p for p in problems)


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
