"""The ``snnlab`` command line (also ``python -m snnlab``).

    snnlab train --dataset dvs-digits --T 8 --epochs 10 --surrogate triangle --width 1.0
    snnlab reproduce            # the main job: every method on the embedded data, table + plots in results/

A bad value prints one line, ``snnlab: error: ...``, and exits with status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from . import __version__
from .data.bundle import epoch_split, final_split
from .distributed import env_world

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(EXIT_USAGE)


def _bool(s: str) -> bool:
    v = s.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def _int_or_none(s: str):
    return None if s.lower() == "none" else int(s)


_int_or_none.__name__ = "int"  # argparse's message: "invalid int value: 'x'"

# the --help sections of TrainConfig's own options, in order; the methods' sections come after "neuron and surrogate"
_CORE_GROUPS = {
    "data and model": "",
    "neuron and surrogate": "",
    "optimisation": "",
    "run": "",
    "GPU and distributed": "several GPUs or machines: torchrun --nproc_per_node=N -m snnlab train ... (DDP, "
                           "synchronised BN; --batch-size is the global batch, divisible by the number of processes; "
                           "see snnlab/distributed.py)",
}


def _flag(name: str, opt) -> str:
    return opt.flag or "--" + name.replace("_", "-")


def _cli_type(opt):
    """What argparse turns the flag's text into (options with ``parse`` are parsed after argparse, so that their
    own error message is the one printed)."""
    if opt.parse is not None or opt.kind in (list, dict):
        return str
    if opt.kind is bool:
        return _bool
    if opt.kind is int:
        return _int_or_none if opt.none_ok else int
    return {float: float}.get(opt.kind, str)


def _help(name: str, opt, notes: dict) -> str:
    text = opt.help
    if opt.action is None and (opt.default is not None or opt.default_help is not None):
        shown = opt.default_help if opt.default_help is not None else opt.default
        text += f" (default: {shown})"
    if opt.aliases:
        text += f"; also spelt {', '.join(opt.aliases)} (older name of {_flag(name, opt)})"
    for note in notes.get(name, ()):
        text += "; " + note
    return text.replace("%", "%%")


def _add_option(g, name: str, opt, notes: dict) -> None:
    kw = dict(dest=name, default=argparse.SUPPRESS, help=_help(name, opt, notes))
    if opt.action is not None:
        kw["action"] = opt.action
    else:
        kw["type"] = _cli_type(opt)
        if opt.choices is not None and not callable(opt.choices):
            kw["choices"] = opt.choices
        if opt.metavar or opt.kind is bool:
            kw["metavar"] = opt.metavar or "BOOL"
    g.add_argument(_flag(name, opt), *opt.aliases, **kw)


def _notes() -> dict:
    """Per option, what the methods add to its --help: their own defaults (their papers' recipes) and the older
    spellings they take for their own options."""
    from . import methods

    notes: dict = {}
    for m in methods.parts():
        for core, value in m.defaults.items():
            notes.setdefault(core, []).append(f"--method {m.name}: {value} unless given (its paper's recipe)")
        for core, own in m.cli_takes.items():
            flat = m.flat_prefix() + own
            notes.setdefault(core, []).append(f"with --method {m.name} an older spelling of --{flat.replace('_', '-')}")
            notes.setdefault(flat, []).append(f"--{core.replace('_', '-')} with --method {m.name} sets this too")
    return notes


def _add_train_args(p: argparse.ArgumentParser) -> None:
    """Every TrainConfig option as a flag, from its one declaration (snnlab.options; the methods' own sections)."""
    from . import methods
    from .config import core_options

    core, notes = core_options(), _notes()
    core["method"] = dataclasses.replace(core["method"], choices=methods.names())
    core["model"] = dataclasses.replace(core["model"], choices=tuple(dict.fromkeys(
        n for m in methods.parts() if m.kind == "method" for n in m.model_names())))
    first = list(_CORE_GROUPS)[:2]  # data/model and neuron/surrogate, then the methods' sections, then the rest
    groups = {t: p.add_argument_group(t, _CORE_GROUPS[t] or None) for t in first}
    own = {}
    for part in methods.parts():
        title, about = part.cli_group
        title = title or f"{part.name} ({'--method ' + part.name if part.kind == 'method' else 'add-on'})"
        if part.option_specs():
            own[title] = {**own.get(title, {}), **part.option_specs()}
            groups.setdefault(title, p.add_argument_group(title, about or None))
    groups.update({t: p.add_argument_group(t, d or None) for t, d in list(_CORE_GROUPS.items())[2:]})
    flagged = {n: o for n, o in core.items() if o.flag != ""}
    for name, opt in flagged.items():
        if opt.group in first:
            _add_option(groups[opt.group], name, opt, notes)
    for title, specs in own.items():
        for name, opt in specs.items():
            _add_option(groups[title], name, opt, notes)
    for name, opt in flagged.items():
        if opt.group not in first:
            _add_option(groups[opt.group], name, opt, notes)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="snnlab", description="Train spiking neural networks directly with gradients (snnlab).")
    p.add_argument("--version", action="version", version=f"snnlab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    t = sub.add_parser("train", help="train one model and write its metrics and checkpoints",
                       description="Train one model; writes config.json, metrics.csv, checkpoint.pt, results.json.")
    _add_train_args(t)
    g = t.add_argument_group("papers' recipes and the results registry")
    g.add_argument("--recipe", default=None, metavar="NAME",
                   help="start from a paper's setting (see 'snnlab recipes'); flags given explicitly override it")
    g.add_argument("--registry", default=None, metavar="PATH",
                   help="results registry to append this run to (default: registry.json next to the --out folder)")
    sw = sub.add_parser("sweep", help="choose a setting on the validation split: a grid x seeds, one table",
                        description="Train the config the flags describe at every setting of a grid and every seed, "
                                    "on the validation split (the test split is never read), and print each "
                                    "setting's mean validation accuracy with its 95%% CI and the best one. Without "
                                    "--grid: the method's own grid (learning rate x its knob; snnlab.sweep).")
    _add_train_args(sw)
    g = sw.add_argument_group("the sweep")
    g.add_argument("--grid", action="append", default=None, metavar="FIELD=V,V,...",
                   help="one axis of the grid, e.g. --grid lr=0.003,0.01 --grid lamb=0,0.001 (repeatable; every "
                        "combination is trained); default: the method's grid")
    g.add_argument("--seeds", default="0,1,2", metavar="S,S,...", help="seeds of every setting (default: %(default)s)")
    g.add_argument("--workers", type=int, default=1, metavar="N",
                   help="runs trained at once in separate processes (default: %(default)s)")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per run (default: the cores divided among the workers)")
    rc = sub.add_parser("recipes", help="list the papers' recipes (snnlab train --recipe NAME)",
                        description="List the recipes: one per row of the TET, DSR and chi tables.")
    rc.add_argument("--show", default=None, metavar="NAME", help="print one recipe in full")
    nx = sub.add_parser("export-nir", help="write a trained run's model as a NIR graph (other simulators, chips)",
                        description="Read RUN_DIR's config.json and checkpoint.pt (weights only, no code runs), "
                                    "fold BatchNorm into the convolutions and write the model as a NIR file "
                                    "(snnlab.export_nir); the file is read back and compared with the model first.")
    nx.add_argument("run_dir", metavar="RUN_DIR", help="a finished run's folder (snnlab train --out)")
    nx.add_argument("--out", default=None, metavar="PATH", help="the NIR file (default: RUN_DIR/model.nir)")
    nx.add_argument("--no-check", action="store_true", help="skip the read-back comparison")
    r = sub.add_parser("reproduce", help="the main job: train on the embedded datasets, print and save the table",
                       description="Train the tutorial SNN on digits and dvs-digits; write results/ (table and plots).")
    r.add_argument("--out", default="results", help="output folder (default: %(default)s)")
    r.add_argument("--fast", action="store_true", help="a few batches per run: checks the pipeline in seconds")
    r.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda' (default: %(default)s)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--sweep", action="store_true",
                   help="choose every row's setting again on the validation split (3 seeds per setting; about "
                        "30 min on 2 cores) instead of reading the shipped snnlab/validated/*.json")
    r.add_argument("--save-validated", action="store_true",
                   help="with --sweep: write the choices into snnlab/validated/ (make sweep)")
    r.add_argument("--workers", type=int, default=None, metavar="N",
                   help="runs trained at once, one torch thread each (default: 2 on 2 or more cores)")
    r.add_argument("--seeds", default="0,1,2,3,4", metavar="S,S,...", help="seeds of the final runs (default: %(default)s)")
    return p


