"""What the window knows: the one RunConfig being edited, the loaded model's card and
tokenizer, the inspected dataset, the probed hardware. Slow work runs through gui.tasks,
one key each (engine, model, data, hardware); results come back as signals. A newer
model or dataset request supersedes an older one, so a slow answer never overwrites a
newer choice."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.config import RunConfig

from . import settings
from .tasks import Tasks

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
FIRST_SAMPLE = "pirate_trivia.jsonl"


def _import_engine() -> None:
    # torch and transformers take seconds to import: never on the UI thread before it shows.
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import engine.fit.planner  # noqa: F401
    import engine.training.train  # noqa: F401


def _inspect(data_cfg, tokenizer, model_name: str) -> tuple[Any, dict[str, Any]]:
    from engine.data import prepare
    from engine.data.report import describe

    data = prepare(data_cfg, tokenizer)
    return data, describe(data, data_cfg.path, model_name=model_name)


def _probe(out_dir: str):
    from engine import paths
    from engine.hardware import probe

    return probe(out_dir or paths.default_runs_dir())


class Session(QObject):
    engine_ready = Signal()
    model_loading = Signal(str)
    model_changed = Signal()
    model_failed = Signal(str, str)
    download_progress = Signal(int, int)
    data_loading = Signal(str)
    data_changed = Signal()
    data_failed = Signal(str, str)
    hardware_changed = Signal()
    config_changed = Signal()  # a plan-relevant setting was edited
    status = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.cfg = RunConfig()
        self.cfg.model.source = settings.get("model_source", "demo") or "demo"
        self.cfg.out_dir = settings.get("out_dir", "")
        last = settings.get("last_dataset", "")
        self.cfg.data.path = last if last and Path(last).is_file() else ""
        # First run: the bundled sample and the demo model are chosen, so the very first
        # click on Train works, offline.
        self.first_run = not settings.settings().allKeys()
        if self.first_run:
            self.cfg.data.path = str(SAMPLES / FIRST_SAMPLE)
        self.ready = False
        self.model = None  # engine.models.model_card.LoadedModel
        self.data = None  # engine.data.PreparedData
        self.data_report: dict[str, Any] | None = None
        self.hardware = None  # engine.hardware.HardwareInfo
        self.tasks = Tasks(self)

    # -- engine ---------------------------------------------------------------------
    def load_engine(self) -> None:
        self.status.emit("Loading the training engine (PyTorch)…")
        self.tasks.run("engine", lambda _job: _import_engine(), on_done=lambda _: self._engine_loaded(),
                       on_failed=lambda msg, det: self.model_failed.emit(f"The training engine cannot start: {msg}", det))

    def _engine_loaded(self) -> None:
        import gc

        gc.freeze()  # torch & co. are loaded for good: keep the collector's full passes short
        self.ready = True
        self.status.emit("Ready")
        self.engine_ready.emit()
        self.refresh_hardware()
        self.load_model()

    # -- model ----------------------------------------------------------------------
    def load_model(self, source: str | None = None) -> None:
        if source is not None:
            self.cfg.model.source = source.strip() or "demo"
        self.model = None
        self.model_loading.emit(self.cfg.model.source)
        if not self.ready:
            return  # loaded once the engine is
        from engine.models import model_card

        cfg = copy.deepcopy(self.cfg.model)
        self.tasks.run(
            "model",
            lambda job: model_card.load(cfg, status=job.report, progress=lambda done, total: job.report((done, total)),
                                        cancelled=job.stopped),
            on_progress=self._model_progress, on_done=self._model_loaded, on_failed=self.model_failed.emit,
        )

    def _model_progress(self, value: str | tuple[int, int]) -> None:
        """A status line or the bytes of a download, from the newest model request only."""
        if isinstance(value, str):
            self.status.emit(value)
        else:
            self.download_progress.emit(*value)

    def cancel_download(self) -> None:
        self.tasks.stop("model")

    def _model_loaded(self, model) -> None:
        self.model = model
        settings.put("model_source", self.cfg.model.source)
        self.status.emit(f"Model: {model.card['name']}")
        self.model_changed.emit()
        if self.cfg.data.path:
            self.load_data()

    # -- data -----------------------------------------------------------------------
    def load_data(self, path: str | None = None, *, fmt: str | None = None, mapping: dict[str, str] | None = None) -> None:
        """Inspect a dataset (a new path clears any format override)."""
        if path is not None:  # a file: nothing of an earlier choice's shape or source applies
            d = self.cfg.data
            d.path, d.format, d.mapping = str(path), fmt, mapping
            d.from_hub, d.hub_config, d.hub_split, d.labels, d.instruction = False, None, None, None, None
            d.max_samples = None  # a Hub dataset's first N rows; the window sets no subset of a file
        self.data, self.data_report = None, None
        self.data_loading.emit(self.cfg.data.path)
        if self.model is None:
            self.tasks.cancel("data")  # an inspection for an older choice must not land
            return  # inspected once the model (its tokenizer) is loaded
        data_cfg = copy.deepcopy(self.cfg.data)
        data_cfg.max_seq_len = None  # inspect everything; the plan picks the length
        tokenizer, name = self.model.tokenizer, self.model.card["name"]
        self.tasks.run("data", lambda _job: _inspect(data_cfg, tokenizer, name), on_done=self._data_loaded,
                       on_failed=self.data_failed.emit)

    def load_hub(self, dataset: str, *, config: str | None = None, split: str | None = None,
                 max_samples: int | None = None) -> None:
        """Inspect a Hugging Face Hub dataset (the Data page has fetched it: read from memory)."""
        d = self.cfg.data
        d.path, d.from_hub, d.hub_config, d.hub_split, d.max_samples = dataset, True, config, split, max_samples
        d.format = d.mapping = d.labels = d.instruction = None
        self.load_data()

    def _data_loaded(self, result) -> None:
        self.data, self.data_report = result
        settings.put("last_dataset", self.cfg.data.path)
        self.data_changed.emit()

    # -- hardware and plan ------------------------------------------------------------
    def refresh_hardware(self) -> None:
        """Probe again (the pages' meters ask every few seconds); a probe under way will answer."""
        if not self.tasks.busy("hardware"):
            out_dir = self.cfg.out_dir
            self.tasks.run("hardware", lambda _job: _probe(out_dir), on_done=self._hardware_probed)

    def _hardware_probed(self, hw) -> None:
        self.hardware = hw
        self.hardware_changed.emit()

    def plan(self):
        """The engine planner's plan for the current settings, or None before a model."""
        if self.model is None or not self.ready:
            return None
        from engine.fit import planner, sharding

        data = self.data.plan_inputs() if self.data is not None else {}
        return sharding.resolve(self.cfg, self.model.info, planner.target_for(self.cfg, self.hardware), **data)

    def edited(self) -> None:
        self.config_changed.emit()

    def run_config(self) -> RunConfig:
        """A copy of the settings for a training (the engine fills what is left to the plan)."""
        return copy.deepcopy(self.cfg)
