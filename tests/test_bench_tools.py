"""The GPU benchmarks' pure parts, checked on the CPU: the longest-length search, the
kernel categories of the step profile, and FLOP counting with grouped-query attention."""

import pytest

from bench.max_context import STEP, longest
from bench.profile_steps import categorize


@pytest.mark.parametrize("limit_tokens", [700, 5000, 9000])
def test_longest_finds_the_last_length_that_trains_to_one_step(limit_tokens):
    tried = []

    def trains(n):
        tried.append(n)
        return {"length": n} if n <= limit_tokens else None

    r = longest(trains, 2048, 1 << 20)
    assert r["max_length"] == limit_tokens // STEP * STEP
    assert r["at_max"] == ({"length": r["max_length"]} if r["max_length"] else None)
    assert len(tried) < 20


def test_longest_tries_the_search_limit_itself_and_stops_there():
    tried = []

    def trains(n):
        tried.append(n)
        return {"length": n}

    assert longest(trains, 4096, 12288) == {"max_length": 12288, "at_max": {"length": 12288}, "search_limit_reached": True}
    assert tried == [4096, 8192, 12288]


def test_longest_bisects_below_the_search_limit_when_the_limit_fails():
    tried = []

    def trains(n):
        tried.append(n)
        return {"length": n} if n <= 10000 else None

    r = longest(trains, 8192, 12288)
    assert r["max_length"] == 10000 // STEP * STEP and "search_limit_reached" not in r
    assert tried[:2] == [8192, 12288]


def test_kernel_names_fall_in_the_costs_the_profile_reports():
    assert categorize("cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16") == "attention"
    assert categorize("void kDequantizeBlockwise<__nv_bfloat16, 512, 64, 8, 2>") == "dequantize_4bit_8bit"
    assert categorize("nvjet_sm90_tst_128x256_64x4_2x1_v_bz_coopA_TNN") == "matmul"
    assert categorize("void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float>") == "cross_entropy"
    assert categorize("Memcpy HtoD (Pageable -> Device)") == "copy_host_device"
    assert categorize("void at::native::vectorized_elementwise_kernel<8, CUDAFunctor_add>") == "elementwise_other"


def test_attention_flops_with_grouped_query_heads_count_the_repeated_heads():
    from torch.utils import flop_counter as fcm

    from bench.profile_steps import _gqa_attention_formulas

    fwd = next(f for op, f in _gqa_attention_formulas().items() if "backward" not in str(op))
    q, kv = (2, 8, 128, 64), (2, 2, 128, 64)
    assert fwd(q, kv, kv) == fcm.sdpa_flop_count(q, q, q) > 0


def test_variable_length_attention_flops_count_each_example_s_own_square():
    import torch
    from torch.utils import flop_counter as fcm

    from bench.profile_steps import _gqa_attention_formulas

    formulas = _gqa_attention_formulas()
    fwd = formulas[torch.ops.aten._flash_attention_forward]
    bwd = formulas[torch.ops.aten._flash_attention_backward]
    q, kv = torch.zeros(30, 4, 8), torch.zeros(30, 2, 8)  # 4 query heads, 2 key/value heads
    cu = torch.tensor([0, 10, 30], dtype=torch.int32)
    each = [(1, 4, n, 8) for n in (10, 20)]
    assert fwd(q, kv, kv, cu, cu, 20, 20, 0.0, True, False) == sum(fcm.sdpa_flop_count(s, s, s) for s in each)
    assert bwd(q, q, kv, kv, q, None, cu, cu, 20, 20) == sum(fcm.sdpa_backward_flop_count(s, s, s, s) for s in each)
    whole = (1, 4, 30, 8)
    assert fwd(q, kv, kv, cu, cu, 20, 20, 0.0, True, False) < fcm.sdpa_flop_count(whole, whole, whole)


