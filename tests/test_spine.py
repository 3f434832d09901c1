"""The run spine: config → ``prepare`` → RunPlan → ``execute`` → record, on every path.

Records keep the overrides that made them (single runs, Hydra multiruns, the batched
launcher); ``prepare`` refuses bad settings before any fit; a task is one entry of
:data:`dip.runs.inputs.TASK_BUILDERS`; the nets registry owns the size rules.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import FAST, dip_main, make_cfg, smooth_png, spec_of
from omegaconf import OmegaConf

from dip import DipError, nets
from dip.problems.fitting import fitting
from dip.problems.task import Task, register
from dip.runs.plan import RunPlan, execute, prepare, run
from dip.runs.spec import NetSpec


@pytest.fixture
def images(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    smooth_png(tmp_path / "a.png")
    return tmp_path


def _metrics(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_a_run_records_its_command_line_overrides(images, monkeypatch):
    assert dip_main(monkeypatch, *FAST, "image=a.png", "out_dir=one", "fit.lr=0.02") == 0
    assert _metrics(images / "one")["overrides"] == [*FAST, "image=a.png", "out_dir=one",
                                                     "fit.lr=0.02"]


@pytest.mark.parametrize("launcher", ["basic", "batched"])
def test_each_job_of_a_sweep_records_its_own_overrides(images, monkeypatch, launcher):
    status = dip_main(monkeypatch, "-m", *FAST, "image=a.png", "records=recs",
                      "fit.lr=0.01,0.02", f"launcher={launcher}")
    assert status == 0
    stored = sorted(tuple(_metrics(p)["overrides"]) for p in (images / "recs").iterdir()
                    if p.is_dir())
    assert len(stored) == 2
    assert [s[-2:] if launcher == "basic" else s for s in stored][0] != stored[1]
    for lr, overrides in zip(("0.01", "0.02"), stored, strict=True):
        assert f"fit.lr={lr}" in overrides and "image=a.png" in overrides


def test_prepare_checks_everything_before_a_fit_and_execute_writes_the_record(images):
    cfg = make_cfg(*FAST, "image=a.png", "out_dir=run")
    plan = prepare(cfg, ["image=a.png"])
    assert isinstance(plan, RunPlan) and plan.seeds == [0] and plan.z is None
    assert not (images / "run").exists()  # nothing written before the fit
    metrics = execute(plan)
    assert metrics["overrides"] == ["image=a.png"] and (images / "run" / "restored.png").is_file()
    again = prepare(cfg)
    assert isinstance(again, dict) and again["skipped"]


@pytest.mark.parametrize("bad, message", [
    ("fit.lr=-1", "fit.lr=-1"), ("fit.num_iter=0", "fit.num_iter=0"),
    ("stop=sometimes", "stop=sometimes"), ("seeds=0", "seeds=0"),
    ("sigma=-3", "sigma=-3"),
])
def test_prepare_refuses_bad_values_without_writing(images, bad, message):
    with pytest.raises(DipError, match=message):
        prepare(make_cfg(*FAST, "image=a.png", "out_dir=run", bad))
    assert not (images / "run").exists() and not list(images.glob(".run*"))


def test_the_seeded_net_of_a_plan_is_the_same_every_time(images):
    plan = prepare(make_cfg(*FAST, "image=a.png", "out_dir=run"))
    try:
        first, second = plan.build_net(3), plan.build_net(3)
        other = plan.build_net(4)
    finally:
        plan.release()
    a, b, c = (torch.cat([p.flatten() for p in n.parameters()]) for n in (first, second, other))
    assert torch.equal(a, b) and not torch.equal(a, c)


@dataclasses.dataclass(frozen=True)
class MirrorSettings:
    """A task with no settings of its own."""


def test_a_new_task_is_one_registered_module(images):
    """A task that registers itself runs end to end: nothing else knows task names."""
    seen = []

    def build(inputs, settings):
        image, _ = inputs.cropped()
        seen.append(tuple(image.shape))
        return fitting(target=image.flip(-1), gt=None)

    register(Task("mirror", MirrorSettings, build, fields=lambda s: {"axis": "width"}))
    metrics = run(make_cfg(*FAST, "image=a.png", "task=fitting", "task.name=mirror",
                           "out_dir=mirror"))
    assert seen == [(3, 64, 64)] and metrics["task"] == "mirror"
    assert metrics["size"] == [3, 64, 64] and metrics["axis"] == "width"
    assert "sigma" not in metrics and "factor" not in metrics  # other tasks' fields
    with pytest.raises(DipError, match="unknown task 'nowhere'; choose one of deblurring"):
        run(make_cfg(*FAST, "image=a.png", "task=fitting", "task.name=nowhere"))


@pytest.mark.parametrize("net, extra, multiple, smallest", [
    ("skip", [], 32, 64), ("encdec", ["net.depth=6"], 64, 192),
    ("encdec", ["net.depth=2"], 4, 12), ("resnet", [], 1, 1), ("unet", [], 32, 64),
])
def test_the_nets_registry_owns_the_size_rules(net, extra, multiple, smallest):
    cfg = make_cfg(f"net={net}", *extra).net
    spec = NetSpec.read(cfg)
    assert (spec.multiple(), spec.min_size()) == (multiple, smallest)
    kwargs = {k: v for k, v in cfg.items() if k != "name"}
    assert nets.size_multiple(net, **kwargs) == multiple
    assert nets.min_size(net, **kwargs) == smallest


def test_the_registry_size_rules_need_no_config():
    assert nets.size_multiple("skip") == 32 and nets.min_size("skip") == 64
    assert nets.size_multiple("skip", num_channels_down=[8] * 3) == 8
    assert nets.min_size("skip", num_channels_down=[8] * 3, filter_size_down=5) == 24
    with pytest.raises(DipError, match="unknown net"):
        nets.size_multiple("vgg")


def test_a_record_reads_back_through_one_schema(images, monkeypatch):
    from dip.runs.records import RunRecord, find_records

    assert dip_main(monkeypatch, "-m", *FAST, "image=a.png", "records=recs",
                    "fit.lr=0.01,0.02") == 0
    (images / "recs" / ".half-written.tmp-1").mkdir()
    (images / "recs" / ".half-written.tmp-1" / "metrics.json").write_text("{}")
    records = find_records(images / "recs")
    assert len(records) == 2
    for record in records:
        assert record.config["image"] == "a.png"
        assert f"fit.lr={record.config['fit']['lr']}" in record.overrides
        assert record.provenance["profile"] == "smoke" and record.provenance["commit"]
        assert record.image("restored").is_file()
    assert RunRecord.load(images / "nowhere") is None


@pytest.mark.parametrize("field, value, message", [
    ("lr", -1.0, "lr=-1.0 is invalid; give a positive learning rate"),
    ("num_iter", 0, "num_iter=0 is invalid; give a positive integer"),
    ("stop", "soon", "stop=soon is unknown; choose one of fixed, wmv, emv"),
    ("stop_window", 1, "stop_window=1 is invalid; give an integer >= 2"),
    ("amp", "fp8", "amp=fp8 is unknown; choose one of off, bf16, fp16"),
    ("exp_weight", float("nan"), "exp_weight=nan is invalid; give a number"),
])
def test_fit_settings_check_their_own_values(field, value, message):
    """FitSettings is the one place the fit's values are checked: in Python as a
    ValueError, from a config as a DipError naming the config key."""
    from dip.fitting.settings import FitSettings
    from dip.typed import SettingError

    with pytest.raises(SettingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FitSettings(**{field: value})
    key = {"stop": "stop", "stop_window": "stopping.window", "amp": "fast.amp"}.get(
        field, f"fit.{field}")
    with pytest.raises(DipError, match=f"^{key}="):
        prepare(make_cfg(*FAST, "image=nowhere.png", f"{key}={value}"))


def test_without_ground_truth_a_run_stops_early_by_default(images):
    """stop=auto: early stopping for a damaged image without ground truth, the fixed
    schedule otherwise (and then the record's identity of before)."""
    from dip.runs.config import config_hash

    automatic = [o for o in FAST if not o.startswith("fit.num_iter=")]  # given: the cap
    damaged = prepare(make_cfg(*automatic, "image=a.png", "corrupted=true", "out_dir=d",
                               "stopping.unscored.cap=auto"))  # smoke: fit.num_iter
    scored = prepare(make_cfg(*FAST, "image=a.png", "out_dir=s"))
    given = prepare(make_cfg(*FAST, "image=a.png", "corrupted=true", "gt=a.png",
                             "out_dir=g"))
    try:
        assert (damaged.spec.stop, scored.spec.stop, given.spec.stop) == ("wmv", "fixed",
                                                                          "fixed")
        assert damaged.settings().stop == "wmv"
        assert config_hash(make_cfg(*FAST, "image=a.png", "out_dir=s")) == \
            config_hash(make_cfg(*FAST, "image=a.png", "out_dir=s", "stop=fixed"))
        # stopping.unscored: patience 300 and a cap of 24 steps per pixel of the side
        assert damaged.spec.stopping["patience"] == 300 and damaged.spec.stopping["cap"] == "auto"
        assert damaged.settings().num_iter == 24 * 64 and scored.settings().num_iter == 3
        assert damaged.spec.identity == config_hash(make_cfg(
            *automatic, "image=a.png", "corrupted=true", "out_dir=d",
            "stopping.unscored.cap=auto"))
    finally:
        for plan in (damaged, scored, given):
            plan.release()


@pytest.mark.parametrize("overrides,size,cap", [
    (["stop=wmv"], (64, 64), 3),  # an explicit early stop keeps fit.num_iter as its cap
    (["stop=wmv", "stopping.cap=auto"], (64, 64), 1536),
    (["stop=wmv", "stopping.cap=auto"], (512, 768), 15050),
    (["stop=emv", "stopping.cap=auto", "stopping.cap_per_side=0.5"], (64, 64), 32),
    (["stop=wmv", "stopping.cap=40"], (512, 512), 40),
    (["stopping.cap=40"], (64, 64), 3),  # a fixed schedule has no cap but its own
])
def test_the_cap_of_early_stopping_scales_with_the_side(overrides, size, cap):

    assert spec_of(make_cfg(*FAST, *overrides)).step_cap(size) == cap


def test_an_explicit_early_stop_keeps_its_identity():
    """The cap keys at their defaults leave a stop=wmv run's identity as it was (quick)."""
    from dip.runs.config import config_hash

    data = OmegaConf.to_container(make_cfg("profile=quick", "stop=wmv"))
    for key in ("cap", "cap_per_side", "unscored"):
        del data["stopping"][key]
    before = config_hash(OmegaConf.create(data))
    assert config_hash(make_cfg("profile=quick", "stop=wmv")) == before
    assert config_hash(make_cfg("profile=quick", "stop=wmv", "stopping.cap=auto")) != before


@pytest.mark.parametrize("cap", ["0", "many", "2.5"])
def test_a_bad_cap_is_one_line(cap):
    with pytest.raises(DipError, match=f"stopping.cap={cap} is invalid; give null"):
        prepare(make_cfg(*FAST, "image=nowhere.png", "stop=wmv", f"stopping.cap={cap}"))


def test_restored_png_is_the_best_estimate_without_ground_truth(images):
    """Without ground truth restored.png is the averaged output (measured the best of the
    ground-truth-free candidates); scored runs keep the final output, as the paper."""
    own = run(make_cfg(*FAST, "image=a.png", "corrupted=true", "out_dir=own"))
    scored = run(make_cfg(*FAST, "image=a.png", "out_dir=scored"))
    assert (own["restored"], scored["restored"]) == ("average", "final")
    png = {d: {n: (images / d / f"{n}.png").read_bytes() for n in ("restored", "restored_avg")}
           for d in ("own", "scored")}
    assert png["own"]["restored"] == png["own"]["restored_avg"]
    assert png["scored"]["restored"] != png["scored"]["restored_avg"]
