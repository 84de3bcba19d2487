"""The chi-adaptive surrogate, an add-on to any surrogate method: a callback steering each layer's width to a chi target."""
from __future__ import annotations

from dataclasses import dataclass

from ..chi import ChiController
from ..options import option
from .base import Method, register

__all__ = ["ChiAdaptive", "ChiOptions"]

_GROUP = "chi-adaptive surrogate (a documented reconstruction, see snnlab/chi.py)"


@dataclass
class ChiOptions:
    """``snnlab.chi.ChiController``'s settings; off unless ``target`` (flat: ``chi_target``) is set."""

    target: float | None = option(None, "adapt each layer's width so that chi (share of non-zero weight "
                                        "gradients) tracks this target in (0, 1)", kind=float,
                                  lo=0, hi=1, lo_open=True, hi_open=True, none_hint=False, group=_GROUP,
                                  default_help="off")
    every: int = option(10, "measure chi every K steps", lo=1, group=_GROUP)
    w_min: float = option(0.05, "smallest width", lo=0, lo_open=True, group=_GROUP)
    w_max: float = option(4.0, "largest width", lo=0, lo_open=True, group=_GROUP)
    signal: str = option("neurons", "what the controller tracks: the share of neuron-steps inside the surrogate's "
                                    "effective domain, or the paper's share of non-zero weight gradients",
                         choices=("neurons", "weights"), group=_GROUP)


class ChiAdaptive(Method):
    """Adds a ``ChiController`` to the loop when ``chi_target`` is set (with TET, SDT or any surrogate method)."""

    name = "chi"
    kind = "addon"
    Options = ChiOptions
    needs_surrogate = True
    supports_distributed = False
    cli_group = (_GROUP, "")
    sweep_grid = {"chi_target": (0.1, 0.3, 0.5)}

    def active(self, config) -> bool:
        return self.options(config).target is not None

    def label(self, config) -> str:
        return "chi_target"

    def validate(self, config) -> None:
        o = self.options(config)
        if not 0 < o.w_min <= o.w_max:
            raise ValueError(f"need 0 < chi_w_min <= chi_w_max, got chi_w_min={o.w_min!r}, chi_w_max={o.w_max!r}")

    def callbacks(self, config) -> list:
        o = self.options(config)
        return [ChiController(target=o.target, every=o.every, w_min=o.w_min, w_max=o.w_max, signal=o.signal)]


register(ChiAdaptive())
