"""PSNR checks of the paper's denoising run: fp32 against bf16 autocast
(:func:`amp_check`) and eager against CUDA graphs (:func:`graph_check`).

Each fits the skip net with the paper's settings (lr 0.01, input noise 1/30, seed 0) once
per variant on the paper's noisy F16 σ 25 (from the data root, or its centre crop; a
synthetic image when it is not there) and reports the final, averaged and oracle PSNR.
"""

from __future__ import annotations

from dip.bench.reference import ours_net
from dip.bench.workload import problem as synthetic_problem
from dip.bench.workload import settings

__all__ = ["check_problem", "amp_check", "graph_check"]


def check_problem(problem, item="F16", sigma=25, crop=None):
    """The paper's noisy ``item`` (512², from the data root; its centre ``crop``×``crop``
    when given), else ``problem``, else a synthetic 256² image; with a description."""
    from dip.data.crops import center_crop
    from dip.data.specs import read
    from dip.errors import DipError
    from dip.problems.denoising import denoising

    if problem is None:
        try:
            gt = read(f"paper/denoising/{item}_GT.png")
            noisy = read(f"paper/denoising/sigma{sigma}/{item}_noisy.png")
            source = f"paper/denoising/sigma{sigma}/{item}_noisy.png"
            if crop:
                gt, noisy = center_crop(gt, crop), center_crop(noisy, crop)
                source += f" (centre {crop}² crop)"
            return denoising(gt=gt, noisy=noisy, sigma=sigma), source
        except DipError:
            problem = synthetic_problem(crop or 256)
    return problem, f"synthetic {problem.out_shape[-1]}² (sigma 25)"


def _compare(problem, device, log, num_iter, variants):
    """One paper-settings denoising fit (seed 0) per ``{name: settings}``; PSNR rows and
    the second variant's PSNR minus the first's."""
    from dip.fitting.loop import fit

    rows = []
    for name, kw in variants.items():
        res = fit(ours_net(0), problem, settings(num_iter, device, **kw))
        row = {"variant": name, "psnr_final": round(problem.score(res.final), 3),
               "psnr_avg": round(problem.score(res.average), 3),
               "psnr_oracle": round(problem.score(res.oracle), 3),
               "s_per_iter": round(res.seconds / num_iter, 5), "graph_steps": res.graph_steps}
        rows.append(row)
        log(f"{name}: final {row['psnr_final']:.2f} dB, averaged {row['psnr_avg']:.2f} dB, "
            f"oracle {row['psnr_oracle']:.2f} dB, {row['s_per_iter'] * 1e3:.1f} ms/it")
    diff = {k: round(rows[1][k] - rows[0][k], 3) for k in ("psnr_final", "psnr_avg",
                                                             "psnr_oracle")}
    log(f"{rows[1]['variant']} - {rows[0]['variant']}: {diff}")
    return rows, diff


def amp_check(device, log, num_iter=3000, problem=None, crop=None):
    """PSNR of the paper's denoising run (skip net, lr 0.01, reg 1/30, ``num_iter``
    steps, seed 0) in fp32 and with bf16 autocast, on the paper's noisy F16 σ 25 (from
    the data root, or its centre ``crop``; a synthetic image when it is not there), or on
    ``problem``."""
    problem, source = check_problem(problem, crop=crop)
    rows, diff = _compare(problem, device, log, num_iter, {"off": {}, "bf16": {"amp": "bf16"}})
    for r in rows:
        r["amp"] = r.pop("variant")
    return {"image": source, "num_iter": num_iter, "runs": rows, "bf16_minus_fp32": diff}


def graph_check(device, log, num_iter=300, problem=None, crop=None):
    """The same run eager and with CUDA graphs (equal up to the order of float sums)."""
    problem, source = check_problem(problem, crop=crop)
    rows, diff = _compare(problem, device, log, num_iter,
                          {"eager": {"cuda_graph": False}, "graph": {"cuda_graph": True}})
    return {"image": source, "num_iter": num_iter, "runs": rows, "graph_minus_eager": diff}
