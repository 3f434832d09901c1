"""The benchmark's eager reference is the official skip net (no timings here)."""

from types import SimpleNamespace

import pytest
import torch

from dip.bench import PAPER_KWARGS, PAPER_PARAMS, markdown, reference_skip
from dip.fitting.fast import GRAPH_WARMUP
from dip.nets import build


def test_reference_is_the_paper_net_and_computes_what_ours_computes():
    ref = reference_skip()
    ours = build("skip", 32, 3, **PAPER_KWARGS)
    assert sum(p.numel() for p in ref.parameters()) == PAPER_PARAMS
    shapes = [tuple(p.shape) for p in ref.parameters()]
    assert shapes == [tuple(p.shape) for p in ours.parameters()]
    with torch.no_grad():
        for a, b in zip(ref.parameters(), ours.parameters(), strict=True):
            a.copy_(b)
    z = torch.rand(1, 32, 64, 64)
    assert torch.equal(ref(z), ours(z))


def test_markdown_summary():
    res = {"device_name": "cpu", "torch": "2", "threads": 2, "commit": "abc", "date": "d",
           "quick": True, "note": "n", "method": "m",
           "single": [{"size": 64, "ours_s_per_iter": 0.1, "reference_s_per_iter": 0.1,
                       "ratio": 1.0},
                      {"size": 64, "variant": "same-malloc", "ours_s_per_iter": 0.1,
                       "reference": "own process, freed memory kept",
                       "reference_s_per_iter": 0.2, "ratio": 0.5}],
           "batched": [{"size": 64, "n": 2, "sequential_s": 0.2, "batched_s": 0.1,
                        "speedup": 2.0, "run_iters_per_s": 20.0}],
           "peak_mem_mb": {"64": 10.0}, "peak_mem_batched_mb": {"64x8": 70.0}}
    text = markdown(res)
    # rows from before the reference had a process of its own say where it ran
    assert "| 64² | default | our process | 0.1000 | 0.1000 | 1.00 |" in text
    assert "| 64² | same-malloc | own process, freed memory kept | 0.1000 | 0.2000 | 0.50 |" \
        in text
    assert "| 64² | 8 | 70.0 |" in text


@pytest.mark.slow  # child processes: seconds each
def test_batched_rows_per_engine():
    from dip.bench import ENGINES, bench_batched

    rows = bench_batched(64, (2,), ENGINES, 1, 4, torch.device("cpu"),
                         lambda msg: None)
    assert [(r["n"], r["engine"]) for r in rows] == [(2, "threads"), (2, "grouped")]
    for r in rows:
        # real fits of a few steps: on a busy machine the long fit may take no longer
        # than the short one, and the row says so instead of timing noise
        if r.get("unmeasured"):
            assert r["sequential_s"] is None and r["batched_s"] is None
            assert r["speedup"] is None
            continue
        assert r["sequential_s"] > 0 and r["batched_s"] > 0
        # the times are rounded to 4 digits, the speedup computed before rounding
        assert r["speedup"] == pytest.approx(r["sequential_s"] / r["batched_s"], rel=2e-3)


@pytest.mark.slow  # bf16 on a CPU without bf16 kernels: about 20 s
def test_amp_check_reports_both_precisions():
    from dip.bench import amp_check, problem

    out = amp_check(torch.device("cpu"), lambda msg: None, num_iter=3, problem=problem(64))
    assert [r["amp"] for r in out["runs"]] == ["off", "bf16"]
    assert out["image"].startswith("synthetic 64")
    off, bf16 = out["runs"]
    assert out["bf16_minus_fp32"]["psnr_avg"] == round(bf16["psnr_avg"] - off["psnr_avg"], 3)
    assert off["psnr_final"] != bf16["psnr_final"]  # autocast really ran in bf16


