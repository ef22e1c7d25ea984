"""The answer of a sweep: the smallest configuration that meets a target, per
combination of the other axes, and the frontier drawn as small multiples.

A target is ``"<figure> <op> <number>"``: ``hit_rate >= 0.9``, ``mean_ns <= 2000``,
``p99_ns < 5000`` (any figure of ``points.METRICS``).  The frontier axis is the
first of ``FRONTIER_X`` the grid varies (capacity, usually); "smallest" is along
it.  The plot has one panel per combination of the varied axes other than the
frontier axis and the policy, whose values are the lines of each panel (a colour
and a marker each, the legend outside the panels); the target is a line across
the panels and a star on the smallest point of each line that meets it.
"""
from __future__ import annotations

import errno
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import VswError
from .points import AXES, METRICS
from .report import pyplot

#: The axes a frontier is drawn against, in order of preference: the first that varies.
FRONTIER_X = ("capacity", "vms", "pcpus", "max_burst", "utilisation", "width_bytes", "mean_steps", "zipf_s",
              "burst_len", "warmup")
#: The axis whose values are the lines of a panel (when it varies).
HUE = "policy"
OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt,
                                                  "<": operator.lt}
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
           "tab:olive", "tab:cyan")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


@dataclass(frozen=True)
class Target:
    """A bound on one figure of a row."""

    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> "Target":
        m = re.fullmatch(r"\s*([a-z0-9_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*", text or "")
        if not m or m.group(1) not in METRICS:
            raise VswError(errno.EINVAL, f"a target is '<figure> >=|<=|>|< <number>' with a figure of "
                                         f"{', '.join(METRICS)}; got {text!r}")
        try:
            value = float(m.group(3))
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise VswError(errno.EINVAL, f"a target's bound is a finite number; got {m.group(3)!r}")
        return cls(m.group(1), m.group(2), value)

    def met(self, row: dict[str, Any]) -> bool:
        v = row.get(self.metric)
        return not row.get("error") and v is not None and OPS[self.op](v, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def varied(rows: list[dict[str, Any]]) -> list[str]:
    """The axes whose values differ between the rows."""
    return [a for a in AXES if len({r[a] for r in rows}) > 1]


def frontier_x(rows: list[dict[str, Any]]) -> str:
    v = varied(rows)
    return next((a for a in FRONTIER_X if a in v), next((a for a in v if AXES[a][0] is not str), "capacity"))


def size(row: dict[str, Any], x: str) -> float:
    """A row's place along the frontier axis ``x``: its value, but capacity 0 -
    "every machine" - is the store of all the point's machines (the largest its
    axis can be; a trace's machines are known only to the run: larger than any)."""
    v = row[x]
    if x == "capacity" and v == 0:
        return math.inf if row.get("trace") else float(row["vms"] or 2 * row["pcpus"])
    return v


def _shown(x: str, v: Any) -> str:
    return f"{v} (every machine)" if x == "capacity" and v == 0 else f"{v}"


def _label(combo: tuple[Any, ...], names: list[str]) -> str:
    return ", ".join(f"{a}={v}" for a, v in zip(names, combo)) or "every point"


def answer(rows: list[dict[str, Any]], target: Target) -> list[dict[str, Any]]:
    """Per combination of the varied axes other than the frontier's: the smallest
    frontier value whose row meets ``target`` (None: none does), and that row."""
    ok = [r for r in rows if not r["error"]]
    x = frontier_x(rows)
    others = [a for a in varied(rows) if a != x]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in ok:
        groups.setdefault(tuple(r[a] for a in others), []).append(r)
    out = []
    for combo, rs in groups.items():
        rs.sort(key=lambda r: (size(r, x), r[x] == 0))     # capacity 0 after an explicit store as large
        best = next((r for r in rs if target.met(r)), None)
        out.append({"axes": dict(zip(others, combo)), "x": x, "smallest": best[x] if best else None,
                    "row": best, "largest_tried": rs[-1][x], "target": str(target)})
    return out


def answer_text(answers: list[dict[str, Any]], target: Target) -> list[str]:
    lines = [f"target {target}: the smallest configuration meeting it"]
    for a in answers:
        label = _label(tuple(a["axes"].values()), list(a["axes"]))
        if a["row"] is None:
            lines.append(f"  {label}: not met by any {a['x']} up to {_shown(a['x'], a['largest_tried'])}")
        else:
            r = a["row"]
            ci = r.get(f"{target.metric}_ci95")
            lines.append(f"  {label}: {a['x']} = {_shown(a['x'], a['smallest'])} "
                         f"({target.metric} {r[target.metric]:.4g}"
                         f"{f' +-{ci:.2g}' if ci else ''})")
    return lines


def plot(rows: list[dict[str, Any]], path: str, target: Target | None = None) -> str:
    """The frontier as small multiples in one PNG: per panel (a combination of the
    other varied axes), hit rate above and the modelled switch (mean with its 95%
    CI, p99, and the prior art's p50) below, a line per policy.  Returns the x axis."""
    plt = pyplot()
    ok = [r for r in rows if not r["error"]]
    if not ok:
        raise VswError(errno.EINVAL, "nothing to plot: every point of the sweep failed")
    x = frontier_x(rows)
    vs = varied(rows)
    hue = HUE if HUE in vs and HUE != x else None
    panel_axes = [a for a in vs if a not in (x, hue)]
    panels: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in ok:
        panels.setdefault(tuple(r[a] for a in panel_axes), []).append(r)
    hues = sorted({r[hue] for r in ok}) if hue else [None]
    style = {h: (COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)]) for i, h in enumerate(hues)}
    n = len(panels)
    cols = min(4, n)
    prow = math.ceil(n / cols)
    width = 4.6 if cols == 1 else 3.6
    fig, axs = plt.subplots(2 * prow, cols, figsize=(width * cols + 2.4, 5.2 * prow + 0.7), squeeze=False,
                            sharex="col")
    best = {(tuple(a["axes"].get(p) for p in panel_axes), a["axes"].get(hue) if hue else None): a
            for a in answer(rows, target)} if target else {}
    numeric = AXES[x][0] is not str

    def at(r: dict[str, Any]) -> Any:        # where a row is drawn: capacity 0 at its store's size where known
        if not numeric:
            return str(r[x])
        v = size(r, x)
        return v if math.isfinite(v) else r[x]
    for i, (combo, rs) in enumerate(sorted(panels.items(), key=lambda kv: repr(kv[0]))):
        top, low = axs[2 * (i // cols)][i % cols], axs[2 * (i // cols) + 1][i % cols]
        for h in hues:
            mine = sorted((r for r in rs if hue is None or r[hue] == h), key=lambda r: (size(r, x), r[x] == 0))
            if not mine:
                continue
            colour, marker = style[h]
            xs = [at(r) for r in mine]
            top.plot(xs, [r["hit_rate"] * 100 for r in mine], color=colour, marker=marker, ms=4)
            low.errorbar(xs, [r["mean_ns"] for r in mine], yerr=[r["mean_ns_ci95"] or 0 for r in mine],
                         color=colour, marker=marker, ms=4, capsize=2)
            low.plot(xs, [r["p99_ns"] for r in mine], color=colour, linestyle="--", linewidth=1)
            low.plot(xs, [r["prior_art_p50_ns"] for r in mine], color=colour, linestyle=":", linewidth=1)
            a = best.get((tuple(combo), h))
            if a and a["row"] is not None:
                r = a["row"]
                ax = top if target and target.metric == "hit_rate" else low
                yv = r[target.metric] * (100 if target.metric == "hit_rate" else 1) if target else 0
                ax.plot([at(r)], [yv], marker="*", ms=15, color=colour,
                        markeredgecolor="black", zorder=5)
        if target:
            ax = top if target.metric == "hit_rate" else low
            ax.axhline(target.value * (100 if target.metric == "hit_rate" else 1), color="black", linewidth=0.8,
                       linestyle="-.")
        top.set_title(_label(combo, panel_axes), fontsize=8)
        top.set_ylim(0, 105)
        top.grid(alpha=0.3)
        low.grid(alpha=0.3)
        low.set_yscale("log")
        if i % cols == 0:
            top.set_ylabel("hit rate (%)")
            low.set_ylabel("modelled switch (ns, log)")
        low.set_xlabel(x)
    for j in range(n, prow * cols):                 # the empty cells of the last row
        axs[2 * (j // cols)][j % cols].axis("off")
        axs[2 * (j // cols) + 1][j % cols].axis("off")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=style[h][0], marker=style[h][1], label=f"{hue}={h}" if hue else "every point")
               for h in hues]
    handles += [Line2D([], [], color="black", marker="o", label="mean (95% CI)"),
                Line2D([], [], color="black", linestyle="--", label="p99"),
                Line2D([], [], color="black", linestyle=":", label="prior art p50")]
    if target:
        handles += [Line2D([], [], color="black", linestyle="-.", label=f"target {target}"),
                    Line2D([], [], color="black", marker="*", ms=12, linestyle="", label="smallest meeting it")]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(f"Hit rate and modelled switch against {x}" + (f", a line per {hue}" if hue else "")
                 + (f", a panel per {' x '.join(panel_axes)}" if panel_axes else ""), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 2.3 / (width * cols + 2.4), 1 - 0.4 / (5.2 * prow + 0.7)))
    fig.savefig(path, dpi=100 if n <= 4 else 80)
    plt.close(fig)
    return x
