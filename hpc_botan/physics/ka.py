"""Kob–Andersen binary Lennard-Jones mixture: the single source of its parameters.

Reduced Lennard-Jones units throughout: lengths in σ_AA, energies in ε_AA, masses in m,
time in τ = sqrt(m σ_AA² / ε_AA), k_B = 1.  Species are indexed A = 0, B = 1 (LAMMPS
atom types 1 and 2).

Three forms of the potential are known (``simulation.potential``), all with
u(r) = 4 ε [(σ/r)^12 − (σ/r)^6]:

* ``shifted_force`` (default): shifted and tilted so that energy and force vanish at the cutoff
  r_c = 2.5 σ_αβ (LAMMPS ``lj/smooth/linear``):  U(r) = u(r) − u(r_c) − (r − r_c) u'(r_c);
* ``shifted_force_global_cutoff``: the same form with one cutoff r_c = 2.5 for every pair (what a
  script gets that leaves the per-pair cutoff out of ``pair_coeff``);
* ``truncated_shifted``: the original Kob–Andersen form, cut at 2.5 σ_αβ and shifted in energy only
  (LAMMPS ``lj/cut`` with ``pair_modify shift yes``):  U(r) = u(r) − u(r_c); the force jumps at r_c.

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


#: The forms of the potential, see the module docstring (``simulation.potential``).
POTENTIALS = ("shifted_force", "shifted_force_global_cutoff", "truncated_shifted")


def _checked(potential: str) -> str:
    if potential not in POTENTIALS:
        raise ValueError(f"unknown KA potential {potential!r}; known: {', '.join(POTENTIALS)}")
    return potential


def cutoff(a: int, b: int, potential: str = "shifted_force") -> float:
    """Cutoff distance r_c (σ_AA units) for species indices a, b ∈ {0, 1}: 2.5 σ_ab, or 2.5 for every
    pair with ``shifted_force_global_cutoff``."""
    if _checked(potential) == "shifted_force_global_cutoff":
        return CUTOFF_SIGMA * float(SIGMA[0, 0])
    return CUTOFF_SIGMA * float(SIGMA[a, b])


def species_counts(n_particles: int, fraction_a: float = FRACTION_A) -> tuple[int, int]:
    """(N_A, N_B) for a mixture of ``n_particles``; N_A = round(fraction_a · N)."""
    n_a = int(round(fraction_a * n_particles))
    return n_a, n_particles - n_a


def box_length(n_particles: int, density: float) -> float:
    """Edge L (σ_AA) of the cubic box holding ``n_particles`` at number density N/V."""
    return (n_particles / density) ** (1.0 / 3.0)


def pair_energy(r: np.ndarray, a: int, b: int, potential: str = "shifted_force") -> np.ndarray:
    """Pair energy U(r) (ε_AA) of ``potential`` for distances ``r`` (σ_AA, any shape); 0 beyond r_c."""
    r = np.asarray(r, dtype=float)
    eps, sig, rc = float(EPSILON[a, b]), float(SIGMA[a, b]), cutoff(a, b, potential)

    def u(x):
        s6 = (sig / x) ** 6
        return 4.0 * eps * (s6 * s6 - s6)

    def du(x):
        s6 = (sig / x) ** 6
        return 4.0 * eps * (-12.0 * s6 * s6 + 6.0 * s6) / x

    tilt = 0.0 if potential == "truncated_shifted" else du(rc)
    energy = u(r) - u(rc) - (r - rc) * tilt
    return np.where(r < rc, energy, 0.0)


def pair_force(r: np.ndarray, a: int, b: int, potential: str = "shifted_force") -> np.ndarray:
    """Pair force F(r) = −dU/dr (ε_AA/σ_AA) of ``potential`` for distances ``r``; 0 beyond r_c."""
    r = np.asarray(r, dtype=float)
    eps, sig, rc = float(EPSILON[a, b]), float(SIGMA[a, b]), cutoff(a, b, potential)

    def du(x):
        s6 = (sig / x) ** 6
        return 4.0 * eps * (-12.0 * s6 * s6 + 6.0 * s6) / x

    tilt = 0.0 if potential == "truncated_shifted" else du(rc)
    return np.where(r < rc, -(du(r) - tilt), 0.0)


_TYPE_PAIRS = ((0, 0), (0, 1), (1, 1))
#: Table resolution for the tabulated form used on GPUs (points per pair).  The file holds the
#: points on the r² grid that LAMMPS interpolates on (``RSQ``), as many as ``pair_style table``
#: is given, so LAMMPS uses them as they are instead of re-splining; with linear interpolation
#: the forces then match the analytic style to ~3e-8 (rms, relative; 7e-7 with 20 000 points).
TABLE_POINTS = 100000
#: Inner edge of the table, σ: no KA pair comes closer (the repulsion there exceeds 10⁵ ε).
TABLE_INNER = 0.5


def render_lammps_coefficients(potential: str = "shifted_force") -> str:
    """LAMMPS commands for the analytic form of ``potential`` (CPU and OPENMP styles)."""
    header = f"# Kob–Andersen potential ({_checked(potential)}), rendered by hpc_botan.physics.ka: do not edit by hand."
    global_rc = CUTOFF_SIGMA * SIGMA.max()
    if potential == "shifted_force":
        lines = [header, f"pair_style lj/smooth/linear {global_rc:.6g}"]
        lines += [f"pair_coeff {a + 1} {b + 1} {EPSILON[a, b]:.6g} {SIGMA[a, b]:.6g} {cutoff(a, b):.6g}"
                  for a, b in _TYPE_PAIRS]
    elif potential == "shifted_force_global_cutoff":
        lines = [header, f"pair_style lj/smooth/linear {cutoff(0, 0, potential):.6g}"]
        lines += [f"pair_coeff {a + 1} {b + 1} {EPSILON[a, b]:.6g} {SIGMA[a, b]:.6g}" for a, b in _TYPE_PAIRS]
    else:
        lines = [header, f"pair_style lj/cut {global_rc:.6g}"]
        lines += [f"pair_coeff {a + 1} {b + 1} {EPSILON[a, b]:.6g} {SIGMA[a, b]:.6g} {cutoff(a, b):.6g}"
                  for a, b in _TYPE_PAIRS]
        lines.append("pair_modify shift yes")
    lines.append(f"mass * {MASS:g}")
    return "\n".join(lines) + "\n"


def render_lammps_table_coefficients(table_file: str = "ka_table.dat", potential: str = "shifted_force") -> str:
    """LAMMPS commands for the tabulated form of ``potential`` (``pair_style table``).

    Used with GPU and KOKKOS packages whose build has no accelerated variant of the analytic style
    but does accelerate ``table``.  The table file is resolved by LAMMPS relative to the working
    directory, so the runner passes an absolute path through ``${ka_table}``.
    """
    lines = [
        f"# Kob–Andersen potential ({_checked(potential)}) as a table for GPU/KOKKOS styles, rendered by "
        "hpc_botan.physics.ka.",
        f"pair_style table linear {TABLE_POINTS}",
    ]
    for a, b in _TYPE_PAIRS:
        key = f"KA_{SPECIES[a]}{SPECIES[b]}"
        lines.append(f"pair_coeff {a + 1} {b + 1} ${{ka_table}} {key} {cutoff(a, b, potential):.6g}")
    lines.append(f"mass * {MASS:g}")
    return "\n".join(lines) + "\n"


def table_grid(a: int, b: int, n: int = TABLE_POINTS, potential: str = "shifted_force") -> np.ndarray:
    """The n distances (σ) of the table of pair (a, b): uniform in r² from TABLE_INNER to r_c (LAMMPS ``RSQ``)."""
    return np.sqrt(np.linspace(TABLE_INNER ** 2, cutoff(a, b, potential) ** 2, n))


def render_lammps_table(potential: str = "shifted_force") -> str:
    """The table file of ``potential`` (energy and force on LAMMPS' own r² grid) for each species pair.

    The last point (r_c) holds the value just inside the cutoff, so a truncated potential keeps its
    force step there as the analytic style has it.
    """
    out = [f"# Kob–Andersen {_checked(potential)} LJ table, rendered by hpc_botan.physics.ka: do not edit.", ""]
    for a, b in _TYPE_PAIRS:
        r = table_grid(a, b, potential=potential)
        inside = r.copy()
        inside[-1] = np.nextafter(r[-1], 0.0)  # pair_energy/pair_force are 0 at r = r_c itself
        e, f = pair_energy(inside, a, b, potential), pair_force(inside, a, b, potential)
        out.append(f"KA_{SPECIES[a]}{SPECIES[b]}")
        out.append(f"N {TABLE_POINTS} RSQ {TABLE_INNER:.6g} {cutoff(a, b, potential):.6g}")
        out.append("")
        out.extend(f"{i + 1} {ri:.16g} {ei:.16e} {fi:.16e}" for i, (ri, ei, fi) in enumerate(zip(r, e, f)))
        out.append("")
    return "\n".join(out)


def potential_file(potential: str = "shifted_force", tabulated: bool = False) -> str:
    """The name of the rendered include file in ``lammps_inputs/`` for a potential and form."""
    stem = {"shifted_force": "ka_potential", "shifted_force_global_cutoff": "ka_potential_global_cutoff",
            "truncated_shifted": "ka_potential_truncated_shifted"}[_checked(potential)]
    return f"{stem}_table.lmp" if tabulated else f"{stem}.lmp"


RENDERED_FILES = {
    **{potential_file(p): (lambda p=p: render_lammps_coefficients(p)) for p in POTENTIALS},
    **{potential_file(p, tabulated=True): (lambda p=p: render_lammps_table_coefficients(potential=p))
       for p in POTENTIALS},
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
