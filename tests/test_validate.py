"""Validation experiments: paired fidelity, coupling, the quadratic, tiny networks, the CLI, bad input."""

import json
import math

import numpy as np
import pytest

from derive.validate import ValidationInputError
from derive.validate.fidelity import difference, fidelity


def test_fidelity_is_the_mean_relative_gap_with_a_paired_interval():
    rng = np.random.default_rng(0)
    opt = 1.0 + rng.standard_normal((8, 3))  # seed-to-seed noise ...
    sde = opt * 1.1 + 0.001 * rng.standard_normal((8, 3))  # ... shared by the coupled SDE, 10% off
    f = fidelity(opt, sde, n_boot=400)
    assert f.value == pytest.approx(0.1, rel=0.05)
    assert f.low < f.value < f.high and f.high - f.low < 0.02 and f.se < 0.005
    # mutation: the same gap on independent noise is not resolved (the interval is wide)
    indep = fidelity(opt, (1.0 + rng.standard_normal((8, 3))) * 1.1, n_boot=400)
    assert indep.high - indep.low > 10 * (f.high - f.low)
    # a divergence (NaN) leaves those steps out
    sde[:, 2] = np.nan
    assert fidelity(opt, sde, n_boot=0).steps_used == 2


def test_difference_of_fidelities_is_resolved_only_when_it_is_there():
    rng = np.random.default_rng(1)
    opt = 1.0 + 0.3 * rng.standard_normal((6, 20))
    a = opt * 1.010 + 0.0005 * rng.standard_normal((6, 20))
    b = opt * 1.014 + 0.0005 * rng.standard_normal((6, 20))
    assert difference(opt, a, b, n_boot=400).resolved  # 0.4% apart, 6 seeds
    same = difference(opt, a, opt * 1.010 + 0.0005 * rng.standard_normal((6, 20)), n_boot=400)
    assert not same.resolved  # mutation: no difference, none claimed


@pytest.mark.slow
def test_quadratic_validation_is_coupled_and_resolves():
    """Coupling shrinks the fidelity's standard error far below the uncoupled replicate's; with
    coupling off (the mutation) it does not."""
    from derive.validate.experiment import validate_quadratic

    r = validate_quadratic("adam", eta=0.01, sigma=0.1, steps=60, paths=400, n_boot=100, scheme="weak2", substeps=2)
    assert set(r.fidelity) == {"optimizer replicate", "full", "published", "noise-dominated"}
    assert r.to_json()["unit"] == "paths" and "weak2" in r.integrator
    nd = next(d for d in r.differences if d.a == "full" and d.b == "noise-dominated")
    assert nd.resolved and nd.value < 0
    coupled = validate_quadratic("sgd", eta=0.05, sigma=1.0, steps=60, paths=400, n_boot=100, scheme="weak2")
    uncoupled = validate_quadratic(
        "sgd", eta=0.05, sigma=1.0, steps=60, paths=400, n_boot=100, scheme="weak2", coupled=False
    )
    assert coupled.fidelity["full"].se * 5 < uncoupled.fidelity["full"].se
    with pytest.raises(ValidationInputError, match="sigma must be > 0"):
        validate_quadratic("sgd", sigma=0.0, steps=5, paths=4)


def test_sde_choice_per_optimizer():
    from derive.validate.experiment import sde_kinds

    assert [k[0] for k in sde_kinds("sgd")] == ["full"]  # published = full
    assert [k[0] for k in sde_kinds("adam")] == ["full", "published", "noise-dominated"]


# ---- networks (the nn extra) --------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def test_coupled_euler_sgd_sde_is_the_torch_optimizer_on_the_mlp(torch):
    """One euler step of dt = eta driven by W1 = -sqrt(eta) zeta is SGD's step: on the MLP the
    coupled SDE reproduces torch.optim.SGD to rounding (this checks the network coupling end to end:
    the re-drawn zetas, the sign, the streams); the mutations (weak2, or independent noise) do not."""
    from derive.validate.experiment import validate

    common = dict(eta=0.05, sigma=0.05, steps=8, seeds=[0, 1], n_boot=20, replicate=False)
    r = validate("mlp", "sgd", **common)
    assert np.abs(r.trajectories["full"].loss - r.trajectories["optimizer"].loss).max() < 1e-12
    for kw in ({"scheme": "weak2"}, {"coupled": False}):
        other = validate("mlp", "sgd", **common, **kw)
        assert np.abs(other.trajectories["full"].loss - other.trajectories["optimizer"].loss).max() > 1e-6, kw