def test_the_host_breakdown_names_the_python_functions_a_step_spends_its_time_in():
    from bench.profile_steps import _host_python

    class Trainer:
        def train_step(self):
            return sum(_busy(i) for i in range(2000))

    def _busy(i):
        return i * i

    r = _host_python(Trainer(), 2, lambda: None)
    assert r["wall_s_per_step_unprofiled"] > 0
    busy = next(k for k in r["host_python_total_ms"] if k.endswith("(_busy)"))
    assert r["host_python_total_ms"][busy][1] == 2000  # calls per step
    assert any(k.endswith("(train_step)") for k in r["host_python_total_ms"])


def test_methods_fit_data_are_preference_pairs_and_its_summary_reads_a_run(tmp_path):
    from bench.methods_fit import METHODS, summarize, write_preference_jsonl
    from engine.config import DataConfig
    from engine.data.prepare import resolve_shape

    path = write_preference_jsonl(tmp_path / "p.jsonl", n=20)
    assert resolve_shape(DataConfig(path=str(path)), []).format == "preference"
    assert set(METHODS) == {"dpo", "orpo"} and METHODS["dpo"][0][:2] == ("--method", "dpo")  # GRPO: bench/grpo_fit.py
    GiB = 1024**3
    events = [{"event": "progress", "step": s, "elapsed_s": 2.0 * s} for s in (1, 2, 3)]
    events += [{"event": "metrics", "step": s, "tokens": 1000} for s in (1, 2, 3)]
    events.append({"event": "finished", "status": "finished", "summary": {"status": "finished", "oom_recoveries": 0}})
    plan = {"method": "dpo", "sequences": 2, "estimate_bytes": 11 * GiB // 2, "calibration": {"measured_reserved": 5 * GiB},
            "recoveries": [], "steps_reserved": [5 * GiB]}
    r = summarize(events, plan)
    assert r["ok"] and r["tokens_per_s"] == 500.0 and r["estimate_error"] == 0.1 and r["within_tolerance"]
    assert not summarize(events, {**plan, "estimate_bytes": 6 * GiB})["within_tolerance"]  # +20%
    assert not summarize(events[:-1], plan)["ok"]


def test_a_benchmark_reads_the_plan_of_the_run_it_started_not_an_earlier_run_s_folder(tmp_path):
    # A name already taken in the workdir gets a suffix (engine/runs.py): the folder of the
    # same name is an earlier run's, whose plan a benchmark once reported for another model.
    from bench.child import json_events, run_folder

    (tmp_path / "packed-10.5").mkdir()
    stdout = '{"event": "status"}\nLoading weights\n{"event": "started", "run_dir": "%s", "step": 0}\n' % (tmp_path / "packed-10.5-2")
    events = json_events(stdout)  # the JSON lines a --json-events run printed, other output skipped
    assert [e["event"] for e in events] == ["status", "started"]
    assert run_folder(events, tmp_path, "packed-10.5") == tmp_path / "packed-10.5-2"
    assert run_folder([{"event": "status"}], tmp_path, "packed-10.5") == tmp_path / "packed-10.5"


def test_host_overhead_times_a_step_of_the_preset_s_layer_stack_with_and_without_a_lever(monkeypatch):
    from bench import host_overhead

    monkeypatch.setenv("TUNEDESK_SLOW_PATHS", "")  # measure() sets it per variant; restored after the test
    stock = host_overhead.measure("smollm2-135m", host_overhead.VARIANTS["stock_checkpointing"], steps=1)
    replayed = host_overhead.measure("smollm2-135m", host_overhead.VARIANTS["every_lever"], steps=1)
    assert stock["layers"] == replayed["layers"] == 30  # SmolLM2-135M's depth, at a tiny width
    for r in (stock, replayed):
        assert r["forward_ms"] > 0 and r["backward_ms"] > 0
        assert r["step_ms"] == pytest.approx(r["forward_ms"] + r["backward_ms"], abs=0.02)
