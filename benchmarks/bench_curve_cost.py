"""Cost of the whole ρ(t) curve of one temperature: per_time (one network per time point) against
multi_time (one network with a column per time point), from steps measured in one run.

On configuration 1 of the shared sample (4096 particles, 166,484 edges) the script times a full
training step (forward, backward, clip, Adam; p = 0.4, standardised loss as trained) of the default
BOTAN network with 1 output column and with ``--times`` columns, alternating the two so that both
see the same machine state, and reports the median of ``--steps`` steps each.  The cost of a curve
then follows from the recipe (REFERENCE §3): per_time trains ``--times`` BOTAN fine-tunings and as
many NT-GNNs, multi_time one of each, every one for ``--epochs`` epochs over ``--configurations``
training graphs (NT-GNN with 5 graphs per step), for ``--replicas`` replicas; the shared pretraining
is the same in both and left out.

    python benchmarks/bench_curve_cost.py --steps 10

GPU-hours are estimated by scaling the measured CPU step with the paper's A100 figure (18 ms per
graph step for the reference network, REFERENCE §3) in proportion, which is an estimate, not a
measurement.  Accuracy at equal epochs is compared in docs/accuracy.md (the quick runs).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_train import configuration_1  # noqa: E402

A100_SECONDS_PER_GRAPH_STEP = 0.018


def step_seconds(n_outputs: int, graph, steps: int, timings: list[float]) -> None:
    import torch

    from hpc_botan.model.botan import Botan, BotanArchitecture
    from hpc_botan.train.step import loss_terms

    x, edge_index, edge_attr, y_node, y_edge = graph
    torch.manual_seed(0)
    model = Botan(BotanArchitecture(n_outputs=n_outputs))
    model.set_output_standardisation(y_node.mean(0).expand(n_outputs), y_node.std(0).expand(n_outputs),
                                     y_edge.mean(0).expand(n_outputs), y_edge.std(0).expand(n_outputs))

    class G:  # the graph as loss_terms reads it
        pass

    g = G()
    g.y_node, g.y_edge = y_node.expand(-1, n_outputs), y_edge.expand(-1, n_outputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    for k in range(steps + 1):
        t0 = time.perf_counter()
        node, edge = model(x, edge_index, edge_attr)
        loss, _, _ = loss_terms(node, edge, g, 0.4, node_scale=model.node_scale, edge_scale=model.edge_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if k > 0:  # the first step pays the allocator's warm-up
            timings.append(time.perf_counter() - t0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two variants")
    parser.add_argument("--times", type=int, default=10, help="time points of the curve")
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--configurations", type=int, default=400, help="training graphs per temperature")
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args(argv)
    graph = configuration_1()
    single, multi = [], []
    for _ in range(args.rounds):
        step_seconds(1, graph, args.steps, single)
        step_seconds(args.times, graph, args.steps, multi)
    t1, tk = statistics.median(single), statistics.median(multi)
    # graph steps of one task: BOTAN one graph per step; NT-GNN 5 graphs per step, each graph costs a graph step
    graph_steps_per_task = args.epochs * args.configurations
    tasks_per_time, tasks_multi = 2 * args.times, 2
    steps_per_time = tasks_per_time * graph_steps_per_task * args.replicas
    steps_multi = tasks_multi * graph_steps_per_task * args.replicas
    cpu_per_time, cpu_multi = steps_per_time * t1, steps_multi * tk
    # an A100 graph step of the 1-column network, scaled by the measured cost of the extra columns
    gpu_per_time = steps_per_time * A100_SECONDS_PER_GRAPH_STEP / 3600
    gpu_multi = steps_multi * A100_SECONDS_PER_GRAPH_STEP * (tk / t1) / 3600
    print(f"measured step (median of {len(single)}): 1 column {t1:.3f} s, {args.times} columns {tk:.3f} s "
          f"({tk / t1:.3f}x)")
    print(f"curve of {args.times} time points, {args.epochs} epochs x {args.configurations} graphs, "
          f"BOTAN + NT-GNN, {args.replicas} replica(s):")
    print(f"  per_time   {tasks_per_time:3d} tasks  {cpu_per_time / 3600:10.1f} CPU-hours here  "
          f"~{gpu_per_time:8.1f} A100-hours")
    print(f"  multi_time {tasks_multi:3d} tasks  {cpu_multi / 3600:10.1f} CPU-hours here  "
          f"~{gpu_multi:8.1f} A100-hours")
    print(f"  ratio per_time / multi_time: {cpu_per_time / cpu_multi:.2f}x")


if __name__ == "__main__":
    main()
