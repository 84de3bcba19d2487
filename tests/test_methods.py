"""Methods as parts: a fourth method from this file alone trains through ``fit`` and the CLI; the loop names no
method; every option is declared once and the CLI, validation, resume and recipes derive from it; old flat
configs and flags keep their meaning."""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import snnlab
from conftest import small_config
from snnlab import cli, methods, recipes, train
from snnlab.callbacks import Callback
from snnlab.config import TrainConfig, core_options
from snnlab.options import option

ROOT = Path(snnlab.__file__).parent
V0_1 = Path(__file__).parent / "fixtures" / "v0_1"


# ------------------------------------------------------------------------------------------ a toy fourth method
@dataclass
class SmoothOptions:
    smoothing: float = option(0.1, "label smoothing of the rate cross-entropy", lo=0, hi=1, group="smooth")


class StepCounter(Callback):
    def __init__(self):
        self.steps = 0

    def on_step_end(self, state):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, d):
        self.steps = d["steps"]


class Smooth(methods.Method):
    """Label-smoothed cross-entropy of the time-averaged output, a step counter, and a phase before training."""

    name = "smooth"
    Options = SmoothOptions
    cli_group = ("smooth (--method smooth, a test's toy)", "")
    phases_run = 0

    def loss(self, config):
        s = self.options(config).smoothing
        return lambda out, y: F.cross_entropy(out.mean(0), y, label_smoothing=s)

    def callbacks(self, config):
        return [StepCounter()]

    def before_training(self, run):
        Smooth.phases_run += 1
        return {"params": sum(p.numel() for p in run.model.parameters())}


@pytest.fixture
def smooth():
    part = methods.register(Smooth())
    Smooth.phases_run = 0
    yield part
    methods.unregister("smooth")


def test_a_fourth_method_trains_through_fit(tmp_path, smooth, digits):
    cfg = small_config(tmp_path, method="smooth", smooth_smoothing=0.2, epochs=2, max_batches=3)
    assert cfg.method_options["smooth"].smoothing == 0.2 == cfg.smooth_smoothing
    hist = train.fit(cfg, bundle=digits)
    assert isinstance(hist.callbacks[-1], StepCounter) and hist.callbacks[-1].steps == 6
    assert hist.smooth == {"params": sum(p.numel() for p in hist.model.parameters())} and Smooth.phases_run == 1
    # its loss is the one trained: the loop's reported test loss is the smoothed CE of the model's outputs
    _, test = digits.loaders(10_000)
    x, y = next(iter(test))
    with torch.no_grad():
        out = hist.model.eval()(train.encode(x, 2, False))
    assert hist.last["test_loss"] == pytest.approx(float(F.cross_entropy(out.mean(0), y, label_smoothing=0.2)),
                                                   rel=1e-5)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["final"]["smooth"] == hist.smooth
    assert res["config"]["method_options"]["smooth"] == {"smoothing": 0.2}
    # resumed: the phase is not run again, the callback's state comes back, the weights equal an unbroken run
    part = train.fit(small_config(tmp_path / "p", method="smooth", smooth_smoothing=0.2, epochs=2, max_batches=3),
                     bundle=digits, stop_after=1)
    assert part.callbacks[-1].steps == 3
    resumed = train.fit(small_config(tmp_path / "p", method="smooth", smooth_smoothing=0.2, epochs=2,
                                     max_batches=3, resume=True), bundle=digits)
    assert Smooth.phases_run == 2 and resumed.callbacks[-1].steps == 6 and resumed.smooth == hist.smooth
    assert all(torch.equal(a, b) for a, b in zip(hist.model.state_dict().values(),
                                                 resumed.model.state_dict().values()))


