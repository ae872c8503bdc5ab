"""The tabulated KA potential (the GPU/KOKKOS fallback) in real LAMMPS against the analytic style."""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from hpc_botan.io.lammps_text import write_data_file
from hpc_botan.physics import ka

pytestmark = pytest.mark.lammps
N_SAMPLE = 4096


def _lammps():
    from hpc_botan.simulate.lammps_runner import import_lammps

    return import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


def _potential(style: str, table: str, potential: str = "shifted_force") -> str:
    if style == "analytic":
        return ka.render_lammps_coefficients(potential)
    return ka.render_lammps_table_coefficients(potential=potential).replace("${ka_table}", str(table))


def _forces_and_energy(data, style, table, potential="shifted_force"):
    lmp = _lammps()
    try:
        lmp.commands_string(f"units lj\natom_style atomic\nread_data {data}\n{_potential(style, table, potential)}"
                            "neighbor 0.3 bin\nthermo_style custom step pe\nrun 0")
        ids = np.array(lmp.numpy.extract_atom("id")[:N_SAMPLE])
        forces = np.array(lmp.numpy.extract_atom("f")[:N_SAMPLE])[np.argsort(ids)]
        return forces, lmp.get_thermo("pe")
    finally:
        lmp.close()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "ka_table.dat"
    path.write_text(ka.render_lammps_table())
    return str(path)


@pytest.mark.parametrize("potential", ka.POTENTIALS)
def test_table_forces_and_energy_match_the_analytic_style(need_lammps, sample_dir, tmp_path, potential):
    """On the authors' equilibrated configuration 1 (T = 0.44, N = 4096), for every potential form."""
    d = np.load(sample_dir / "train" / "isoconfig_N4096T0.44_1_tc07.npz")
    box = np.full(3, ka.box_length(N_SAMPLE, 1.2))
    data = tmp_path / "conf.data"
    write_data_file(data, d["types"].astype(int), d["initial_positions"] % box, box)
    table = tmp_path / "ka_table.dat"
    table.write_text(ka.render_lammps_table(potential))
    f_analytic, e_analytic = _forces_and_energy(data, "analytic", table, potential)
    f_table, e_table = _forces_and_energy(data, "table", table, potential)
    relative_rms = np.sqrt(((f_table - f_analytic) ** 2).sum() / (f_analytic ** 2).sum())
    assert relative_rms <= 1e-6, relative_rms
    assert np.abs(f_table - f_analytic).max() <= 1e-6 * np.abs(f_analytic).max()
    assert abs(e_table - e_analytic) <= 1e-6 * abs(e_analytic), (e_table, e_analytic)
    if potential == "shifted_force":  # thermo energies are per particle in LJ units; REFERENCE §6: −6.184
        assert e_analytic == pytest.approx(-6.184, abs=5e-4)


def _nve_energy(state, style, table, steps, every=100):
    lmp = _lammps()
    try:
        lmp.commands_string(f"units lj\natom_style atomic\nread_restart {state}\n{_potential(style, table)}"
                            "neighbor 0.3 bin\nneigh_modify every 1 delay 0 check yes\ntimestep 0.005\n"
                            "fix nve all nve\nthermo_style custom step etotal\n")
        energies = []
        for _ in range(steps // every):
            lmp.command(f"run {every} pre no post no")
            energies.append(lmp.get_thermo("etotal"))
        return np.array(energies)
    finally:
        lmp.close()


def test_table_nve_drift_is_no_worse_than_the_analytic_style(need_lammps, table, tmp_path):
    """10⁵ NVE steps of a 500-particle liquid at T ≈ 0.64 (dt = 0.005, five times the production step,
    so that both drifts are well above round-off), from the same state."""
    state = tmp_path / "liquid.restart"
    lmp = _lammps()
    try:
        lmp.commands_string("units lj\natom_style atomic\nregion box block 0 7.4690 0 7.4690 0 7.4690\n"
                            "create_box 2 box\ncreate_atoms 1 random 400 5 box overlap 0.8\n"
                            "create_atoms 2 random 100 6 box overlap 0.8\n" + ka.render_lammps_coefficients() +
                            "neighbor 0.3 bin\nminimize 1e-6 1e-8 1000 10000\nreset_timestep 0\n"
                            "velocity all create 0.64 7 dist gaussian\nfix t all nvt temp 0.64 0.64 0.1\n"
                            "timestep 0.005\nrun 4000\nunfix t\n"
                            f"write_restart {state}")
    finally:
        lmp.close()
    steps = 100_000
    # the two runs side by side, each in a process of its own (LAMMPS is serial here): half the wall time
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        energies = dict(zip(("analytic", "table"),
                            pool.map(_nve_energy, [state] * 2, ["analytic", "table"], [table] * 2, [steps] * 2)))
    # worst excursion of the energy per particle, ε
    drift = {style: float(np.abs(e - e[0]).max()) for style, e in energies.items()}
    # the table may not be worse beyond the run-to-run noise of such a measurement (10 %)
    print(f"NVE drift over {steps} steps (max |E - E0| per particle): {drift}")
    assert drift["table"] <= 1.1 * drift["analytic"] + 1e-6, drift