def _given(args) -> dict:
    """The config options given on the command line (flags default to "not given"), parsed."""
    from . import methods
    from .config import core_options

    specs = {**core_options(), **methods.flat_options()}
    given = {k: v for k, v in vars(args).items() if k in specs}
    for k, v in given.items():
        if specs[k].parse is not None and isinstance(v, str):
            given[k] = specs[k].parse(v)
    return given


def _method_flags(given: dict, method: str) -> dict:
    """The chosen method's older spellings (``--tau`` with ``--method dsr`` = ``--dsr-tau``)."""
    from . import methods

    m = methods.get(method)
    for core, own in m.cli_takes.items():
        if core in given:
            given[m.flat_prefix() + own] = given.pop(core)
    return given


def _unused_flags(given: dict, method: str) -> None:
    """A note on stderr for each flag of another method (the run does not use it)."""
    from . import methods

    for k in given:
        hit = methods.owner_of(k)
        if hit is not None and hit[0].kind == "method" and hit[0].name != method:
            sys.stderr.write(f"snnlab: note: --{k.replace('_', '-')} is an option of --method {hit[0].name}; "
                             f"--method {method} does not use it\n")


def config_from_args(args):
    """The ``TrainConfig`` that ``snnlab train`` arguments describe (validated): the recipe's config if one is
    named, then every flag given explicitly."""
    from .config import TrainConfig, method_defaults, parse_T_schedule

    given = _given(args)
    recipe = None
    if getattr(args, "recipe", None):
        from .recipes import get

        recipe = get(args.recipe)
    base = dict(recipe.config) if recipe is not None else {}
    given = _method_flags(given, given.get("method", base.get("method", TrainConfig().method)))
    if "T_schedule" in given:  # the schedule sets T and epochs (a recipe's too) unless those are given
        phases = parse_T_schedule(given["T_schedule"])
        given.setdefault("T", phases[0][0])
        given.setdefault("epochs", sum(e for _, e in phases))
    if isinstance(given.get("data_options"), dict):  # on top of a recipe's options (e.g. DSR's preprocessing)
        given["data_options"] = {**base.get("data_options", {}), **given["data_options"]}
    cfg = TrainConfig(**{**base, **given})
    if cfg.out_dir is None:
        cfg.out_dir = (f"runs/{recipe.name}-s{cfg.seed}" if recipe else
                       f"runs/{cfg.dataset}-{cfg.model}-{cfg.method}-T{cfg.T}-s{cfg.seed}")
    cfg.validate()
    _unused_flags(given, cfg.method)
    own = method_defaults(cfg.method, given={**base, **given})
    if own:  # said on stdout when the run starts (stderr stays one line on an error)
        args._recipe_note = (f"--method {cfg.method} uses its paper's recipe where no flag is given: "
                             + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in own.items()))
    return cfg


