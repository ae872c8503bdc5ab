"""The HTML report: self-contained, everything read from the run directory, one-line errors."""
import base64
import json

import pytest

from hpc_botan.config import load_config
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import open_run_dir
from hpc_botan.io.timings import timed_stage
from hpc_botan.report.html import rho_rows, write_report
from tests.conftest import run_cli

#: the smallest valid PNG (1 x 1 pixel)
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==")


def _task(model, time, scores, task=None):
    return {"task": task or f"{model}/T0.640/t00", "model": model, "temperature": 0.64, "time_index": 0,
            "time": time, "n_configurations": 1, "configurations": [3], "replica_files": [], "scores": scores}


def _score(median, ceiling=0.9):
    return {"median": median, "best": median + 0.1, "worst": median - 0.1, "ensemble": median + 0.05,
            "ensemble_pooled": median, "ceiling": ceiling, "replicas": [median], "per_configuration": [median]}


@pytest.fixture
def evaluated_run(tmp_path):
    run = open_run_dir(tmp_path / "run", load_config("quick"))
    tasks = [_task("botan", 16.5, {"S": _score(0.61), "E": _score(0.72)}, "botan/finetune/T0.640/t06"),
             _task("ntgnn", 16.5, {"S": _score(0.55)}, "ntgnn/T0.640/t06"),
             _task("botan", 0.1, {"S": _score(0.31), "E": _score(0.42)}, "botan/finetune/T0.640/t01")]
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps({"split": "test", "tasks": tasks}))
    (run / "eval" / "baselines.json").write_text(json.dumps(
        {"split": "test", "tasks": [_task("ridge", 16.5, {"S": _score(0.46, float("nan"))})]}))
    return run


def test_rho_rows_are_sorted_by_time_then_model_with_every_target():
    rows = rho_rows([_task("ntgnn", 2.0, {"S": _score(0.5)}), _task("botan", 2.0, {"S": _score(0.6), "E": _score(0.7)}),
                     _task("botan", 1.0, {"S": _score(0.2, float("nan"))})])
    assert [r[:4] for r in rows] == [["0.64", "1", "botan", "S"], ["0.64", "2", "botan", "E"],
                                     ["0.64", "2", "botan", "S"], ["0.64", "2", "ntgnn", "S"]]
    assert rows[0][4:] == ["0.200", "0.300", "0.100", "0.250", "–"]  # NaN ceiling shown as a dash


def test_report_embeds_figures_and_holds_table_timings_provenance_config(evaluated_run, tmp_path):
    png = tmp_path / "rho_nodes.png"
    png.write_bytes(PNG)
    with timed_stage(evaluated_run, "train", part="T0.640/t06"):
        pass
    out = write_report(evaluated_run, figures=[(png, "rho of S_i against time.")])
    assert out == evaluated_run / "report" / "report.html"
    html = out.read_text()
    assert f"data:image/png;base64,{base64.b64encode(PNG).decode()}" in html
    assert "rho of S_i against time." in html
    for cell in ("<td>0.610</td>", "<td>0.720</td>", "<td>0.550</td>", "<td>0.460</td>", "<td class=\"l\">ridge</td>"):
        assert cell in html, cell
    assert "<td class=\"l\">train</td>" in html  # timings
    assert "Kob–Andersen 80:20, N = 500" in html  # provenance
    assert "n_particles: 500" in html  # the configuration
    assert "src=\"http" not in html and "<link" not in html  # self-contained


def test_report_before_evaluation_is_one_line_and_writes_nothing(tmp_path):
    run = open_run_dir(tmp_path / "run", load_config("quick"))
    with pytest.raises(UserError, match=r"eval/metrics.json: not found; a report needs an evaluated run"):
        write_report(run, figures=[])
    res = run_cli("report", str(run))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "hpc-botan evaluate" in res.stderr
    assert not (run / "report").exists()


