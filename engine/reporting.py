"""The engine's one reporting interface (no Qt).

A long job receives a `Reporter`. It calls `event(kind, **data)` with plain, JSON-able
data and polls `stop_requested()` between steps. The CLI prints events, tests record
them, and the GUI forwards them as Qt signals. Event kinds and their fields:

- ``status``    text
- ``warning``   text
- ``progress``  step, total_steps, epoch, tokens_per_s, eta_s, elapsed_s
- ``metrics``   step, and any of loss, eval_loss, lr, grad_norm, mem_bytes, mem_reserved_bytes,
                tokens, trained_tokens, and a method's own (engine/training/objectives/): DPO / ORPO's
                reward_margin, pref_accuracy, chosen_reward, rejected_reward, eval_pref_accuracy,
                eval_reward_margin; GRPO's reward_mean, reward_<name>
- ``started``   run_dir, total_steps, step (0, or the checkpoint's step when resumed)
- ``checkpoint`` step, path
- ``oom_recovery`` cause ('out of memory' | 'calibration'), text, step, and the new plan's
                micro_batch, grad_accum, gradient_checkpointing, lean_memory, seq_len
- ``finished``  run_dir, status ('finished' | 'stopped' | 'failed'), summary (with 'error' when failed)
- ``generations`` GRPO: step, split ('train': a few of the step's sampled answers; 'eval': the
                greedy validation answers), samples: [{row, prompt (its end, as text), completion,
                ended, tokens, reward, parts {reward name: score}, reference}]
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO


def loss_text(value: Any) -> str:
    """A loss for people: 4 significant digits ('-' when there is none); JSON keeps every digit."""
    return "-" if value is None else f"{value:.4g}"


class Reporter:
    """Base reporter: ignores every event; stops when `request_stop()` was called."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def event(self, kind: str, **data: Any) -> None:  # noqa: D401 - interface
        pass

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Thread-safe: ask the running job to save and stop at the next step."""
        self._stop.set()

    # Conveniences so engine code reads naturally.
    def status(self, text: str) -> None:
        self.event("status", text=text)

    def warning(self, text: str) -> None:
        self.event("warning", text=text)


class RecordingReporter(Reporter):
    """Keeps every event; for tests and for callers that want the history."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **data: Any) -> None:
        self.events.append((kind, data))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k == kind]


class JsonLinesReporter(Reporter):
    """One JSON object per line: {"event": kind, ...data}."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stdout

    def event(self, kind: str, **data: Any) -> None:
        self.stream.write(json.dumps({"event": kind, **data}, ensure_ascii=False, default=str) + "\n")
        self.stream.flush()


class ConsoleReporter(Reporter):
    """Human output for the CLI: a tqdm progress bar and status lines on stderr; the
    result (how the run ended, its losses and folder) on stdout, so a pipe captures it."""

    def __init__(self, stream: TextIO | None = None, result: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.result = result or sys.stdout
        self._bar = None
        self._last: dict[str, Any] = {}

    def _write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def event(self, kind: str, **data: Any) -> None:
        if kind == "status":
            self._write(data["text"])
        elif kind == "warning":
            self._write(f"warning: {data['text']}")
        elif kind == "started":
            from tqdm import tqdm

            self._bar = tqdm(total=data["total_steps"], unit="step", file=self.stream, dynamic_ncols=True)
        elif kind == "progress" and self._bar is not None:
            self._bar.n = data["step"]
            post = {"epoch": f"{data['epoch']:.2f}", "tok/s": f"{data['tokens_per_s']:.0f}"}
            if "reward_mean" in self._last:
                post["reward"] = f"{self._last['reward_mean']:.2f}"
            elif "loss" in self._last:
                post["loss"] = f"{self._last['loss']:.3f}"
            if "eval_loss" in self._last:
                post["eval"] = f"{self._last['eval_loss']:.3f}"
            self._bar.set_postfix(post, refresh=False)
            self._bar.refresh()
        elif kind == "metrics":
            self._last.update({k: v for k, v in data.items() if k in ("loss", "eval_loss", "reward_mean")})
            if "eval_loss" in data:
                extra = "".join(f", {k[5:].replace('_', ' ')} {data[k]:.3f}" for k in sorted(data)
                                if k.startswith("eval_") and k != "eval_loss" and isinstance(data[k], float))
                self._write(f"step {data['step']}: eval loss {loss_text(data['eval_loss'])}{extra}")
            elif "eval_reward_mean" in data:  # GRPO: the validation answers' mean reward
                self._write(f"step {data['step']}: validation reward {loss_text(data['eval_reward_mean'])}")
        elif kind == "finished":
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            s = data.get("summary", {})
            error = f" ({s['error']})" if s.get("error") else ""
            r = s.get("rewards")
            figures = (f"mean reward {r['first_steps']['reward_mean']:.2f} -> {r['last_steps']['reward_mean']:.2f}" if r else
                       f"train loss {loss_text(s.get('train_loss'))}, eval loss {loss_text(s.get('eval_loss'))}")
            print(f"{data['status']}{error}: {s.get('steps')} steps in {s.get('duration_s', 0):.0f} s, {figures} "
                  f"-> {data['run_dir']}", file=self.result, flush=True)
