"""Validation experiments (issue 5): fidelity, the quadratic, tiny networks, the CLI, bad input."""
import json
import math

import numpy as np
import pytest

from derive.validate import ValidationInputError
from derive.validate.fidelity import fidelity
from derive.validate.weak_order import slope


def test_fidelity_is_the_mean_relative_gap_with_an_interval():
    opt = np.array([[2.0, 1.0, 0.5], [2.0, 1.0, 0.5]])
    sde = np.array([[2.2, 1.1, 0.55], [2.2, 1.1, 0.55]])
    f = fidelity(opt, sde, n_boot=50)
    assert f.value == pytest.approx(0.1)
    assert f.low == pytest.approx(0.1) and f.high == pytest.approx(0.1)
    # a divergence (NaN) leaves those steps out
    sde[:, 2] = np.nan
    assert fidelity(opt, sde, n_boot=0).steps_used == 2


def test_weak_order_slope():
    etas = [0.4, 0.2, 0.1]
    assert slope(etas, [2 * e for e in etas]) == pytest.approx(1.0)


def test_quadratic_validation_and_bad_sigma():
    from derive.validate.experiment import validate_quadratic

    r = validate_quadratic("adam", eta=0.01, sigma=0.1, steps=60, paths=64, n_boot=20)
    assert set(r.fidelity) == {"optimizer replicate", "full", "published", "noise-dominated"}
    assert all(math.isfinite(f.value) for f in r.fidelity.values())
    assert r.to_json()["unit"] == "paths"
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


@pytest.mark.parametrize("opt", ["sgd", "signsgd", "rmspropw", "adamw"])
def test_mlp_all_optimizers(torch, opt):
    from derive.validate.experiment import validate

    r = validate("mlp", opt, eta=0.01, sigma=0.05, steps=6, seeds=[0, 1], n_boot=20)
    assert r.trajectories["optimizer"].loss.shape == (2, 7)
    assert np.all(np.isfinite(r.trajectories["optimizer"].loss))
    for label, f in r.fidelity.items():
        assert 0 <= f.value < 0.5, (label, f)
    # same start for every simulator
    assert len({float(t.loss[0, 0]) for t in r.trajectories.values()}) == 1


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
    r = validate(Problem.from_data(net, xs, ys, name="mine"), "rmsprop", steps=4, seeds=[0, 1], n_boot=10)
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
    problem = Problem(w, lambda: 1e3 * (w.weight ** 2).sum(), name="steep")
    r = validate(problem, "sgd", eta=1.0, sigma=0.1, steps=150, seeds=[0, 1], n_boot=10)
    opt = r.trajectories["optimizer"]
    assert opt.diverged is not None and 0 < opt.diverged["step"] < 150
    k = opt.diverged["step"]
    assert np.all(np.isfinite(opt.loss[:, :k])) and np.all(np.isnan(opt.loss[:, k:]))
    assert any("diverged" in n for n in r.notes)
    json.dumps(r.to_json())  # NaN is written as null


def test_validate_command_writes_json_and_png(torch, tmp_path, capsys):
    from derive.cli import main

    rc = main(["validate", "--model", "mlp", "--optimizer", "adam", "--steps", "5", "--seeds", "2", "--quiet",
               "--out", str(tmp_path)])
    assert rc == 0
    data = json.loads((tmp_path / "mlp_adam_sigma0.01.json").read_text())
    assert set(data["fidelity"]) == {"optimizer replicate", "full", "published", "noise-dominated"}
    assert (tmp_path / "mlp_adam_sigma0.01.png").stat().st_size > 0
    assert "noise-dominated" in capsys.readouterr().out
    assert main(["validate", "--model", "mlp", "--optimizer", "sgd", "--sigma", "0", "--out", str(tmp_path)]) == 2
    assert "sigma must be > 0" in capsys.readouterr().err
