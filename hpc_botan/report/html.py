"""One self-contained HTML report per run: configuration, provenance, timings, ρ table, figures.

``RUN_DIR/report/report.html`` embeds every figure as a base64 PNG, so the file can be mailed
or attached to a lab notebook on its own.  Everything in it is read from the run directory:

* configuration: ``config.yaml``;
* provenance: the source of the data (simulated: LAMMPS and package versions and seeds from the
  first trajectory file; imported: the source format and path), the targets index;
* timings: ``pipeline/timings/*.json`` (see :mod:`hpc_botan.io.timings`);
* accuracy: ``eval/metrics.json`` and, if present, ``eval/baselines.json``;
* figures: :func:`hpc_botan.plots.figures.write_all_figures` (or the list handed in).
"""
from __future__ import annotations

import base64
import datetime
import html
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io import h5md
from hpc_botan.io.durable import up_to_date, write_text_atomic
from hpc_botan.io.rundir import load_run_config
from hpc_botan.io.shards import index_summary
from hpc_botan.io.timings import stage_timings
from hpc_botan.plots.figures import FIGURES_INDEX, figure_inputs, read_figures_index, report_figures, write_all_figures
from hpc_botan.report.summary import MODELS, TARGET_NAMES, comparison_rows, verdict
from hpc_botan.simulate.stage import configuration_tasks, trajectory_path
from hpc_botan.stage import Stage
from hpc_botan.version import __version__

