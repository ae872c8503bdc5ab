"""Kob–Andersen binary Lennard-Jones mixture: the single source of its parameters.

Reduced Lennard-Jones units throughout: lengths in σ_AA, energies in ε_AA, masses in m,
time in τ = sqrt(m σ_AA² / ε_AA), k_B = 1.  Species are indexed A = 0, B = 1 (LAMMPS
atom types 1 and 2).

The potential is the 12-6 Lennard-Jones form shifted and tilted so that both energy and
force vanish at the cutoff r_c = 2.5 σ_αβ (LAMMPS ``lj/smooth/linear``)::

    U(r) = u(r) − u(r_c) − (r − r_c) u'(r_c),   u(r) = 4 ε [(σ/r)^12 − (σ/r)^6]

The LAMMPS coefficient files in ``lammps_inputs/`` are rendered from this module
(``python -m hpc_botan.physics.ka lammps_inputs``); a test keeps them in step.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SPECIES = ("A", "B")
#: ε_αβ indexed by (species, species).
EPSILON = np.array([[1.0, 1.5], [1.5, 0.5]])
#: σ_αβ indexed by (species, species).
SIGMA = np.array([[1.0, 0.8], [0.8, 0.88]])
#: Cutoff in units of σ_αβ.
CUTOFF_SIGMA = 2.5
#: Number fraction of A particles.
FRACTION_A = 0.8
MASS = 1.0


def cutoff(a: int, b: int) -> float:
    """Cutoff distance r_c = 2.5 σ_ab (σ_AA units) for species indices a, b ∈ {0, 1}."""
    return CUTOFF_SIGMA * float(SIGMA[a, b])


def species_counts(n_particles: int, fraction_a: float = FRACTION_A) -> tuple[int, int]:
    """(N_A, N_B) for a mixture of ``n_particles``; N_A = round(fraction_a · N)."""
    n_a = int(round(fraction_a * n_particles))
    return n_a, n_particles - n_a


def box_length(n_particles: int, density: float) -> float:
    """Edge L (σ_AA) of the cubic box holding ``n_particles`` at number density N/V."""
    return (n_particles / density) ** (1.0 / 3.0)


def pair_energy(r: np.ndarray, a: int, b: int) -> np.ndarray:
    """Smoothed pair energy U(r) (ε_AA) for distances ``r`` (σ_AA, any shape); 0 beyond r_c."""
    r = np.asarray(r, dtype=float)
    eps, sig, rc = float(EPSILON[a, b]), float(SIGMA[a, b]), cutoff(a, b)

    def u(x):
        s6 = (sig / x) ** 6
        return 4.0 * eps * (s6 * s6 - s6)

    def du(x):
        s6 = (sig / x) ** 6
        return 4.0 * eps * (-12.0 * s6 * s6 + 6.0 * s6) / x

    energy = u(r) - u(rc) - (r - rc) * du(rc)
    return np.where(r < rc, energy, 0.0)


def pair_force(r: np.ndarray, a: int, b: int) -> np.ndarray:
    """Smoothed pair force F(r) = −dU/dr (ε_AA/σ_AA) for distances ``r``; 0 beyond r_c."""
    r = np.asarray(r, dtype=float)
    eps, sig, rc = float(EPSILON[a, b]), float(SIGMA[a, b]), cutoff(a, b)

    def du(x):
        s6 = (sig / x) ** 6
        return 4.0 * eps * (-12.0 * s6 * s6 + 6.0 * s6) / x

    return np.where(r < rc, -(du(r) - du(rc)), 0.0)


_TYPE_PAIRS = ((0, 0), (0, 1), (1, 1))
#: Table resolution for the tabulated form used on GPUs (points per pair).  The file holds the
#: points on the r² grid that LAMMPS interpolates on (``RSQ``), as many as ``pair_style table``
#: is given, so LAMMPS uses them as they are instead of re-splining; with linear interpolation
#: the forces then match the analytic style to ~3e-8 (rms, relative; 7e-7 with 20 000 points).
TABLE_POINTS = 100000
#: Inner edge of the table, σ: no KA pair comes closer (the repulsion there exceeds 10⁵ ε).
TABLE_INNER = 0.5


def render_lammps_coefficients() -> str:
    """LAMMPS commands for the analytic potential (``lj/smooth/linear``, CPU and OPENMP)."""
    lines = [
        "# Kob–Andersen potential, rendered by hpc_botan.physics.ka: do not edit by hand.",
        f"pair_style lj/smooth/linear {CUTOFF_SIGMA * SIGMA.max():.6g}",
    ]
    for a, b in _TYPE_PAIRS:
        lines.append(
            f"pair_coeff {a + 1} {b + 1} {EPSILON[a, b]:.6g} {SIGMA[a, b]:.6g} {cutoff(a, b):.6g}"
        )
    lines.append(f"mass * {MASS:g}")
    return "\n".join(lines) + "\n"


def render_lammps_table_coefficients(table_file: str = "ka_table.dat") -> str:
    """LAMMPS commands for the tabulated potential (``pair_style table``).

    Used with the GPU and KOKKOS packages, which have no accelerated ``lj/smooth/linear``
    but do accelerate ``table``.  ``table_file`` is resolved by LAMMPS relative to the
    working directory, so the runner passes an absolute path through ``${ka_table}``.
    """
    lines = [
        "# Kob–Andersen potential as a table for GPU/KOKKOS styles, rendered by hpc_botan.physics.ka.",
        f"pair_style table linear {TABLE_POINTS}",
    ]
    for a, b in _TYPE_PAIRS:
        key = f"KA_{SPECIES[a]}{SPECIES[b]}"
        lines.append(f"pair_coeff {a + 1} {b + 1} ${{ka_table}} {key} {cutoff(a, b):.6g}")
    lines.append(f"mass * {MASS:g}")
    return "\n".join(lines) + "\n"


def table_grid(a: int, b: int, n: int = TABLE_POINTS) -> np.ndarray:
    """The n distances (σ) of the table of pair (a, b): uniform in r² from TABLE_INNER to r_c (LAMMPS ``RSQ``)."""
    return np.sqrt(np.linspace(TABLE_INNER ** 2, cutoff(a, b) ** 2, n))


def render_lammps_table() -> str:
    """The table file (energy and force on LAMMPS' own r² grid) for each species pair."""
    out = ["# Kob–Andersen smoothed LJ table, rendered by hpc_botan.physics.ka: do not edit.", ""]
    for a, b in _TYPE_PAIRS:
        r = table_grid(a, b)
        e, f = pair_energy(r, a, b), pair_force(r, a, b)
        e[-1] = f[-1] = 0.0
        out.append(f"KA_{SPECIES[a]}{SPECIES[b]}")
        out.append(f"N {TABLE_POINTS} RSQ {TABLE_INNER:.6g} {cutoff(a, b):.6g}")
        out.append("")
        out.extend(f"{i + 1} {ri:.16g} {ei:.16e} {fi:.16e}" for i, (ri, ei, fi) in enumerate(zip(r, e, f)))
        out.append("")
    return "\n".join(out)


RENDERED_FILES = {
    "ka_potential.lmp": render_lammps_coefficients,
    "ka_potential_table.lmp": render_lammps_table_coefficients,
}


def write_rendered(directory: Path) -> list[Path]:
    """Write the coefficient include files into ``directory``; returns their paths.

    The (large) table data file is not kept in the repository: the runner renders it
    on demand next to the run with :func:`render_lammps_table`.
    """
    paths = []
    for name, render in RENDERED_FILES.items():
        path = Path(directory) / name
        path.write_text(render())
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover - maintenance helper
    for p in write_rendered(Path(sys.argv[1] if len(sys.argv) > 1 else "lammps_inputs")):
        print(p)
