"""Small shared widgets: banners, the memory bar, the error dialog, number formats."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QVBoxLayout, QWidget

from . import theme

GiB = 1024**3


def gib(n: float | int | None) -> str:
    return "–" if n is None else f"{n / GiB:.1f} GiB"


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:  # None or NaN
        return "–"
    s = int(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("pageTitle")
    return label


def hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def page_layout(page: QWidget, title_text: str, hint_text: str) -> QVBoxLayout:
    """A page's vertical layout, opened by its title and a one-line hint (the sidebar numbers the pages)."""
    layout = QVBoxLayout(page)
    layout.addWidget(title(title_text))
    layout.addWidget(hint(hint_text))
    return layout


class Banner(QLabel):
    """A coloured one-paragraph message (error / warning / ok); hidden when empty."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("banner")
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide()

    def show_message(self, kind: str, text: str) -> None:
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.setText(text)
        self.setVisible(bool(text))

    def clear_message(self) -> None:
        self.setText("")
        self.hide()


class MemoryBar(QWidget):
    """The plan's memory terms as one stacked bar against the budget and the card."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: dict[str, int] = {}
        self.budget = 0
        self.total = 0
        self.setMinimumHeight(46)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(400, 46)

    def set_values(self, parts: dict[str, int], budget: int, total: int) -> None:
        self.parts, self.budget, self.total = dict(parts), budget, total
        self.setToolTip("\n".join(f"{k}: {gib(v)}" for k, v in parts.items()) + f"\nbudget: {gib(budget)}")
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        bar = QRectF(0, 8, self.width() - 1, 26)
        p.setPen(QPen(self.palette().mid().color()))
        p.setBrush(self.palette().base())
        p.drawRoundedRect(bar, 5, 5)
        scale = max(self.total, self.budget, sum(self.parts.values()), 1)
        x = bar.left()
        p.setPen(Qt.PenStyle.NoPen)
        for name, value in self.parts.items():
            w = bar.width() * value / scale
            p.setBrush(QColor(theme.SERIES.get(name, "#888888")))
            p.drawRect(QRectF(x, bar.top() + 1, max(0.0, min(w, bar.right() - x)), bar.height() - 2))
            x += w
        if self.budget:
            bx = bar.left() + bar.width() * self.budget / scale
            p.setPen(QPen(QColor("#dc2626"), 2, Qt.PenStyle.DashLine))
            p.drawLine(int(bx), 2, int(bx), int(bar.bottom()) + 6)
        p.end()


def show_error(parent: QWidget | None, title_text: str, message: str, details: str = "") -> QMessageBox:
    """A non-blocking error dialog: a plain message, the technical details folded away."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title_text)
    box.setText(message)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
