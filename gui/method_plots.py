"""The Train page's plots of a method's own metrics, from the "metrics" events: DPO / ORPO's
reward margin and preference accuracy, and one plot of every other extra metric a method
reports (chosen / rejected rewards; GRPO's reward_mean and reward_<name>). A metric's
validation form (eval_<name>) is drawn as points on its training curve's plot. Plots
without data stay hidden, so an SFT run shows none of them."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QWidget

from .plots import plot_widget, smooth

# What the Train page plots elsewhere, or that is no metric of the method's.
STANDARD = {"step", "epoch", "loss", "lr", "grad_norm", "tokens", "trained_tokens", "mem_bytes", "mem_reserved_bytes",
            "eval_loss", "general_loss"}
TITLES = {"reward_margin": ("Reward margin (chosen − rejected)", "margin"),
          "pref_accuracy": ("Preference accuracy", "% chosen more likely")}
PERCENT = {"pref_accuracy"}
COLORS = ["#3b82f6", "#ef4444", "#22c55e", "#a855f7", "#f59e0b", "#0ea5e9", "#64748b", "#ec4899"]
SMOOTHING = 0.6


class MethodPlots(QWidget):
    """One plot per headline metric (TITLES) and one for the others; filled by add(metrics event)."""

    def __init__(self) -> None:
        super().__init__()
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.series: dict[str, tuple[list[int], list[float]]] = {}
        self.clear()

    def clear(self) -> None:
        for p in self.plots.values():
            p.setParent(None)
            p.deleteLater()
        self.plots, self.curves, self.series = {}, {}, {}
        self.hide()

    def _plot_for(self, name: str) -> pg.PlotWidget:
        key = name if name in TITLES else "other"
        if key not in self.plots:
            title, left = TITLES.get(key, ("Rewards", "reward"))
            self.plots[key] = plot_widget(title, left, legend=True)
            order = [*TITLES, "other"]  # the same places whichever metric comes first
            at = sum(1 for k in self.plots if order.index(k) < order.index(key))
            self.row.insertWidget(at, self.plots[key], 1)
            self.show()
        if key == "other" and "reward" not in name:  # anything but rewards (a KL term, …)
            self.plots[key].setTitle("Method metrics")
            self.plots[key].setLabel("left", "value")
        return self.plots[key]

    def _curve(self, name: str, evaluation: bool) -> pg.PlotDataItem:
        key = ("eval_" if evaluation else "") + name
        if key not in self.curves:
            plot = self._plot_for(name)
            color = COLORS[len([k for k in self.curves if not k.startswith("eval_")]) % len(COLORS)] if not evaluation else \
                "#f59e0b"
            label = (f"validation {name.replace('_', ' ')}" if evaluation else name.replace("_", " ") + " (smoothed)")
            self.curves[key] = (plot.plot([], [], pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6, name=label)
                                if evaluation else plot.plot([], [], pen=pg.mkPen(color, width=2), name=label))
        return self.curves[key]

    def add(self, d: dict) -> None:
        """A "metrics" event: every number beyond the standard ones joins its series."""
        for key, value in d.items():
            if key in STANDARD or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            evaluation = key.startswith("eval_")
            name = key[5:] if evaluation else key
            self._curve(name, evaluation)
            xs, ys = self.series.setdefault(key, ([], []))
            xs.append(d["step"])
            ys.append(100 * value if name in PERCENT else value)

    def redraw(self) -> None:
        for key, curve in self.curves.items():
            xs, ys = self.series.get(key, ([], []))
            curve.setData(xs, ys if key.startswith("eval_") else smooth(ys, SMOOTHING))

    def points(self) -> dict[str, int]:
        """How many points each metric's series holds (tests, screenshots)."""
        return {k: len(v[0]) for k, v in self.series.items()}