def test_a_failing_report_leaves_the_previous_one_intact(evaluated_run, monkeypatch):
    first = write_report(evaluated_run, figures=[])
    before = first.read_text()
    real_write_text = type(first).write_text

    def write_half_then_fail(self, text, *args, **kwargs):  # a crash in the middle of writing
        real_write_text(self, text[: len(text) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(type(first), "write_text", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(evaluated_run, figures=[])
    monkeypatch.undo()
    assert first.read_text() == before
    assert [p.name for p in first.parent.iterdir()] == ["report.html"]  # no temporary file left


def test_unreadable_metrics_are_one_line_errors(evaluated_run):
    (evaluated_run / "eval" / "metrics.json").write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        write_report(evaluated_run, figures=[])
    (evaluated_run / "eval" / "metrics.json").write_text("{}")
    with pytest.raises(UserError, match="no 'tasks' list"):
        write_report(evaluated_run, figures=[])


def _tags(html: str) -> list[tuple[str, dict[str, str]]]:
    """Every start tag of ``html`` with its attributes, in order (the standard library's parser)."""
    from html.parser import HTMLParser

    found = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Tags().feed(html)
    return found


def test_report_is_readable_on_a_phone(evaluated_run):
    """lang and a viewport, and every table in a box that scrolls sideways, so that the page itself stays
    as narrow as a 390-pixel screen (the tables of a run with many models are wider than that)."""
    html = write_report(evaluated_run, figures=[]).read_text()
    tags = _tags(html)
    assert ("html", {"lang": "en"}) in tags
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in tags
    assert ".scroll { overflow-x: auto;" in html
    names = [tag for tag, _ in tags]
    tables = [k for k, name in enumerate(names) if name == "table"]
    assert len(tables) == 5   # S_i and E_ij against the baselines, the model, every task, provenance (no timings)
    for k in tables:
        assert tags[k - 1] == ("div", {"class": "scroll"}), tags[k - 1]


def test_report_says_why_there_is_no_standard_error(evaluated_run):
    """One test configuration: no ± anywhere, no promise of one, and a sentence saying why."""
    html = write_report(evaluated_run, figures=[]).read_text()
    assert "±" not in html
    assert "the standard error over the evaluated" not in html
    assert "a standard error over configurations needs at least two" in html
    # three configurations: the ± is there, and the note is not
    for name in ("metrics.json", "baselines.json"):
        metrics = json.loads((evaluated_run / "eval" / name).read_text())
        for task in metrics["tasks"]:
            for score in task["scores"].values():
                score["per_configuration"] = [0.5, 0.6, 0.7]
        (evaluated_run / "eval" / name).write_text(json.dumps(metrics))
    html = write_report(evaluated_run, figures=[]).read_text()
    assert "0.660 ± 0.06" in html   # BOTAN's S_i at 16.5: ensemble 0.66, SE 0.1 / √3
    assert "the standard error over the evaluated" in html
    assert "needs at least two" not in html


def test_report_escapes_what_it_reads(evaluated_run, tmp_path):
    """Every value read from the run (captions, names, metrics, configuration) is text, never markup."""
    png = tmp_path / "x<img src=y onerror=alert(1)>.png"
    png.write_bytes(PNG)
    metrics = json.loads((evaluated_run / "eval" / "metrics.json").read_text())
    metrics["split"] = "<script>alert(2)</script>"
    (evaluated_run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    html = write_report(evaluated_run, figures=[(png, "<script>alert(3)</script>")]).read_text()
    assert "<script" not in html and "<img src=y" not in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html and "&lt;script&gt;alert(2)" in html
    assert [tag for tag, _ in _tags(html)].count("img") == 1


@pytest.mark.parametrize("descriptors, source", [("none", "train"), ("heads", "published")])
def test_report_names_what_the_model_contained(tmp_path, descriptors, source):
    run = open_run_dir(tmp_path / "run", load_config("quick", [f"model.descriptors={descriptors}",
                                                               f"model.force_features={descriptors == 'heads'}",
                                                               f"train.pretrain.source={source}"]))
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps(
        {"split": "test", "tasks": [_task("botan", 16.5, {"S": _score(0.61)}, "botan/finetune/T0.640/multi")]}))
    html = write_report(run, figures=[]).read_text()
    assert "What the models contained" in html and "width 64, 7 message-passing steps" in html
    if descriptors == "heads":
        assert "the ridge baseline&#39;s 184 radial descriptors (S_i) and 396 pair features (E_ij)" in html
        assert "with the invariants of the instantaneous forces of the shifted_force potential" in html
    else:
        assert "none (model.descriptors: none)" in html
    if source == "published":
        assert "the authors&#39; published networks model1–model4, shipped with hpc_botan" in html
        assert "the encoder was pretrained on the published T = 0.44 data" in html
        assert "pretrained on this run" not in html
    else:
        assert "pretrained on this run&#39;s data (p = 0, 2000 epochs)" in html
    assert "NT-GNN 30 from scratch, learning rate 0.003" in html