REPORT_PATH = Path("report") / "report.html"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; } pre { background: #f7f7f7; padding: .8em; overflow-x: auto; }
.muted { color: #777; }
"""


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); re-run the stage that writes it") from None


def _table(header: list[str], rows: Iterable[list[Any]], left: int = 1) -> str:
    def cell(tag: str, k: int, v: Any) -> str:
        cls = ' class="l"' if k < left else ""
        return f"<{tag}{cls}>{html.escape(str(v))}</{tag}>"

    head = "".join(cell("th", k, h) for k, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", k, v) for k, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(x: Any, digits: int = 3) -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "–"
    return "–" if value != value else f"{value:.{digits}f}"


def rho_rows(tasks: list[dict[str, Any]]) -> list[list[str]]:
    """Rows (T, t, model, target, median, best, worst, ensemble, ceiling) sorted by T, t, model."""
    rows = []
    for r in sorted(tasks, key=lambda r: (r["temperature"], r["time"], r["model"])):
        for target, s in sorted(r["scores"].items()):
            rows.append([f"{r['temperature']:g}", f"{r['time']:g}", r["model"], target,
                         *(_fmt(s.get(k)) for k in ("median", "best", "worst", "ensemble", "ceiling"))])
    return rows


def _comparison_table(tasks, target: str) -> str:
    """One row per (T, t), one column per model (ensemble ρ ± standard error over configurations), the
    noise ceiling and BOTAN's share of it; the best ρ of each row in bold."""
    rows = comparison_rows(tasks, target)
    if not rows:
        return ""
    models = [(m, label) for m, label in MODELS[target] if any(m in r.cells for r in rows)]
    head = ["T", "t (τ)", *(label for _, label in models), "ceiling", "BOTAN / ceiling"]
    out = ["<table><tr>" + "".join(("<th class='l'>" if k < 2 else "<th>") + f"{html.escape(h)}</th>"
                                  for k, h in enumerate(head)) + "</tr>"]
    for r in rows:
        best = r.best()
        cells = [f"<td class='l'>{r.temperature:g}</td>", f"<td class='l'>{r.time:g}</td>"]
        for m, _ in models:
            c = r.cells.get(m)
            if c is None:
                cells.append("<td>–</td>")
                continue
            text = _fmt(c.rho) + (f" ± {_fmt(c.stderr, 2)}" if c.stderr == c.stderr else "")
            cells.append(f"<td><b>{text}</b></td>" if m == best else f"<td>{text}</td>")
        botan = r.cells.get("botan")
        share = botan.rho / r.ceiling if botan is not None and r.ceiling == r.ceiling and r.ceiling > 0 else float("nan")
        cells += [f"<td>{_fmt(r.ceiling)}</td>", f"<td>{_fmt(share, 2)}</td>"]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def _provenance(run_dir: Path, cfg) -> list[list[str]]:
    rows = [["source", cfg.source.format + (f" ({cfg.source.path})" if cfg.source.path else "")]]
    if cfg.source.format == "simulate":
        s = cfg.simulation
        rows.append(["system", f"Kob–Andersen 80:20, N = {s.n_particles}, density {s.density:g}, "
                               f"T = {', '.join(f'{t:g}' for t in s.temperatures)}"])
        rows.append(["configurations", f"{s.n_configurations} per temperature ({s.n_train} train, "
                                       f"{s.n_configurations - s.n_train} test), {s.n_runs} runs each"])
        first = trajectory_path(run_dir, configuration_tasks(cfg)[0])
        if first.is_file():
            rows += _trajectory_versions(first)
        rows.append(["master seed", str(cfg.simulation.seed)])
    index = run_dir / "targets" / "index.h5"
    if index.is_file():
        try:
            n_configurations, n_shards = index_summary(index)
            rows.append(["targets", f"{n_configurations} configurations in {n_shards} shard(s), "
                                    f"{index.relative_to(run_dir)}"])
        except OSError as exc:  # provenance is informative: say what is wrong instead of failing
            rows.append(["targets", f"{index} unreadable ({exc})"])
    return rows


def _trajectory_versions(path: Path) -> list[list[str]]:
    """Versions and seeds recorded in a trajectory file's ``/parameters`` (rows of the provenance table)."""
    keys = ("lammps_version", "hpc_botan_version", "numpy_version", "h5py_version", "python_version", "prepare_seed")
    try:
        return [[key.replace("_", " "), value] for key, value in h5md.read_provenance(path, keys).items()]
    except OSError as exc:
        return [["trajectories", f"{path} unreadable ({exc})"]]


def _timing_rows(run_dir: Path, stages: Sequence[str]) -> list[list[str]]:
    """One row per stage of ``stages`` (in that order) that has timings, then any other timed stage."""
    timings = stage_timings(run_dir)
    rows = []
    for stage in [*stages, *sorted(set(timings) - set(stages))]:
        t = timings.get(stage)
        if t is None:
            continue
        started = datetime.datetime.fromtimestamp(t["started"]).strftime("%Y-%m-%d %H:%M:%S")
        rows.append([stage, f"{t['wall'] / 60:.2f}", f"{t['seconds'] / 60:.2f}", str(t["parts"]), started,
                     ", ".join(t["hosts"])])
    return rows


def _figure_html(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(png.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{html.escape(png.stem)}.</b> {html.escape(caption)}</figcaption></figure>")


def evaluation_metrics(run_dir: Path) -> dict[str, Any]:
    """``eval/metrics.json`` of an evaluated run; a one-line UserError when there is none (yet)."""
    metrics = _read_json(run_dir / "eval" / "metrics.json")
    if metrics is None:
        raise UserError(f"{run_dir / 'eval' / 'metrics.json'}: not found; a report needs an evaluated run: "
                        f"run 'hpc-botan evaluate {run_dir}' (or 'hpc-botan run') first")
    if not isinstance(metrics.get("tasks"), list):
        raise UserError(f"{run_dir / 'eval' / 'metrics.json'}: no 'tasks' list; re-run 'hpc-botan evaluate {run_dir}'")
    return metrics


def write_report(run_dir: str | Path, figures: list[tuple[Path, str]] | None = None,
                 stages: Sequence[str] = ()) -> Path:
    """Write ``RUN_DIR/report/report.html`` and return its path.

    Args:
        run_dir: an evaluated run directory (``eval/metrics.json`` must exist).
        figures: (PNG path, caption) pairs to embed; by default those the figures stage recorded
            (``figures/index.json``) if they are up to date, else drawn now with
            :func:`hpc_botan.plots.figures.write_all_figures`.
        stages: the names of the run's stages, in order (the rows of the timings table).
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    metrics = evaluation_metrics(run_dir)
    baselines = _read_json(run_dir / "eval" / "baselines.json")
    if figures is None:
        recorded = read_figures_index(run_dir) if up_to_date(run_dir / FIGURES_INDEX, figure_inputs(run_dir)) else None
        figures = report_figures(recorded if recorded is not None else write_all_figures(run_dir))
    tasks = list(metrics["tasks"]) + (list(baselines.get("tasks", [])) if baselines else [])
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>hpc_botan report: {html.escape(run_dir.name)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>hpc_botan report: {html.escape(str(run_dir))}</h1>",
             f"<p class='muted'>written {now} by hpc_botan {__version__}; evaluation on the "
             f"{html.escape(metrics.get('split', 'test'))} split</p>",
             f"<p><b>{html.escape(verdict(tasks))}</b></p>",
             "<h2>BOTAN against its baselines</h2>",
             "<p>Ensemble ρ (the mean prediction of the replicas; ± the standard error over the evaluated "
             "configurations) of each model at each (T, t); the best of each row in bold. The baselines "
             "(ridge regression on coarse-grained radial descriptors, S<sub>i</sub> from the local density, "
             "E<sub>ij</sub> from r<sub>ij</sub>(0)) are fitted on the same training configurations and scored "
             "on the same ones; the noise ceiling √(split-half reliability) bounds every model.</p>"]
    for target in ("S", "E"):
        table = _comparison_table(tasks, target)
        if table:
            parts += [f"<h3>{TARGET_NAMES[target]}</h3>", table]
    parts += ["<h2>Accuracy: Pearson ρ per time point, every task</h2>",
              "<p>ρ between prediction and ensemble-averaged target, per test configuration and averaged over "
              "them; S<sub>i</sub> on type-A particles, E<sub>ij</sub> on A–A pairs closer than 1.35 σ. Median, "
              "best and worst over the replicas, the ensemble mean of the replicas' predictions, and the noise "
              "ceiling √(split-half reliability) that no predictor can exceed on average.</p>",
              _table(["T", "t (τ)", "model", "target", "median", "best", "worst", "ensemble", "ceiling"],
                     rho_rows(tasks), left=4),
              "<h2>Figures</h2>"]
    parts += [_figure_html(Path(png), caption) for png, caption in figures]
    if not figures:
        parts.append("<p class='muted'>no figures could be drawn from this run's data</p>")
    timing_rows = _timing_rows(run_dir, stages)
    parts += ["<h2>Timings</h2>",
              "<p>Elapsed: first start to last end of the stage (after a resume this includes the pause "
              "between attempts); job time: summed over its jobs or parts (configurations, training groups), "
              "from the last successful attempt of each part. The report's own row is that of the previous "
              "report.</p>",
              _table(["stage", "elapsed (min)", "job time (min)", "parts", "started", "hosts"],
                     timing_rows) if timing_rows else
              "<p class='muted'>no timings recorded (stages run by hand, not through 'hpc-botan run')</p>",
              "<h2>Data provenance</h2>", _table(["", ""], _provenance(run_dir, cfg)),
              "<h2>Configuration</h2>", f"<pre>{html.escape(cfg.to_yaml())}</pre>",
              "</body></html>"]
    out = run_dir / REPORT_PATH
    write_text_atomic(out, "\n".join(parts))
    return out


class ReportStage(Stage):
    """``report/report.html``: ρ tables against the baselines, the figures, timings, provenance, config.

    ``stage_names``: the run's stages in order (the registry's), for the timings table.
    """

    name = "report"
    launch = "finish"
    summary = "one self-contained HTML file (report/report.html)"

    def __init__(self, stage_names: Sequence[str] = ()):
        self.stage_names = tuple(stage_names)

    def done(self, run_dir: Path, cfg: Config) -> bool:
        run_dir = Path(run_dir)
        return up_to_date(run_dir / REPORT_PATH, [run_dir / FIGURES_INDEX, *figure_inputs(run_dir)])

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> Path:
        return write_report(run_dir, stages=self.stage_names)
