"""Values printed as Go's ``fmt`` prints them, which is what a Choria template outputs.

Choria's ``lookup`` returns gjson's ``Value()``: a string, ``float64``, ``bool``, ``nil``,
``[]any`` or ``map[string]any``; text/template prints it with ``fmt.Fprint``. So ``true``,
``1.5``, ``1e+06`` (a float of a million or more), ``[a b]``, ``map[a:1 b:x]`` (keys
sorted), ``<nil>`` inside a list or map and ``<no value>`` for a nil result.

One deliberate difference: a whole number that JSON wrote without a fraction or exponent (a
Python ``int``) prints in full (``16000000000``), where Choria, which holds every JSON number
as a ``float64``, prints ``1.6e+10``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

NO_VALUE = "<no value>"  # text/template's output for a nil result
EXPONENT_AT = 6  # %v of a float64 switches to 1e+06 form at this decimal exponent


def go_text(value: Any) -> str:
    """``value`` as an action prints it."""
    return NO_VALUE if value is None else go_format(value)


def go_format(value: Any) -> str:
    """``value`` as Go's ``fmt.Sprint`` prints its JSON counterpart."""
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "map[" + " ".join(f"{k}:{go_format(v)}" for k, v in items) + "]"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    return str(value)


def go_float(x: float) -> str:
    """``strconv.FormatFloat(x, 'g', -1, 64)``, as ``%v`` prints a float64: the shortest
    digits that read back as ``x``, in exponent form when the exponent is < -4 or >= 6
    (strconv: "if precision was the shortest possible, use precision 6 for this decision")."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0"
    from decimal import Decimal  # here: ~0.3 MiB of the daemon's RSS that only floats need

    _, digits_tuple, exponent = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digits_tuple)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    # the decimal point sits after `point` digits
    point = len(digits_tuple) + exponent
    exp = point - 1
    if exp < -4 or exp >= EXPONENT_AT:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"
