"""``hpc_botan.load_predictor``: the same numbers as ``hpc-botan predict``, from Python arrays or an Atoms."""
import h5py
import numpy as np
import pytest

import hpc_botan
from hpc_botan.cli import main
from hpc_botan.errors import UserError
from tests.predict.test_command import structure, trained_run, write_data  # noqa: F401  (fixtures)


class FakeAtoms:
    """The part of ase.Atoms that the predictor reads: any object with these three methods will do."""

    def __init__(self, positions, symbols, cell):
        self._positions, self._symbols, self._cell = positions, symbols, cell

    def get_positions(self):
        return self._positions

    def get_chemical_symbols(self):
        return self._symbols

    def get_cell(self):
        return self._cell


def test_predictor_matches_the_command_line(trained_run, structure, tmp_path):  # noqa: F811 (fixtures)
    positions, species, box = structure
    out = tmp_path / "p.h5"
    assert main(["-q", "predict", str(trained_run), str(write_data(tmp_path / "s.data", *structure)), "--out",
                 str(out), "--model", "botan", "--no-progress"]) == 0
    predictor = hpc_botan.load_predictor(trained_run)
    assert predictor.temperatures == [pytest.approx(0.44)]
    result = predictor.predict(positions, species, box)
    assert list(result) == [pytest.approx(4120.0)]
    at = result[next(iter(result))]
    with h5py.File(out, "r") as f:
        g = f["structures/00000"]
        np.testing.assert_array_equal(at.edge_index, g["edge_index"][()])
        np.testing.assert_allclose(at.S, g["predictions/botan/T0.440/t00/S_mean"][()], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(at.E, g["predictions/botan/T0.440/t00/E_mean"][()], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(at.S_std, g["predictions/botan/T0.440/t00/S_std"][()], rtol=1e-5, atol=1e-7)
    assert at.replicas == 2 and at.S.shape == species.shape and at.E.shape == (at.edge_index.shape[1],)

    # an ASE-like Atoms with a symbol mapping gives the same
    symbols = ["Ar" if s == 0 else "Kr" for s in species]
    atoms = FakeAtoms(positions, symbols, np.diag(box))
    again = predictor.predict(atoms, type_map={"Ar": 0, "Kr": 1})
    np.testing.assert_array_equal(again[at.time].S, at.S)
    with pytest.raises(UserError, match="needs type_map"):
        predictor.predict(atoms)
    with pytest.raises(UserError, match="no entry for the symbol"):
        predictor.predict(atoms, type_map={"Ar": 0})
    with pytest.raises(UserError, match="expected \\(N, 3\\), \\(N,\\), \\(3,\\)"):
        predictor.predict(positions[:, :2], species, box)
    # NT-GNN predicts S only
    ntgnn = hpc_botan.load_predictor(trained_run, model="ntgnn").predict(positions, species, box)
    assert next(iter(ntgnn.values())).E is None


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, hpc_botan; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
