"""The Train page's GRPO answers (gui/generations_view.py): hidden for other methods, filled
from the controller's "generations" signal, cleared when a new run starts."""

from engine.training.objectives.grpo import question

EVENT = {"step": 3, "split": "train", "samples": [
    {"row": 4, "prompt": "system\nYou are a helpful AI assistant.\nuser\nWhat is 14 + 22? Reply with the number only.\nassistant",
     "completion": "14 + 22 equals 36.", "ended": True, "tokens": 9, "reward": 1.0, "parts": {"match": 1.0},
     "reference": "36"},
    {"row": 4, "prompt": "user\nWhat is 14 + 22?\nassistant", "completion": "This problem is", "ended": False,
     "tokens": 12, "reward": 0.0, "parts": {"match": 0.0}, "reference": "36"}]}


def test_train_page_shows_the_sampled_answers_of_a_grpo_run(window, qtbot):
    page, c = window.train_page, window.controller
    view = page.generations
    window.show_page("Train")
    assert not view.isVisible()  # an SFT run never sends one
    c.generations.emit(EVENT)
    assert view.isVisible() and view.table.rowCount() == 2
    assert "Step 3" in view.title.text() and "mean reward 0.50" in view.title.text()
    cells = [view.table.item(0, j).text() for j in range(4)]
    assert cells == ["1.00", "14 + 22 equals 36.", "What is 14 + 22? Reply with the number only.", "36"]
    assert view.table.item(1, 1).text().endswith("…")  # cut at the token limit: said so
    c.started.emit({"run_dir": "x", "total_steps": 5, "step": 0})
    assert not view.isVisible() and view.table.rowCount() == 0


def test_the_question_is_the_prompts_last_line_of_content():
    assert question("system\nBe brief.\nuser\nName a color.\nassistant\n") == "Name a color."
    assert question("<|User|>Why?<|Assistant|><think>\n") == "<|User|>Why?<|Assistant|><think>"
