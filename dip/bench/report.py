"""The benchmark's results: their JSON schema, the Markdown summary, merging into an
earlier run's file, and writing ``results/bench/<device>.{json,md}``.

:func:`new_results` is a run's dict before any section; :func:`with_rates` adds each
row's GFLOP/s; :func:`markdown` renders the summary; :func:`merge` updates an earlier
run's results with this run's rows; :class:`ResultsFile` writes both files atomically
after every section (``complete`` is false until the last one has run).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import torch

from dip.atomic import write_text
from dip.bench.reference import REFERENCES

__all__ = ["device_slug", "new_results", "with_rates", "markdown", "merge", "ResultsFile"]


def device_slug(device) -> str:
    """File name of a device's results: the GPU's name, or the CPU's model and threads
    (e.g. ``cpu-amd-epyc-2t``: CPU models of one core count differ by 2x here)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        from dip.runs.provenance import machine

        name = f"cpu-{machine()['cpu']}-{torch.get_num_threads()}t"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def default_note(device) -> str:
    """What the rows' times mean, for a run without ``--note``."""
    return (
        "Single runs alternate ours/reference step by step ("
        + ("in one process; the reference step runs while our step's graph is alive"
           if device.type == "cuda" else
           "the reference in a process of its own: with the C library's default allocator "
           "as a plain script, or keeping its freed memory as our fits do in the "
           "same-malloc rows")
        + "), batched and sequential blocks alternate block by block; ratios hold under "
        "a steady load, absolute times depend on the load.")


