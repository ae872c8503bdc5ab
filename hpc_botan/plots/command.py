"""``hpc-botan plot …``: the paper's figures from a run directory.

Only argparse is imported at module level (``hpc-botan --help`` stays fast); each handler imports
its figure module when it runs.
"""
from __future__ import annotations

import argparse

EPILOG_ALL = "example: hpc-botan plot all runs/ka"


def _print_outcome(files, caption: str) -> None:
    for path in files:
        print(f"written {path}")
    print(caption)


def _cmd_simple(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plots.figures import FIGURES

    result = FIGURES[args.figure](args.run_dir, args.out)
    _print_outcome(result.files, result.caption)
    return 0


def _cmd_maps(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plots.maps import figure_maps
    from hpc_botan.plots.snapshot import MAP_THICKNESS

    result = figure_maps(args.run_dir, args.out, temperature=args.temperature, configuration=args.configuration,
                         time_index=args.time_index, z0=args.z0, thickness=args.thickness or MAP_THICKNESS)
    _print_outcome(result.files, result.caption)
    return 0


def _cmd_displacement(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plots.displacement import figure_displacement
    from hpc_botan.plots.snapshot import DISPLACEMENT_THICKNESS

    result = figure_displacement(args.run_dir, args.out, temperature=args.temperature,
                                 configuration=args.configuration, time_index=args.time_index, z0=args.z0,
                                 thickness=args.thickness or DISPLACEMENT_THICKNESS)
    _print_outcome(result.files, result.caption)
    return 0


def _cmd_pair_pdf(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plots.pairs import figure_pair_pdf

    result = figure_pair_pdf(args.run_dir, args.out, temperature=args.temperature, time_indices=args.time_indices,
                             max_distance=args.max_distance, split=args.split)
    _print_outcome(result.files, result.caption)
    return 0


def _cmd_learning(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plots.learning import figure_learning

    result = figure_learning(args.run_dir, args.out, tasks=args.tasks)
    _print_outcome(result.files, result.caption)
    return 0


def _cmd_rho_vs_p(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plots.accuracy import figure_rho_vs_weight

    result = figure_rho_vs_weight(args.run_dirs, args.out, temperature=args.temperature, time_index=args.time_index)
    _print_outcome(result.files, result.caption)
    return 0


def _cmd_tau_alpha(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plots.dynamics import figure_tau_alpha

    result = figure_tau_alpha(args.run_dirs, args.out)
    _print_outcome(result.files, result.caption)
    return 0


def _cmd_all(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plots.figures import write_all_figures

    outcomes = write_all_figures(args.run_dir, args.out)
    for outcome in outcomes:
        if outcome.files:
            _print_outcome(outcome.files, f"  {outcome.name}: {outcome.text}")
    print(f"plot all: {sum(o.written for o in outcomes)} figure(s) written, "
          f"{sum(not o.written for o in outcomes)} skipped")
    return 0


def _run_dir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", metavar="DIR", help="write the figure here instead of RUN_DIR/figures")


def _snapshot_args(p: argparse.ArgumentParser, thickness: float) -> None:
    p.add_argument("--temperature", type=float, metavar="T", help="temperature to show (default: the lowest)")
    p.add_argument("--configuration", type=int, metavar="ID",
                   help="configuration id (catalog id in targets/index.h5; default: the first test configuration)")
    p.add_argument("--time-index", type=int, metavar="K",
                   help="time point (0-based; negative counts from the end; default: the last one <= tau_alpha)")
    p.add_argument("--z0", type=float, metavar="Z", help="slab centre in sigma (default: the middle of the box)")
    p.add_argument("--thickness", type=float, metavar="DZ", help=f"slab thickness in sigma (default: {thickness})")


def add_parser(subparsers) -> None:
    """Register ``plot`` and its figures on the top-level ``subparsers``."""
    raw = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "plot", help="the paper's figures from a run directory (PNG + PDF under RUN_DIR/figures)",
        formatter_class=raw,
        description="Draw one of the paper's figures from a run directory's targets, training metrics and evaluation. "
                    "Every figure is written as RUN_DIR/figures/<name>.png and .pdf (--out DIR elsewhere). "
                    "A figure whose inputs are missing ends with one line naming the command that makes them.",
        epilog="examples:\n  hpc-botan plot all runs/ka\n  hpc-botan plot rho-nodes runs/ka\n"
               "  hpc-botan plot maps runs/ka --time-index 3")
    sub = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    for name, help_text, description, reads in (
            ("rho-nodes", "Pearson rho of S_i against time, BOTAN vs NT-GNN (Fig. 3)",
             "Pearson rho between predicted and actual propensity S_i (type A) against time, one panel per "
             "temperature: median over replicas (line), best to worst (band), ensemble mean (circles), noise "
             "ceiling (dashed), and the baselines of eval/baselines.json when it exists.",
             "eval/metrics.json [eval/baselines.json]"),
            ("rho-edges", "Pearson rho of E_ij against time (Fig. 1c)",
             "Pearson rho between predicted and actual pair-distance change E_ij (A-A pairs closer than 1.35) "
             "against time for BOTAN and the baselines that predict E_ij, drawn as rho-nodes.",
             "eval/metrics.json [eval/baselines.json]"),
            ("fs", "self-intermediate scattering function F_s(k, t) with tau_alpha (Fig. S2)",
             "F_s(k = 2 pi, t) of A particles with tau_alpha, from the trajectories (simulate/) when there are "
             "any, else from the targets' per-configuration F_s (imported data sets).",
             "simulate/T*/*.h5 or targets/index.h5")):
        q = sub.add_parser(name, help=help_text, formatter_class=raw, description=f"{description}\n\nreads: {reads}",
                           epilog=f"example: hpc-botan plot {name} runs/ka")
        _run_dir_args(q)
        q.set_defaults(handler=_cmd_simple)

    q = sub.add_parser(
        "maps", help="actual, predicted and error maps of E_ij and S_i in a slab (Figs. 1a-b, 2a-d)",
        formatter_class=raw,
        description="Cross-section of one configuration: E_ij on A-A pairs closer than 1.35 drawn as coloured "
                    "segments and S_i as coloured particles, actual, predicted (ensemble mean of the finished BOTAN "
                    "fine-tune replicas, and NT-GNN when trained) and their errors (prediction - actual).\n\n"
                    "reads: targets/index.h5, train/botan/finetune/T*/t*/replica-*/best.pt (final.pt), "
                    "train/ntgnn/… when present",
        epilog="example: hpc-botan plot maps runs/ka --configuration 412 --time-index 6")
    _run_dir_args(q)
    _snapshot_args(q, 0.8)
    q.set_defaults(handler=_cmd_maps)

    q = sub.add_parser(
        "displacement", help="locally averaged displacement field in a slab (Fig. 2e)", formatter_class=raw,
        description="The actual displacement averaged over each particle's first shell and the ensemble, as arrows "
                    "of its in-plane components coloured by magnitude, over S_i (BOTAN predicts no vectors).\n\n"
                    "reads: targets/index.h5 (local_displacement, propensity)",
        epilog="example: hpc-botan plot displacement runs/ka --time-index 6")
    _run_dir_args(q)
    _snapshot_args(q, 1.2)
    q.set_defaults(handler=_cmd_displacement)

    q = sub.add_parser(
        "pair-pdf", help="joint PDF of E_ij(t) and r_ij(0) (Figs. 1d, S3)", formatter_class=raw,
        description="2-D histogram (log colour) of the pair-distance change against the initial distance of A-A "
                    "pairs, one panel per time point, from the targets of the test split (all configurations if "
                    "there is none).\n\nreads: targets/index.h5",
        epilog="example: hpc-botan plot pair-pdf runs/ka --time-index 2 --time-index 6")
    _run_dir_args(q)
    q.add_argument("--temperature", type=float, metavar="T", help="temperature (default: the lowest)")
    q.add_argument("--time-index", dest="time_indices", type=int, action="append", metavar="K",
                   help="time point to show (repeatable; default: up to 6 spread over all time points)")
    q.add_argument("--max-distance", type=float, default=1.35, metavar="R",
                   help="pairs closer than this at t = 0, sigma (default: 1.35; 2.0 for the whole graph)")
    q.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="configurations to use (default: test)")
    q.set_defaults(handler=_cmd_pair_pdf)

    q = sub.add_parser(
        "learning", help="learning curves: loss and validation rho per epoch (Figs. S4, S6, S7)", formatter_class=raw,
        description="Training and validation loss and the validation rho of S_i and E_ij per epoch, one line per "
                    "replica, one column per task (default: one task per family - BOTAN pretraining, BOTAN, "
                    "NT-GNN - at the lowest temperature and the time point closest to tau_alpha).\n\n"
                    "reads: train/<task>/replica-*/metrics.csv",
        epilog="example: hpc-botan plot learning runs/ka --task botan/finetune/T0.440/t06 --task ntgnn/T0.440/t06")
    _run_dir_args(q)
    q.add_argument("--task", dest="tasks", action="append", metavar="NAME", help="task to show (repeatable)")
    q.set_defaults(handler=_cmd_learning)

    q = sub.add_parser(
        "rho-vs-p", help="rho of S_i and E_ij against the loss weight p, from several runs (Fig. S5)",
        formatter_class=raw,
        description="BOTAN's rho of S_i and E_ij against p (train.node_weight), one point per run directory, at one "
                    "temperature and time point. Needs runs with at least two different p. Written to the first "
                    "RUN_DIR's figures/ (or --out).\n\nreads: RUN_DIR/config.yaml and RUN_DIR/eval/metrics.json of each",
        epilog="example: hpc-botan plot rho-vs-p runs/p0.0 runs/p0.4 runs/p0.8 --time-index 3")
    q.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    q.add_argument("--out", metavar="DIR", help="write the figure here instead of the first RUN_DIR/figures")
    q.add_argument("--temperature", type=float, metavar="T", help="temperature (default: the lowest)")
    q.add_argument("--time-index", type=int, metavar="K",
                   help="time point (default: the last one <= tau_alpha among the first run's BOTAN tasks)")
    q.set_defaults(handler=_cmd_rho_vs_p)

    q = sub.add_parser(
        "tau-alpha", help="tau_alpha(T) of several runs against the published values, and their ratio",
        formatter_class=raw,
        description="tau_alpha (F_s(k = 2 pi) of A particles = 1/e; mean over configurations with its standard error) "
                    "of every temperature of every RUN_DIR against 1/T beside the published values (16.5, 52, 217, "
                    "4120 at T = 0.64, 0.56, 0.50, 0.44), and ours / published. Prints the table (markdown). Written "
                    "to the first RUN_DIR's figures/ (or --out).\n\nreads: RUN_DIR/simulate/T*/*.h5 of each",
        epilog="example: hpc-botan plot tau-alpha runs/T064 runs/T056 runs/T050 --out docs/figures")
    q.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    q.add_argument("--out", metavar="DIR", help="write the figure here instead of the first RUN_DIR/figures")
    q.set_defaults(handler=_cmd_tau_alpha)

    q = sub.add_parser(
        "all", help="every figure the run's data allows", formatter_class=raw,
        description="Write every figure whose inputs exist; for each one skipped, log one line saying why.",
        epilog=EPILOG_ALL)
    _run_dir_args(q)
    q.set_defaults(handler=_cmd_all)
