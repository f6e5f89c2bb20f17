"""One run over several processes, one per GPU, under torchrun (torch.distributed).

Data-parallel: every process holds the whole model and trains on its share of each
step's micro-batches; the stream of examples is the same in every process (same seed),
and process r takes micro-batches r, r + N, … of each step. The ranks then agree, and
only then exchange gradients:

- that every micro-batch fitted (`any`): a rank that ran out of memory makes every rank
  move to the same smaller plan and retry the step, so their plans never diverge;
- on the step's trained-token count (`total`): each rank's loss is divided by the count
  over all ranks, and the LoRA gradients are summed (`sum_grads`, one all-reduce of one
  flat buffer), so N processes make exactly the update one process makes from the same
  examples.

DistributedDataParallel would sum the gradients inside backward, bucket by bucket: a rank
that ran out of memory half-way would leave the others waiting in that all-reduce for
ever, which is why the exchange comes after the agreement here. LoRA's gradients are a
few tens of MB, so one all-reduce per optimizer step costs little.

Rank 0 writes the run folder (plan, metrics, checkpoints, adapter) and reports; the other
ranks report nothing. A stop request (the window's Stop, Ctrl-C, or the run folder's STOP
file) reaches every rank through `any` before each step.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

STOP_ENV = "TUNEDESK_STOP_FILE"  # set by spread_over: the file whose presence stops every rank
OOM_FILE = "out_of_memory.json"  # beside the stop file: a sharded run's rank ran out of memory (sharding.ran_out)


@dataclass
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def spread(self) -> bool:
        return self.world > 1

    lockstep = False  # sharded runs (engine/training/sharding.py): every forward is a collective

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any."""
        if not self.spread:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self._device())
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def total(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        if not self.spread:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._device())
        torch.distributed.all_reduce(t)
        return t.tolist()

    def sum_grads(self, params: list[torch.Tensor]) -> None:
        """Sum the gradients of `params` over the ranks, in one all-reduce."""
        grads = [p.grad for p in params if p.grad is not None]
        if not self.spread or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def same_params(self, params: list[torch.Tensor]) -> None:
        """Every rank starts from rank 0's trainable weights (as DDP does when it wraps a model)."""
        if self.spread:
            for p in params:
                torch.distributed.broadcast(p.data, src=0)

    def share(self, value):
        """Rank 0's value (any picklable object) on every rank."""
        if not self.spread:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    # What a checkpoint reads and writes; a sharded run's ranks gather and scatter them
    # (engine/training/sharding.py ShardedRanks), here each process holds them whole.
    def adapter_state(self, model) -> dict | None:
        """None: the model's own save_pretrained reads its weights."""
        return None

    def load_adapter(self, model, peft_state: dict) -> None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, peft_state)

    def optimizer_state(self, model, optimizer) -> dict:
        return optimizer.state_dict()

    def load_optimizer(self, model, optimizer, state: dict) -> None:
        optimizer.load_state_dict(state)

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block first (it fills the caches: the converted model, the
        tokenized data), then the others, which read them: no two processes write one cache."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def barrier(self) -> None:
        if self.spread:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group together: a process that exits with it still open
        can abort in gloo's teardown while the others are still writing (SIGABRT)."""
        if self.spread and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    def _device(self) -> torch.device:
        backend = torch.distributed.get_backend()
        return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


def launched_ranks(cuda: bool) -> Ranks:
    """The ranks torchrun started this process in (one process: Ranks()). Joins the
    process group: NCCL between GPUs, gloo between CPU processes (the tests')."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not torch.distributed.is_initialized():
        if cuda:
            torch.cuda.set_device(ranks.local_rank)
        # Never wait for ever: a rank that died inside a collective (out of memory in a
        # sharded pass) leaves the others waiting; torchrun ends them when it sees the
        # death, and this timeout when it cannot.
        timeout = datetime.timedelta(seconds=float(os.environ.get("TUNEDESK_COLLECTIVE_TIMEOUT_S", "900")))
        torch.distributed.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    return ranks


def stop_requested_from_outside() -> bool:
    """The launcher's Ctrl-C (spread_over) reaches the ranks as a file, not a signal."""
    path = os.environ.get(STOP_ENV)
    return bool(path) and Path(path).exists()


def check_cards(processes: int, device: str | None) -> None:
    """A run spread over N processes needs N CUDA GPUs; on the CPU (gloo) only when asked
    for by --device cpu, which is what the tests do."""
    from ..errors import ConfigError

    if device == "cpu":
        return
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if found < processes:
        raise ConfigError(f"--gpus {processes} needs {processes} CUDA GPUs; this PC has {found}. "
                          f"Use --gpus {max(1, found)}." if found else
                          f"--gpus {processes} needs CUDA GPUs; this PC has none (PyTorch sees no CUDA device).")


def spread_over(processes: int, argv: list[str]) -> int:
    """Run this command (`tunedesk train …` or `resume …`) again under torchrun, one process
    per GPU, and wait for it; returns its exit status.

    torchrun runs in its own session, so the terminal's Ctrl-C reaches only this process,
    which asks the ranks to stop at their next step (through STOP_ENV's file), so the run
    saves a checkpoint and can be resumed; a second Ctrl-C stops them at once."""
    with tempfile.TemporaryDirectory(prefix="tunedesk-") as tmp:
        stop = Path(tmp) / "stop"
        env = {**os.environ, STOP_ENV: str(stop)}
        code = _launch(processes, argv, env, stop)
        from ..fit.sharding import RESTART_ENV

        for attempt in range(MAX_RESTARTS):  # a sharded run that ran out of memory: again, one step smaller
            again = _after_out_of_memory(Path(tmp), argv, processes, attempt)
            if again is None or stop.exists():
                break
            argv, env[RESTART_ENV] = again
            code = _launch(processes, argv, env, stop)
        return code


MAX_RESTARTS = 6  # a sharded run's restarts after out of memory (each one step smaller): then it fails


def _after_out_of_memory(tmp: Path, argv: list[str], processes: int, attempt: int) -> tuple[list[str], str] | None:
    """The command that continues a sharded run after one of its ranks ran out of memory
    (engine/training/sharding.py ran_out left a note), and the note's path; None otherwise.
    From the run's last checkpoint when it has one, else the same command anew."""
    note_file = tmp / OOM_FILE
    if not note_file.is_file():
        return None
    kept = tmp / f"oom-{attempt}.json"
    note_file.replace(kept)
    import json

    run = json.loads(kept.read_text(encoding="utf-8")).get("run")
    if run and any((Path(run) / "checkpoints").glob("step-*")):
        events = ["--json-events"] if "--json-events" in argv else []
        argv = ["resume", run, "--gpus", str(processes), *events]
    print(f"A rank ran out of GPU memory; restarting {'from the last checkpoint' if run else 'the run'} one step "
          "smaller…", file=sys.stderr, flush=True)
    return argv, str(kept)


def _launch(processes: int, argv: list[str], env: dict, stop: Path) -> int:
    """One torchrun of this command; Ctrl-C asks the ranks to stop (see spread_over)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           "-m", "engine.cli", *argv]
    child = subprocess.Popen(cmd, env=env, start_new_session=True)

    def on_sigint(_sig, _frame):
        if stop.exists():
            child.terminate()
        stop.touch()
        print("\nStopping after this step and saving a checkpoint (Ctrl-C again to stop at once)…", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        code = child.wait()
        return 130 if code == 0 and stop.exists() else code  # stopped by Ctrl-C, as in one process
    finally:
        signal.signal(signal.SIGINT, previous)
