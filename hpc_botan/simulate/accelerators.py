"""Which LAMMPS accelerator to use, and the command-line switches that select it.

Pure functions of what the LAMMPS build offers and what the node has, so that every GPU
path can be tested by construction on a machine without a GPU.

The Kob–Andersen pair style ``lj/smooth/linear`` has an OPENMP variant; its GPU and KOKKOS
variants exist only in some builds (newer releases have ``lj/smooth/linear/kk``).  The build is
asked which styles it has: the native style is preferred, and where the accelerator has no
variant of it the runner switches to the tabulated form of the same potential (``pair_style
table``, accelerated by both packages), see :func:`hpc_botan.physics.ka.render_lammps_table`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from hpc_botan.errors import LammpsError

ACCELERATORS = ("gpu", "kokkos", "openmp", "none")


@dataclass(frozen=True)
class LammpsCapabilities:
    """What a LAMMPS build can do (from ``lammps.installed_packages`` / ``accelerator_config``)."""

    packages: frozenset[str]
    #: KOKKOS device APIs compiled in, e.g. {"cuda"} or {"openmp"}.
    kokkos_apis: frozenset[str] = frozenset()
    #: True when the GPU package was built and sees a usable device.
    gpu_package_device: bool = False
    version: int = 0
    #: Which of :data:`KA_PAIR_STYLES` the build has (asked with ``lammps.has_style``).
    pair_styles: frozenset[str] = frozenset()


#: The pair styles that matter for the KA potential: the native smoothed style and the table
#: fallback, each with the accelerator variants that ``-sf omp|gpu|kk`` selects.
KA_PAIR_STYLES = tuple(f"{style}{suffix}" for style in ("lj/smooth/linear", "table")
                       for suffix in ("", "/omp", "/gpu", "/kk"))


@dataclass(frozen=True)
class AcceleratorChoice:
    """The accelerator picked, the switches that select it and why it was picked."""

    name: str
    cmdargs: tuple[str, ...]
    #: True when the potential must be the tabulated form (GPU and KOKKOS styles).
    tabulated_potential: bool
    reason: str
    env: dict[str, str] = field(default_factory=dict)


def count_visible_gpus() -> int:
    """Number of NVIDIA GPUs this process may use (``CUDA_VISIBLE_DEVICES`` or ``nvidia-smi -L``)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def accelerator_cmdargs(name: str, *, gpus: int = 1, omp_threads: int = 1) -> tuple[str, ...]:
    """LAMMPS command-line switches for accelerator ``name``.

    - ``gpu``: GPU package, ``-sf gpu -pk gpu N neigh yes newton off`` (the GPU package
      requires Newton's third law off for pair interactions).
    - ``kokkos``: ``-k on g N -sf kk -pk kokkos newton on neigh half``.
    - ``openmp``: ``-sf omp -pk omp T``.
    - ``none``: plain styles.
    """
    if name == "gpu":
        return ("-sf", "gpu", "-pk", "gpu", str(gpus), "neigh", "yes", "newton", "off")
    if name == "kokkos":
        return ("-k", "on", "g", str(gpus), "-sf", "kk", "-pk", "kokkos", "newton", "on", "neigh", "half")
    if name == "openmp":
        return ("-sf", "omp", "-pk", "omp", str(omp_threads))
    if name == "none":
        return ()
    raise ValueError(f"unknown accelerator {name!r}")


def _available(name: str, caps: LammpsCapabilities, n_gpus: int) -> tuple[bool, str]:
    if name == "gpu":
        if "GPU" not in caps.packages:
            return False, "this LAMMPS build has no GPU package"
        if n_gpus == 0 and not caps.gpu_package_device:
            return False, "no GPU is visible on this node"
        return True, "GPU package and a visible GPU"
    if name == "kokkos":
        if "KOKKOS" not in caps.packages:
            return False, "this LAMMPS build has no KOKKOS package"
        if not caps.kokkos_apis & {"cuda", "hip", "sycl"}:
            return False, "this LAMMPS build has KOKKOS without a GPU back end"
        if n_gpus == 0:
            return False, "no GPU is visible on this node"
        return True, "KOKKOS with a GPU back end and a visible GPU"
    if name == "openmp":
        if "OPENMP" not in caps.packages:
            return False, "this LAMMPS build has no OPENMP package"
        return True, "OPENMP package (CPU threads)"
    return True, "plain CPU styles"


def choose_accelerator(
    requested: str, caps: LammpsCapabilities, *, n_gpus: int, gpus: int = 1, omp_threads: int = 1
) -> AcceleratorChoice:
    """Pick an accelerator.

    ``requested`` is ``auto`` or one of :data:`ACCELERATORS`.  ``auto`` prefers the GPU
    package, then KOKKOS on a GPU, then OPENMP, then plain styles.  An explicit request
    that this build or node cannot honour raises :class:`LammpsError`.
    """
    if requested == "auto":
        for name in ACCELERATORS:
            ok, why = _available(name, caps, n_gpus)
            if ok:
                return _make(name, f"auto: {why}", gpus=min(gpus, max(n_gpus, 1)), omp_threads=omp_threads,
                             caps=caps)
        raise AssertionError("'none' is always available")
    if requested not in ACCELERATORS:
        raise LammpsError(f"lammps.accelerator: unknown accelerator {requested!r}")
    ok, why = _available(requested, caps, n_gpus)
    if not ok:
        raise LammpsError(f"lammps.accelerator: {requested} was asked for but {why}")
    return _make(requested, f"requested: {why}", gpus=gpus, omp_threads=omp_threads, caps=caps)


def native_style_available(name: str, caps: LammpsCapabilities) -> bool:
    """Whether accelerator ``name`` runs ``lj/smooth/linear`` itself (else the GPU paths use the table)."""
    suffix = {"gpu": "/gpu", "kokkos": "/kk"}.get(name)
    return suffix is None or f"lj/smooth/linear{suffix}" in caps.pair_styles


def _make(name: str, reason: str, *, gpus: int, omp_threads: int, caps: LammpsCapabilities) -> AcceleratorChoice:
    env = {"OMP_NUM_THREADS": str(omp_threads)} if name == "openmp" else {}
    native = native_style_available(name, caps)
    return AcceleratorChoice(
        name=name,
        cmdargs=accelerator_cmdargs(name, gpus=gpus, omp_threads=omp_threads),
        tabulated_potential=not native,
        reason=reason + ("" if native else "; lj/smooth/linear has no variant here, the tabulated form is used"),
        env=env,
    )
