"""``hpc-botan predict MODEL_DIR STRUCTURES… --out FILE``: predictions for structures never simulated.

Only argparse is imported here, so that ``hpc-botan --help`` stays fast; the work is in
:mod:`hpc_botan.predict.predict` and :mod:`hpc_botan.io.structures`.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

DESCRIPTION = """\
Predict the propensity S_i(t) of every particle and the pair-distance change E_ij(t) of every
neighbour pair (|r_ij| < 2.0) for static structures, with the models trained in MODEL_DIR: every
finished replica (its validation-selected best.pt) of every fine-tuned BOTAN task and, where
trained, every NT-GNN task (S_i only) at every trained time point.  For each task the output holds
each replica's prediction, their mean (the ensemble prediction) and their standard deviation.

Structures are read from LAMMPS data files (.data .lmp .lammps; atom style atomic), LAMMPS text
dumps (.dump .lammpstrj; every frame), H5MD files (.h5 .h5md; the t = 0 structure of hpc_botan's
trajectory files, else the first frame) and extended XYZ (.xyz .extxyz, as ASE writes them; every
frame).  Boxes must be orthogonal and periodic.  Species: LAMMPS type 1 is A and 2 is B, extended-XYZ
species A/B (or 1/2), H5MD species 0/1; any other label (Ar, Kr, type 3, an atomic number) is an error
unless --type-map says which label is A and which is B.

A structure whose density, composition or temperature differs from the training data is still
predicted, with a warning that is also stored in the output.  See docs/prediction.md."""

EPILOG = """\
examples:
  hpc-botan predict runs/ka new.data --out predictions.h5
  hpc-botan predict ka.pt2 new.data --out predictions.h5          # an 'hpc-botan export' file
  hpc-botan predict runs/ka quench.lammpstrj other.xyz --out p.h5 --model botan --temperature 0.44 --csv
  hpc-botan predict runs/ka ase_liquid.extxyz --out p.h5 --type-map Ar=A,Kr=B      # element symbols
  hpc-botan predict runs/ka big.data --out p.h5 --memory-gb 8                       # bounded memory
  mpirun -n 4 hpc-botan predict runs/ka big.data --out p.h5     # 4 spatial domains, rank 0 writes

Large structures: the edges go through the networks in chunks of 4096 (fewer where --memory-gb,
default the run's predict.memory_gb, else 80 % of the available memory, is tight), so memory grows
as about 0.34 KB per edge (docs/benchmarks.md).  Under mpirun (or srun) with K ranks every structure
is cut into K slabs along its longest edge; each rank holds one slab and its one-hop halo, and the
ranks exchange the halo's node states once per message-passing step.  The output is the same as with
one process."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``predict`` with the top-level subparsers."""
    p = subparsers.add_parser(
        "predict", help="predict S_i and E_ij of new structures with trained models",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("model_dir", metavar="MODEL_DIR",
                   help="a run directory with config.yaml and trained replicas under train/, or a file written "
                        "by 'hpc-botan export'")
    p.add_argument("structures", nargs="+", metavar="STRUCTURE",
                   help="structure files; the format follows from the extension unless --format is given")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="HDF5 file to write (atomically: nothing is left behind if anything fails); never one of "
                        "the inputs nor inside a run directory's stage folders")
    p.add_argument("--overwrite", action="store_true", help="replace FILE (and its CSV files) if they exist")
    p.add_argument("--format", dest="fmt", choices=("data", "dump", "h5md", "extxyz"),
                   help="read every STRUCTURE in this format, whatever its extension")
    p.add_argument("--type-map", metavar="MAP",
                   help="which label of the files is A and which is B, e.g. Ar=A,Kr=B or 1=A,2=B: element symbols "
                        "(extended XYZ; H5MD written by znh5md), LAMMPS type numbers, H5MD species values; it "
                        "replaces the defaults (LAMMPS types 1/2, extended-XYZ A/B or 1/2, H5MD species 0/1) and "
                        "must name every label of every STRUCTURE")
    p.add_argument("--model", dest="models", action="append", choices=("botan", "ntgnn"),
                   help="predict with this model family only (repeatable; default: every family with finished "
                        "replicas)")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="temperature of the structures (reduced units): selects the models trained at T; default: "
                        "the temperature the file records if it was trained, else the only trained temperature")
    p.add_argument("--csv", action="store_true",
                   help="also write FILE-stem_particles.csv and FILE-stem_pairs.csv (ensemble mean and spread; "
                        "columns in docs/prediction.md)")
    p.add_argument("--memory-gb", type=float, metavar="GB",
                   help="memory one process may use; the edges are processed in chunks that fit it (default: the "
                        "run's predict.memory_gb, else 80 %% of the available memory, shared by the node's MPI ranks)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    # light modules (no torch), imported when the command runs: --help stays fast
    from hpc_botan.errors import UserError
    from hpc_botan.io.output_paths import check_output_paths, csv_paths, remove_stale_outputs
    from hpc_botan.io.structures import parse_type_map, read_structures

    # every argument and path before the work's imports (torch: half a minute on a busy node)
    out = Path(args.out)
    outputs = [out, *csv_paths(out)] if args.csv else [out]
    if args.temperature is not None and not (math.isfinite(args.temperature) and args.temperature > 0):
        raise UserError(f"--temperature {args.temperature}: expected a positive temperature (reduced units)")
    if args.memory_gb is not None and not (math.isfinite(args.memory_gb) and args.memory_gb > 0):
        raise UserError(f"--memory-gb {args.memory_gb}: expected a positive number of gigabytes")
    type_map = parse_type_map(args.type_map) if args.type_map is not None else None
    for path in map(Path, args.structures):
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    if not Path(args.model_dir).exists():
        raise UserError(f"{args.model_dir}: no such run directory or exported model file")
    check_output_paths(outputs, [args.model_dir, *args.structures], args.overwrite)
    from hpc_botan.plan.mpi_world import world  # light: mpi4py only under a launcher

    comm = world()   # MPI only under a launcher: the ranks of one prediction, each a spatial domain
    if comm.Get_rank() == 0:
        remove_stale_outputs(outputs)
    # the structures too (numpy and h5py only): a label without --type-map is refused before torch
    structures = [s for path in args.structures for s in read_structures(path, args.fmt, type_map)]

    # the work imports torch: only once the arguments are known to be good
    from hpc_botan.predict.predict import MODEL_FAMILIES, run_prediction
    from hpc_botan.predictor import load_models

    trained = load_models(args.model_dir, tuple(args.models or MODEL_FAMILIES), explicit=bool(args.models))
    written = run_prediction(trained, structures, args.out, temperature=args.temperature, write_csv=args.csv,
                             show_progress=not args.no_progress and comm.Get_rank() == 0,
                             memory_gb=args.memory_gb, comm=comm if comm.Get_size() > 1 else None)
    for path in written:
        print(f"predict: {path}")
    return 0
