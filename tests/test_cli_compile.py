"""`derive compile`: which modules it warms, its refusals, and (slow) that a later process loads
what it compiled instead of compiling again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from derive.cli import main


def test_unknown_names_get_one_line_and_status_2(capsys):
    assert main(["compile", "sgd", "nosuch", "adamx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuch, adamx" in err[0] and "allowed: sgd" in err[0]


def test_it_warms_every_module_of_the_named_builtins_and_nothing_else(monkeypatch, capsys):
    import derive.cli.compile as compile_cli

    warmed = []
    monkeypatch.setattr(compile_cli, "warm", warmed.append)
    assert main(["compile", "signum", "sgd"]) == 0
    names = sorted(c.module_name for c in warmed)
    assert names == sorted(
        [
            "signum_gaussian_paper_full",
            "signum_gaussian_paper_published",
            "sgd_gaussian_paper_full",
            "sgd_gaussian_paper_published",
            "sgd_gaussian_paper_full_order2",
        ]
    )
    assert "compiled 5 module(s), float64 and float32: signum, sgd" in capsys.readouterr().out


@pytest.mark.slow
def test_a_later_process_loads_the_compiled_kernels(tmp_path):
    """After `derive compile signum` in fresh caches, a new process simulating the SDE (float32,
    weak2) and the optimizer finds every path loop it calls in the cache: hits, no misses."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), DERIVE_CACHE_DIR=str(tmp_path / "derive"))
    subprocess.run([sys.executable, "-m", "derive", "compile", "signum"], env=env, check=True, capture_output=True)
    code = (
        "import numpy as np; from derive import simulate as sim; from derive.combination import Combination\n"
        "c = Combination('signum'); m = sim.load_module(c)\n"
        "kw = dict(eta=0.01, sigma=1.0, steps=3, seed=1, landscape=sim.quadratic([1.0, 3.0]))\n"
        "sim.run('sde', c, np.ones((4, 2), np.float32), scheme='weak2', **kw)\n"
        "sim.run('optimizer', c, np.ones((4, 2)), **kw)\n"
        "s = [m._SIMULATORS._cached[k].stats for k in ('_sde_chunks', '_opt_chunks')]\n"
        "print(sum(sum(x.cache_hits.values()) for x in s), sum(sum(x.cache_misses.values()) for x in s))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    hits, misses = (int(v) for v in out.stdout.split())
    assert hits == 2 and misses == 0