def _train(args) -> int:
    from .train import fit

    cfg = config_from_args(args)
    if getattr(args, "_recipe_note", None):
        print(args._recipe_note, flush=True)
    if getattr(args, "recipe", None):
        from .recipes import get

        for need in get(args.recipe).needs:
            sys.stderr.write(f"snnlab: note: recipe {args.recipe} needs {need}\n")
    t0 = time.perf_counter()
    hist = fit(cfg)
    if env_world()[0] != 0:  # under torchrun only rank 0 reports (and only rank 0 wrote results.json)
        return 0
    from . import registry

    reg = args.registry or registry.default_path(cfg.out_dir)
    registry.append(reg, registry.make_entry(cfg, hist, recipe=args.recipe or None,
                                             wall_time_s=time.perf_counter() - t0))
    last = hist.last
    seen = [s for s in ("val", "test") if f"{s}_acc" in last]  # split val: val; final: val, then test once
    print(
        f"epoch {last['epoch']}: train acc {last['train_acc']:.4f}, "
        + ", ".join(f"{s} acc {last[f'{s}_acc']:.4f}, {s} loss {last[f'{s}_loss']:.4f}" for s in seen)
        + f"; cost {last['T_epochs']} T-weighted epochs; outputs in {cfg.out_dir}"
    )
    if hist.hybrid is not None:
        h = hist.hybrid
        print(f"hybrid: ANN {epoch_split(cfg.split)} acc {h['ann_test_acc']:.4f} (T={h['ann_T']}); SNN right after initialisation "
              f"{h['snn_init_test_acc']:.4f} (T={h['T']}); thresholds in {cfg.out_dir}/hybrid.json")
    if cfg.eval_T:
        import json
        from pathlib import Path

        final = json.loads((Path(cfg.out_dir) / "results.json").read_text())["final"]
        print(f"{final_split(cfg.split)} accuracy by T: " + ", ".join(f"T={t}: {a:.4f}" for t, a in final["acc_by_T"].items()))
    return 0


