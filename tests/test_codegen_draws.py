"""Generated optimizer kernels with several noise draws per step (grad_1 ... grad_n, xi): the
update rule applied to given draws, against the same rule in NumPy."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from derive.combination import Combination
from derive.simulate import load_module


@pytest.mark.slow
def test_distributed_signsgd_and_injected_noise_kernels(tmp_path):
    spec = tmp_path / "drawspecs.py"
    spec.write_text(
        textwrap.dedent("""
        from derive import Optimizer
        workers = Optimizer(name="workers", hyper={"eta": "lr"},
                            update=[("x", "x - eta*(sign(grad_1) + sign(grad_2) + sign(grad_3))/3")])
        noisy = Optimizer(name="noisy", hyper={"eta": "lr", "c": "positive", "tau": "noise_scale"},
                          update=[("x", "x - eta*(clip(grad, -c, c) + tau*xi)")])
    """)
    )
    rng = np.random.default_rng(4)
    g = rng.standard_normal((5, 3))
    eta, sigma = 0.1, 0.7

    m = load_module(Combination(f"{spec}:workers"), tmp_path)
    assert m.OPT_DRAWS == ("zeta", "zeta_1", "zeta_2", "zeta_3")
    z = rng.standard_normal((4, 5, 3))
    state = rng.standard_normal((1, 5, 3))
    want = state[0] - eta * np.mean([np.sign(g + sigma * z[i]) for i in (1, 2, 3)], axis=0)
    m.optimizer_step(state, g, z, 1, np.array([eta, sigma]))
    np.testing.assert_allclose(state[0], want, rtol=1e-15)

    m = load_module(Combination(f"{spec}:noisy"), tmp_path)
    assert m.OPT_DRAWS == ("zeta", "xi") and m.OPT_PARAMS == ("eta", "c", "tau", "sigma")
    z = rng.standard_normal((2, 5, 3))
    state = rng.standard_normal((1, 5, 3))
    c, tau = 0.5, 0.3
    want = state[0] - eta * (np.clip(g + sigma * z[0], -c, c) + tau * z[1])
    m.optimizer_step(state, g, z, 1, np.array([eta, c, tau, sigma]))
    np.testing.assert_allclose(state[0], want, rtol=1e-15)
    # the SDE of the injected-noise optimizer adds tau^2 to the clipped variance: simulate both, finite
    x0 = rng.standard_normal((64, 3))
    from derive.simulate import quadratic, run

    for kind in ("optimizer", "sde"):
        r = run(
            kind,
            Combination(f"{spec}:noisy"),
            x0,
            eta=0.01,
            sigma=1.0,
            steps=50,
            seed=1,
            landscape=quadratic([1.0, 2.0, 3.0]),
            hyper={"c": 1.0, "tau": 0.5},
            module_dir=tmp_path,
        )
        assert np.isfinite(r.loss).all()
