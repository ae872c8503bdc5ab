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
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import jinja2

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io import h5md
from hpc_botan.io.checkpoint import load_checkpoint
from hpc_botan.io.durable import up_to_date, write_text_atomic
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.io.shards import index_summary
from hpc_botan.io.timings import stage_timings
from hpc_botan.model.build import descriptor_settings_of
from hpc_botan.physics.descriptors import n_pair_features
from hpc_botan.plan.configurations import configuration_tasks, trajectory_path
from hpc_botan.plots.figures import figure_inputs, read_figures_index, report_figures, write_all_figures
from hpc_botan.report.summary import TARGET_NAMES, comparison_rows, models_of, scored_targets, verdict
from hpc_botan.stage import Stage
from hpc_botan.version import __version__


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); re-run the stage that writes it") from None


@dataclass(frozen=True)
class TableCell:
    """One cell of a report table: its text (escaped by the template), left-aligned or not, bold or not."""

    text: str
    left: bool = False
    bold: bool = False


@dataclass
class Table:
    """A table for the template's ``table`` macro; ``title`` heads it where the report shows one."""

    header: list[TableCell]
    rows: list[list[TableCell]]
    title: str = ""


def _table(header: list[str], rows: Iterable[list[Any]], left: int = 1) -> Table:
    """A table whose first ``left`` columns are left-aligned."""
    return Table([TableCell(str(h), k < left) for k, h in enumerate(header)],
                 [[TableCell(str(v), k < left) for k, v in enumerate(r)] for r in rows])


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


def _comparison_table(tasks, target: str) -> Table | None:
    """One row per (T, t), one column per model (ensemble ρ ± standard error over configurations), the
    noise ceiling and BOTAN's share of it; the best ρ of each row in bold."""
    rows = comparison_rows(tasks, target)
    if not rows:
        return None
    models = [(m, label) for m, label in models_of(target) if any(m in r.cells for r in rows)]
    head = ["T", "t (τ)", *(label for _, label in models), "ceiling", "BOTAN / ceiling"]
    body = []
    for r in rows:
        best = r.best()
        cells = [TableCell(f"{r.temperature:g}", True), TableCell(f"{r.time:g}", True)]
        for m, _ in models:
            c = r.cells.get(m)
            if c is None:
                cells.append(TableCell("–"))
                continue
            text = _fmt(c.rho) + (f" ± {_fmt(c.stderr, 2)}" if c.stderr == c.stderr else "")
            cells.append(TableCell(text, bold=m == best))
        botan = r.cells.get("botan")
        share = botan.rho / r.ceiling if botan is not None and r.ceiling == r.ceiling and r.ceiling > 0 else float("nan")
        cells += [TableCell(_fmt(r.ceiling)), TableCell(_fmt(share, 2))]
        body.append(cells)
    return Table([TableCell(h, k < 2) for k, h in enumerate(head)], body, title=TARGET_NAMES[target])


def configuration_counts(tasks) -> list[int]:
    """The distinct numbers of evaluated configurations behind the comparison tables' ρ, ascending."""
    return sorted({c.n_configurations for target in scored_targets(tasks) for r in comparison_rows(tasks, target)
                   for c in r.cells.values()})


def stderr_note(tasks) -> str:
    """What the report says where a ρ has no standard error: the configurations it rests on are too few."""
    counts = configuration_counts(tasks)
    if not counts or counts[0] >= 2:
        return ""
    alone = "every ρ here rests" if counts[-1] < 2 else "a ρ shown without ± rests"
    return (f"No standard error: {alone} on {'no' if counts[0] == 0 else 'a single'} evaluated configuration, "
            "and a standard error over configurations needs at least two (evaluate more test "
            "configurations: simulation.n_configurations − simulation.n_train).")


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
    index = RunLayout(run_dir).index
    if index.is_file():
        try:
            n_configurations, n_shards = index_summary(index)
            rows.append(["targets", f"{n_configurations} configurations in {n_shards} shard(s), "
                                    f"{index.relative_to(run_dir)}"])
        except OSError as exc:  # provenance is informative: say what is wrong instead of failing
            rows.append(["targets", f"{index} unreadable ({exc})"])
    return rows