def parse_grid(items) -> dict:
    """``["lr=0.003,0.01", "lamb=0,0.001"]`` -> ``{"lr": [0.003, 0.01], "lamb": [0.0, 0.001]}``, each value parsed
    as its field's flag would be; a bad field or value raises ValueError naming it."""
    from . import methods
    from .config import core_options

    specs = {**core_options(), **methods.flat_options()}
    grid: dict = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not values.strip():
            raise ValueError(f"--grid {item!r}: expected FIELD=V,V,... e.g. lr=0.003,0.01")
        if name not in specs or name in ("seed", "split", "out_dir"):
            raise ValueError(f"--grid {item!r}: {name!r} is not a field a sweep can vary; allowed: "
                             f"{', '.join(k for k in specs if k not in ('seed', 'split', 'out_dir'))}")
        opt, out = specs[name], []
        for text in values.split(","):
            try:
                v = opt.parse(text) if opt.parse is not None else _cli_type(opt)(text.strip())
            except (ValueError, TypeError) as e:
                raise ValueError(f"--grid {item!r}: bad value {text!r} for {name} ({e})") from None
            out.append(v)
        grid[name] = out
    return grid


def _sweep(args) -> int:
    from .tuning import setting_label, sweep

    split = getattr(args, "split", "val")
    explicit_out = getattr(args, "out_dir", None)
    cfg = config_from_args(args)
    if getattr(args, "_recipe_note", None):
        print(args._recipe_note, flush=True)
    out = explicit_out or f"runs/sweep-{cfg.dataset}-{cfg.model}-{cfg.method}-T{cfg.T}"
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, e.g. 0,1,2; got {args.seeds!r}") from None
    grid = parse_grid(args.grid) if args.grid else None
    res = sweep(cfg.replace(out_dir=None), grid, seeds=seeds, split=split, workers=args.workers,
                threads=args.threads, out_dir=out, progress=cfg.progress)
    table = res.table.assign(per_seed=[" ".join(f"{a:.4f}" for a in r) for r in res.table["per_seed"]])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(res.sentence())
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in res.best.items())
    print(f"chosen: {setting_label(res.best)}; train it with the same flags plus {flags} --split final "
          f"(test split once); sweep.json and the runs in {out}")
    return 0


def _explicit_dests(argv) -> set:
    """The config options given explicitly on the command line (every other flag is "not given")."""
    p = build_parser()
    return set(_given(p.parse_args(sys.argv[1:] if argv is None else argv)))


def _recipes(args) -> int:
    import json

    from . import recipes

    if args.show:
        r = recipes.get(args.show)
        print(json.dumps({"name": r.name, "paper": r.paper, "paper_top1": r.paper_top1, "source": r.source,
                          "baseline": r.baseline, "config": r.config, "assumed": r.assumed,
                          "needs": list(r.needs), "notes": r.notes, "command": r.command()}, indent=2))
        return 0
    df = recipes.table()[["recipe", "paper", "dataset", "model", "T", "paper_top1"]]
    print(df.to_string(index=False))
    return 0


def _export_nir(args) -> int:
    from pathlib import Path

    from . import data
    from .config import TrainConfig
    from .interop.nir_graph import export_nir
    from .reproduce import load_run_model

    run = Path(args.run_dir)
    for name in ("config.json", "checkpoint.pt"):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{str(run)!r} is not a finished run folder: it has no {name} "
                                    f"(snnlab train --out FOLDER writes both)")
    cfg = TrainConfig.from_json(run / "config.json")
    cfg.out_dir = str(run)
    bundle = data.load(cfg.dataset)
    model = load_run_model(cfg, bundle)
    shape = tuple(bundle.input_shape)
    path = export_nir(model, args.out or run / "model.nir", input_shape=shape, check=not args.no_check)
    print(f"wrote {path} ({cfg.model} on {cfg.dataset}, input {shape}"
          + ("" if args.no_check else "; read back and compared: equal outputs") + ")")
    return 0


def _reproduce(args) -> int:
    from .reproduce import reproduce

    try:
        seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, e.g. 0,1,2,3,4; got {args.seeds!r}") from None
    reproduce(out=args.out, fast=args.fast, device=args.device, progress=not args.no_progress, run_sweep=args.sweep,
              workers=args.workers, seeds=seeds, save_validated=args.save_validated)
    return 0


def main(argv: list[str] | None = None) -> int:
    from .train import NonFiniteLossError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "recipes":
            return _recipes(args)
        if args.command == "train":
            return _train(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "export-nir":
            return _export_nir(args)
        return _reproduce(args)
    except (ValueError, NotImplementedError, FileNotFoundError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        sys.stderr.write(f"snnlab: error: {msg}\n")
        return EXIT_USAGE
    except NonFiniteLossError as e:
        sys.stderr.write(f"snnlab: training diverged: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("snnlab: interrupted; rerun with --resume to continue from the last checkpoint\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