@pytest.mark.parametrize("opt", ["signsgd", "rmspropw", "adamw"])
def test_mlp_coupled_runs_resolve_the_sdes(torch, opt):
    """Three seeds, 20 steps: every fidelity has a finite paired interval narrower than the
    uncoupled replicate's spread would allow, and all simulators start from the same loss."""
    from derive.validate.experiment import validate

    r = validate("mlp", opt, eta=0.01, sigma=0.01, steps=20, seeds=[0, 1, 2], n_boot=100, scheme="weak2")
    assert r.trajectories["optimizer"].loss.shape == (3, 21)
    assert np.all(np.isfinite(r.trajectories["optimizer"].loss))
    assert len({float(t.loss[0, 0]) for t in r.trajectories.values()}) == 1
    for label in ("full",):
        f = r.fidelity[label]
        assert math.isfinite(f.se) and f.low <= f.value <= f.high, (label, f)
    if opt in ("rmspropw", "adamw"):  # the noise-dominated SDE drops g^2 from the V drift: resolved worse
        d = next(d for d in r.differences if d.b == "noise-dominated" and d.a == "full")
        assert d.resolved and d.value < 0, d


@pytest.mark.parametrize("model", ["cnn", "resnet", "transformer"])
def test_other_models_run(torch, model):
    from derive.validate.experiment import validate

    r = validate(model, "adam", steps=3, seeds=[0], compare=["full"], replicate=False, n_boot=10)
    assert np.all(np.isfinite(r.trajectories["full"].loss))


def test_torch_optimizer_matches_the_generated_update_rule(torch):
    """PyTorch AdamW and the spec's optimizer_step agree step for step on the same noisy gradients."""
    from derive.combination import Combination
    from derive.simulate import hyperparameters, load_module
    from derive.validate.experiment import torch_optimizer

    for name in ("rmspropw", "adamw", "signsgd"):
        values = hyperparameters(name, 0.05, 0.3, None)
        mod = load_module(Combination(name))
        rng = np.random.default_rng(1)
        x = rng.standard_normal(5)
        state = np.zeros((len(mod.OPT_STATE), 1, 5))
        state[0, 0] = x
        p = torch.nn.Parameter(torch.tensor(x.copy()))
        opt = torch_optimizer(name, [p], values)
        pv = np.array([values[n] for n in mod.OPT_PARAMS])
        for k in range(1, 6):
            g = rng.standard_normal((1, 5))
            zeta = rng.standard_normal((1, 5))
            mod.optimizer_step(state, g, zeta, k, pv)
            p.grad = torch.tensor(g[0] + values["sigma"] * zeta[0])
            opt.step()
        np.testing.assert_allclose(p.detach().numpy(), state[0, 0], rtol=1e-10, atol=1e-12)


def test_user_module_and_data(torch):
    from derive.validate.experiment import Problem, validate

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).float()
    xs, ys = torch.randn(20, 3), torch.randint(0, 2, (20,))
    r = validate(
        Problem.from_data(net, xs, ys, name="mine"),
        "rmsprop",
        steps=4,
        seeds=[0, 1],
        n_boot=10,
        scheme="weak2",
        substeps=2,
    )
    assert r.model == "mine" and r.dim == 3 * 4 + 4 + 4 * 2 + 2


def test_non_float_parameters_are_refused(torch):
    from derive.validate.experiment import Problem

    net = torch.nn.Linear(2, 1)
    net.register_parameter("count", torch.nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False))
    with pytest.raises(ValidationInputError, match="parameter count has dtype torch.int64"):
        Problem(net, lambda: net(torch.zeros(1, 2, dtype=torch.float64)).sum())


def test_sigma_must_be_positive(torch):
    from derive.validate.experiment import validate

    with pytest.raises(ValidationInputError, match="sigma must be > 0"):
        validate("mlp", "sgd", sigma=-1.0, steps=2, seeds=[0])


def test_divergence_is_reported_with_partial_results(torch):
    from derive.validate.experiment import Problem, validate

    w = torch.nn.Linear(1, 1, bias=False)
    w.weight.data.fill_(1.0)
    problem = Problem(w, lambda: 1e3 * (w.weight**2).sum(), name="steep")
    r = validate(problem, "sgd", eta=1.0, sigma=0.1, steps=150, seeds=[0, 1], n_boot=10)
    opt = r.trajectories["optimizer"]
    assert opt.diverged is not None and 0 < opt.diverged["step"] < 150
    k = opt.diverged["step"]
    assert np.all(np.isfinite(opt.loss[:, :k])) and np.all(np.isnan(opt.loss[:, k:]))
    assert any("diverged" in n for n in r.notes)
    json.dumps(r.to_json())  # NaN is written as null


