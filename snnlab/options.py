"""Options declared once: each config field's type, default, allowed values, help text and CLI flag.

A config is a dataclass whose fields are made with :func:`option`::

    @dataclass
    class Options:
        lamb: float = option(0.001, "weight of the MSE term", lo=0, hi=1, label="lamb (TET's MSE weight)")

Everything else derives from that one declaration: :func:`check` validates a value (one ``ValueError`` naming
the field, the value and what is allowed), ``snnlab.cli`` builds the flag and its ``--help`` line, resume's
"config differs" check and the recipes' provenance skip the options with ``experiment=False`` (how a run is
computed, not what it computes).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Option", "option", "options_of", "check", "check_all", "describe_allowed"]

_MISSING = object()


@dataclass(frozen=True)
class Option:
    """The declaration of one config field (kept in the dataclass field's ``metadata["option"]``).

    Attributes:
        default: the default value (a list or dict default is copied for every config).
        help: one sentence for ``--help`` and the docs.
        kind: ``int``, ``float``, ``bool``, ``str``, ``list`` or ``dict`` (``float`` also takes an int).
        none_ok: ``None`` is allowed (it means "not set" / "the default of something else": say so in ``help``).
        choices: the allowed values (or a callable ``config -> tuple`` when they depend on other fields).
        lo, hi, lo_open, hi_open: the allowed range of a number (``None`` = unbounded).
        label: the name in error messages, e.g. ``"tau (LIF decay factor)"`` (default: the field's name).
        hint: said after the allowed values, e.g. ``" (0 = no ANN phase)"``.
        check: an extra check ``value -> None`` raising ``ValueError`` (e.g. a schedule's syntax).
        allowed: the allowed values in words, when the type and range do not say it (e.g. "a folder path").
        experiment: False for how or where a run is computed (device, progress bars, output folder): such an
            option may change on resume and does not make a run depart from a recipe.
        setting: False for what is part of the experiment but not of a paper's setting (seeds: another seed is
            another sample of the same setting); always False when ``experiment`` is.
        flag: the CLI flag (default ``--<name with dashes>``); ``""`` = no flag.
        aliases: older spellings of the flag, accepted and named in ``--help``.
        parse: turns the flag's text into the value (default: from ``kind``).
        metavar: the flag's placeholder in ``--help``.
        action: ``"store_true"`` / ``"store_false"`` for a flag that takes no value.
        group: the ``--help`` section the flag is listed in.
        default_help: what ``--help`` says the default is (default: the value).
        none_hint: say "or None" in the error message of an option that allows None.
    """

    default: Any
    help: str
    kind: type = float
    none_ok: bool = False
    choices: tuple | Callable | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    label: str | None = None
    hint: str = ""
    check: Callable[[Any], None] | None = None
    allowed: str | None = None
    experiment: bool = True
    setting: bool = True
    flag: str | None = None
    aliases: tuple = ()
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    action: str | None = None
    group: str = "run"
    default_help: str | None = None
    none_hint: bool = True
    name: str = ""  # filled in by options_of: the field's name (with its group's prefix for method options)


def option(default, help: str, **kw) -> Any:
    """A dataclass field declared with an :class:`Option` (same keyword arguments)."""
    if "kind" not in kw:  # from the default; a None default needs the kind given
        if default is None:
            raise TypeError(f"option(None, {help!r}) needs kind=")
        kw["kind"] = type(default)
    if default is None:
        kw.setdefault("none_ok", True)
    opt = Option(default, help, **kw)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"option": opt})
    return field(default=default, metadata={"option": opt})


def options_of(cls, prefix: str = "") -> dict[str, Option]:
    """``{name: Option}`` of a dataclass's declared fields, in order; names carry ``prefix`` (e.g. ``dsr_``)."""
    out = {}
    for f in dataclasses.fields(cls):
        opt = f.metadata.get("option")
        if opt is not None:
            out[prefix + f.name] = dataclasses.replace(opt, name=prefix + f.name)
    return out


def _number_text(opt: Option) -> str:
    """What a number option allows, in words: "a positive integer", "in (0, 1]", "a finite number > 0"."""
    lo, hi = opt.lo, opt.hi
    if lo is not None and hi is not None:
        return f"in {'(' if opt.lo_open else '['}{lo:g}, {hi:g}{')' if opt.hi_open else ']'}"
    if opt.kind is int:
        if lo == 1 and not opt.lo_open:
            return "a positive integer"
        return "an integer" + (f" {'>' if opt.lo_open else '>='} {lo:g}" if lo is not None else "")
    text = "a finite number"
    if lo is not None:
        text += f" {'>' if opt.lo_open else '>='} {lo:g}"
    if hi is not None:
        text += f" {'<' if opt.hi_open else '<='} {hi:g}"
    return text


def describe_allowed(opt: Option, config=None) -> str:
    """The allowed values of ``opt`` in words (for errors and ``--help``)."""
    if opt.choices is not None:
        choices = opt.choices(config) if callable(opt.choices) else opt.choices
        return "one of " + ", ".join(map(repr, choices))
    if opt.allowed is not None:
        return opt.allowed
    if opt.kind is bool:
        return "True or False"
    if opt.kind in (int, float):
        return _number_text(opt)
    return {str: "a string", list: "a list", dict: "a dict"}.get(opt.kind, opt.kind.__name__)


def _in_range(opt: Option, v) -> bool:
    if opt.lo is not None and (v < opt.lo or (v == opt.lo and opt.lo_open)):
        return False
    return opt.hi is None or not (v > opt.hi or (v == opt.hi and opt.hi_open))


def _type_ok(opt: Option, v) -> bool:
    if opt.kind is bool:
        return isinstance(v, bool)
    if opt.kind is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if opt.kind is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if opt.kind is list:
        return isinstance(v, (list, tuple))
    return isinstance(v, opt.kind)


def check(opt: Option, value, config=None) -> None:
    """Raise ``ValueError`` if ``value`` is not allowed for ``opt``: one line naming it, the value and the rule."""
    if value is None and opt.none_ok:
        return
    label = opt.label or opt.name
    if opt.choices is not None:
        choices = opt.choices(config) if callable(opt.choices) else opt.choices
        if value not in choices:
            raise ValueError(f"{label} must be {describe_allowed(opt, config)}"
                             f"{' or None' if opt.none_ok and opt.none_hint else ''}{opt.hint}; got {value!r}")
    elif not _type_ok(opt, value) or (opt.kind in (int, float) and not _in_range(opt, value)):
        raise ValueError(f"{label} must be {describe_allowed(opt, config)}"
                         f"{' or None' if opt.none_ok and opt.none_hint else ''}{opt.hint}, got {value!r}")
    if opt.check is not None:
        opt.check(value)


def check_all(options: dict[str, Option], get: Callable[[str], Any], config=None) -> None:
    """:func:`check` every option, reading its value with ``get(name)``."""
    for name, opt in options.items():
        check(opt, get(name), config)
