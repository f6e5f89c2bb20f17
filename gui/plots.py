"""What every plot of the Train page shares: the widget's look and the smoothing of a noisy
per-step curve (gui/pages/train_page.py, gui/method_plots.py)."""

from __future__ import annotations

import pyqtgraph as pg


def smooth(values: list[float], alpha: float) -> list[float]:
    """Exponential moving average: each point is alpha of the previous average."""
    out, avg = [], None
    for v in values:
        avg = v if avg is None else alpha * avg + (1 - alpha) * v
        out.append(avg)
    return out


def plot_widget(title: str, left: str, *, legend: bool = False) -> pg.PlotWidget:
    w = pg.PlotWidget(title=title)
    w.setLabel("left", left)
    # Plain numbers: pyqtgraph's automatic prefix turned a loss of 0.6 into "600" with
    # "(x0.001)" in the axis title.
    w.getAxis("left").enableAutoSIPrefix(False)
    w.setLabel("bottom", "step")
    w.showGrid(x=True, y=True, alpha=0.2)
    w.setMenuEnabled(False)
    w.setMinimumHeight(150)
    if legend:
        w.addLegend(offset=(-10, 10))
    return w
