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

import json
import logging
from pathlib import Path
from typing import Any, Callable, NamedTuple

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.durable import up_to_date, write_text_atomic
from hpc_botan.io.rundir import RunLayout
from hpc_botan.plots.accuracy import figure_rho
from hpc_botan.plots.common import FigureOutput, existing_run_dir
from hpc_botan.plots.displacement import figure_displacement
from hpc_botan.plots.dynamics import figure_fs
from hpc_botan.plots.learning import figure_learning
from hpc_botan.plots.maps import figure_maps
from hpc_botan.plots.pairs import figure_pair_pdf
from hpc_botan.stage import Stage

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
    return figure_rho(run_dir, "S", out_dir)


def _rho_edges(run_dir, out_dir):
    return figure_rho(run_dir, "E", out_dir)


def _rho_vs_p(run_dir, out_dir):
    raise UserError("needs several run directories with different train.node_weight; run "
                    f"'hpc-botan plot rho-vs-p {run_dir} OTHER_RUN …'")


#: name → writer(run_dir, out_dir) -> FigureOutput, in the order of the paper (letter, then supplement).
FIGURES: dict[str, Callable[[Path, Path | None], FigureOutput]] = {
    "maps": figure_maps,
    "pair-pdf": figure_pair_pdf,
    "rho-edges": _rho_edges,
    "displacement": figure_displacement,
    "rho-nodes": _rho_nodes,
    "fs": figure_fs,
    "learning": figure_learning,
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




def write_figures_index(run_dir: Path, outcomes: list[FigureOutcome]) -> Path:
    """``figures/index.json``: the outcomes of :func:`write_all_figures`, for the report to embed."""
    records = [{"name": o.name, "files": [str(Path(f).resolve().relative_to(run_dir.resolve())) for f in o.files],
                "text": o.text} for o in outcomes]
    path = RunLayout(run_dir).figures_index
    write_text_atomic(path, json.dumps(records, indent=1))
    return path


def read_figures_index(run_dir: Path) -> list[FigureOutcome] | None:
    """The outcomes recorded by the figures stage, or None when there are none (or they are unreadable)."""
    try:
        records = json.loads(RunLayout(run_dir).figures_index.read_text())
        return [FigureOutcome(r["name"], [run_dir / f for f in r["files"]], r["text"]) for r in records]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def figure_inputs(run_dir: Path) -> list[Path]:
    """What the figures are drawn from, as far as a re-draw is concerned: the evaluation files."""
    layout = RunLayout(run_dir)
    return [layout.metrics, layout.baselines, layout.index]


class FiguresStage(Stage):
    """Every figure the run's data allows (``figures/*.png|pdf`` and ``figures/index.json``)."""

    name = "figures"
    launch = "finish"
    summary = "the paper's figures that the run's data allows (figures/)"

    def done(self, run_dir: Path, cfg: Config) -> bool:
        return up_to_date(RunLayout(run_dir).figures_index, figure_inputs(Path(run_dir)))

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> Any:
        outcomes = write_all_figures(run_dir)
        write_figures_index(Path(run_dir), outcomes)
        return outcomes
