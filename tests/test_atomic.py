import pytest

from engine.atomic import append_jsonl, atomic_dir, read_jsonl, write_json


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"

    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text("two")
            raise RuntimeError("killed mid-write")
    assert (target / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no leftovers

    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]


def test_write_json_leaves_no_temp_files(tmp_path):
    write_json(tmp_path / "s.json", {"a": 1})
    write_json(tmp_path / "s.json", {"a": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    assert (tmp_path / "s.json").read_text().strip().endswith("}")


def test_torn_last_metrics_line_is_skipped(tmp_path):
    p = tmp_path / "metrics.jsonl"
    append_jsonl(p, {"step": 1})
    append_jsonl(p, {"step": 2})
    with open(p, "a") as f:
        f.write('{"step": 3, "lo')  # a crash mid-line
    assert read_jsonl(p) == [{"step": 1}, {"step": 2}]