def test_checks_run_on_a_centre_crop_of_the_paper_image(data_root, monkeypatch):
    from dip.bench import check_problem
    from dip.data import read

    monkeypatch.setenv("DIP_DATA_ROOT", str(data_root))
    problem, source = check_problem(None, crop=64)
    assert source == "paper/denoising/sigma25/F16_noisy.png (centre 64² crop)"
    assert problem.observation.shape == (1, 3, 64, 64)
    gt = read("paper/denoising/F16_GT.png")
    assert torch.equal(problem.gt[0], gt[..., 224:288, 224:288].reshape(3, 64, 64))  # 512²
    whole, _ = check_problem(None)
    assert whole.observation.shape == (1, 3, 512, 512)


@pytest.mark.slow  # the benchmark's own check; make test stays within its 3 min
def test_graph_check_compares_eager_and_graph_loops():
    from dip.bench import graph_check, problem

    out = graph_check(torch.device("cpu"), lambda msg: None, num_iter=5, problem=problem(64))
    assert [r["variant"] for r in out["runs"]] == ["eager", "graph"]
    # on the CPU the graph loop calls the same functions: identical numbers
    assert out["graph_minus_eager"] == {"psnr_final": 0, "psnr_avg": 0, "psnr_oracle": 0}
    # every step after the eager warm-up went through the graph step
    assert [r["graph_steps"] for r in out["runs"]] == [0, 5 - GRAPH_WARMUP]


@pytest.mark.slow  # child processes: seconds each
def test_single_row_times_ours_against_the_reference():
    from dip.bench import bench_single

    row = bench_single(64, 1, 2, torch.device("cpu"), lambda msg: None, "bf16", amp="bf16")
    assert row["variant"] == "bf16" and row["steps_timed"] == [2, 2]
    assert row["reference"] == "own process, default allocator"
    assert row["ours_s_per_iter"] > 0 and row["reference_s_per_iter"] > 0
    assert row["ratio"] == pytest.approx(row["ours_s_per_iter"] / row["reference_s_per_iter"],
                                         rel=5e-3, abs=2e-3)


@pytest.mark.slow  # child processes: seconds each
@pytest.mark.parametrize("where, said", [("kept", "own process, freed memory kept"),
                                         ("in-process", "our process")])
def test_the_reference_runs_where_the_row_says(where, said):
    from dip.bench import bench_single

    row = bench_single(64, 1, 1, torch.device("cpu"), lambda msg: None, "x", where)
    assert row["reference"] == said and row["steps_timed"] == [1, 1]


@pytest.mark.slow  # child processes: seconds each
def test_a_reference_process_that_fails_is_reported():
    from dip.bench import RemoteReference

    with pytest.raises(RuntimeError, match="the reference process ended"):
        RemoteReference(3, torch.device("cpu"))  # too small for five halvings


def test_graph_engine_rows_run_the_threads_engine_with_cuda_graphs(monkeypatch):
    import dip.fitting.batched
    from dip import bench

    seen = []

    def fake(nets, problems, settings, engine):
        seen.append((engine, [s.cuda_graph for s in settings]))
        return [SimpleNamespace(graph_steps=7 if s.cuda_graph else 0) for s in settings]

    monkeypatch.setattr(dip.fitting.batched, "fit_batched", fake)
    replayed = []
    for label in ("threads+graphs", "grouped"):
        engine, kw = bench.CUDA_ENGINES[label]
        replayed.append(bench.fit_wall(64, 2, 3, torch.device("cpu"), engine, **kw)[1])
    assert seen == [("threads", [True, True]), ("grouped", [None, None])]
    assert replayed == [14, 0]  # the graph steps of both runs


