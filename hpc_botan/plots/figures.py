"""Every figure a run directory allows, for ``hpc-botan plot all`` and the run report.

    from hpc_botan.plots.figures import write_all_figures
    for outcome in write_all_figures("runs/ka"):
        if outcome.files:          # written: outcome.text is its one-sentence caption
            embed(outcome.files[0], outcome.text)      # files[0] is the PNG, files[1] the PDF
        else:                      # skipped: outcome.text says why (and which command makes the input)
            note(outcome.name, outcome.text)

    report_figures(write_all_figures("runs/ka"))   # [(PNG path, caption)] of the written ones

A figure is skipped when its inputs are missing (a :class:`UserError` from its reader); any other
exception is a bug and propagates.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, NamedTuple

from hpc_botan.errors import UserError
from hpc_botan.plots.common import FigureOutput, existing_run_dir

log = logging.getLogger("hpc_botan.plots")


class FigureOutcome(NamedTuple):
    """What became of one figure: ``files`` (PNG, PDF; empty when skipped) and ``text`` (caption or skip reason)."""

    name: str
    files: list[Path]
    text: str

    @property
    def written(self) -> bool:
        return bool(self.files)


def _rho_nodes(run_dir, out_dir):
    from hpc_botan.plots.accuracy import figure_rho

    return figure_rho(run_dir, "S", out_dir)


def _rho_edges(run_dir, out_dir):
    from hpc_botan.plots.accuracy import figure_rho

    return figure_rho(run_dir, "E", out_dir)


def _maps(run_dir, out_dir):
    from hpc_botan.plots.maps import figure_maps

    return figure_maps(run_dir, out_dir)


def _pair_pdf(run_dir, out_dir):
    from hpc_botan.plots.pairs import figure_pair_pdf

    return figure_pair_pdf(run_dir, out_dir)


def _learning(run_dir, out_dir):
    from hpc_botan.plots.learning import figure_learning

    return figure_learning(run_dir, out_dir)


def _fs(run_dir, out_dir):
    from hpc_botan.plots.dynamics import figure_fs

    return figure_fs(run_dir, out_dir)


def _displacement(run_dir, out_dir):
    from hpc_botan.plots.displacement import figure_displacement

    return figure_displacement(run_dir, out_dir)


def _rho_vs_p(run_dir, out_dir):
    raise UserError("needs several run directories with different train.node_weight; run "
                    f"'hpc-botan plot rho-vs-p {run_dir} OTHER_RUN …'")


#: name → writer(run_dir, out_dir) -> FigureOutput, in the order of the paper (letter, then supplement).
FIGURES: dict[str, Callable[[Path, Path | None], FigureOutput]] = {
    "maps": _maps,
    "pair-pdf": _pair_pdf,
    "rho-edges": _rho_edges,
    "displacement": _displacement,
    "rho-nodes": _rho_nodes,
    "fs": _fs,
    "learning": _learning,
    "rho-vs-p": _rho_vs_p,
}


def write_all_figures(run_dir: str | Path, out_dir: str | Path | None = None) -> list[FigureOutcome]:
    """Write every figure of :data:`FIGURES` that ``run_dir``'s data allows into ``out_dir`` (default RUN_DIR/figures).

    Returns one :class:`FigureOutcome` (a ``(name, files, text)`` tuple) per figure, in :data:`FIGURES`
    order: written ones carry their files and caption, skipped ones no files and the reason.  Logs one
    line per skipped figure.  Raises UserError only if ``run_dir`` is not a run directory.
    """
    run_dir = existing_run_dir(run_dir)
    outcomes = []
    for name, writer in FIGURES.items():
        try:
            result = writer(run_dir, out_dir)
        except UserError as exc:
            log.warning("%s: skipped: %s", name, exc)
            outcomes.append(FigureOutcome(name, [], str(exc)))
            continue
        outcomes.append(FigureOutcome(name, result.files, result.caption))
    return outcomes


def report_figures(outcomes: list[FigureOutcome]) -> list[tuple[Path, str]]:
    """(PNG path, caption) of each written figure of ``outcomes``, in order: what a report embeds."""
    return [(o.files[0], o.text) for o in outcomes if o.files]
