import numpy as np
import pytest

from hpc_botan.physics import ka
from tests.conftest import REPO


def test_parameters_are_kob_andersen():
    assert ka.EPSILON.tolist() == [[1.0, 1.5], [1.5, 0.5]]
    assert ka.SIGMA.tolist() == [[1.0, 0.8], [0.8, 0.88]]
    assert ka.species_counts(4096) == (3277, 819)
    assert ka.box_length(4096, 1.2) == pytest.approx(15.0566, abs=1e-4)
    assert [ka.cutoff(0, 0), ka.cutoff(0, 1), ka.cutoff(1, 1)] == pytest.approx([2.5, 2.0, 2.2])


def test_energy_and_force_vanish_at_the_cutoff():
    for a, b in [(0, 0), (0, 1), (1, 1)]:
        rc = ka.cutoff(a, b)
        assert ka.pair_energy(rc, a, b) == pytest.approx(0.0, abs=1e-15)
        assert ka.pair_force(rc * (1 - 1e-12), a, b) == pytest.approx(0.0, abs=1e-9)
        assert ka.pair_energy(rc + 0.1, a, b) == 0.0


def test_hand_computed_aa_values():
    # u(r) = 4(r^-12 - r^-6); at r = 1: u = 0, u' = -24.  At r_c = 2.5:
    u_rc = 4 * (2.5**-12 - 2.5**-6)
    du_rc = 4 * (-12 * 2.5**-13 + 6 * 2.5**-7)
    assert ka.pair_energy(1.0, 0, 0) == pytest.approx(0.0 - u_rc - (1.0 - 2.5) * du_rc)
    assert ka.pair_force(1.0, 0, 0) == pytest.approx(24.0 + du_rc)
    # minimum of the AB pair sits near 2^(1/6) sigma_AB (the smoothing shifts it slightly)
    r = np.linspace(0.8, 1.2, 4001)
    r_min = r[np.argmin(ka.pair_energy(r, 0, 1))]
    assert r_min == pytest.approx(2 ** (1 / 6) * 0.8, abs=0.01)


def test_force_is_minus_the_energy_derivative():
    r = np.linspace(0.85, 2.4, 50)
    h = 1e-6
    for a, b in [(0, 0), (0, 1), (1, 1)]:
        numeric = -(ka.pair_energy(r + h, a, b) - ka.pair_energy(r - h, a, b)) / (2 * h)
        inside = r < ka.cutoff(a, b) - h
        np.testing.assert_allclose(ka.pair_force(r, a, b)[inside], numeric[inside], rtol=1e-6, atol=1e-8)


def test_shipped_lammps_coefficients_are_rendered_from_this_module():
    for name, render in ka.RENDERED_FILES.items():
        assert (REPO / "lammps_inputs" / name).read_text() == render(), (
            f"lammps_inputs/{name} is stale: run python -m hpc_botan.physics.ka lammps_inputs")


def test_table_covers_each_pair_up_to_its_cutoff():
    text = ka.render_lammps_table()
    for key, rc in [("KA_AA", 2.5), ("KA_AB", 2.0), ("KA_BB", 2.2)]:
        header = text.split(key + "\n", 1)[1].splitlines()[0]
        assert header == f"N {ka.TABLE_POINTS} RSQ {ka.TABLE_INNER:.6g} {rc:.6g}"


@pytest.mark.lammps
@pytest.mark.parametrize("potential", ka.POTENTIALS)
def test_lammps_energies_match_this_module(need_lammps, tmp_path, potential):
    """LAMMPS's own pair_write of each shipped potential reproduces pair_energy / pair_force,
    up to just inside the cutoff (where the truncated form still has its force step)."""
    from hpc_botan.simulate.lammps_runner import import_lammps

    lmp = import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    pairs = [(0, 0), (0, 1), (1, 1)]
    try:
        for cmd in ["units lj", "atom_style atomic", "region b block 0 10 0 10 0 10", "create_box 2 b"]:
            lmp.command(cmd)
        lmp.file(str(REPO / "lammps_inputs" / ka.potential_file(potential)))
        out = tmp_path / "pw.txt"
        for k, (a, b) in enumerate(pairs):
            lmp.command(f"pair_write {a + 1} {b + 1} 200 r 0.9 {ka.cutoff(a, b, potential) - 1e-9:.12g} {out} P{k}")
    finally:
        lmp.close()
    blocks = out.read_text().split("\nP")[1:]
    for block, (a, b) in zip(blocks, pairs):
        rows = np.array([[float(x) for x in ln.split()] for ln in block.splitlines()
                         if len(ln.split()) == 4 and not ln.startswith("#")])
        assert rows.shape == (200, 4)
        np.testing.assert_allclose(rows[:, 2], ka.pair_energy(rows[:, 1], a, b, potential), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(rows[:, 3], ka.pair_force(rows[:, 1], a, b, potential), rtol=1e-9, atol=1e-12)
    if potential == "truncated_shifted":  # the KA original: no force shift, so a step at r_c
        assert ka.pair_force(ka.cutoff(0, 0) - 1e-9, 0, 0, potential) < -1e-3
    if potential == "shifted_force_global_cutoff":  # B–B and A–B interact up to 2.5, beyond 2.5 σ_αβ
        assert ka.pair_energy(2.3, 1, 1, potential) != 0.0 and ka.pair_energy(2.3, 1, 1) == 0.0


def test_an_unknown_potential_is_refused(tmp_path):
    from tests.conftest import run_cli

    with pytest.raises(ValueError, match="unknown KA potential 'lj'"):
        ka.cutoff(0, 0, "lj")
    res = run_cli("config", "quick", "--set", "simulation.potential=lj")
    assert res.returncode == 2 and "simulation.potential" in res.stderr and "Traceback" not in res.stderr