def test_merge_replaces_the_rows_measured_again():
    from dip.bench import merge

    old = {"commit": "a", "date": "d1", "torch": "2", "seconds": 5.0, "note": "n",
           "complete": False,
           "single": [{"size": 64, "variant": "fp32", "ratio": 1.0},
                      {"size": 64, "variant": "bf16", "ratio": 1.5}],
           "batched": [{"size": 64, "n": 8, "engine": "threads", "speedup": 0.4}],
           "peak_mem_mb": {"64": 10.0}, "peak_mem_batched_mb": {}, "graph_check": None}
    new = {"note": "n", "complete": True, "graph_check": {"num_iter": 5},
           "single": [{"size": 64, "variant": "bf16", "ratio": 1.2}],
           "batched": [{"size": 256, "n": 8, "engine": "threads", "speedup": 3.0}],
           "peak_mem_mb": {"256": 20.0}, "peak_mem_batched_mb": {"256x8": 90.0}}
    res = merge(old, new, {"commit": "b", "date": "d2", "torch": "2", "seconds": 1.0})
    assert [(r["variant"], r["ratio"]) for r in res["single"]] == [("fp32", 1.0), ("bf16", 1.2)]
    assert [r["size"] for r in res["batched"]] == [64, 256]
    assert res["peak_mem_mb"] == {"64": 10.0, "256": 20.0}
    assert res["graph_check"] == {"num_iter": 5} and res["complete"]
    assert [p["commit"] for p in res["parts"]] == ["a", "b"]
    # each row names the run that measured it; the header is the newest run's
    assert [r["commit"] for r in res["single"]] == ["a", "b"]
    assert [r["commit"] for r in res["batched"]] == ["a", "b"]
    res2 = merge(res, {**new, "commit": "c", "date": "d3", "batched": []},
                 {"commit": "c", "date": "d3"})
    assert [r["commit"] for r in res2["single"]] == ["a", "c"]
    assert res2["commit"] == "c" and res2["date"] == "d3" and res["commit"] == "a"
    text = markdown({**res2, "batched": [], "graph_check": None, "device_name": "x",
                      "threads": 1, "quick": False, "method": "m",
                      "single": [{**r, "ours_s_per_iter": 0.1, "reference_s_per_iter": 0.2}
                                 for r in res2["single"]]})
    assert text.splitlines()[2].startswith("Newest run: torch 2, 1 threads, commit c, d3")
    assert ("Measured in 3 runs: commit a, d1; commit b, d2; commit c, d3; each row names "
            "its commit.") in text
    assert "| 64² | bf16 | our process | 0.1000 | 0.2000 | 1.20 | — | 0 | c |" in text
    # an earlier file without compute rates takes the new run's
    res = merge(old, {**new, "gflop_per_iter": {"256": 115.0}, "gemm_gflop_s": {"1": 80.0},
                      "gemm_side": 1024}, {"commit": "c", "date": "d3"})
    assert res["gflop_per_iter"] == {"256": 115.0} and res["gemm_gflop_s"] == {"1": 80.0}


def test_rows_get_compute_rates_and_the_summary_says_what_a_speedup_needs():
    from dip.bench import with_rates

    res = {"device_name": "cpu", "torch": "2", "threads": 2, "commit": "abc", "date": "d",
           "quick": True, "note": "n", "method": "m",
           "single": [{"size": 64, "ours_s_per_iter": 0.1, "reference_s_per_iter": 0.2,
                       "ratio": 0.5},
                      {"size": 32, "ours_s_per_iter": 0.1, "reference_s_per_iter": 0.2,
                       "ratio": 0.5}],
           "batched": [{"size": 64, "n": 8, "sequential_s": 0.8, "batched_s": 0.5,
                        "speedup": 1.6, "run_iters_per_s": 16.0},
                       {"size": 64, "n": 4, "sequential_s": None, "batched_s": None,
                        "speedup": None, "run_iters_per_s": None, "unmeasured": "x"}],
           "peak_mem_mb": {}, "gflop_per_iter": {"64": 7.0},
           "gemm_gflop_s": {"1": 80.0, "2": 150.0}, "gemm_side": 1024}
    with_rates(res)
    assert res["single"][0]["ours_gflop_s"] == 70.0
    assert res["single"][0]["reference_gflop_s"] == 35.0
    assert "ours_gflop_s" not in res["single"][1]  # no count for 32²
    assert res["batched"][0]["sequential_gflop_s"] == 70.0
    assert res["batched"][0]["batched_gflop_s"] == 112.0
    assert "batched_gflop_s" not in res["batched"][1]
    text = markdown(res)
    assert "| 64² | default | our process | 0.1000 | 0.2000 | 0.50 | 70 | 0 |" in text
    assert "| 64² | 8 | grouped | 0.800 | 0.500 | 1.60 | 16.00 | 70 | 112 | 0 |" in text
    assert "64² 7.00 GFLOP" in text
    assert "80 GFLOP/s on 1 thread, 150 GFLOP/s on 2 threads" in text
    assert "a 2× speedup needs 140 GFLOP/s (93% of the matrix product's 150)" in text


