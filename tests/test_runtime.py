"""The shared runtime and the modules built on it: no name capture, modules keyed by content, a
changed runtime never run from a stale module or Numba cache, atomic writes."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from derive import runtime
from derive.combination import Combination
from derive.errors import SpecError
from derive.simulate import load_module, module_dir_for, quadratic, random_start, run

ORDINARY = """
from derive import Optimizer, State

spec = Optimizer(
    name="plain", hyper={"eta": "lr", "beta": "decay", "eps": "eps", "scale": "const"},
    state=[State("m"), State("v", positive=True)],
    update=[("m", "beta*m + (1 - beta)*grad"), ("v", "beta*v + (1 - beta)*grad**2"),
            ("den", "sqrt(v) + eps"), ("x", "x - eta*scale*m/den")],
    defaults={"beta": 0.9, "eps": 0.1, "scale": 0.5})
"""
# the same optimizer, every name one the generator used to own (constants c0.., parameter vector p,
# float type T, step dt/sqdt, normals xi1, modules math/np, loop names)
CAPTURING = """
from derive import Optimizer, State

spec = Optimizer(
    name="capture", hyper={"c0": "lr", "c1": "decay", "sqdt": "eps", "T": "const"},
    state=[State("p"), State("xi1", positive=True)],
    update=[("p", "c1*p + (1 - c1)*grad"), ("xi1", "c1*xi1 + (1 - c1)*grad**2"),
            ("np", "sqrt(xi1) + sqdt"), ("x", "x - c0*T*p/np")],
    defaults={"c1": 0.9, "sqdt": 0.1, "T": 0.5})
"""


def _spec_file(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return f"{path}:spec"


@pytest.mark.slow
def test_names_of_generated_code_cannot_be_captured(tmp_path):
    """A spec named like the generator's own variables simulates exactly as one with plain names
    (before the underscore prefix, c0 = p[1] was overwritten by c0 = -eta: wrong results)."""
    x0 = random_start(64, 3, 5)
    land = quadratic([1.0, 2.0, 4.0])
    out = {}
    for label, text in (("plain", ORDINARY), ("capture", CAPTURING)):
        ref = _spec_file(tmp_path, label, text)
        combo = Combination(ref)
        out[label] = [
            run(
                kind,
                combo,
                x0,
                eta=0.05,
                sigma=0.7,
                steps=60,
                seed=3,
                landscape=land,
                keep=True,
                record=[0, 30, 60],
                module_dir=tmp_path / "mods",
            )
            for kind in ("optimizer", "sde")
        ]
    for a, b in zip(out["plain"], out["capture"]):
        np.testing.assert_allclose(a.path, b.path, rtol=1e-12, atol=1e-14)
        assert np.ptp(a.path[-1]) > 0  # the runs did move


@pytest.mark.parametrize(
    "bad, why", [("_c0", "underscore"), ("max", "built-in"), ("lambda", "keyword"), ("a-b", "not a Python identifier")]
)
def test_spec_refuses_names_reserved_for_generated_code(bad, why):
    from derive import Optimizer

    with pytest.raises(SpecError, match=why):
        Optimizer(name="o", hyper={"eta": "lr", bad: "const"}, update=[("x", "x - eta*grad")])


def test_user_modules_are_keyed_by_content_and_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(tmp_path / "cache"))
    ref = _spec_file(tmp_path, "opt", ORDINARY)
    combo = Combination(ref)
    assert module_dir_for(combo) == tmp_path / "cache"
    assert module_dir_for(Combination("sgd")) is None  # built-in
    first = load_module(combo, module_dir_for(combo))
    path = tmp_path / "cache" / f"{combo.module_name}.py"
    key = first.KEY
    assert f"# Key: {key} " in path.read_text()
    # the spec changes under the same name: a new key, the module is regenerated
    _spec_file(tmp_path, "opt", ORDINARY.replace('"scale": 0.5', '"scale": 0.25'))
    second = load_module(combo, module_dir_for(combo))
    assert second.KEY != key and f"# Key: {second.KEY} " in path.read_text()
    # a module whose header carries another key (another tool version, a stale file) is replaced
    path.write_text(path.read_text().replace(second.KEY, "0" * 64))
    third = load_module(combo, module_dir_for(combo))
    assert f"# Key: {second.KEY} " in path.read_text() and third.KEY == second.KEY
    assert not list(path.parent.glob(".*.tmp*"))  # atomic writes leave no temporary files


def test_a_changed_runtime_is_never_run_from_a_stale_module_or_cache(tmp_path, monkeypatch):
    """The runtime's hash keys every module: with another runtime, a built-in module is not used
    (a fresh one is generated into the user cache) and a user module is regenerated; the new file's
    text differs, so Numba compiles its kernels afresh instead of loading the old cache."""
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(tmp_path / "cache"))
    combo = Combination("sgd")
    builtin = load_module(combo)
    assert builtin.RUNTIME_HASH == runtime.runtime_hash()
    x0 = random_start(8, 2, 1)

    def simulate(module):
        p = np.array([0.01, 1.0])
        module.simulate_optimizer(x0, p, np.ones(2), 5, np.array([5]), 0, 4, False)
        return module._SIMULATORS._cached["_opt_chunks"].stats  # the optimizer's path loop (derive.runtime.paths)

    user_dir = tmp_path / "user"
    before = load_module(combo, user_dir)
    simulate(before)
    monkeypatch.setattr(runtime, "runtime_hash", lambda: "f" * 16)
    import derive.codegen.model as model

    monkeypatch.setattr(model, "runtime_hash", lambda: "f" * 16)
    fresh = load_module(combo)
    assert fresh is not builtin and fresh.RUNTIME_HASH == "f" * 16
    assert str(tmp_path / "cache") in fresh.__file__
    after = load_module(combo, user_dir)
    assert after is not before and after.RUNTIME_HASH == "f" * 16 and after.KEY != before.KEY
    stats = simulate(after)
    assert sum(stats.cache_misses.values()) >= 1 and sum(stats.cache_hits.values()) == 0


def test_generate_refuses_a_name_the_file_does_not_define(tmp_path, capsys):
    from derive.cli import main

    ref = _spec_file(tmp_path, "opt", ORDINARY).replace(":spec", ":nothing")
    assert main(["generate", ref, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not define 'nothing'" in err[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.py"))
