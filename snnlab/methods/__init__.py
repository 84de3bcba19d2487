"""Training methods as parts: the ``Method`` protocol, the registry, and the built-in SDT, TET, chi and DSR.

``snnlab.loop`` asks the registry for the config's method and its active add-ons and never names one. The
built-ins, each one module that registers itself: ``sdt`` (the baseline), ``tet`` (TET's loss), ``chi`` (the
chi-adaptive surrogate, an add-on), ``dsr`` (DSR's neurons and models), ``hybrid`` (DSR's ANN phase, an add-on).
Add your own with ``register`` (see ``snnlab.methods.base`` and notebook/README examples).
"""
from .base import (Method, active_parts, flat_options, get, method_of, names, owner_of, parts, register, reserve,
                   unregister)
from . import sdt, tet, chi, dsr, hybrid  # noqa: E402,F401  (each registers itself, in this order)

__all__ = ["Method", "register", "unregister", "reserve", "get", "names", "parts", "active_parts", "method_of",
           "flat_options", "owner_of"]
