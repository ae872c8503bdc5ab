import numpy as np
import pytest

from hpc_botan.config import load_config
from hpc_botan.errors import LammpsError
from hpc_botan.simulate.lammps_runner import Batch, LammpsJob, run_batch
from hpc_botan.simulate.stage import find_inputs_dir

pytestmark = pytest.mark.lammps


def _common(inputs):
    return {"potential": [str(inputs / "ka_potential.lmp")], "thermo_every": ["100"]}


def _prepare(tmp_path, inputs):
    data = tmp_path / "prep.data"
    job = LammpsJob(str(inputs / "prepare.in"),
                    {**_common(inputs), "N": ["200"], "n_a": ["160"], "n_melt": ["200"], "n_quench": ["200"],
                     "n_equil": ["200"], "seed": ["7"], "out": [str(data)]},
                    str(tmp_path / "prepare.log"))
    run_batch(Batch([job]))
    return data


def _ensemble(tmp_path, inputs, data, tag, n_runs=3):
    jobs = []
    for r in range(n_runs):
        jobs.append(LammpsJob(
            str(inputs / "isoconf.in"),
            {**_common(inputs), "data": [str(data)], "seed": [str(100 + r)], "T": ["0.64"],
             "frames": ["10", "50", "120"], "dump_prefix": [str(tmp_path / f"{tag}-{r}")]},
            str(tmp_path / f"{tag}-{r}.log"), frames_npy=str(tmp_path / f"{tag}-{r}.npy"), n_atoms=200))
    return jobs


@pytest.fixture
def inputs():
    return find_inputs_dir(load_config("quick"))


def test_sequential_runs_write_frames_and_logs(need_lammps, tmp_path, inputs):
    data = _prepare(tmp_path, inputs)
    jobs = _ensemble(tmp_path, inputs, data, "seq")
    run_batch(Batch(jobs))
    frames = [np.load(j.frames_npy) for j in jobs]
    assert frames[0].shape == (3, 200, 3)
    assert not np.allclose(frames[0], frames[1])  # different velocity seeds
    assert all((tmp_path / f"seq-{r}.log").read_text().count("Loop time") == 3 for r in range(3))
    assert not list(tmp_path.glob("*.dump"))  # gathered and removed


@pytest.mark.mpi
def test_partitions_give_the_same_runs_as_sequential(need_mpirun, tmp_path, inputs):
    """One LAMMPS multi-partition job (2 ranks, -partition 2x1) == the runs one after another."""
    data = _prepare(tmp_path, inputs)
    seq = _ensemble(tmp_path, inputs, data, "seq")
    run_batch(Batch(seq))
    par = _ensemble(tmp_path, inputs, data, "par")
    run_batch(Batch(par, partitions=2), mpi_ranks=2, spec_path=tmp_path / "par.json")
    for a, b in zip(seq, par):
        np.testing.assert_array_equal(np.load(a.frames_npy), np.load(b.frames_npy))


def test_a_failing_script_names_its_log(need_lammps, tmp_path, inputs):
    bad = tmp_path / "bad.in"
    bad.write_text("units lj\nthis_is_not_a_command 1 2 3\n")
    log = tmp_path / "bad.log"
    with pytest.raises(LammpsError) as err:
        run_batch(Batch([LammpsJob(str(bad), {}, str(log))]))
    msg = str(err.value)
    assert "this_is_not_a_command" in msg and f"log: {log}" in msg and "\n" not in msg


def test_lost_atoms_are_an_error(need_lammps, tmp_path, inputs):
    data = _prepare(tmp_path, inputs)
    (job,) = _ensemble(tmp_path, inputs, data, "hot", n_runs=1)
    job.variables["T"] = ["5000"]  # atoms cross several boxes per step: LAMMPS loses them
    job.variables["dt"] = ["0.05"]
    with pytest.raises(LammpsError, match=r"(?i)lost atoms.*log: "):
        run_batch(Batch([job]))
    assert not (tmp_path / "hot-0.npy").exists()


@pytest.mark.mpi
def test_a_failure_under_mpirun_is_one_line(need_mpirun, tmp_path, inputs):
    bad = tmp_path / "bad.in"
    bad.write_text("units lj\nnonsense_command\n")
    jobs = [LammpsJob(str(bad), {}, str(tmp_path / f"bad{r}.log")) for r in range(2)]
    with pytest.raises(LammpsError, match="nonsense_command") as err:
        run_batch(Batch(jobs, partitions=2), mpi_ranks=2, spec_path=tmp_path / "bad.json")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("report", ["", "LAMMPS failed (ERROR: Unknown command: x); log: a.log\n"])
def test_an_mpi_batch_failure_is_never_an_empty_message(tmp_path, report):
    """The launcher's ranks race to leave one line in SPEC.err: a file a rank left empty (killed by
    another's Abort) must not become an empty error; the launcher's own last lines are used instead,
    and a rank's unrenamed temporary file is cleared."""
    launcher = tmp_path / "fake-mpirun"
    launcher.write_text("#!/bin/sh\nspec=\"$(eval echo \\${$#})\"\n"
                        f"printf '{report.strip()}' > \"${{spec%.json}}.err\"\n"
                        "touch \"${spec%.json}.err.1.tmp\"\n"
                        "echo 'rank 1 exited: killed by signal 9' >&2\nexit 1\n")
    launcher.chmod(0o755)
    jobs = [LammpsJob(str(tmp_path / "in.lmp"), {}, str(tmp_path / f"r{r}.log")) for r in range(2)]
    with pytest.raises(LammpsError) as err:
        run_batch(Batch(jobs, partitions=2), mpi_ranks=2, mpirun=str(launcher), spec_path=tmp_path / "b.json")
    expected = report.strip() or "rank 1 exited: killed by signal 9"
    assert expected in str(err.value) and str(err.value).strip()
    assert not (tmp_path / "b.err.1.tmp").exists()
