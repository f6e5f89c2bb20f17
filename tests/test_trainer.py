"""The training loop on a tiny random model: fast, but the real loop and real files."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from conftest import StopAfter, tiny_run_config as _cfg

from engine.reporting import RecordingReporter
from engine.training.checkpoints import STATE_FILE
from engine.training.optim import cosine_with_warmup
from engine.training.stream import step_batches
from engine.training.train import Trainer


def test_stop_request_saves_and_exits_cleanly(tiny_model_folder, tmp_path):
    rep = StopAfter(3)
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=50), rep)
    t.setup()
    summary = t.fit()
    assert summary["status"] == "stopped" and summary["steps"] == 3
    run = tmp_path / "tiny"
    assert (run / "checkpoints" / "step-000003" / STATE_FILE).is_file()
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((run / "summary.json").read_text())["status"] == "stopped"
    kinds = [k for k, _ in rep.events]
    assert kinds.index("started") < kinds.index("progress") < kinds.index("finished") == len(kinds) - 1


def test_checkpoints_hold_resumable_state_and_only_the_last_are_kept(tiny_model_folder, tmp_path):
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=7, checkpoint_every=2, keep_checkpoints=2, grad_accum=2))
    t.setup()
    t.fit()
    ckpts = sorted(p.name for p in (tmp_path / "tiny" / "checkpoints").iterdir())
    assert ckpts == ["step-000004", "step-000006"]
    state = torch.load(tmp_path / "tiny" / "checkpoints" / "step-000006" / STATE_FILE, weights_only=True)
    assert state["step"] == 6 and state["optimizer"]["state"]  # Adam moments are there
    assert state["index"] > 0 and state["micro_batch"] == 2 and state["grad_accum"] == 2


def test_reported_metrics_and_progress(tiny_model_folder, tmp_path):
    rep = RecordingReporter()
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=4, eval_every=2), rep)
    t.setup()
    t.fit()
    progress = rep.of("progress")
    assert [p["step"] for p in progress] == [1, 2, 3, 4]
    assert all(p["total_steps"] == 4 and p["tokens_per_s"] > 0 and p["eta_s"] >= 0 for p in progress)
    assert progress[-1]["eta_s"] == 0
    metrics = rep.of("metrics")
    assert [m["step"] for m in metrics if "eval_loss" in m] == [0, 2, 4]
    assert all({"loss", "lr", "grad_norm", "mem_bytes"} <= set(m) for m in metrics if m["step"] > 0)


def test_grad_accumulation_weights_every_token_equally(tiny_model_folder, tmp_path):
    """One step of micro-batch 4 equals one step of 2 x 2 accumulated (same rows)."""
    losses = {}
    for mb, acc in ((4, 1), (2, 2)):
        t = Trainer(_cfg(tiny_model_folder, tmp_path / f"{mb}", max_steps=1, micro_batch=mb, grad_accum=acc))
        t.setup()
        # Same 4 rows in both: fix the data order to the first four training rows.
        order = iter([[0, 1, 2, 3]] if mb == 4 else [[0, 1], [2, 3]])
        t.stream.next_batch = lambda size: next(order)
        losses[mb] = t.train_step()["loss"]
    assert abs(losses[4] - losses[2]) < 1e-4


def test_lr_schedule_warms_up_then_decays():
    f = cosine_with_warmup(total=100, warmup=10)
    assert 0 < f(0) < f(5) < f(9) <= 1.0
    assert f(10) == 1.0 and f(55) < f(20) and f(99) < 0.01


def test_out_of_memory_is_recovered_with_the_same_effective_batch(tiny_model_folder, tmp_path):
    """A fake CUDA OOM raised inside the step for any micro-batch above 1, or without
    gradient checkpointing: the step is retried smaller until it fits, nothing is lost."""
    rep = RecordingReporter()
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=3, micro_batch=4, grad_accum=2), rep)
    t.setup()
    first_step_rows = t.stream.order(0)[:8]
    decoder = t.model.get_base_model().get_decoder()
    real_forward = decoder.forward

    def forward(*args, input_ids=None, **kw):
        if torch.is_grad_enabled() and (input_ids.shape[0] > 1 or not t.plan.gradient_checkpointing):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real_forward(*args, input_ids=input_ids, **kw)

    decoder.forward = forward
    # Recovery must run after the exception handler has exited: while the OOM is being
    # handled its traceback pins every tensor of the failed step, so nothing could be freed.
    handling = []
    real_recover = t._recover
    t._recover = lambda *a: (handling.append(sys.exc_info()[0]), real_recover(*a))
    summary = t.fit()
    assert summary["status"] == "finished" and summary["steps"] == 3 and summary["oom_recoveries"] == 3
    assert handling == [None, None, None]
    events = rep.of("oom_recovery")
    assert [(e["micro_batch"], e["grad_accum"], e["gradient_checkpointing"]) for e in events] == [
        (2, 4, False), (1, 8, False), (1, 8, True)
    ]
    assert all(e["step"] == 1 for e in events)  # the same step, retried
    # Step 1 trained exactly the 8 examples it started with, and the stream continued after them.
    expected = sum(int(t.data.train[i].trained[1:].sum()) for i in first_step_rows)
    assert rep.of("metrics")[1]["trained_tokens"] == expected
    # The request stays what the user set; the plan of record says what the run uses now.
    saved = json.loads((tmp_path / "tiny" / "config.json").read_text())
    assert (saved["train"]["micro_batch"], saved["train"]["grad_accum"], saved["model"]["gradient_checkpointing"]) == (4, 2, None)
    plan = json.loads((tmp_path / "tiny" / "plan.json").read_text())
    assert (plan["micro_batch"], plan["grad_accum"], plan["gradient_checkpointing"]) == (1, 8, True)
    assert (plan["planned"]["micro_batch"], len(plan["recoveries"])) == (4, 3)


def test_resume_continues_a_stopped_run_exactly(tiny_model_folder, tmp_path):
    """Stop at step 3 of 6, resume from the checkpoint: the step count, the loss curve and
    the data order continue as if never interrupted (same losses as an unbroken run)."""
    whole = RecordingReporter()
    full = Trainer(_cfg(tiny_model_folder, tmp_path / "a", max_steps=6, eval_every=2), whole)
    full.setup()
    assert full.fit()["status"] == "finished"

    first = StopAfter(3)
    t = Trainer(_cfg(tiny_model_folder, tmp_path / "b", max_steps=6, eval_every=2), first)
    t.setup()
    assert t.fit()["status"] == "stopped"
    run_dir = tmp_path / "b" / "tiny"

    second = RecordingReporter()
    resumed = Trainer.resume(run_dir, second)
    assert second.of("status")[-1]["text"].startswith("Resuming tiny from step 3")
    summary = resumed.fit()
    assert summary["status"] == "finished" and summary["steps"] == 6
    assert [m["step"] for m in second.of("progress")] == [4, 5, 6]

    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in logged if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]
    unbroken = [m["loss"] for m in whole.of("metrics") if "loss" in m]
    assert [r["loss"] for r in logged if "loss" in r] == pytest.approx(unbroken, rel=1e-4)
    assert summary["eval_loss_start"] == pytest.approx(whole.of("metrics")[0]["eval_loss"])


def test_resume_needs_a_checkpoint(tmp_path, tiny_model_folder):
    from engine.errors import TuneDeskError
    from engine.runs import RunDir

    run = RunDir.create(_cfg(tiny_model_folder, tmp_path, max_steps=2), model_name="tiny")
    run.write_config(_cfg(tiny_model_folder, tmp_path, max_steps=2))
    with pytest.raises(TuneDeskError, match="no checkpoint to resume from"):
        Trainer.resume(run.path)


def test_calibration_probe_runs_in_train_mode(tiny_model_folder, tmp_path):
    """The probe must measure the real step: in eval mode gradient checkpointing (and
    dropout) are off, and the measured peak would be far above the real one."""
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=1), RecordingReporter())
    t.setup()
    t.model.eval()  # as a freshly loaded model is
    modes = []
    decoder = t.model.get_base_model().get_decoder()
    decoder.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    t.probe()
    assert modes == [True]


def test_packed_step_equals_the_unpacked_step(tiny_model_folder, tmp_path):
    """Packing only changes the layout: the same 8 examples give the same summed loss,
    the same trained-token count and the same update as one-example-per-row batches,
    in fewer rows (attention stays inside each example; boundaries are not targets)."""
    results = {}
    for packing in (False, True):
        t = Trainer(_cfg(tiny_model_folder, tmp_path / str(packing), max_steps=1, micro_batch=4, grad_accum=2,
                         packing=packing, lr=1e-2), RecordingReporter())
        t.cfg.lora.dropout = 0.0  # dropout masks would differ between the two layouts
        t.setup()
        t.card.plan = t.plan.replace(seq_len=max(len(e) for e in t.data.train[:8]) * 3)  # room for several per row
        batches = iter([[0, 1, 2, 3], [4, 5, 6, 7]])
        t.stream.next_batch = lambda size: next(batches)
        rows = step_batches(t.data.train, [[0, 1, 2, 3], [4, 5, 6, 7]], 4, t.plan.seq_len, t.tokenizer.pad_token_id, True) if packing else None
        m = t.train_step()
        lora = {n: p.detach().clone() for n, p in t.model.named_parameters() if p.requires_grad}
        results[packing] = (m, lora, rows)
    (plain, plain_w, _), (packed, packed_w, rows) = results[False], results[True]
    assert sum(r["input_ids"].shape[0] for r in rows) < 8  # several examples shared a row
    assert packed["trained_tokens"] == plain["trained_tokens"] and packed["tokens"] == plain["tokens"]
    assert abs(packed["loss"] - plain["loss"]) < 1e-4
    assert all(torch.allclose(packed_w[n], plain_w[n], atol=1e-5) for n in plain_w)


def test_pack_rows_fills_rows_first_fit_decreasing():
    from engine.data.batching import pack_rows

    rows = pack_rows([500, 300, 900, 200, 100, 1000], capacity=1000)
    assert sorted(sorted(r) for r in rows) == [[0, 1, 3], [2, 4], [5]]
    assert all(sum([500, 300, 900, 200, 100, 1000][i] for i in r) <= 1000 for r in rows)


def test_pack_evenly_spreads_the_same_number_of_rows_narrower():
    """First-fit leaves the last row short, and a micro-batch is as wide as its fullest row:
    spread evenly, the rows are as many, every example is in one, and the widest is narrower."""
    from engine.data.batching import pack_evenly, pack_rows

    lengths = [800, 700, 600, 400, 100]
    ffd, even = pack_rows(lengths, 2048), pack_evenly(lengths, 2048, 64)
    assert sorted(sum(lengths[i] for i in r) for r in ffd) == [600, 2000]
    assert len(even) == 2 and sorted(i for r in even for i in r) == list(range(len(lengths)))
    assert max(sum(lengths[i] for i in r) for r in even) <= 1408  # half the tokens, rounded to 64, + one step
    assert pack_evenly([900, 30], 2048, 64) == [[0, 1]]  # one row: nothing to spread
    assert len(pack_evenly([2048, 2048, 10], 2048, 64)) == len(pack_rows([2048, 2048, 10], 2048))  # full rows stay


def test_a_resumed_run_keeps_the_shortened_length_of_an_oom_recovery(tiny_model_folder, tmp_path):
    """Recovery at micro-batch 1 with checkpointing shortens the rows (truncating them,
    every row still trained); the shortened plan is kept with the checkpoint, so resuming
    starts from it instead of failing again."""
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=4, micro_batch=1, grad_accum=2, checkpoint_every=2),
                StopAfter(2))
    t.cfg.model.gradient_checkpointing = True
    t.setup()
    limit = sorted(len(e) for e in t.data.train)[len(t.data.train) * 2 // 3]  # the longest third is too long
    rows = {e.row for e in t.data.train}
    decoder = t.model.get_base_model().get_decoder()
    real_forward = decoder.forward

    def forward(*args, input_ids=None, **kw):
        if torch.is_grad_enabled() and input_ids.shape[1] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(*args, input_ids=input_ids, **kw)

    decoder.forward = forward
    rep = t.reporter  # StopAfter records events too
    assert t.fit()["status"] == "stopped"
    assert t.plan.seq_len <= limit and t.card.oom_events >= 2
    assert {e.row for e in t.data.train} == rows  # truncated, not dropped
    assert all(e.trained.any() for e in t.data.train)
    assert all("rows shortened" in e["text"] for e in rep.of("oom_recovery"))  # on the CPU, no lean memory step
    plan = json.loads((tmp_path / "tiny" / "plan.json").read_text())
    assert plan["seq_len"] == t.plan.seq_len and plan["length"]["context_cut"] + plan["length"]["answer_cut"] > 0
    resumed = Trainer.resume(tmp_path / "tiny", RecordingReporter())
    assert resumed.plan.seq_len == t.plan.seq_len  # from the checkpoint's plan
    assert max(len(e) for e in resumed.data.train) <= t.plan.seq_len
    summary = resumed.fit()
    assert summary["status"] == "finished" and summary["rows_lost"] == 0 and summary["rows_truncated"] > 0


def test_the_recovery_ladder_turns_lean_memory_on_before_shortening_rows_on_a_gpu(tiny_model_folder, tmp_path):
    """On a GPU, lean memory (activations in RAM, no LoRA dropout) comes after checkpointing
    and before any row is shortened; the new plan is applied to the live model."""
    t = Trainer(_cfg(tiny_model_folder, tmp_path, max_steps=1, micro_batch=1, grad_accum=1))
    t.cfg.model.gradient_checkpointing = True
    t.setup()
    t.card.plan = t.plan.replace(device="cuda", ram_budget_bytes=64 * 1024**3)
    t._recover("Out of GPU memory at step 1")
    assert t.plan.lean_memory and t.plan.lora_dropout == 0.0 and t.plan.seq_len == t.card.planned["seq_len"]
    assert t.cfg.lora.dropout == 0.05 and t.cfg.model.lean_memory is None  # the request is untouched
    from engine.models.lean import _offloaded_checkpoint

    layers = t.model.get_base_model().model.layers
    assert all(layer._gradient_checkpointing_func is _offloaded_checkpoint for layer in layers)
    t._recover("Out of GPU memory at step 1")
    assert t.plan.seq_len < t.card.planned["seq_len"] and "rows shortened" in t.card.recoveries[-1]["text"]