def test_step_cost_subtracts_a_short_fit(monkeypatch):
    """Set-up and warm-up cost the same in the long and the short fit and cancel."""
    from dip.bench import measure

    calls = []

    def wall(size, n, steps, device, engine=None, **kw):
        calls.append(steps)
        return 5.0 + 0.25 * steps, steps  # 5 s of set-up, 0.25 s a step

    monkeypatch.setattr(measure, "fit_wall", wall)
    cost, replayed = measure.step_cost(64, 2, 8, torch.device("cpu"), "threads")
    short = measure.short_steps(torch.device("cpu"))
    assert calls == [short + 8, short] and replayed == short + 8
    assert cost == pytest.approx(0.25)
    assert measure.short_steps(torch.device("cuda")) > GRAPH_WARMUP  # past the capture


def test_a_long_fit_no_longer_than_the_short_one_leaves_the_row_unmeasured(monkeypatch):
    """Noise larger than the steps measured gives no number (not a huge speedup)."""
    from dip.bench import measure

    def wall(size, n, steps, device, engine=None, **kw):
        # the batched long fit happens to take less time than its short fit
        return (5.0 - 0.01 * steps if engine else 5.0 + 0.25 * steps), 0

    monkeypatch.setattr(measure, "fit_wall", wall)
    assert measure.step_cost(64, 2, 8, torch.device("cpu"), "threads")[0] is None
    rows = measure.bench_batched(64, (2,), {"threads": ("threads", {})}, 1, 8,
                                 torch.device("cpu"), lambda msg: None)
    assert rows[0]["batched_s"] is None and rows[0]["speedup"] is None
    assert "no longer" in rows[0]["unmeasured"]
    res = {"device_name": "cpu", "torch": "2", "threads": 2, "commit": "abc", "date": "d",
           "quick": True, "note": "n", "method": "m", "single": [], "batched": rows,
           "peak_mem_mb": {}, "peak_mem_batched_mb": {}}
    text = markdown(res)
    assert "| 64² | 2 | threads | — | — | — | — | — | — | 0 |" in text and "unmeasured" in text


@pytest.mark.parametrize("args, message", [(["--variants", "fp33"], "unknown variant 'fp33'"),
                                           (["--engines", "vmap"], "unknown engine 'vmap'"),
                                           (["--skip", "singel"],
                                            "unknown section to skip 'singel'")])
def test_unknown_choices_are_refused_in_one_line(args, message, capsys, tmp_path):
    from dip.bench import main

    with pytest.raises(SystemExit) as err:
        main(args + ["--device", "cpu", "--out", str(tmp_path)])
    assert err.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_run_of_no_section_still_writes_the_compute_rates(tmp_path, monkeypatch):
    from dip import bench
    from dip.bench import measure

    monkeypatch.setattr(measure, "gemm_gflop_s", lambda device, threads=None: 50.0)
    res = bench.main(["--quick", "--device", "cpu", "--out", str(tmp_path), "--name", "x",
                      "--skip", "single,batched,watch,memory"])
    assert res["gflop_per_iter"] == {"64": 7.189, "128": 28.754, "256": 115.018,
                                     "512": 460.071}
    assert res["gemm_gflop_s"] == {"1": 50.0, str(torch.get_num_threads()): 50.0}
    assert res["gemm_side"] == 1024
    assert "## Compute rate" in (tmp_path / "x.md").read_text()


def test_size_lists_are_parsed_or_refused(capsys, tmp_path):
    from dip.bench import main, sides

    assert sides("256,512") == (256, 512)
    with pytest.raises(SystemExit) as err:
        main(["--sizes", "big", "--device", "cpu", "--out", str(tmp_path)])
    assert err.value.code == 2 and "'big' is not a list of image sides" in capsys.readouterr().err


