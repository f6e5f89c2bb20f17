"""The Train page's plot look (gui/plots.py)."""

from gui.plots import plot_widget, smooth


def test_small_values_read_as_plain_numbers_not_scaled_by_a_prefix(qtbot):
    w = plot_widget("Loss", "loss")
    qtbot.addWidget(w)
    w.plot([1, 2, 3], [0.69, 0.45, 0.16])
    w.show()
    qtbot.wait(50)
    axis = w.getAxis("left")
    assert "x0.001" not in axis.labelString() and axis.autoSIPrefixScale == 1.0


def test_smoothing_follows_the_last_values():
    assert smooth([1.0, 0.0, 0.0], 0.5) == [1.0, 0.5, 0.25]