def model_rows(run_dir: Path, cfg) -> list[list[str]]:
    """What the networks of the run contained (rows of the report's model table): architecture,
    descriptor heads, where the weights started, how they were trained."""
    m, tr = cfg.model, cfg.train
    rows = [["BOTAN / NT-GNN network", f"width {m.width}, {m.n_steps} message-passing steps "
                                       f"({'shared' if m.shared_weights else 'separate'} step weights), "
                                       f"{'separate node and edge decoders' if m.separate_decoders else 'one decoder'}"
                                       + (", temperature as a node input" if tr.temperatures == "joint" else "")]]
    settings = descriptor_settings_of(cfg)
    if settings is None:
        rows.append(["descriptor heads", "none (model.descriptors: none): the network sees particle types and "
                                         "pair vectors only"])
    else:
        rows.append(["descriptor heads", f"the ridge baseline's {settings.n_features} radial descriptors (S_i) and "
                                         f"{n_pair_features(settings.n_features)} pair features (E_ij) enter the "
                                         "outputs through linear heads (model.descriptors: heads)"
                                         + (", with the invariants of the instantaneous forces of the "
                                            f"{cfg.simulation.potential} potential (|F_i|, |F_i|²; (F_j − F_i)·r̂_ij, "
                                            "its square, |F_j − F_i|²: model.force_features)"
                                            if m.force_features else "")
                                         + ", fitted by least squares with the decoders' last layer "
                                         f"(train.head_init: {tr.head_init}), then trained with the network"])
    imported = sorted({Path(str(load_checkpoint(p).get("extra", {}).get("imported_from", ""))).name
                       for p in RunLayout(run_dir).finished_models("botan/pretrain")} - {""})
    if tr.pretrain.enabled and tr.pretrain.source == "published":
        rows.append(["BOTAN's starting weights", f"the authors' published networks model1–model{tr.n_replicas}, "
                                                 "shipped with hpc_botan (train.pretrain.source: published; Apache-2.0, "
                                                 "see hpc_botan/model/published_weights/NOTICE.md): the encoder was "
                                                 "pretrained on the published T = 0.44 data (N = 4096, edges only, "
                                                 "t = 13), not on this run's data"])
    elif imported:
        rows.append(["BOTAN's starting weights", f"imported ({', '.join(imported)}): the published weights, "
                                                 "pretrained by the authors on their T = 0.44 data (edges only, "
                                                 "t = 13), not on this run's data"])
    elif tr.pretrain.enabled:
        rows.append(["BOTAN's starting weights", f"pretrained on this run's data (p = 0, {tr.pretrain.epochs} "
                                                 "epochs)"])
    ntgnn_lr = f", learning rate {tr.ntgnn.learning_rate:g}" if tr.ntgnn.learning_rate is not None else ""
    ntgnn = f" (NT-GNN {tr.ntgnn.epochs} from scratch{ntgnn_lr})" if tr.ntgnn.enabled else ""
    rows.append(["training", f"{tr.mode}, {tr.epochs} epoch{'s' if tr.epochs != 1 else ''}{ntgnn}, learning rate "
                             f"{tr.learning_rate:g} ({tr.lr_schedule}), {tr.n_replicas} replica(s), best epoch "
                             f"chosen on validation {tr.select_on}"])
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


def _figure(png: Path, caption: str) -> dict[str, str]:
    """A figure for the template: its name, caption and PNG bytes as base64 (the report is self-contained)."""
    return {"name": png.stem, "caption": caption, "data": base64.b64encode(png.read_bytes()).decode("ascii")}


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    """The report's Jinja2 template (``templates/report.html.j2``), autoescaped: values are text, never markup."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("hpc_botan.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("report.html.j2")


def render_report(**values: Any) -> str:
    """The report's HTML from the template's values (see :func:`write_report`)."""
    return _template().render(**values)


def evaluation_metrics(run_dir: Path) -> dict[str, Any]:
    """``eval/metrics.json`` of an evaluated run; a one-line UserError when there is none (yet)."""
    metrics = _read_json(RunLayout(run_dir).metrics)
    if metrics is None:
        raise UserError(f"{RunLayout(run_dir).metrics}: not found; a report needs an evaluated run: "
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
    baselines = _read_json(RunLayout(run_dir).baselines)
    if figures is None:
        recorded = read_figures_index(run_dir) if up_to_date(RunLayout(run_dir).figures_index, figure_inputs(run_dir)) else None
        figures = report_figures(recorded if recorded is not None else write_all_figures(run_dir))
    tasks = list(metrics["tasks"]) + (list(baselines.get("tasks", [])) if baselines else [])
    comparisons = [t for t in (_comparison_table(tasks, target) for target in scored_targets(tasks)) if t is not None]
    text = render_report(
        run_name=run_dir.name, run_path=str(run_dir), written=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        version=__version__, split=metrics.get("split", "test"), verdict=verdict(tasks),
        comparisons=comparisons, stderr_note=stderr_note(tasks),
        any_stderr=any(n >= 2 for n in configuration_counts(tasks)),
        rho=_table(["T", "t (τ)", "model", "target", "median", "best", "worst", "ensemble", "ceiling"],
                   rho_rows(tasks), left=4),
        figures=[_figure(Path(png), caption) for png, caption in figures],
        timings=_table(["stage", "elapsed (min)", "job time (min)", "parts", "started", "hosts"],
                       _timing_rows(run_dir, stages)),
        provenance=_table(["", ""], _provenance(run_dir, cfg)), config_yaml=cfg.to_yaml(),
        model=_table(["", "this run"], model_rows(run_dir, cfg), left=2))
    out = RunLayout(run_dir).report
    write_text_atomic(out, text)
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
        layout = RunLayout(run_dir)
        return up_to_date(layout.report, [layout.figures_index, *figure_inputs(run_dir)])

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> Path:
        return write_report(run_dir, stages=self.stage_names)