def test_cpu_results_are_named_by_the_cpu_model(monkeypatch):
    from dip import bench
    from dip.runs import provenance

    monkeypatch.setattr(provenance, "machine", lambda: {"cpu": "Intel(R) Xeon(R) Gold 6430"})
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert bench.device_slug(torch.device("cpu")) == "cpu-intel-r-xeon-r-gold-6430-2t"


def test_plans_per_device_and_for_quick():
    from dip import DipError
    from dip.bench import BATCHED_CUDA_STEPS, CUDA_ENGINES, ENGINES, plan_for

    quick = plan_for("cpu", quick=True)
    assert quick.sizes == (64, 128, 256) and quick.big == () and quick.batched_sizes == (64,)
    assert list(quick.variants) == ["default", "same-malloc"]  # bf16 only when asked
    assert quick.engines == ENGINES and quick.batched_steps == quick.steps + 1
    assert [quick.reference(v) for v in quick.variants] == ["plain", "kept"]
    assert quick.batched_repeats(64) == quick.repeats and quick.batched_repeats(128) == 1
    assert quick.gflop_sizes() == [64, 128, 256, 512]
    full = plan_for("cpu")
    assert full.big == (512,) and "bf16" in full.variants
    assert full.mem_batched == ((64, 8), (128, 8))
    assert list(plan_for("cpu", quick=True, variants=["bf16"]).variants) == ["bf16"]
    cuda = plan_for("cuda", quick=True, sizes=[256], engines=["threads+graphs"])
    assert cuda.sizes == (256,) and cuda.big == () and cuda.batched_sizes == (64, 256)
    assert cuda.engines == {"threads+graphs": CUDA_ENGINES["threads+graphs"]}
    assert cuda.batched_steps == BATCHED_CUDA_STEPS and cuda.batched_repeats(64) == 1
    assert {cuda.reference(v) for v in cuda.variants} == {"in-process"}
    with pytest.raises(DipError, match="unknown variant 'fp32-graph' here; choose from"):
        plan_for("cpu", variants=["fp32-graph"])


def test_the_watch_row_times_snapshots_and_tensorboard_within_a_fit():
    pytest.importorskip("tensorboard")
    from dip.bench.report import markdown
    from dip.bench.watch import bench_watch

    row = bench_watch(64, 12, torch.device("cpu"), lambda msg: None, every=4)
    assert (row["steps"], row["snapshots"], row["tensorboard_every"]) == (12, 3, 10)
    assert row["step_s"] > 0 and 0 < row["snapshots_s_per_step"] < row["step_s"]
    assert row["tensorboard_pct"] > 0
    res = {"device_name": "cpu", "torch": "2", "threads": 2, "commit": "abc", "date": "d",
           "quick": True, "note": "n", "method": "m", "single": [], "batched": [],
           "peak_mem_mb": {}, "watch": {"64": row}}
    text = markdown(res)
    assert "## Watching a fit" in text and f"| 64² | ×0.5 | 12 | {row['step_s']:.4f} | 4 |" \
        in text


def test_a_watch_only_run_merges_its_row_and_keeps_the_step_rows_rate():
    from dip.bench import merge

    old = {"commit": "a", "single": [{"size": 64, "ratio": 1.0}], "batched": [],
           "gemm_gflop_s": {"1": 75.0}, "gemm_side": 1024, "watch": {}}
    new = {"note": "n", "complete": True, "single": [], "batched": [],
           "gemm_gflop_s": {"1": 31.0}, "gemm_side": 1024, "watch": {"128": {"steps": 4}}}
    res = merge(old, new, {"commit": "b"})
    assert res["gemm_gflop_s"] == {"1": 75.0} and res["watch"] == {"128": {"steps": 4}}
    timed = merge(old, {**new, "single": [{"size": 64, "ratio": 0.9}]}, {"commit": "b"})
    assert timed["gemm_gflop_s"] == {"1": 31.0}
