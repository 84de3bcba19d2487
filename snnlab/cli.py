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


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from . import data, losses, models, surrogate
    from .neurons import RESETS
    from .train import OPTIMIZERS, SCHEDULERS, TrainConfig

    d = TrainConfig()
    g = p.add_argument_group("data and model")
    g.add_argument("--dataset", default=d.dataset, choices=data.DATASETS, help="embedded dataset (default: %(default)s)")
    g.add_argument("--model", default=d.model, choices=tuple(models.MODELS), help="architecture (default: %(default)s)")
    g.add_argument("--method", default=d.method, choices=tuple(losses.LOSSES),
                   help="training method / loss: sdt = CE of the time-averaged output, tet = CE at every step "
                        "+ lamb * MSE(O(t), phi), dsr = differentiation on spike representation (rate CE, "
                        "gradients through the firing-rate mapping; models tutorial|preact_resnet18|vgg11) "
                        "(default: %(default)s)")
    g.add_argument("--lamb", type=float, default=d.lamb, help="TET: weight of the MSE term in [0, 1] (default: %(default)s)")
    g.add_argument("--phi", type=float, default=d.phi, help="TET: target of the MSE term (default: %(default)s)")
    g.add_argument("--T", type=int, default=None,
                   help=f"time steps; for dvs-digits the number of frames (default: {d.T}, or the first T of --T-schedule)")
    g.add_argument("--T-schedule", default=None, metavar="T:EPOCHS,...",
                   help="temporal inheritable training (TET): e.g. 2:30,6:5 trains T=2 for 30 epochs then T=6 for 5, "
                        "carrying weights and optimizer state; sets --epochs to the total")
    g.add_argument("--eval-T", default=None, metavar="T,T,...",
                   help="after training, test accuracy at each of these T without fine-tuning (temporal "
                        "scalability), e.g. 1,2,4,6,8; saved in results.json")
    g.add_argument("--data-seed", type=int, default=d.data_seed, help="seed of the event-camera simulation (default: %(default)s)")
    g = p.add_argument_group("neuron and surrogate")
    g.add_argument("--neuron", default=d.neuron, choices=models.NEURONS, help="spiking neuron (default: %(default)s)")
    g.add_argument("--tau", type=float, default=None,
                   help=f"LIF decay factor in (0, 1], u = tau*u + I (default: {d.tau}); with --method dsr the LIF "
                        f"time constant > 0 (default: {d.dsr_tau})")
    g.add_argument("--v-th", type=float, default=None,
                   help=f"firing threshold > 0 (default: {d.v_th}); with --method dsr the initial trainable "
                        "threshold (default: LIF 0.3, IF 6, as DSR's code)")
    g.add_argument("--alpha", type=float, default=None,
                   help="DSR: fire at alpha*v_th, subtract v_th; in (0, 1] (default: LIF 0.3, IF 0.5)")
    g.add_argument("--dt", type=float, default=None, help=f"DSR LIF time step > 0 (default: {d.dsr_dt})")
    g.add_argument("--dsr-threshold-grad", default=d.dsr_threshold_grad, choices=("code", "paper"),
                   help="DSR LIF threshold gradient: 'code' multiplies by dt (official code), 'paper' divides "
                        "by dt (Eq. 14) (default: %(default)s)")
    g.add_argument("--reset", default=d.reset, choices=RESETS, help="reset after a spike (default: %(default)s)")
    g.add_argument("--detach-reset", type=_bool, default=d.detach_reset, metavar="BOOL",
                   help="stop the gradient through the reset (default: %(default)s)")
    g.add_argument("--surrogate", default=d.surrogate, choices=tuple(surrogate.SURROGATES),
                   help="surrogate spike derivative (default: %(default)s)")
    g.add_argument("--width", type=float, default=d.width,
                   help="surrogate width = full width at half maximum of its derivative, > 0 (default: %(default)s)")
    g.add_argument("--widths", default=None, metavar="W,W,...",
                   help="per-spiking-layer surrogate widths in forward order, e.g. 1.0,0.5 (overrides --width)")
    g = p.add_argument_group(
        "DSR hybrid training (--method dsr; DSR's ImageNet setting, see snnlab/hybrid.py)",
        "train the model's ANN twin (ReLU in place of every DSR neuron) first, set each layer's threshold to a "
        "percentile of its ANN activations on training data, load the ANN's weights into the SNN, then train "
        "the SNN for --epochs. The ANN phase is written to <out>/ann/, the thresholds and both accuracies to "
        "<out>/hybrid.json and results.json; --resume never retrains the ANN once the SNN phase has started")
    g.add_argument("--hybrid-ann-epochs", type=int, default=d.hybrid_ann_epochs, metavar="N",
                   help="epochs of the ANN phase before the SNN (0 = no hybrid training) (default: %(default)s)")
    g.add_argument("--hybrid-ann-checkpoint", default=None, metavar="PATH",
                   help="skip the ANN phase and start from this trained ANN, e.g. <earlier out>/ann/checkpoint.pt")
    g.add_argument("--hybrid-percentile", type=float, default=d.hybrid_percentile, metavar="Q",
                   help="threshold = the Q-quantile of each layer's post-ReLU ANN activations, Q in (0, 1]; "
                        "1 = the maximum (default: %(default)s, DSR's 99.9th percentile)")
    g.add_argument("--hybrid-calib-batches", type=_int_or_none, default=None, metavar="N",
                   help="training batches used for the percentiles (default: all)")
    g.add_argument("--hybrid-ann-optimizer", default=None, choices=OPTIMIZERS,
                   help="the ANN phase's optimizer (default: --optimizer)")
    g.add_argument("--hybrid-ann-lr", type=float, default=None, help="the ANN phase's learning rate (default: --lr)")
    g.add_argument("--hybrid-ann-weight-decay", type=float, default=None,
                   help="the ANN phase's weight decay (default: --weight-decay)")
    g.add_argument("--hybrid-ann-batch-size", type=int, default=None, metavar="N",
                   help="the ANN phase's and the calibration's batch size (default: --batch-size)")
    g = p.add_argument_group("chi-adaptive surrogate (a documented reconstruction, see snnlab/chi.py)")
    g.add_argument("--chi-target", type=float, default=None,
                   help="adapt each layer's width so that chi (share of non-zero weight gradients) tracks this "
                        "target in (0, 1); off by default")
    g.add_argument("--chi-every", type=int, default=d.chi_every, help="measure chi every K steps (default: %(default)s)")
    g.add_argument("--chi-signal", default=d.chi_signal, choices=("neurons", "weights"),
                   help="what the controller tracks: the share of neuron-steps inside the surrogate's effective "
                        "domain, or the paper's share of non-zero weight gradients (default: %(default)s)")
    g.add_argument("--chi-w-min", type=float, default=d.chi_w_min, help="smallest width (default: %(default)s)")
    g.add_argument("--chi-w-max", type=float, default=d.chi_w_max, help="largest width (default: %(default)s)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=None, help=f"(default: {d.epochs}, or the total of --T-schedule)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="(default: %(default)s)")
    g.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: %(default)s)")
    g.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS, help="(default: %(default)s)")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help="(default: %(default)s)")
    g.add_argument("--scheduler", default=d.scheduler, choices=SCHEDULERS, help="learning-rate schedule (default: %(default)s)")
    g.add_argument("--warmup-iters", type=int, default=None, metavar="N",
                   help="linear learning-rate warm-up over the first N optimizer steps (DSR's code: 400; default: 0)")
    g.add_argument("--max-batches", type=_int_or_none, default=d.max_batches,
                   help="cap on training batches per epoch, for quick runs (default: all)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of initialisation and shuffling (default: %(default)s)")
    g.add_argument("--device", default=d.device, help="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N' (default: %(default)s)")
    g.add_argument("--data-root", default=None, metavar="PATH",
                   help="folder holding the papers' datasets (cifar-10-batches-py/, dvs-cifar10/, imagenet/) and the "
                        "dvs-digits cache (default: $SNNLAB_DATA, else the repository's datasets/)")
    g.add_argument("--data-options", default=None, metavar="JSON",
                   help="options of the data loader as a JSON object, e.g. '{\"cutout\": true}' (CIFAR) or "
                        "'{\"train_per_class\": 900}' (dvs-cifar10); see snnlab.data.load")
    g.add_argument("--amp", type=_bool, default=d.amp, metavar="BOOL", help="mixed precision on CUDA (default: %(default)s)")
    g.add_argument("--out", default=None,
                   help="output folder for config.json, metrics.csv, checkpoint.pt (default: runs/<dataset>-<model>-<method>-T<T>-s<seed>)")
    g.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = p.add_argument_group(
        "GPU and distributed",
        "several GPUs or machines: torchrun --nproc_per_node=N -m snnlab train ... (DDP, synchronised BN; "
        "--batch-size is the global batch, divisible by the number of processes; see snnlab/distributed.py)")
    g.add_argument("--amp-dtype", default=d.amp_dtype, choices=("float16", "bfloat16"),
                   help="mixed-precision type on CUDA; bfloat16 needs no loss scaling (default: %(default)s)")
    g.add_argument("--channels-last", action="store_true", help="channels-last memory format for convolutions on CUDA")
    g.add_argument("--cudnn-benchmark", action="store_true",
                   help="let cuDNN pick the fastest kernels on CUDA (not bitwise repeatable)")


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
    rc = sub.add_parser("recipes", help="list the papers' recipes (snnlab train --recipe NAME)",
                        description="List the recipes: one per row of the TET, DSR and chi tables.")
    rc.add_argument("--show", default=None, metavar="NAME", help="print one recipe in full")
    r = sub.add_parser("reproduce", help="the main job: train on the embedded datasets, print and save the table",
                       description="Train the tutorial SNN on digits and dvs-digits; write results/ (table and plots).")
    r.add_argument("--out", default="results", help="output folder (default: %(default)s)")
    r.add_argument("--fast", action="store_true", help="a few batches per run: checks the pipeline in seconds")
    r.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda' (default: %(default)s)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from_args(args):
    """The ``TrainConfig`` that ``snnlab train`` arguments describe (validated)."""
    from .train import TrainConfig, parse_T_list, parse_T_schedule

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    recipe = None
    if getattr(args, "recipe", None):  # the recipe, then only the flags given explicitly
        from .recipes import get

        recipe = get(args.recipe)
        explicit = getattr(args, "_explicit", set())
        kw = {k: v for k, v in kw.items() if k in explicit or k in ("tau", "v_th")}
        if "method" not in explicit:
            args.method = recipe.config["method"]
        kw = {**recipe.config, **kw}
    if args.method == "dsr":  # --tau/--v-th mean DSR's time constant and initial threshold
        for opt, field in (("tau", "dsr_tau"), ("v_th", "dsr_v_th"), ("alpha", "dsr_alpha"), ("dt", "dsr_dt")):
            if getattr(args, opt) is not None:
                kw.pop(opt, None)
                kw[field] = getattr(args, opt)
    elif args.alpha is not None or args.dt is not None:
        raise ValueError("--alpha and --dt apply to --method dsr only")
    if args.T_schedule is not None:
        phases = parse_T_schedule(args.T_schedule)
        if recipe is not None:  # the schedule replaces the recipe's T and epochs unless those are given too
            kw.update({k: v for k, v in (("T", phases[0][0]), ("epochs", sum(e for _, e in phases)))
                       if k not in getattr(args, "_explicit", set())})
        kw.setdefault("T", phases[0][0])
        kw.setdefault("epochs", sum(e for _, e in phases))
    if args.eval_T is not None:
        kw["eval_T"] = parse_T_list(args.eval_T)
    if args.widths is not None:
        try:
            kw["widths"] = [float(w) for w in args.widths.split(",")]
        except ValueError:
            raise ValueError(f"--widths must be comma-separated numbers, e.g. 1.0,0.5; got {args.widths!r}") from None
    if args.data_options is not None:
        import json

        try:
            given = json.loads(args.data_options)
            # on top of a recipe's options (e.g. DSR's preprocessing), not instead of them
            base = recipe.config.get("data_options", {}) if recipe is not None else {}
            kw["data_options"] = {**base, **given} if isinstance(given, dict) else given
        except json.JSONDecodeError as e:
            raise ValueError(f"--data-options must be a JSON object, e.g. '{{\"cutout\": true}}'; got "
                             f"{args.data_options!r} ({e.msg})") from None
    cfg = TrainConfig(**kw, progress=not args.no_progress)
    cfg.out_dir = args.out or (f"runs/{recipe.name}-s{cfg.seed}" if recipe else
                               f"runs/{cfg.dataset}-{cfg.model}-{cfg.method}-T{cfg.T}-s{cfg.seed}")
    cfg.resume = args.resume
    return cfg.validate()


