"""Benchmark: derive every built-in combination, against SymPy's direct expectation of sign().

    python bench/bench_derive.py            # full run (about 30-60 s on 2 cores)

Part 1 derives optimizer x law x regime x form for all built-ins in this fresh process (laws at
their defaults: student-t with symbolic nu), the way `derive sde` does, and prints the total,
the slowest single derivation and the targets (all together < 15 s cold, any one < 2 s, in
particular each derivation of the piecewise built-ins lion, signum, clipsgd and sgdm).
Part 2 is the baseline measured in the same run: E[sign(y + zeta)] by sympy.stats.E (direct
integration) against the CDF route of derive.noise, per law, with a time limit per law.
Part 3 derives the order-2 SDE (paper regime, full form) of every built-in under every law, each
optimizer in a fresh process, its first law (gaussian) with cold caches; the order-1 derivation is
timed after it in the same process (it then reuses the law's caches). Target: every combination that
admits order 2 in under 5 s.
Part 4 (issue 19) derives every law x regime x form of each optimizer of everyday training
(sgd_momentum, nesterov, adam_fixed, usam, schedulefree_sgd, adagrad), each in a fresh process with
cold caches (its first row, gaussian paper full, is the cold one), beside adam and rmsprop run the
same way as the baseline measured in the same run. Target: every derivation under 2 s.

    python bench/bench_derive.py --only-new   # Part 4 alone (about a minute)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from itertools import product

import sympy as sp

from derive import BUILTINS, FORMS, REGIMES, DeriveError, derive_sde, get_noise
from derive.noise import BUILTIN_LAWS as LAWS

#: all built-ins together, cold (issue 11)
TOTAL_TARGET = 15.0
#: the optimizers of everyday training (issue 19), whether or not their simulators are generated yet
EVERYDAY = ("sgd_momentum", "nesterov", "adam_fixed", "usam", "schedulefree_sgd", "adagrad")
#: the built-ins averaged through piecewise functions of the noise (issue 11)
NEW_BUILTINS = ("lion", "signum", "clipsgd", "sgdm")


def derive_all() -> list[tuple[str, str, str, str, float, str]]:
    rows = []
    for opt, law, regime, form in product(BUILTINS, LAWS, REGIMES, FORMS):
        start = time.perf_counter()
        try:
            derive_sde(opt, law, regime, form)
            status = "ok"
        except DeriveError as exc:
            status = type(exc).__name__
        rows.append((opt, law, regime, form, time.perf_counter() - start, status))
    return rows


def _sympy_direct(law: str, queue: mp.Queue) -> None:
    from sympy.stats import E, Laplace, Normal, StudentT, Uniform

    y = sp.Symbol("y", real=True)
    z = {
        "gaussian": Normal("Z", 0, 1),
        "student-t": StudentT("Z", sp.Symbol("nu", positive=True)),
        "cauchy": StudentT("Z", 1),
        "laplace": Laplace("Z", 0, 1),
        "uniform": Uniform("Z", -1, 1),
    }[law]
    start = time.perf_counter()
    result = E(sp.sign(y + z))
    queue.put((time.perf_counter() - start, "unevaluated integral" if result.has(sp.Integral) else "closed form"))


def baseline(law: str, limit: float) -> tuple[float, str]:
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=_sympy_direct, args=(law, queue))
    proc.start()
    proc.join(limit)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return limit, f"no answer within {limit:.0f} s"
    return queue.get()


def ours(law: str) -> float:
    start = time.perf_counter()
    get_noise(law).s(sp.Symbol("y", real=True))
    return time.perf_counter() - start


def _order2_cold(opt: str, queue: mp.Queue) -> None:
    """In a fresh process: the order-2 derivation of ``opt`` under every law (gaussian first, cold)."""
    out = []
    for law in LAWS:
        start = time.perf_counter()
        try:
            derive_sde(opt, law, "paper", "full", order=2)
            status = "ok"
        except DeriveError as exc:
            status = type(exc).__name__
        out.append((law, time.perf_counter() - start, status))
    queue.put(out)


def order2_rows() -> list[tuple[str, str, float, str]]:
    """(optimizer, law, seconds, status), one fresh process per optimizer."""
    ctx = mp.get_context("spawn")
    rows = []
    for opt in BUILTINS:
        queue = ctx.Queue()
        proc = ctx.Process(target=_order2_cold, args=(opt, queue))
        proc.start()
        rows += [(opt, *r) for r in queue.get()]
        proc.join()
    return rows


#: the baseline of Part 4: existing built-ins derived the same way (cold, in a fresh process)
PART4_BASELINE = ("adam", "rmsprop")
#: Part 4's optimizers of everyday training (issue 19), all in BUILTINS
EVERYDAY = ("sgd_momentum", "nesterov", "adam_fixed", "usam", "schedulefree_sgd", "adagrad")


def _all_cold(opt: str, queue: mp.Queue) -> None:
    """In a fresh process: every law x regime x form of ``opt`` (gaussian paper full first, cold)."""
    out = []
    for law, regime, form in product(LAWS, REGIMES, FORMS):
        start = time.perf_counter()
        try:
            derive_sde(opt, law, regime, form)
            status = "ok"
        except DeriveError as exc:
            status = type(exc).__name__
        out.append((law, regime, form, time.perf_counter() - start, status))
    queue.put(out)


def part4() -> bool:
    """Part 4: the optimizers of everyday training beside adam and rmsprop; True if every one is < 2 s."""
    print(
        "\nPart 4: the optimizers of everyday training (issue 19), every law x regime x form, each optimizer in a "
        "fresh process (first row gaussian paper full, cold), beside existing built-ins derived the same way"
    )
    ctx = mp.get_context("spawn")
    times = {}
    for opt in (*PART4_BASELINE, *EVERYDAY):
        queue = ctx.Queue()
        proc = ctx.Process(target=_all_cold, args=(opt, queue))
        proc.start()
        times[opt] = queue.get()
        proc.join()
    reference = max(times[o][0][3] for o in PART4_BASELINE)
    print(f"  {'optimizer':17s} {'cold first':>10s} {'vs base':>8s} {'slowest':>8s} {'all':>7s}  derived/refused")
    met = True
    for opt, rows in times.items():
        slowest = max(rows, key=lambda r: r[3])
        derived = sum(r[4] == "ok" for r in rows)
        print(
            f"  {opt:17s} {rows[0][3]:9.2f}s {rows[0][3] / reference:7.2f}x {slowest[3]:7.2f}s "
            f"{sum(r[3] for r in rows):6.2f}s  {derived}/{len(rows) - derived}"
            + ("  (baseline)" if opt in PART4_BASELINE else f"  slowest: {' '.join(slowest[:3])}")
        )
        if opt in EVERYDAY:
            met = met and slowest[3] < 2
    print(f"  target: every derivation of the six under 2 s: {'met' if met else 'MISSED'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline-limit", type=float, default=30.0, help="seconds allowed per sympy.stats expectation"
    )
    parser.add_argument("--only-new", action="store_true", help="run Part 4 only (issue 19's built-ins)")
    args = parser.parse_args()
    if args.only_new:
        return 0 if part4() else 1

    start = time.perf_counter()
    rows = derive_all()
    total = time.perf_counter() - start
    slowest = max(rows, key=lambda r: r[4])
    print(
        f"Part 1: {len(rows)} built-in combinations ({sum(r[5] == 'ok' for r in rows)} derived, "
        f"{sum(r[5] != 'ok' for r in rows)} refused with a clear error)"
    )
    for opt in BUILTINS:
        mine = [r for r in rows if r[0] == opt]
        print(
            f"  {opt:9s} {len(mine):3d} combinations  {sum(r[4] for r in mine):6.2f} s  slowest {max(r[4] for r in mine):5.2f} s"
        )
    print(
        f"  total {total:.2f} s (target < {TOTAL_TARGET:g} s: {'met' if total < TOTAL_TARGET else 'MISSED'}); slowest single "
        f"{slowest[4]:.2f} s = {' '.join(slowest[:4])} (target < 2 s: {'met' if slowest[4] < 2 else 'MISSED'})"
    )
    new = [r for r in rows if r[0] in NEW_BUILTINS]
    worst = max(new, key=lambda r: r[4])
    print(
        f"  new built-ins ({', '.join(NEW_BUILTINS)}): slowest single {worst[4]:.2f} s = {' '.join(worst[:4])} "
        f"(target < 2 s: {'met' if worst[4] < 2 else 'MISSED'})"
    )

    print("\nPart 2: E[sign(y + zeta)], sympy.stats.E (direct) against the CDF route (cached laws cleared)")
    print(f"  {'law':10s} {'direct s':>9s} {'result':28s} {'CDF route s':>11s} {'ratio':>7s}")
    from derive import noise as noise_module

    noise_module._LAWS.clear()
    for law in LAWS:
        direct, status = baseline(law, args.baseline_limit)
        mine = ours(law)
        print(f"  {law:10s} {direct:9.2f} {status:28s} {mine:11.3f} {direct / mine:7.1f}x")

    print(
        "\nPart 3: order-2 SDEs (paper, full; order-1 derivation included), each optimizer in a fresh process, "
        "gaussian first (cold caches)"
    )
    rows2 = order2_rows()
    for opt in BUILTINS:
        mine = [r for r in rows2 if r[0] == opt]
        cells = [f"{law} {t:.2f} s" + ("" if st == "ok" else f" ({st})") for _, law, t, st in mine]
        print(f"  {opt:9s} " + "  ".join(cells))
    admitted = [r for r in rows2 if r[3] == "ok"]
    slowest2 = max(admitted, key=lambda r: r[2])
    print(
        f"  {len(admitted)} of {len(rows2)} admit order 2; slowest {slowest2[2]:.2f} s = {slowest2[0]} {slowest2[1]} "
        f"(target < 5 s: {'met' if slowest2[2] < 5 else 'MISSED'})"
    )
    new_met = part4()
    return 0 if total < TOTAL_TARGET and slowest[4] < 2 and slowest2[2] < 5 and new_met else 1


if __name__ == "__main__":
    sys.exit(main())
