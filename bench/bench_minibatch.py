"""Benchmark: one step of the minibatch SDEs (per-sample gradients included) against one step of the
real optimizer on a minibatch, MLP and CNN, all in one run (issue 18).

For each model and torch thread count (1, and every core this process may use), it runs
``validate_minibatch`` with SGD, B = 8, for ``--steps`` steps on ``--seeds`` seeds and prints the
wall time per step per seed of each run (the optimizer, ``minibatch-full``, ``minibatch-diag``,
``isotropic``), and its ratio to the optimizer's step measured in the same run. ``minibatch-full``
and ``-diag`` measure Sigma(x) at every step (per-sample gradients by torch.func over the N samples),
``isotropic`` needs only the full-batch gradient.

    python bench/bench_minibatch.py [--steps 10] [--seeds 4]
"""

from __future__ import annotations

import argparse
import os

from derive.validate.minibatch_validation import VARIANTS, validate_minibatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    print("| model | torch threads | run | ms per step per seed | ratio to the optimizer's step |")
    print("|---|---|---|---|---|")
    for model in ("mlp", "cnn"):
        for threads in sorted({1, cores}):
            result = validate_minibatch(
                model,
                "sgd",
                batch=8,
                eta=0.1,
                steps=args.steps,
                seeds=range(args.seeds),
                replicate=False,
                n_boot=0,
                threads=threads,
            )
            per_step = {k: v / (args.steps * args.seeds) for k, v in result.run_seconds.items()}
            for label in ("optimizer", *VARIANTS):
                print(
                    f"| {model} ({result.dim} parameters) | "
                    f"{threads} | {label} | {1e3 * per_step[label]:.2f} | {per_step[label] / per_step['optimizer']:.1f} |"
                )


if __name__ == "__main__":
    main()