def test_a_fourth_method_through_the_cli(tmp_path, smooth, capsys):
    parser = cli.build_parser()
    helptext = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "--smooth-smoothing" in helptext and "label smoothing of the rate cross-entropy" in helptext
    argv = ["train", "--method", "smooth", "--smooth-smoothing", "0.3", "--model", "mlp", "--T", "2", "--epochs",
            "1", "--max-batches", "2", "--no-progress", "--out", str(tmp_path / "r")]
    assert cli.main(argv) == 0
    cfg = TrainConfig.from_json(tmp_path / "r" / "config.json")
    assert (cfg.method, cfg.smooth_smoothing) == ("smooth", 0.3)
    capsys.readouterr()
    assert cli.main(argv[:4] + ["1.5"] + argv[5:]) == 2
    err = capsys.readouterr().err
    assert err == "snnlab: error: smooth_smoothing must be in [0, 1], got 1.5\n"


def test_register_refuses_clashes():
    with pytest.raises(ValueError, match="'sdt' is registered already"):
        methods.register(methods.get("sdt"))

    @dataclass
    class Clash:
        lr: float = option(0.1, "a second learning rate")

    class Bad(methods.Method):
        name, Options, prefix = "bad", Clash, ""

    with pytest.raises(ValueError, match="option 'lr' is taken by TrainConfig"):
        methods.register(Bad())
    with pytest.raises(ValueError, match="a method's name must be a Python identifier, got 'two words'"):
        methods.register(type("X", (methods.Method,), {"name": "two words"})())
    with pytest.raises(ValueError, match=r"unknown method 'nope'; registered: 'sdt', 'tet', 'dsr'"):
        methods.get("nope")
    assert "bad" not in methods.names()


# ------------------------------------------------------------------------------------------ the loop names none
def test_the_training_loop_names_no_method():
    names = set(methods.names()) | set(methods.names("addon"))
    src = (ROOT / "loop.py").read_text()
    found = sorted({w for w in re.findall(r"[A-Za-z_]+", src.lower()) for n in names
                    if w == n or w.startswith(n + "_")})
    assert not found, f"snnlab/loop.py names methods: {found}"
    assert {"sdt", "tet", "dsr", "chi", "hybrid"} <= names


def test_tet_with_the_chi_surrogate_is_one_config(digits):
    cfg = small_config(method="tet", lamb=0.05, chi_target=0.3, chi_every=1, epochs=1, max_batches=3).validate()
    assert [p.name for p in methods.active_parts(cfg)] == ["tet", "chi"]
    hist = train.fit(cfg, bundle=digits)
    assert isinstance(hist.callbacks[-1], snnlab.chi.ChiController)
    assert any(k.startswith("chi/") for k in hist.last) and any(k.startswith("width/") for k in hist.last)
    loss = train.loss_from_config(cfg)
    out, y = torch.randn(2, 3, 10), torch.tensor([1, 2, 3])
    assert torch.equal(loss(out, y), snnlab.losses.tet_loss(out, y, lamb=0.05, phi=1.0))


def test_tet_strict_firing_reaches_every_neuron_and_is_checked():
    from types import SimpleNamespace

    from snnlab.neurons import LIF

    bundle = SimpleNamespace(input_shape=(1, 8, 8), num_classes=10)

    def fires(**kw):
        model = train.build_from_config(TrainConfig(method="tet", model="tutorial", **kw).validate(), bundle)
        return {m.fire for m in model.modules() if isinstance(m, LIF)}

    assert fires() == {">="} and fires(strict_firing=True) == {">"}
    assert fires(neuron="if", strict_firing=True) == {">"}
    assert methods.flat_options()["strict_firing"].default is False  # TET's prefix is "": the flat name is the field
    cfg = cli.config_from_args(_train_parser().parse_args(["--method", "tet", "--strict-firing", "true"]))
    assert cfg.strict_firing is True and cfg.method_options["tet"].strict_firing is True
    with pytest.raises(ValueError, match=re.escape("strict_firing must be True or False, got 'yes'")):
        TrainConfig(method="tet", strict_firing="yes").validate()
    with pytest.raises(ValueError, match="fire='>' needs a surrogate with the Heaviside forward"):
        fires(surrogate="smooth-sigmoid", strict_firing=True)


