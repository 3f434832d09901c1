"""The config schema (dip/runs/schema.py): typed nodes made from FitSettings, the run keys'
types, and Hydra's composition errors as one line."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import make_cfg, spec_of
from omegaconf import OmegaConf

from dip import DipError
from dip.fitting.settings import FitSettings
from dip.runs.schema import (
    FastNode,
    FitNode,
    StoppingNode,
    quote_overrides,
)
from dip.runs.spec import CONFIG_KEYS
from dip.typed import SettingError


def test_every_settings_field_has_one_typed_place_in_the_config():
    cfg = make_cfg("profile=smoke")
    nodes = {"fit": FitNode, "stopping": StoppingNode, "fast": FastNode}
    for name, node in nodes.items():
        assert set(cfg[name]) == {f.name for f in dataclasses.fields(node)}, name
        assert OmegaConf.get_type(cfg, name) is node
    placed = {f"{n}.{f.name}" for n, node in nodes.items() for f in dataclasses.fields(node)}
    wanted = {CONFIG_KEYS.get(f.name, f"fit.{f.name}") for f in dataclasses.fields(FitSettings)}
    top = {k for k in wanted if "." not in k}
    own = {"stopping.cap", "stopping.cap_per_side", "stopping.unscored"}  # not FitSettings'
    assert placed - own == wanted - top and top <= set(cfg)


@pytest.mark.parametrize("override,needle", [
    ("fit.lr=abc", "fit.lr=abc: Value 'abc' of type 'str' could not be converted to Float"),
    ("stopping.window=1.5", "could not be converted to Integer"),
    ("fast.compile=maybe", "fast.compile=maybe"),
    ("fit.lrr=0.1", "Key 'lrr' not in 'FitNode'; did you mean fit.lr?"),
    ("net=vgg", "Could not find 'net/vgg'; choose one of encdec, resnet, skip, unet"),
])
def test_a_value_of_the_wrong_type_is_refused_when_composed(override, needle):
    with pytest.raises(DipError) as err:  # Hydra's error, as the command's one line
        make_cfg("profile=smoke", override)
    line = str(err.value)
    assert needle in line and "\n" not in line


def test_the_command_prints_the_composition_error_as_one_line(monkeypatch, capsys):
    from conftest import dip_main

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert dip_main(monkeypatch, "profile=smoke", "fit.num_iter=ten") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Error merging override "
                                                   "fit.num_iter=ten")
    assert "HYDRA_FULL_ERROR" not in err


def test_typed_values_convert_and_settings_check_the_python_api_too():
    cfg = make_cfg("profile=smoke", "fit.lr=1", "fit.num_iter=7")
    assert isinstance(cfg.fit.lr, float) and spec_of(cfg).settings_for().lr == 1.0
    assert FitSettings(num_iter="3", lr="0.5").num_iter == 3
    with pytest.raises(SettingError, match=r"lr=abc is invalid; give a number"):
        FitSettings(lr="abc")
    with pytest.raises(SettingError, match=r"progress=maybe is invalid; give true or false"):
        FitSettings(progress="maybe")


@pytest.mark.parametrize("override,message", [
    ("task=sr factor=abc", "factor=abc is invalid; give the SR factor, an integer >= 2"),
    ("seeds=1.5", "seeds=1.5 is invalid; give a positive integer"),
    ("memory_limit_gb=lots", "memory_limit_gb=lots is invalid; give a positive number of GB"),
    ("corrupted=maybe", "corrupted=maybe is invalid; give true or false"),
])
def test_run_keys_of_the_wrong_type_name_the_key(override, message):
    with pytest.raises(DipError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec_of(make_cfg("profile=smoke", *override.split()))


def test_a_wrong_type_and_a_wrong_range_read_the_same():
    from dip.runs.inputs import build_problem

    for value in ("abc", "1"):
        with pytest.raises(DipError) as err:
            build_problem(spec_of(make_cfg("profile=smoke", "task=sr", f"factor={value}")))
        assert str(err.value) == (f"factor={value} is invalid; give the SR factor, an "
                                  "integer >= 2, e.g. factor=4")


def test_a_non_ascii_path_works_unquoted(tmp_path, monkeypatch, capsys):
    from conftest import FAST, dip_main, smooth_png

    folder = tmp_path / "été"
    folder.mkdir()
    image = smooth_png(folder / "photo.png")
    assert dip_main(monkeypatch, *FAST, f"image={image}", f"out_dir={folder / 'out'}") == 0
    metrics = json.loads((folder / "out" / "metrics.json").read_text())
    assert metrics["image"] == str(image)  # the value is exactly the path
    assert quote_overrides(["-m", "image=/é/a.png,/é/b.png", "fit.lr=0.1"], sweeps=True) == [
        "-m", "image='/é/a.png','/é/b.png'", "fit.lr=0.1"]
    assert quote_overrides(["out_dir=/tmp/l'été"]) == [r"out_dir='/tmp/l\'été'"]


def test_an_unquoted_non_ascii_value_that_cannot_be_quoted_says_to_quote_it(monkeypatch,
                                                                           capsys):
    from conftest import dip_main

    with pytest.raises(DipError) as err:
        make_cfg("image=/tmp/é/photo.png")
    assert str(err.value) == ("image=/tmp/é/photo.png: Hydra reads non-ASCII characters "
                                   "only in quotes; quote the value (in the shell: "
                                   "\"image='/tmp/é/photo.png'\")")
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert dip_main(monkeypatch, "image=/tmp/é\\") == 2  # a trailing backslash: left as is
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: image=/tmp/é\\: ") and \
        "quote the value" in err


@pytest.mark.parametrize("override,hint", [
    ("fit.lrr=0.1", "; did you mean fit.lr?"),
    ("sigmaa=25", "; did you mean sigma?"),
    ("stopping.windw=3", "; did you mean stopping.window?"),
    ("net.num_chanels_down=[8]", "; did you mean net.num_channels_down?"),
    ("fit.learning_rate=0.1", "; `dip --cfg job` lists the keys (a new key needs a leading +)"),
    ("colour=red", "; `dip --cfg job` lists the keys (a new key needs a leading +)"),
])
def test_a_misspelled_key_is_answered_with_the_closest_key(monkeypatch, capsys, override,
                                                           hint):
    from conftest import dip_main

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert dip_main(monkeypatch, "profile=smoke", override) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and err.endswith(hint + "\n")
    assert ("+" in err) == ("did you mean" not in err)  # `+` only when nothing is close
