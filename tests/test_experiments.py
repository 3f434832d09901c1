"""Paper experiments: every config composes; sweeps run end to end with profile=smoke."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import make_cfg, spec_of
from hydra import compose, initialize_config_dir

from dip.runs.config import CONFIG_DIR

# table_task runs the table a task declares, so it composes with such a task
# (task=deblurring: tests/test_deblurring.py)
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")
                     if p.stem != "table_task")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("profile", ["paper", "quick", "smoke"])
def test_every_experiment_composes(experiment, profile):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}", f"profile={profile}"])
    assert cfg.name == experiment
    assert cfg.fit.num_iter >= 1 and cfg.fit.lr > 0


def _compose(*overrides):
    return make_cfg(*overrides)  # composed once per test session


NETS = sorted(p.stem for p in (CONFIG_DIR / "net").glob("*.yaml"))


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS
                                        if e not in ("fig_architectures", "sweep_depth_lr")])
@pytest.mark.parametrize("net", NETS)
def test_every_experiment_builds_every_net(experiment, net):
    """Swapping the net of an experiment (the README's `net=encdec` sweep) builds that net;
    the experiment's settings for its own net that the other one does not take are left out
    (fig_architectures and sweep_depth_lr pick their nets with arch=)."""

    from dip import DipError, nets

    cfg = _compose(f"experiment={experiment}", f"net={net}", "profile=smoke")
    assert cfg.net.name == net
    unused = list(spec_of(cfg).net.unused)
    assert not set(unused) & nets.builder_keys(net)
    if net == "skip":
        assert unused == []
    if (experiment, net) == ("table_inpainting", "encdec"):
        assert unused == ["num_channels_skip"]
    # the group's keys reach the builder
    assert list(spec_of(_compose(f"net={net}")).net.unused) == []
    try:
        built = spec_of(cfg).net.build(4, 3)
    except DipError as err:  # e.g. fig_flash's 5 per-level upsampling modes, encdec depth 6
        assert str(err).startswith(f"net={net}: ") and "\n" not in str(err)
        assert net != "skip"
    else:
        assert sum(p.numel() for p in built.parameters()) > 0


def test_table_settings_are_the_official_ones():
    inp = _compose("experiment=table_inpainting", "profile=paper", "item=boat")
    assert (inp.fit.lr, inp.fit.num_iter, inp.fit.reg_noise_std) == (0.001, 11000, 0.03)
    assert inp.task.mask == "paper/inpainting50/mask_half/boat_mask_half.png" and inp.crop is None
    assert inp.pad_image == 1
    assert _compose("experiment=table_inpainting", "item=boat").task.mask == \
        "paper/inpainting50/boat_mask.png"  # quick: the masks of its committed table
    assert _compose("experiment=table_inpainting", "mask_source=random").task.mask is None
    den = _compose("experiment=table_denoising", "profile=paper", "sigma=50")
    assert (den.fit.num_iter, den.fit.reg_noise_std) == (3000, 0.05)
    assert den.image == "paper/denoising/sigma50/F16_noisy.png" and den.corrupted
    sr = _compose("experiment=table_sr", "profile=paper", "item=set14/zebra", "factor=8")
    assert (sr.fit.num_iter, sr.fit.reg_noise_std, sr.dataset) == (4000, 0.05, "set14")
    assert sr.image == "paper/sr/set14/x8/zebra_GT.png"
    quick = _compose("experiment=table_sr")
    assert quick.crop == 128 and quick.net.width_scale == 0.25 and quick.fit.num_iter == 1200
    assert _compose("experiment=table_sr", "factor=8").fit.num_iter == 2400  # x8: twice x4
    assert _compose("experiment=table_sr", "profile=paper").net.width_scale == 1.0
    assert (den.seeds, den.net.width_scale) == (1, 1.0)
    quick = {s: _compose("experiment=table_denoising", f"sigma={s}") for s in (25, 50)}
    assert [quick[s].fit.num_iter for s in (25, 50)] == [1000, 700]
    assert all(q.seeds == 3 and q.net.width_scale == 0.25 for q in quick.values())
    assert _compose("experiment=table_denoising", "seeds=1").seeds == 1


def dip(*args, cwd, module="dip"):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture
def sweep_dir(tmp_path, data_root):
    return tmp_path


SMOKE = {
    "table_inpainting": ["item=house,Cameraman256"],
    "table_denoising": ["item=F16", "sigma=25,50"],
    "table_sr": ["item=set5/bird,set14/face", "factor=4"],
}
FIGURE_BLOCKS = {"table_inpainting": [""], "table_denoising": ["_sigma25", "_sigma50"],
                 "table_sr": ["_set14_x4", "_set5_x4"]}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(SMOKE))
def test_table_sweep_end_to_end_and_resume(sweep_dir, experiment):
    runs = sweep_dir / "runs"
    args = ["-m", f"experiment={experiment}", "profile=smoke", "progress=false",
            f"records={runs}", *SMOKE[experiment]]
    first = dip(*args, cwd=sweep_dir)
    assert first.returncode == 0, first.stderr[-2000:]
    records = sorted(p for p in runs.iterdir() if not p.name.startswith("."))
    assert len(records) == 2
    for rec in records:
        m = json.loads((rec / "metrics.json").read_text())
        assert m["experiment"] == experiment and m["profile"] == "smoke"
        assert m["psnr_final"] is not None and m["baselines"]
    second = dip(*args, cwd=sweep_dir)
    assert second.returncode == 0
    assert second.stdout.count("skipped") == 2
    report = dip("table", experiment, "--profile", "smoke", "--root", str(runs), "--out",
                 str(sweep_dir / "tables"), cwd=sweep_dir, module="dip.report")
    assert report.returncode == 0, report.stderr[-2000:]
    for ext in ("md", "csv", "tex"):
        assert (sweep_dir / "tables" / f"{experiment}_smoke.{ext}").is_file()
    figures = sweep_dir / "figures"
    report = dip("figure", experiment, "--profile", "smoke", "--root", str(runs), "--out",
                 str(figures), cwd=sweep_dir, module="dip.report")
    assert report.returncode == 0, report.stderr[-2000:]
    expected = {f"{experiment}_smoke{block}{kind}.png" for block in FIGURE_BLOCKS[experiment]
                for kind in ("", "_curves")}
    assert {p.name for p in figures.iterdir()} == expected


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "batched"])
def test_sweep_over_another_net_runs_with_a_note(tmp_path, data_root, launcher):
    """The README's architecture sweep on a table: net=encdec with two depths."""
    runs = tmp_path / "runs"
    proc = dip("-m", f"launcher={launcher}", "experiment=table_inpainting", "profile=smoke",
               "progress=false",
               "item=barbara", "net=encdec", "net.depth=2,4", "fit.num_iter=5",
               "baselines=false", f"records={runs}", f"data.root={data_root}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("note: net=encdec does not take num_channels_skip") == 2
    cfgs = [(p / "config.yaml").read_text() for p in runs.iterdir()]
    assert len(cfgs) == 2 and all("name: encdec" in c for c in cfgs)
    assert sorted(c.count("depth: 4") for c in cfgs) == [0, 1]


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_two_job_sweep(tmp_path):
    runs = tmp_path / "runs"
    proc = dip("-m", "launcher=local", "profile=smoke", "progress=false", "baselines=false",
               "image=skimage:camera", "crop=64", "seed=0,1", f"records={runs}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seeds = sorted(json.loads((p / "metrics.json").read_text())["seed"] for p in runs.iterdir())
    assert seeds == [0, 1]


@pytest.mark.slow
def test_make_table_runs_parallel_jobs_and_reproduces_exactly(tmp_path, data_root):
    """`make table-inpainting` (joblib, one thread per run), then a fresh rerun compares equal."""
    root = CONFIG_DIR.parent
    args = ["make", "-s", "-C", str(root), "PROFILE=smoke", "JOBS=2",
            f"RECORDS={tmp_path / 'runs'}", f"TABLES={tmp_path / 'tables'}",
            f"REPRO={tmp_path / 'again'}", f"FIGS={tmp_path / 'figures'}",
            "ARGS=item=house,Cameraman256 fit.num_iter=5"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    first = subprocess.run([*args, "table-inpainting"], capture_output=True, text=True,
                           env=env, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "tables" / "table_inpainting_smoke.csv").is_file()
    assert (tmp_path / "figures" / "table_inpainting_smoke.png").is_file()
    assert len(list((tmp_path / "runs").iterdir())) == 2
    again = subprocess.run([*args, "reproduce-inpainting"], capture_output=True, text=True,
                           env=env, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "identical" in again.stdout


def test_paper_noisy_inputs_carry_their_sigma_to_the_baselines(data_root):
    from dip.runs.inputs import build_problem

    cfg = _compose("experiment=table_denoising", "profile=smoke", "sigma=50")
    problem = build_problem(spec_of(cfg))
    assert problem.extras["sigma"] == 50.0  # NLM/CBM3D are told the real noise level


def _paper_queue():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "paper_queue.py"
    spec = importlib.util.spec_from_file_location("paper_queue", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_paper_queue_goes_table_by_table_and_cheapest_first(tmp_path, data_root,
                                                                monkeypatch):
    """Inpainting, then SR Set5, denoising, SR Set14; within each the fewest pixel-steps
    first (house's 256² before Lena's 512², ×4 before ×8, σ 25's and σ 50's 3000 steps)."""
    monkeypatch.setenv("DIP_DATA_ROOT", str(data_root))
    items = {"Lena512", "house", "set14/face", "F16", "set5/baby"}
    rows = _paper_queue().queue(str(tmp_path / "runs"), ["progress=false"], items)
    made = [" ".join(o for o in row[2] if o.split("=")[0] in ("item", "factor", "sigma"))
            for row in rows]
    assert made == ["item=house", "item=Lena512",
                    "item=set5/baby factor=4", "item=set5/baby factor=8",
                    "item=F16 sigma=25", "item=F16 sigma=50",
                    "item=set14/face factor=4", "item=set14/face factor=8"]
    assert rows[0][1] == 256 * 256 * 11000 / 1e6  # house, the paper's 11000 steps
    assert all("profile=paper" in row[2] and "progress=false" in row[2] for row in rows)


@pytest.mark.slow
def test_gpu_session_adds_only_the_records_that_the_committed_ones_lack(tmp_path, data_root):
    """Two sessions of experiments/gpu_session.sh (on the CPU, runs shortened): the second
    starts from the first one's records, queues only the runs they lack (SR after
    inpainting) and packs only its new records."""
    import tarfile
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "BENCH_BUDGET_S": "0",
           "DIP_DATA_ROOT": str(data_root),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "RUN_ARGS": "fit.num_iter=2 crop=64 net.width_scale=0.125 device=cpu"}
    committed = tmp_path / "results" / "paper-runs"  # the script runs from a checkout's root

    def session(name, items):
        work = tmp_path / name
        proc = subprocess.run(["bash", str(repo / "experiments" / "gpu_session.sh"),
                               str(work), "300"], cwd=tmp_path, env={**env, "ITEMS": items},
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        with tarfile.open(work / "records.tgz") as tar:
            added = {Path(m.name).parts[0] for m in tar.getmembers()}
            tar.extractall(committed, filter="data")
        return proc.stdout, added

    out, first = session("one", "house")
    assert len(first) == 1 and "wrote" in out
    out, second = session("two", "set5/baby house")
    assert "item=house" not in out and "missing paper runs" in out
    assert out.index("factor=4") < out.index("factor=8")
    assert len(second) == 2 and not second & first
    metrics = [json.loads((committed / h / "metrics.json").read_text()) for h in first | second]
    assert {(m["image_id"], m.get("factor")) for m in metrics} == {
        ("house", None), ("baby", 4), ("baby", 8)}
    report = subprocess.run(  # the partial paper table, from the records alone
        ["make", "-s", "-C", str(repo), "PROFILE=paper", f"RECORDS={committed}",
         f"TABLES={tmp_path / 'tables'}", f"FIGS={tmp_path / 'figures'}", "report-sr"],
        capture_output=True, text=True, env=env, timeout=600)
    assert report.returncode == 0, report.stderr[-2000:]
    table = (tmp_path / "tables" / "table_sr_paper.md").read_text()
    assert "| baby |" in table and "1 of 5 images" in table
    assert (tmp_path / "figures" / "table_sr_paper_set5_x8.png").is_file()
    assert len(list(committed.iterdir())) == 3  # nothing was fitted


@pytest.mark.parametrize("profile", ["paper", "quick", "smoke"])
@pytest.mark.parametrize("arch", ["encdec2", "encdec3", "encdec4", "encdec5", "encdec6", "skip5"])
def test_the_depth_lr_sweep_takes_each_of_its_nets(profile, arch):
    """Every net of sweep_depth_lr builds and fits the profile's crop (depth 6 with 5x5
    filters needs 192 px), and the sweep's images and lrs resolve per profile."""
    from omegaconf import OmegaConf

    from dip import nets

    cfg = _compose("experiment=sweep_depth_lr", f"arch={arch}", f"profile={profile}")
    kwargs = OmegaConf.to_container(cfg.net, resolve=True)
    side = cfg.crop if cfg.crop is not None else 512
    assert side >= nets.min_size(kwargs.pop("name"), **kwargs)
    assert side % spec_of(cfg).net.multiple() == 0
    assert sum(p.numel() for p in spec_of(cfg).net.build(cfg.fit.input_depth, 1).parameters()) > 0
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        full = compose("config", overrides=["experiment=sweep_depth_lr", f"profile={profile}"],
                       return_hydra_config=True)
    params = full.hydra.sweeper.params
    assert params["fit.lr"] == "0.01,0.003,0.001"
    assert len(str(params.item).split(",")) == {"paper": 11, "quick": 3, "smoke": 1}[profile]


@pytest.mark.slow
def test_make_study_depth_lr_writes_the_study_of_its_runs(tmp_path, data_root):
    """`make study-depth-lr` (smoke, two depths x two lrs and the skip net's row): one study
    row per setting, each cell the record's own number."""
    import pandas as pd

    from dip.runs.records import find_records

    root = CONFIG_DIR.parent
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        ["make", "-s", "-C", str(root), "PROFILE=smoke", "JOBS=2", "study-depth-lr",
         f"RECORDS={tmp_path / 'runs'}", f"STUDIES={tmp_path / 'studies'}",
         "ARGS=arch=encdec2,encdec6 fit.lr=0.01,0.001 fit.num_iter=5"],
        capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = tmp_path / "studies" / "sweep_depth_lr_smoke"
    study = pd.read_csv(out / "study.csv")
    assert sorted(zip(study["arch"], study["fit.lr"], strict=True)) == [
        ("encdec2", 0.001), ("encdec2", 0.01), ("encdec6", 0.001), ("encdec6", 0.01),
        ("skip5", 0.01)]
    records = {(r.config["fit"]["lr"], r.config["net"]["name"], r.config["net"].get("depth")):
               r.metrics["psnr_avg"] for r in find_records(tmp_path / "runs" / "sweep_depth_lr")}
    assert len(records) == 5
    for _, row in study.iterrows():
        net, depth = ("skip", None) if row.arch == "skip5" else ("encdec", int(row.arch[-1]))
        assert row.psnr_avg == pytest.approx(records[(row["fit.lr"], net, depth)], abs=1e-9)
    assert (out / "study.png").is_file() and (out / "study.md").is_file()
