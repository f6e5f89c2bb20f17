"""Fusion style with a dark palette when the system is dark, a light one otherwise, and
one small style sheet for the sidebar and the primary button."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#3b82f6"
SERIES = {"weights": "#6366f1", "lora": "#22c55e", "activations": "#f59e0b", "logits": "#ef4444", "overhead": "#94a3b8"}


def is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hasattr(hints, "colorScheme") and hints.colorScheme() == Qt.ColorScheme.Dark


def apply(app: QApplication) -> None:
    app.setStyle("Fusion")
    dark = is_dark()
    if dark:
        p = QPalette()
        for role, color in {
            QPalette.ColorRole.Window: "#1f2329", QPalette.ColorRole.WindowText: "#e6e6e6",
            QPalette.ColorRole.Base: "#171a1f", QPalette.ColorRole.AlternateBase: "#252a31",
            QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#2a2f37",
            QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.Highlight: ACCENT,
            QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#2a2f37",
            QPalette.ColorRole.ToolTipText: "#e6e6e6", QPalette.ColorRole.PlaceholderText: "#8b949e",
        }.items():
            p.setColor(role, QColor(color))
        app.setPalette(p)
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, background="#171a1f" if dark else "#ffffff", foreground="#c9d1d9" if dark else "#374151")
    side, side_text, sel = ("#16191d", "#c9d1d9", "#2d333b") if dark else ("#eef1f5", "#1f2937", "#dbe4f0")
    app.setStyleSheet(f"""
        QListWidget#sidebar {{ background: {side}; border: none; font-size: 15px; padding-top: 8px; }}
        QListWidget#sidebar::item {{ color: {side_text}; padding: 12px 16px; border-radius: 6px; margin: 2px 8px; }}
        QListWidget#sidebar::item:selected {{ background: {sel}; color: {side_text}; font-weight: bold; }}
        QPushButton#primary {{ background: {ACCENT}; color: white; font-weight: bold; font-size: 14px;
                               padding: 8px 22px; border-radius: 6px; border: none; }}
        QPushButton#primary:disabled {{ background: #7f9cc9; }}
        QPushButton#primary:hover {{ background: #2563eb; }}
        QLabel#pageTitle {{ font-size: 20px; font-weight: bold; }}
        QLabel#hint {{ color: palette(placeholder-text); }}
        QLabel#banner {{ border-radius: 6px; padding: 8px 10px; }}
        QLabel#banner[kind="error"] {{ background: #fde2e1; color: #7f1d1d; }}
        QLabel#banner[kind="warning"] {{ background: #fef3c7; color: #78350f; }}
        QLabel#banner[kind="ok"] {{ background: #dcfce7; color: #14532d; }}
    """)
