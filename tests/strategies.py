"""Hypothesis strategies the tests share, built from the layouts' own tables
(no register counts or group masks typed as literals)."""
from __future__ import annotations

from hypothesis import strategies as st

import pyvswitch.hw as hw

#: A 64-bit register's value.
register_values = st.integers(0, 2**64 - 1)


def field_values(layout: str) -> st.SearchStrategy[dict[str, int]]:
    """A value for every field of ``layout``, each in its own width."""
    lay = hw.Layout.get(layout)
    return st.fixed_dictionaries({n: st.integers(0, (1 << f.bits) - 1) for n, f in lay.fields.items()})


def group_masks(layout: str) -> st.SearchStrategy[int]:
    """Any set of ``layout``'s groups, as a mask (the empty set included)."""
    return st.integers(0, hw.Layout.get(layout).all_groups)


def context_bytes(layout: str) -> st.SearchStrategy[bytes]:
    """A whole register file's worth of arbitrary bytes."""
    size = hw.Layout.get(layout).size
    return st.binary(min_size=size, max_size=size)
