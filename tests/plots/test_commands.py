"""Every ``hpc-botan plot`` subcommand through the command line, on a small trained run."""
import json
import shutil

import pytest
import yaml

from hpc_botan.plots.figures import FIGURES, write_all_figures
from tests.conftest import run_cli

PNG = b"\x89PNG\r\n\x1a\n"


def assert_figure(directory, name):
    png, pdf = directory / f"{name}.png", directory / f"{name}.pdf"
    assert png.read_bytes()[:8] == PNG, png
    assert pdf.read_bytes()[:5] == b"%PDF-", pdf
    assert png.stat().st_size > 5000      # something was drawn, not an empty canvas


def assert_one_line_error(res, *fragments):
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpc-botan: error: "), res.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("name, options", [
    ("rho-nodes", []), ("rho-edges", []), ("fs", []), ("learning", ["--task", "ntgnn/T0.440/t00"]),
    ("maps", ["--time-index", "0", "--configuration", "3"]), ("displacement", ["--thickness", "2.0"]),
    ("pair-pdf", ["--max-distance", "2.0", "--split", "all"])])
def test_each_figure(trained_run, tmp_path, name, options):
    res = run_cli("-q", "plot", name, str(trained_run), "--out", str(tmp_path), *options)
    assert res.returncode == 0, res.stderr
    assert_figure(tmp_path, name)
    assert f"written {tmp_path / name}.png" in res.stdout
    assert res.stdout.strip().splitlines()[-1].endswith(").")        # the caption is printed last


def test_plot_all_writes_into_the_run(trained_run):
    res = run_cli("plot", "all", str(trained_run))
    assert res.returncode == 0, res.stderr
    for name in FIGURES:
        if name != "rho-vs-p":
            assert_figure(trained_run / "figures", name)
    assert "plot all: 7 figure(s) written, 1 skipped" in res.stdout
    skipped = [line for line in res.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and "rho-vs-p: skipped: needs several run directories" in skipped[0]


def test_write_all_figures_skips_what_a_targets_only_run_lacks(targets_run, tmp_path):
    outcomes = write_all_figures(targets_run, tmp_path)
    assert [o.name for o in outcomes] == list(FIGURES)
    by_name = {o.name: o for o in outcomes}
    assert {n for n, o in by_name.items() if o.written} == {"pair-pdf", "fs", "displacement"}
    for name in ("pair-pdf", "fs", "displacement"):
        assert by_name[name].files == [tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"]
        assert by_name[name].text.endswith(").") and "\n" not in by_name[name].text
    assert "run 'hpc-botan evaluate" in by_name["rho-nodes"].text
    assert "run 'hpc-botan evaluate" in by_name["rho-edges"].text
    assert "run 'hpc-botan train" in by_name["maps"].text
    assert "run 'hpc-botan train" in by_name["learning"].text
    assert not (targets_run / "figures").exists()          # --out was respected


def test_missing_inputs_are_one_line_errors(targets_run, trained_run, tmp_path):
    assert_one_line_error(run_cli("plot", "rho-nodes", str(targets_run)), "eval/metrics.json: not found",
                          "hpc-botan evaluate")
    assert_one_line_error(run_cli("plot", "learning", str(targets_run)), "no metrics.csv")
    assert_one_line_error(run_cli("plot", "fs", str(tmp_path / "nowhere")), "no such run directory")
    assert_one_line_error(run_cli("plot", "maps", str(trained_run), "--time-index", "3"),
                          "--time-index 3", "1 time point(s)")
    assert_one_line_error(run_cli("plot", "pair-pdf", str(trained_run), "--time-index", "-2"), "--time-index -2")
    assert_one_line_error(run_cli("plot", "learning", str(trained_run), "--task", "botan/finetune/T0.440/t09"),
                          "--task botan/finetune/T0.440/t09")
    assert_one_line_error(run_cli("plot", "rho-vs-p", str(trained_run), str(trained_run)),
                          "at least two different p")
    assert not (targets_run / "figures").exists()


def test_rho_vs_p_from_two_runs(trained_run, tmp_path):
    other = tmp_path / "p0"
    (other / "eval").mkdir(parents=True)
    shutil.copy(trained_run / "eval" / "metrics.json", other / "eval")
    cfg = yaml.safe_load((trained_run / "config.yaml").read_text())
    cfg["train"]["node_weight"] = 0.0
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = run_cli("-q", "plot", "rho-vs-p", str(trained_run), str(other), "--out", str(tmp_path / "fig"))
    assert res.returncode == 0, res.stderr
    assert_figure(tmp_path / "fig", "rho-vs-p")
    assert "p = 0, 0.4" in res.stdout


def test_rho_nodes_over_several_times_and_temperatures(trained_run, tmp_path):
    """A hand-written metrics.json with 3 time points at 2 temperatures (the synthetic run has one)."""
    run = tmp_path / "multi"
    (run / "eval").mkdir(parents=True)
    shutil.copy(trained_run / "config.yaml", run)
    tasks = []
    for temp in (0.44, 0.5):
        for k, time in enumerate((1.0, 10.0, 100.0)):
            for model, rho in (("botan", 0.8 - 0.1 * k), ("ntgnn", 0.6 - 0.1 * k)):
                s = {"median": rho, "best": rho + 0.05, "worst": rho - 0.05, "ensemble": rho + 0.02, "ceiling": 0.9}
                tasks.append({"task": f"{model}/T{temp:.3f}/t{k:02d}", "model": model, "temperature": temp,
                              "time_index": k, "time": time, "scores": {"S": s, **({"E": s} if model == "botan" else {})}})
    (run / "eval" / "metrics.json").write_text(json.dumps({"split": "test", "tasks": tasks}))
    res = run_cli("-q", "plot", "rho-nodes", str(run))
    assert res.returncode == 0, res.stderr
    assert_figure(run / "figures", "rho-nodes")
    assert "for BOTAN, NT-GNN:" in res.stdout and "(no baselines" in res.stdout
    # no E scores for NT-GNN: the edge figure shows BOTAN alone
    res = run_cli("-q", "plot", "rho-edges", str(run))
    assert res.returncode == 0 and "for BOTAN:" in res.stdout
