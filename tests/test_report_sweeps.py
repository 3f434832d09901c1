"""A sweep's runs in their declared order, read with Hydra's override parser: choice
lists, range(...), quoted values that hold commas, lists."""

from __future__ import annotations

import shutil

import pytest

from dip import DipError
from dip.report import sweeps
from dip.runs import config, experiments
from dip.runs.config import CONFIG_DIR


def test_sweep_runs_in_hydras_order():
    assert experiments.sweep_runs({"seed": "range(2)", "label": "'a,b',c"}) == [
        ["seed=0", "label='a,b'"], ["seed=0", "label=c"],
        ["seed=1", "label='a,b'"], ["seed=1", "label=c"]]
    assert experiments.sweep_runs({"net.num_channels_down": "[8,8],[16]", "fit.lr": 0.01}) == [
        ["net.num_channels_down=[8,8]", "fit.lr=0.01"], ["net.num_channels_down=[16]",
                                                         "fit.lr=0.01"]]
    assert experiments.sweep_runs({"item": "set5/baby,set14/zebra"}) == [
        ["item=set5/baby"], ["item=set14/zebra"]]
    assert experiments.sweep_runs({}) == [[]]
    with pytest.raises(DipError, match="cannot list the sweep"):
        experiments.sweep_runs({"fit.lr": "interval(0, 1)"})


def test_sweep_order_of_an_experiment_with_range_and_a_quoted_comma(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    (conf / "experiment" / "fig_sweep_test.yaml").write_text(
        "# @package _global_\nname: fig_sweep_test\nhydra:\n  sweeper:\n    params:\n"
        "      seed: range(2)\n      label: \"'a,b',c\"\n")
    monkeypatch.setattr(config, "CONFIG_DIR", conf)
    configs = experiments.sweep_configs("fig_sweep_test", "smoke")
    assert [(c.seed, c.label) for c in configs] == [(0, "a,b"), (0, "c"), (1, "a,b"),
                                                     (1, "c")]
    order = sweeps.sweep_order("fig_sweep_test", "smoke")
    assert sorted(order.values()) == [0, 1, 2, 3]
