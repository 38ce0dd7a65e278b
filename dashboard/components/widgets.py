"""Small widget helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st


def choose(label: str, options: Sequence[Any], key: str, format_func: Callable[[Any], str] = str,
           **kwargs: Any) -> Any:
    """A keyed selectbox whose remembered choice is dropped when it is no longer among ``options``.

    Options of one selectbox often depend on another's choice; without this the
    widget would keep a value it no longer offers.
    """
    if key in st.session_state and st.session_state[key] not in options and options:
        st.session_state[key] = options[0]  # set, not deleted, so the browser shows it too
    return st.selectbox(label, options, key=key, format_func=format_func, **kwargs)


MISSING = "—"


def is_missing(value: object) -> bool:
    """None, NaN or pandas' NA."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # an array or list: not a missing scalar
        return False


def percent(value: float | None) -> str:
    """``42.5%`` (``0%``/``100%`` exactly); a missing value as ``—``."""
    if is_missing(value):
        return MISSING
    return f"{value:.0%}" if value in (0, 1) else f"{value:.1%}"


def score(value: float | None, digits: int = 2) -> str:
    """A score such as a cosine to ``digits`` decimals; a missing value (the stage gave none) as ``—``."""
    return MISSING if is_missing(value) else f"{value:.{digits}f}"
