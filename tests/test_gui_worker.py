"""The training worker in its QThread: signal order, stop, errors, one training at a time."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES

from engine.config import RunConfig


def _cfg(model_folder, tmp_path, data=None, **train) -> RunConfig:
    cfg = RunConfig()
    cfg.model.source = str(model_folder)
    cfg.data.path = str(data or SAMPLES / "support_desk.json")
    cfg.out_dir, cfg.name = str(tmp_path / "runs"), "gui-run"
    cfg.train.micro_batch = 2
    cfg.train.eval_every = 2
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def _record(controller) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []
    for name in ("started", "progress", "metrics", "finished", "oom_recovered"):
        getattr(controller, name).connect(lambda d, n=name: seen.append((n, d)))
    controller.failed.connect(lambda m, det: seen.append(("failed", (m, det))))
    controller.done.connect(lambda: seen.append(("done", None)))
    return seen


def test_signal_order_of_a_whole_training(qtbot, tiny_model_folder, tmp_path):
    from engine import logs
    from gui.worker import TrainController

    log_file = logs.setup()

    c = TrainController()
    seen = _record(c)
    with qtbot.waitSignal(c.done, timeout=120_000):
        assert c.start(_cfg(tiny_model_folder, tmp_path, max_steps=4))
        assert c.running
        assert not c.start(_cfg(tiny_model_folder, tmp_path, max_steps=4)), "a second training must be refused"
    kinds = [k for k, _ in seen if k != "metrics"]
    assert kinds == ["started", "progress", "progress", "progress", "progress", "finished", "done"]
    assert [d["step"] for k, d in seen if k == "progress"] == [1, 2, 3, 4]
    finished = next(d for k, d in seen if k == "finished")
    assert finished["status"] == "finished" and finished["summary"]["steps"] == 4
    assert not c.running
    assert (tmp_path / "runs" / "gui-run" / "adapter" / "adapter_model.safetensors").is_file()
    logged = log_file.read_text(encoding="utf-8")
    assert f"started {{'run_dir': '{tmp_path / 'runs' / 'gui-run'}'" in logged and "finished" in logged


def test_stop_saves_a_checkpoint_and_reports_stopped(qtbot, tiny_model_folder, tmp_path):
    from gui.worker import TrainController

    c = TrainController()
    seen = _record(c)
    c.progress.connect(lambda d: d["step"] >= 2 and c.stop())
    with qtbot.waitSignal(c.done, timeout=120_000):
        c.start(_cfg(tiny_model_folder, tmp_path, max_steps=40))
    finished = next(d for k, d in seen if k == "finished")
    assert finished["status"] == "stopped" and 2 <= finished["summary"]["steps"] < 40
    assert list((tmp_path / "runs" / "gui-run" / "checkpoints").glob("step-*"))


def test_bad_dataset_fails_plainly_and_leaves_no_run_folder(qtbot, tiny_model_folder, tmp_path):
    from gui.worker import TrainController

    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "a", "answer": "b"}\n{"question": "c", "answer": \n', encoding="utf-8")
    c = TrainController()
    seen = _record(c)
    with qtbot.waitSignal(c.done, timeout=60_000):
        c.start(_cfg(tiny_model_folder, tmp_path, data=bad, max_steps=2))
    kinds = [k for k, _ in seen]
    assert kinds == ["failed", "done"]
    message, details = seen[0][1]
    assert "broken.jsonl" in message and "Traceback" not in message
    assert "Traceback" in details  # kept for the dialog's details
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_unexpected_error_becomes_a_plain_message(qtbot, tiny_model_folder, tmp_path, monkeypatch):
    from engine.training import train as train_mod
    from gui.worker import TrainController

    def boom(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(train_mod.Trainer, "fit", boom)
    c = TrainController()
    seen = _record(c)
    with qtbot.waitSignal(c.done, timeout=60_000):
        c.start(_cfg(tiny_model_folder, tmp_path, max_steps=2))
    failed = [d for k, d in seen if k == "failed"]
    assert len(failed) == 1 and failed[0][0] == "Training stopped on an unexpected error: RuntimeError: disk on fire"
    assert seen[-1][0] == "done"


def test_resume_through_the_controller_continues_the_steps(qtbot, tiny_model_folder, tmp_path):
    from gui.worker import TrainController

    c = TrainController()
    first = _record(c)
    c.progress.connect(lambda d: d["step"] >= 2 and c.stop())
    with qtbot.waitSignal(c.done, timeout=120_000):
        c.start(_cfg(tiny_model_folder, tmp_path, max_steps=10, checkpoint_every=100))
    stopped_at = next(d for k, d in first if k == "finished")["summary"]["steps"]
    assert 2 <= stopped_at < 10  # the stop arrives a step or so late: signals are queued
    c = TrainController()
    seen = _record(c)
    with qtbot.waitSignal(c.done, timeout=120_000):
        c.start(resume_dir=str(tmp_path / "runs" / "gui-run"))
    assert next(d for k, d in seen if k == "started")["step"] == stopped_at
    assert [d["step"] for k, d in seen if k == "progress"] == list(range(stopped_at + 1, 11))
    steps = [json.loads(x)["step"] for x in (tmp_path / "runs" / "gui-run" / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(x)]
    assert steps == list(range(1, 11))


@pytest.fixture(autouse=True)
def _no_leftover_threads(qtbot):
    yield
    from gui import tasks

    tasks.wait_all(10_000)


def test_a_run_over_two_processes_from_the_window(qtbot, tiny_model_folder, tmp_path):
    """GPUs = 2 on the Plan page: the window starts `tunedesk train --request … --gpus 2`
    (on the CPU over gloo here) and shows rank 0's events as a one-process run's; Stop
    reaches both processes through the run folder."""
    from gui.worker import TrainController

    c = TrainController()
    seen = _record(c)
    cfg = _cfg(tiny_model_folder, tmp_path, max_steps=40, gpus=2, device="cpu", checkpoint_every=1000)
    c.progress.connect(lambda d: d["step"] == 2 and c.stop())
    with qtbot.waitSignal(c.done, timeout=300_000):
        assert c.start(cfg)
    kinds = [k for k, _ in seen if k != "metrics"]
    assert kinds[0] == "started" and kinds[-2:] == ["finished", "done"], kinds
    finished = next(d for k, d in seen if k == "finished")
    assert finished["status"] == "stopped" and 2 <= finished["summary"]["steps"] < 40
    run = tmp_path / "runs" / "gui-run"
    assert json.loads((run / "plan.json").read_text(encoding="utf-8"))["processes"] == 2
    assert (run / "adapter" / "adapter_model.safetensors").is_file() and any((run / "checkpoints").iterdir())