def _train(args) -> int:
    from .train import fit

    cfg = config_from_args(args)
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
    print(
        f"epoch {last['epoch']}: train acc {last['train_acc']:.4f}, test acc {last['test_acc']:.4f}, "
        f"test loss {last['test_loss']:.4f}; cost {last['T_epochs']} T-weighted epochs; outputs in {cfg.out_dir}"
    )
    if hist.hybrid is not None:
        h = hist.hybrid
        print(f"hybrid: ANN test acc {h['ann_test_acc']:.4f} (T={h['ann_T']}); SNN right after initialisation "
              f"{h['snn_init_test_acc']:.4f} (T={h['T']}); thresholds in {cfg.out_dir}/hybrid.json")
    if cfg.eval_T:
        import json
        from pathlib import Path

        final = json.loads((Path(cfg.out_dir) / "results.json").read_text())["final"]
        print("test accuracy by T: " + ", ".join(f"T={t}: {a:.4f}" for t, a in final["acc_by_T"].items()))
    return 0


def _explicit_dests(argv) -> set:
    """The option destinations given explicitly on the command line (so a recipe keeps the others)."""
    p = build_parser()
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sp in a.choices.values():
                for b in sp._actions:
                    b.default = argparse.SUPPRESS
    ns = vars(p.parse_args(sys.argv[1:] if argv is None else argv))
    # the CLI's names for DSR's fields
    return set(ns) | {"dsr_" + k for k in ("tau", "v_th", "alpha", "dt") if k in ns}


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


def _reproduce(args) -> int:
    from .reproduce import reproduce

    reproduce(out=args.out, fast=args.fast, device=args.device, progress=not args.no_progress)
    return 0


def main(argv: list[str] | None = None) -> int:
    from .train import NonFiniteLossError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "recipes":
            return _recipes(args)
        if args.command == "train":
            args._explicit = _explicit_dests(argv)
            return _train(args)
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
