"""Benchmark: `derive report` at one size from empty caches: total, per-section, per-kernel and per-task times.

Runs the report as `derive report` does (a LocalCluster of one process per core, or ``--workers
N``, or ``--serial``), with new, empty ``NUMBA_CACHE_DIR`` and ``DERIVE_CACHE_DIR`` (unless
``--warm``) and the kernel warm-up on (one task per kernel, before the tasks, even serially). It
prints the wall time of the whole and of each section, and the CPU seconds (user + system, every
thread of the process that ran it; robust on a shared machine, where wall times are not) and wall
seconds of compiling each kernel, of each task and of each section, and what that predicts for the
wall time on W workers of one thread each (longest task first onto the least-loaded worker,
compile phase then task phase; startup and the writing of the report counted serially). With empty
caches the warm-up is the compile time; with ``--warm`` (the caches of this shell) it is the time
to load the kernels.

    python bench/bench_report.py                         (default size, fresh caches, one worker per core)
    python bench/bench_report.py --size full --serial --warm
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def schedule(costs: list[float], workers: int) -> float:
    """Makespan of ``costs`` on ``workers`` machines, longest first onto the least-loaded one."""
    loads = [0.0] * workers
    for c in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += c
    return max(loads) if loads else 0.0


def fresh_caches() -> None:
    """Point Numba and derive at new, empty cache folders (before Numba is imported; the workers of
    a LocalCluster inherit the environment)."""
    for name in ("NUMBA_CACHE_DIR", "DERIVE_CACHE_DIR"):
        os.environ[name] = tempfile.mkdtemp(prefix=f"bench_report_{name.split('_')[0].lower()}_")


def main() -> None:
    if "--warm" not in sys.argv[1:]:
        fresh_caches()
    from derive import report
    from derive.executor import open_executor

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="default", choices=list(report.SIZES))
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, default=None, help="a LocalCluster of N processes (default: one per core)"
    )
    where.add_argument("--serial", action="store_true", help="every task in this process")
    p.add_argument("--warm", action="store_true", help="keep this shell's caches (default: new, empty ones)")
    p.add_argument("--out", default=None, help="the report's folder (default: a temporary one)")
    p.add_argument("--top", type=int, default=15, help="how many of the costliest kernels and tasks to list")
    args = p.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="bench_report_")
    started = time.perf_counter()
    with open_executor(workers=args.workers, serial=args.serial) as executor:
        report.build(out, setting=report.SIZES[args.size], executor=executor, warm=True, progress=None)
    wall = time.perf_counter() - started
    t = json.load(open(os.path.join(out, "report.json")))["timings"]
    kernels, tasks = t["warm_up"]["by_kernel"], t["tasks"]
    print(f"derive report, size {args.size}, on {t['executor']}; report in {out}")
    for name in ("NUMBA_CACHE_DIR", "DERIVE_CACHE_DIR"):
        print(f"{name}={os.environ.get(name, '(default)')}{'' if args.warm else ' (new, empty)'}")
    print(f"total: wall {wall:.0f} s, CPU {t['cpu_seconds']:.0f} s")
    for title, rows in (("kernels (warm-up)", kernels), ("tasks", tasks)):
        cpu = sum(r["cpu_seconds"] for r in rows.values())
        print(f"\n{title}: {len(rows)}, CPU {cpu:.0f} s, wall {sum(r['seconds'] for r in rows.values()):.0f} s")
        for key, r in sorted(rows.items(), key=lambda kv: -kv[1]["cpu_seconds"])[: args.top]:
            print(f"  {key:60s} CPU {r['cpu_seconds']:7.1f} s  wall {r['seconds']:7.1f} s")
    print(f"\n{report.time_line(t)}")
    print("\nsections (task CPU, writing included):")
    for name, s in t["sections"].items():
        print(f"  {name:12s} {s['tasks']:4d} tasks  CPU {s['cpu_seconds']:7.1f} s  wall {s['seconds']:7.1f} s")
    rest = t["cpu_seconds"] - sum(r["cpu_seconds"] for r in (*kernels.values(), *tasks.values()))
    print(f"  outside the tasks (imports, planning, writing): CPU {rest:.0f} s")
    for w in (1, 2, 4):
        compile_ = schedule([r["cpu_seconds"] for r in kernels.values()], w)
        run = schedule([r["cpu_seconds"] for r in tasks.values()], w)
        print(
            f"predicted wall on {w} worker(s) of one core: compile {compile_:.0f} s + tasks {run:.0f} s + "
            f"the rest {rest:.0f} s = {compile_ + run + rest:.0f} s"
        )


if __name__ == "__main__":
    main()