def test_validate_command_writes_json_and_png(torch, tmp_path, capsys):
    from derive.cli import main

    rc = main(
        [
            "validate",
            "--model",
            "mlp",
            "--optimizer",
            "adam",
            "--steps",
            "5",
            "--seeds",
            "2",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    data = json.loads((tmp_path / "mlp_adam_sigma0.01.json").read_text())
    assert set(data["fidelity"]) == {"optimizer replicate", "full", "published", "noise-dominated"}
    assert (tmp_path / "mlp_adam_sigma0.01.png").stat().st_size > 0
    assert "noise-dominated" in capsys.readouterr().out
    assert main(["validate", "--model", "mlp", "--optimizer", "sgd", "--sigma", "0", "--out", str(tmp_path)]) == 2
    assert "sigma must be > 0" in capsys.readouterr().err


def test_validate_command_takes_the_integrator(torch, tmp_path, capsys):
    from derive.cli import main

    rc = main(
        [
            "validate",
            "--model",
            "mlp",
            "--optimizer",
            "sgd",
            "--steps",
            "3",
            "--seeds",
            "2",
            "--quiet",
            "--scheme",
            "weak2",
            "--substeps",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    assert "weak2, 2 substeps of eta/2" in capsys.readouterr().out
    assert json.loads((tmp_path / "mlp_sgd_sigma0.01.json").read_text())["integrator"] == "weak2, 2 substeps of eta/2"
    assert main(["validate", "--model", "mlp", "--optimizer", "sgd", "--substeps", "0", "--out", str(tmp_path)]) == 2
    assert "substeps must be an integer in [1, 4096], got 0" in capsys.readouterr().err


def test_weak_order_command(capsys):
    from derive.cli import main

    assert main(["weak-order", "sgd", "--etas", "0.16,0.08", "--paths", "500", "--format", "json", "--quiet"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["optimizer"] == "sgd" and data["runs"][0]["sde"] == "full" and data["runs"][0]["etas"] == [0.16, 0.08]
    assert main(["weak-order", "sgd", "--etas", "0.16,0", "--quiet"]) == 2
    assert "at least two etas > 0" in capsys.readouterr().err
    assert main(["weak-order", "adam", "--etas", "0.8,0.4", "--quiet"]) == 2
    assert "eta 0.8 is too large for adam" in capsys.readouterr().err


def test_a_run_leaves_the_module_at_its_start(torch):
    """A second validation of the same Problem starts where the first did (the module's parameters
    are re-pointed during a run and put back at the start afterwards)."""
    from derive.validate.experiment import Problem, validate

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    problem = Problem.from_data(net, torch.randn(20, 3), torch.randint(0, 2, (20,)), name="mine")
    start = problem.initial()
    validate(problem, "sgd", eta=0.1, steps=3, seeds=[0], n_boot=0, replicate=False)
    np.testing.assert_array_equal(problem.initial(), start)


def test_burn_in_gives_the_sdes_the_optimizers_states(torch):
    """With burn_in, the auxiliary states are the optimizer's after k steps at fixed x (checked against
    the update rule by hand), every simulator starts from them, and the SDEs' clock starts at k eta."""
    from derive.simulate import hyperparameters
    from derive.validate.samplers import zeta_sampler
    from derive.validate.steppers import BURN_STREAM, TorchOptimizerPath
    from derive.validate.torch_adapter import Problem

    problem = Problem.builtin("mlp")
    values = hyperparameters("adam", 0.05, 0.1, {"beta1": 0.8, "beta2": 0.9})
    x0 = problem.initial()
    path = TorchOptimizerPath(problem, "adam", values, x0, [3], zeta_sampler("gaussian"), burn_in=4)
    states = path.states(("x", "m", "v"))
    g = torch.zeros(1, problem.dim, dtype=torch.float64)
    problem.loss_grad(torch.from_numpy(x0.copy()), g[0])
    rng = np.random.default_rng([3, BURN_STREAM, 17])
    m = v = np.zeros(problem.dim)
    for _ in range(4):
        noisy = g[0].numpy() + 0.1 * rng.standard_normal(problem.dim)
        m, v = 0.8 * m + 0.2 * noisy, 0.9 * v + 0.1 * noisy**2
    np.testing.assert_allclose(states[1, 0], m, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(states[2, 0], v, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(states[0, 0], x0)
    from derive.validate.experiment import validate

    r = validate(
        "mlp",
        "adam",
        eta=0.05,
        sigma=0.1,
        steps=4,
        seeds=[0, 1],
        burn_in=6,
        n_boot=0,
        replicate=False,
        scheme="weak2",
        hyper={"beta1": 0.8, "beta2": 0.9},
    )
    assert len({float(t.loss[0, 0]) for t in r.trajectories.values()}) == 1
    with pytest.raises(ValidationInputError, match="burn_in"):
        validate("mlp", "adam", steps=2, seeds=[0], burn_in=-1)
