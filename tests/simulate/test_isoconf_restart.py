"""isoconf.in's optional restart files: a run resumed from one ends where the uninterrupted run ends."""
import numpy as np
import pytest

from hpc_botan.config import load_config
from hpc_botan.io.lammps_text import read_data_file, write_data_file
from hpc_botan.simulate.lammps_runner import Batch, LammpsJob, run_batch
from hpc_botan.simulate.stage import find_inputs_dir


def test_data_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    box = np.array([4.0, 4.5, 5.0])
    species = (rng.uniform(size=20) < 0.3).astype(int)
    positions = rng.uniform(size=(20, 3)) * box
    write_data_file(tmp_path / "c.data", species, positions, box)
    ids, got_species, got_positions, images, bounds = read_data_file(tmp_path / "c.data")
    np.testing.assert_array_equal(ids, np.arange(1, 21))
    np.testing.assert_array_equal(got_species, species)
    np.testing.assert_array_equal(got_positions, positions)   # %.17g: exact
    assert not images.any() and np.array_equal(bounds[:, 1] - bounds[:, 0], box)
    with pytest.raises(ValueError):
        write_data_file(tmp_path / "bad.data", species, positions[:5], box)


@pytest.mark.lammps
def test_resumed_run_ends_where_the_uninterrupted_one_does(need_lammps, tmp_path):
    inputs = find_inputs_dir(load_config("quick"))
    common = {"potential": [str(inputs / "ka_potential.lmp")], "thermo_every": ["100"]}
    data = tmp_path / "prep.data"
    run_batch(Batch([LammpsJob(str(inputs / "prepare.in"),
                               {**common, "N": ["200"], "n_a": ["160"], "n_melt": ["200"], "n_quench": ["200"],
                                "n_equil": ["200"], "seed": ["7"], "out": [str(data)]}, str(tmp_path / "p.log"))]))

    def isoconf(tag, frames, **extra):
        variables = {**common, "data": [str(data)], "seed": [extra.pop("seed", "11")], "T": ["0.64"], "frames": frames,
                     "dump_prefix": [str(tmp_path / tag)], **{k: [v] for k, v in extra.items()}}
        job = LammpsJob(str(inputs / "isoconf.in"), variables, str(tmp_path / f"{tag}.log"),
                        frames_npy=str(tmp_path / f"{tag}.npy"), n_atoms=200)
        run_batch(Batch([job]))
        return np.load(tmp_path / f"{tag}.npy")

    whole = isoconf("whole", ["100", "300"])
    first = isoconf("first", ["100"], write_restarts="1", restart_prefix=str(tmp_path / "state"))
    assert (tmp_path / "state.100.restart").is_file()
    rest = isoconf("rest", ["300"], resume="1", resume_from=str(tmp_path / "state.100.restart"), seed="999")
    # writing a restart re-wraps atoms into the box: xu = x + image·L then differs in the last bit
    np.testing.assert_allclose(first[0], whole[0], atol=1e-12)
    # velocities come from the restart file, not from a new draw (the resumed run even has another
    # seed); same state, same integrator: equal up to the order of float sums after the rebuild
    np.testing.assert_allclose(rest[0], whole[1], atol=1e-8)
