"""The main window: a sidebar of steps (Data → Model → Plan → Train), a header with the
Train button, a status bar. It owns the session and the training controller."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from engine import logs, paths

from . import dialogs, settings
from .pages.compare_page import ComparePage
from .pages.data_page import DataPage
from .pages.model_page import ModelPage
from .pages.plan_page import PlanPage
from .pages.runs_page import RunsPage
from .pages.train_page import TrainPage
from .session import Session
from .widgets import show_error
from .worker import TrainController

PAGES = ["Data", "Model", "Plan", "Train", "Compare", "Runs"]


class MainWindow(QMainWindow):
    def __init__(self, session: Session | None = None) -> None:
        super().__init__()
        self.setWindowTitle("TuneDesk")
        self.session = session or Session()
        self.controller = TrainController(self)
        self._close_after_stop = False

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        header = QWidget()
        header.setObjectName("header")
        hl = QHBoxLayout(header)
        hl.setContentsMargins(16, 10, 16, 10)
        brand = QLabel("<b style='font-size:18px'>TuneDesk</b>  <span style='color:gray'>fine-tune a language model on your own data</span>")
        hl.addWidget(brand)
        hl.addStretch(1)
        self.summary_label = QLabel("")
        self.summary_label.setObjectName("hint")
        hl.addWidget(self.summary_label)
        self.train_button = QPushButton("▶  Train")
        self.train_button.setObjectName("primary")
        self.train_button.setToolTip("Start training with the current dataset, model and plan (Ctrl+Enter)")
        self.train_button.clicked.connect(self.train)
        hl.addWidget(self.train_button)
        outer.addWidget(header)

        body = QHBoxLayout()
        body.setSpacing(0)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(170)
        self.sidebar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stack = QStackedWidget()
        self.data_page = DataPage(self.session)
        self.model_page = ModelPage(self.session)
        self.plan_page = PlanPage(self.session)
        self.train_page = TrainPage(self.session, self.controller)
        self.compare_page = ComparePage(self.session)
        self.runs_page = RunsPage(self.session)
        pages = {"Data": self.data_page, "Model": self.model_page, "Plan": self.plan_page, "Train": self.train_page,
                 "Compare": self.compare_page, "Runs": self.runs_page}
        for i, name in enumerate(PAGES, 1):  # the one order: sidebar numbers, stack, Ctrl+number
            self.sidebar.addItem(QListWidgetItem(f"{i}   {name}"))
            pages[name].layout().setContentsMargins(20, 16, 20, 16)
            self.stack.addWidget(pages[name])
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        body.addWidget(self.sidebar)
        body.addWidget(self.stack, 1)
        outer.addLayout(body, 1)
        self.setCentralWidget(central)
        self.sidebar.setCurrentRow(0)

        self.session.status.connect(lambda t: self.statusBar().showMessage(t, 8000))
        self.session.model_failed.connect(lambda m, _d: self.statusBar().showMessage(m, 15000))
        for sig in (self.session.model_changed, self.session.data_changed):
            sig.connect(self._update_summary)
        self.controller.started.connect(lambda _: self._training_state())
        self.controller.done.connect(self._training_done)
        self.train_page.training_finished.connect(self._notify)
        self.controller.model_ready.connect(self.compare_page.attach)
        self.controller.starting.connect(self.compare_page.release)
        self.runs_page.resume_requested.connect(self._resume_run)
        self.runs_page.compare_requested.connect(self._compare_run)
        self.runs_page.retrain_requested.connect(self._retrain_run)

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("Diagnostics…", lambda: dialogs.diagnostics(self))
        help_menu.addAction("Open data folder", lambda: self._open_folder(paths.data_dir()))
        help_menu.addAction("Open log folder", lambda: self._open_folder(logs.log_dir()))
        help_menu.addAction("About TuneDesk", lambda: dialogs.about(self))
        QShortcut(QKeySequence.StandardKey.Open, self, activated=self._open_dataset)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.train)
        QShortcut(QKeySequence("Escape"), self, activated=self.train_page.stop)
        for i in range(len(PAGES)):
            QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self, activated=lambda i=i: self.sidebar.setCurrentRow(i))

        geometry = settings.settings().value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        self.statusBar().showMessage("Starting…")

    # -- navigation and actions -----------------------------------------------------------
    def show_page(self, name: str) -> None:
        self.sidebar.setCurrentRow(PAGES.index(name))

    def _open_folder(self, folder) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _open_dataset(self) -> None:
        self.show_page("Data")
        self.data_page.choose_file()

    def train(self) -> None:
        why = self.train_page.can_start()
        if why and not self.session.cfg.data.path:
            self.show_page("Data")
            self.data_page.banner.show_message("warning", "Choose a dataset (or a sample) first, then click Train.")
            return
        self.show_page("Train")
        self.train_page.start()

    def _resume_run(self, path: str) -> None:
        self.show_page("Train")
        self.train_page.resume(path)

    def _compare_run(self, path: str) -> None:
        self.show_page("Compare")
        self.compare_page.open_run(path)

    def _retrain_run(self, path: str) -> None:
        """The run's settings (as it ran them) become the current ones; a new run folder."""
        from engine.runs import RunDir

        cfg = RunDir.open(path).read_config()[0].for_new_run(self.session.cfg.out_dir)
        self.session.cfg = cfg
        self.plan_page.load_fields()
        self.session.load_model(cfg.model.source)
        self.session.load_data()  # the run's own source, shape, labels and instruction
        self.show_page("Plan")
        self.statusBar().showMessage(f"Settings of {Path(path).name} loaded: click Train to run them again.", 10000)

    def _update_summary(self) -> None:
        m = self.session.model.card["name"] if self.session.model else "…"
        r = self.session.data_report
        d = f"{r['kept']:,} rows of {r['file'].replace(chr(92), '/').split('/')[-1]}" if r else "no dataset"
        self.summary_label.setText(f"{m} · {d}")

    def _training_state(self) -> None:
        self.train_button.setEnabled(False)
        self.train_button.setText("Training…")

    def _training_done(self) -> None:
        self.train_button.setEnabled(True)
        self.train_button.setText("▶  Train")
        if self._close_after_stop:
            self.close()

    def _notify(self, d: dict) -> None:
        text = "Training finished." if d["status"] == "finished" else "Training stopped; a checkpoint was kept."
        self.statusBar().showMessage(text, 0)
        QApplication.alert(self)
        if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            tray = QSystemTrayIcon(self.windowIcon(), self)
            tray.show()
            tray.showMessage("TuneDesk", text)

    # -- closing ----------------------------------------------------------------------------
    def confirm_stop_on_close(self) -> bool:
        answer = QMessageBox.question(
            self, "Training is running",
            "A training is running. Stop it and quit? A checkpoint is saved first, so you can resume it later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:
        if self.controller.running:
            if self._close_after_stop or self.confirm_stop_on_close():
                self._close_after_stop = True
                self.train_page.stop()
                self.statusBar().showMessage("Saving a checkpoint before quitting…", 0)
            event.ignore()  # closes itself when the training thread is done
            return
        settings.put("geometry", self.saveGeometry())
        super().closeEvent(event)

    def show_error(self, title_text: str, message: str, details: str = ""):
        return show_error(self, title_text, message, details)