# ------------------------------------------------------------------------------------------ one source per option
def _train_parser():
    return cli.build_parser()._subparsers._group_actions[0].choices["train"]


def test_every_option_has_one_flag_with_its_help():
    actions = {a.dest: a for a in _train_parser()._actions}
    specs = {**core_options(), **methods.flat_options()}
    for name, opt in specs.items():
        if opt.flag == "":
            assert name not in actions
            continue
        a = actions[name]
        assert (opt.flag or "--" + name.replace("_", "-")) in a.option_strings
        assert a.help.startswith(opt.help.replace("%", "%%")), name
    assert set(actions) - set(specs) == {"help", "recipe", "registry"}


def test_the_cli_builds_the_default_config_and_each_flag_its_field():
    assert cli.config_from_args(_train_parser().parse_args([])).replace(out_dir=None) == TrainConfig()
    args = ["--lr", "0.01", "--dsr-tau", "2", "--chi-every", "3", "--hybrid-percentile", "0.9", "--lamb", "0.2",
            "--widths", "1,0.5", "--eval-T", "1,2", "--data-options", '{"a": 1}', "--no-progress"]
    cfg = TrainConfig(**{k: v for k, v in vars(_train_parser().parse_args(args)).items()
                         if k not in ("recipe", "registry")} | {"widths": [1.0, 0.5], "eval_T": [1, 2],
                                                                "data_options": {"a": 1}})
    assert (cfg.lr, cfg.dsr_tau, cfg.chi_every, cfg.hybrid_percentile, cfg.lamb, cfg.progress) == (
        0.01, 2.0, 3, 0.9, 0.2, False)


def test_old_dsr_spellings_map_to_the_dsr_flags(capsys):
    cfg = cli.config_from_args(_train_parser().parse_args(
        ["--method", "dsr", "--tau", "2", "--v-th", "0.4", "--alpha", "0.5", "--dt", "0.1"]))
    assert (cfg.dsr_tau, cfg.dsr_v_th, cfg.dsr_alpha, cfg.dsr_dt) == (2.0, 0.4, 0.5, 0.1)
    assert (cfg.tau, cfg.v_th) == (TrainConfig().tau, TrainConfig().v_th)  # the LIF's own fields are untouched
    new = cli.config_from_args(_train_parser().parse_args(
        ["--method", "dsr", "--dsr-tau", "2", "--dsr-v-th", "0.4", "--dsr-alpha", "0.5", "--dsr-dt", "0.1"]))
    assert new == cfg
    helptext = " ".join(_train_parser().format_help().split())
    assert "older spelling of --dsr-tau" in helptext and "also spelt --alpha" in helptext
    capsys.readouterr()
    cli.config_from_args(_train_parser().parse_args(["--dsr-alpha", "0.5"]))  # sdt: noted, not used
    assert "--dsr-alpha is an option of --method dsr; --method sdt does not use it" in capsys.readouterr().err


def test_resume_and_recipes_skip_exactly_the_options_that_do_not_change_the_experiment():
    specs = {**core_options(), **methods.flat_options()}
    free = {n for n, o in specs.items() if not o.experiment}
    assert free == {"resume", "progress", "device", "out_dir", "data_root", "amp", "amp_dtype", "channels_last",
                    "cudnn_benchmark"}
    assert recipes.RUN_FIELDS == free | {"seed", "data_seed", "extra"}
    assert set(TrainConfig().experiment()) == set(specs) - free


# ------------------------------------------------------------------------------------------ old names keep working
def test_flat_names_are_kwargs_attributes_and_replace():
    cfg = TrainConfig(method="dsr", dsr_v_th=0.3, hybrid_ann_epochs=2, chi_every=5, lamb=0.2)
    o = cfg.method_options
    assert (o["dsr"].v_th, o["hybrid"].ann_epochs, o["chi"].every, o["tet"].lamb) == (0.3, 2, 5, 0.2)
    other = cfg.replace(dsr_v_th=0.6)
    assert (other.dsr_v_th, cfg.dsr_v_th) == (0.6, 0.3)  # a copy: the groups are never shared
    other.chi_every = 7
    assert (other.method_options["chi"].every, cfg.chi_every) == (7, 5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg == TrainConfig.from_dict(cfg.flat())
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(AttributeError, match="no field 'colour'"):
        cfg.colour
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\] in method_options\['dsr'\]"):
        TrainConfig.from_dict({"method_options": {"dsr": {"colour": 1}}})
    with pytest.raises(ValueError, match=r"method_options has options for \['nope'\]"):
        TrainConfig(method_options={"nope": {}})