def new_results(device, quick: bool, note: str = "") -> dict:
    """The results of a run on ``device`` before any section has run: the header (device,
    CPU, torch, threads, commit, date, note, method) and empty sections."""
    from dip.runs.provenance import device_name, git_commit, machine

    cuda = device.type == "cuda"
    return {
        "device": device.type, "device_name": device_name(str(device)),
        "cpu": machine()["cpu"],
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "commit": git_commit(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": bool(quick), "note": note or default_note(device),
        "single": [], "batched": [], "peak_mem_mb": {}, "peak_mem_batched_mb": {},
        "gflop_per_iter": {}, "gemm_gflop_s": None, "gemm_side": None,
        "amp_check": None, "graph_check": None, "watch": {},
        "method": ("median step times; ours = dip.fitting.loop.fit with its default monitors, "
                   "reference = eager loop in dip/bench/reference.py; memory = "
                   + ("torch.cuda.max_memory_allocated" if cuda else
                      "peak RSS (VmHWM) minus RSS before a 2-step fit, in a fresh subprocess "
                      "(keeping freed memory, as every CPU fit does by default)")),
        "seconds": 0.0, "complete": False,
    }


def with_rates(res: dict) -> dict:
    """``res`` with each row's GFLOP/s from its time and ``gflop_per_iter`` (rows of
    sizes without a count are left as they are)."""
    gflop = {int(k): v for k, v in res.get("gflop_per_iter", {}).items()}
    for r in res["single"]:
        g = gflop.get(r["size"])
        if g:
            r["ours_gflop_s"] = round(g / r["ours_s_per_iter"], 1)
            r["reference_gflop_s"] = round(g / r["reference_s_per_iter"], 1)
    for r in res["batched"]:
        g = gflop.get(r["size"])
        if g and r.get("batched_s") and r.get("sequential_s"):
            r["sequential_gflop_s"] = round(r["n"] * g / r["sequential_s"], 1)
            r["batched_gflop_s"] = round(r["n"] * g / r["batched_s"], 1)
    return res


def _rate_cell(value):
    return "—" if value is None else f"{value:.0f}"


def _rate_lines(res):
    """The compute-rate section: FLOP per step, the matrix-product rate, and what the
    batched speedups would need."""
    gflop, gemm = res.get("gflop_per_iter"), res.get("gemm_gflop_s")
    if not gflop:
        return []
    counts = sorted(gflop.items(), key=lambda kv: int(kv[0]))  # a merged file's are unsorted
    lines = ["", "## Compute rate", "",
             "Convolution arithmetic of one paper-net step (forward and backward, "
             "`dip.bench.flops.step_gflop`): "
             + ", ".join(f"{k}² {v:.2f}" for k, v in counts) + " GFLOP."]
    if gemm:
        rates = [f"{v:.0f} GFLOP/s on {k} thread{'s' if k != '1' else ''}"
                 if k.isdigit() else f"{v:.0f} GFLOP/s" for k, v in gemm.items()]
        lines += ["", f"fp32 matrix product ({res.get('gemm_side')}³) on this machine: "
                  + ", ".join(rates) + ": about the most a step of convolutions can "
                  "sustain" + (" in fp32 (cuDNN's convolutions may run TF32 and exceed it)"
                               if "gpu" in gemm else "") + "."]
        top = max(gemm.values())
        for size in sorted({r["size"] for r in res["batched"]}):
            seq = [r["sequential_gflop_s"] for r in res["batched"]
                   if r["size"] == size and r.get("sequential_gflop_s")]
            if seq:
                s = statistics.median(seq)
                lines += ["", f"Batched at {size}²: N sequential runs reach {s:.0f} GFLOP/s, so "
                          f"a 2× speedup needs {2 * s:.0f} GFLOP/s ({2 * s / top:.0%} of the "
                          f"matrix product's {top:.0f}) and 3× needs {3 * s:.0f} "
                          f"({3 * s / top:.0%})."]
    return lines


def _check_lines(title, key, check):
    """Markdown table of a PSNR check (:mod:`dip.bench.checks`)."""
    lines = ["", f"## {title}: denoising {check['image']}, {check['num_iter']} iterations", "",
             f"| {key} | PSNR final | PSNR averaged | PSNR oracle | s/it | graph steps |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in check["runs"]:
        lines.append(f"| {r[key]} | {r['psnr_final']:.2f} | {r['psnr_avg']:.2f} | "
                     f"{r['psnr_oracle']:.2f} | {r['s_per_iter']:.4f} | "
                     f"{r.get('graph_steps', 0)} |")
    return lines


def _watch_lines(watch: dict) -> list[str]:
    """The cost of watching a fit (:mod:`dip.bench.watch`), a row per size."""
    if not watch:
        return []
    lines = ["", "## Watching a fit: what snapshots and TensorBoard add to a step", "",
             "| size | net widths | steps | step s | snapshots every | s a step | % | "
             "TensorBoard every | s a step | % |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in watch.items():
        lines.append(f"| {key}² | ×{r['width_scale']} | {r['steps']} | {r['step_s']:.4f} | "
                     f"{r['snapshot_every']} | {r['snapshots_s_per_step']:.6f} | "
                     f"{r['snapshots_pct']:.3f} | {r['tensorboard_every']} | "
                     f"{r['tensorboard_s_per_step']:.6f} | {r['tensorboard_pct']:.3f} |")
    return lines + ["", "The seconds a step spends in the two monitors' hooks, averaged over "
                    "the fit, over its median step (the quick profile's snapshot period)."]


def _header_lines(res, parts):
    """Title, the newest run's torch/threads/commit, the note and the runs merged."""
    lines = [f"# Benchmark on {res['device_name']}", "",
             ("Newest run: " if parts else "")
             + f"torch {res['torch']}, {res['threads']} threads"
             + (f" (CPU {res['cpu']})" if res.get("cpu") else "")
             + f", commit {res['commit']}, "
             f"{res['date']}{' (quick)' if res['quick'] else ''}."
             + ("" if res.get("complete", True) else
                " **Incomplete: the run was cut off; the sections below are those it finished.**"),
             "", res["note"], ""]
    if parts:
        lines += ["Measured in " + str(len(res["parts"])) + " runs: " + "; ".join(
            f"commit {p['commit']}, {p['date']}" for p in res["parts"])
            + "; each row names its commit.", ""]
    return lines


def _table_lines(res, commit, head, rule):
    """The single and batched tables; ``commit(row)`` is a row's commit cell (or '')."""
    lines = ["## Single run: this project's fit step vs an eager reference", "",
             "| size | ours | reference runs in | ours s/it | reference s/it | ratio "
             "| ours GFLOP/s | graph steps |" + head,
             "| --- | --- | --- | --- | --- | --- | --- | --- |" + rule]
    for r in res["single"]:
        lines.append(f"| {r['size']}² | {r.get('variant', 'default')} | "
                     f"{r.get('reference', REFERENCES['in-process'])} | "
                     f"{r['ours_s_per_iter']:.4f} | {r['reference_s_per_iter']:.4f} | "
                     f"{r['ratio']:.2f} | {_rate_cell(r.get('ours_gflop_s'))} | "
                     f"{r.get('graph_steps', 0)} |" + commit(r))
    lines += ["", "## Batched runs (dip.fitting.batched engines) vs N sequential runs", "",
              "| size | N | engine | N sequential s/it | batched s/it | speedup | run-it/s "
              "| sequential GFLOP/s | batched GFLOP/s | graph steps |" + head,
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |" + rule]
    for r in res["batched"]:
        if r.get("batched_s") is None or r.get("sequential_s") is None:
            cells = "— | — | — | — | — | —"
        else:
            cells = (f"{r['sequential_s']:.3f} | {r['batched_s']:.3f} | {r['speedup']:.2f} | "
                     f"{r['run_iters_per_s']:.2f} | {_rate_cell(r.get('sequential_gflop_s'))} | "
                     f"{_rate_cell(r.get('batched_gflop_s'))}")
        lines.append(f"| {r['size']}² | {r['n']} | {r.get('engine', 'grouped')} | {cells} | "
                     f"{r.get('graph_steps', 0)} |" + commit(r))
    if any(r.get("unmeasured") for r in res["batched"]):
        lines += ["", "—: unmeasured (a long fit took no longer than the short one, so the "
                  "steps between cost less than the noise of the two fits)."]
    return lines


def markdown(res: dict) -> str:
    """The Markdown summary of results ``res`` (one run's, or merged: then a column names
    each row's commit)."""
    parts = bool(res.get("parts"))
    head, rule = (" commit |", " --- |") if parts else ("", "")

    def commit(r):
        return f" {str(r.get('commit') or '—')[:7]} |" if parts else ""

    lines = _header_lines(res, parts) + _table_lines(res, commit, head, rule)
    lines += _rate_lines(res)
    lines += ["", "## Peak memory of one fit (MB over the process before the fit)", "",
              "| size | N | MB |", "| --- | --- | --- |"]
    for key, mb in res["peak_mem_mb"].items():
        lines.append(f"| {key}² | 1 | {mb} |")
    for key, mb in res.get("peak_mem_batched_mb", {}).items():
        size, n = key.split("x")
        lines.append(f"| {size}² | {n} | {mb} |")
    lines += _watch_lines(res.get("watch") or {})
    amp, graph = res.get("amp_check"), res.get("graph_check")
    if amp:
        lines += _check_lines("bf16 autocast vs fp32", "amp", amp)
        d = amp["bf16_minus_fp32"]
        lines += ["", f"bf16 − fp32: final {d['psnr_final']:+.3f} dB, averaged "
                  f"{d['psnr_avg']:+.3f} dB, oracle {d['psnr_oracle']:+.3f} dB."]
    if graph:
        lines += _check_lines("CUDA graphs vs eager", "variant", graph)
    lines += ["", f"Method: {res['method']}", ""]
    return "\n".join(lines)


def merge(old: dict, new: dict, part: dict) -> dict:
    """``old`` results updated with the rows of ``new``: single rows by (size, variant),
    batched rows by (size, n, engine), memory by key, checks when run; ``parts`` lists
    the runs that contributed (``part``: commit, date, torch, seconds of this one), each
    row keeps the commit that measured it, and the header fields (commit, date, torch,
    threads) are the newest run's. The matrix product's rate is replaced only by a run
    that timed steps too (a watch-only run keeps the rate its step rows were set against)."""
    res = dict(old)

    def rows(key, ident):
        fresh = {ident(r) for r in new[key]}
        kept = [{"commit": old.get("commit"), **r} for r in old.get(key, [])
                if ident(r) not in fresh]
        res[key] = kept + [{**r, "commit": part.get("commit")} for r in new[key]]

    rows("single", lambda r: (r["size"], r.get("variant", "default")))
    rows("batched", lambda r: (r["size"], r["n"], r.get("engine", "grouped")))
    for key in ("peak_mem_mb", "peak_mem_batched_mb", "gflop_per_iter", "watch"):
        res[key] = {**old.get(key, {}), **new.get(key, {})}
    timed_steps = bool(new.get("single") or new.get("batched"))
    for key in ("gemm_gflop_s", "gemm_side"):  # the rate the step rows are set against
        res[key] = (new.get(key) if timed_steps else None) or old.get(key)
    for key in ("amp_check", "graph_check"):
        if new.get(key) is not None:
            res[key] = new[key]
    for key in ("commit", "date", "torch", "threads", "quick", "device_name", "cpu"):
        if key in new:
            res[key] = new[key]
    parts = old.get("parts") or [{k: old.get(k) for k in ("commit", "date", "torch",
                                                           "seconds")}]
    res["parts"] = parts + [part]
    res["complete"] = new["complete"]  # the sections a cut-off earlier run lost stay empty
    res["note"] = new["note"]
    return res


class ResultsFile:
    """``<out>/<slug>.json`` and ``.md`` of a run, rewritten after every section.

    With ``merge``, an existing JSON there is read first and each save writes it
    updated with this run's rows (:func:`merge`); else this run's results alone.
    """

    def __init__(self, out, slug: str, merge: bool = False):
        self.json, self.md = Path(out) / f"{slug}.json", Path(out) / f"{slug}.md"
        self.old = json.loads(self.json.read_text()) if merge and self.json.exists() else None
        self.start = time.perf_counter()

    def save(self, res: dict) -> dict:
        """Write ``res`` (merged when asked) with its rates and the seconds since this
        file was opened; returns what was written."""
        res["seconds"] = round(time.perf_counter() - self.start, 1)
        part = {k: res[k] for k in ("commit", "date", "torch", "seconds")}
        written = with_rates(res if self.old is None else merge(self.old, res, part))
        write_text(self.json, json.dumps(written, indent=2) + "\n")
        write_text(self.md, markdown(written))
        return written