@pytest.mark.parametrize("run", ["sdt", "tet", "dsr_hybrid", "dsr_lif"])
def test_configs_written_by_v0_1_load_with_the_same_meaning(run):
    flat = json.loads((V0_1 / run / "config.json").read_text())
    assert "method_options" not in flat
    cfg = TrainConfig.from_dict(flat)
    assert set(flat) <= set(cfg.flat())  # every old field is still a field, same name
    assert {k: cfg.flat()[k] for k in flat} == flat  # ... with the same value
    specs = {**core_options(), **methods.flat_options()}
    added = {k: v for k, v in cfg.flat().items() if k not in flat}  # options added since v0.1: their defaults
    assert added == {k: specs[k].default for k in added}, added


def test_option_errors_name_field_value_and_rule():
    for kw, msg in [(dict(dsr_tau=-1.0), "dsr_tau must be a finite number > 0, got -1.0"),
                    (dict(chi_every=0), "chi_every must be a positive integer, got 0"),
                    (dict(hybrid_ann_optimizer="rmsprop"), "hybrid_ann_optimizer must be one of 'adam', 'sgd' or "
                                                           "None; got 'rmsprop'"),
                    (dict(amp="yes"), "amp must be True or False, got 'yes'"),
                    (dict(max_batches=0), "max_batches must be a positive integer or None, got 0"),
                    (dict(data_root=3), "data_root must be a folder path (a string) or None, got 3")]:
        with pytest.raises(ValueError, match=re.escape(msg)):
            TrainConfig(**kw).validate()


# ------------------------------------------------------------------------------------------ shape of the code
def _functions():
    for path in ROOT.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path, node, lines


def test_no_function_over_80_lines_without_a_reason():
    long = [f"{p.relative_to(ROOT.parent)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for p, n, lines in _functions() if n.end_lineno - n.lineno + 1 > 80
            and "# long:" not in lines[n.lineno - 2] + lines[n.lineno - 1]]
    assert not long, "functions over 80 lines (say why in a '# long:' comment on the def line): " + "; ".join(long)


def test_no_private_name_imported_across_packages():
    bad = []
    for path in ROOT.rglob("*.py"):
        pkg = ".".join(path.relative_to(ROOT.parent).parent.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and pkg != "snnlab":
                same = node.level == 1  # from a sibling module of the same subpackage: its own business
            elif isinstance(node, ast.ImportFrom) and node.level:
                same = False
            else:
                continue
            bad += [f"{path.relative_to(ROOT.parent)}: from {'.' * node.level}{node.module or ''} import {a.name}"
                    for a in node.names if a.name.startswith("_") and not same and not a.name.startswith("__")]
    assert not bad, "; ".join(bad)


def test_the_readme_example_of_a_new_method_runs(digits):
    readme = (ROOT.parent / "README.md").read_text()
    block = readme.split("A new method is one module", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    try:
        hist = train.fit(small_config(method="smooth", smooth_smoothing=0.2, epochs=1, max_batches=2), bundle=digits)
        assert hist.config.method_options["smooth"].smoothing == 0.2 and len(hist) == 1
    finally:
        methods.unregister("smooth")


def test_building_the_parser_changes_no_declaration():
    before = {**core_options(), **methods.flat_options()}
    cli.build_parser()
    assert {**core_options(), **methods.flat_options()} == before
    assert callable(core_options()["method"].choices) and callable(core_options()["model"].choices)
