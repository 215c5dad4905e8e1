"""The `derive sde` and `derive list` commands, and the JSON contract."""

from __future__ import annotations

import json

import pytest
import sympy as sp

from derive import derive_sde
from derive.cli import main
from derive.optimizers import BUILTINS
from derive.symbols import plain

JSON_NAMES = {n: sp.Symbol(n) for n in "x m v g sigma eta rho rho1 rho2 eps theta t nu".split()}
JSON_FUNCS = {f.__name__: f for f in (sp.erf, sp.atan, sp.exp, sp.sqrt, sp.sign, sp.betainc_regularized)}


def _parse(text):
    return sp.sympify(text, locals={**JSON_NAMES, **JSON_FUNCS})


@pytest.mark.parametrize(
    "args",
    [
        ["adamw", "--form", "published"],
        ["signsgd", "--noise", "student-t"],
        ["rmsprop", "--regime", "noise-dominated"],
        ["signsgd", "--noise", "student-t", "--nu", "3"],
    ],
)
def test_json_round_trip(args, capsys):
    assert main(["sde", *args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"optimizer", "noise", "regime", "form", "state", "drift", "diffusion", "parameters"}
    nu = args[args.index("--nu") + 1] if "--nu" in args else None
    noise = args[args.index("--noise") + 1] if "--noise" in args else "gaussian"
    regime = args[args.index("--regime") + 1] if "--regime" in args else "paper"
    form = args[args.index("--form") + 1] if "--form" in args else "full"
    sde = derive_sde(args[0], noise, regime, form, nu=nu)
    for i, name in enumerate(data["state"]):
        assert sp.simplify(_parse(data["drift"][name]) - plain(sde.explicit(sde.drift[i]))) == 0
        for j, text in enumerate(data["diffusion"][i]):
            assert sp.simplify(_parse(text) - plain(sde.explicit(sde.diffusion[i, j]))) == 0
    free = set().union(*(_parse(s).free_symbols for s in data["drift"].values()))
    assert {s.name for s in free} <= set(JSON_NAMES)


def test_text_and_latex(capsys):
    assert main(["sde", "adam"]) == 0
    out = capsys.readouterr().out
    assert "dx = " in out and "where gamma1 = 1 - exp(-rho1*t)" in out and "noise sources per coordinate: 2" in out
    assert main(["sde", "rmspropw", "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert latex.startswith("\\begin{aligned}") and "dW_{2}" in latex


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("sgd", "adamw", "student-t", "noise-dominated", "published"):
        assert word in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["sde", "lamb"], "unknown optimizer 'lamb'"),
        (["sde", "adam", "--noise", "cauchy"], "needs E[zeta^2], which is infinite under the cauchy law"),
        (["sde", "sgd", "--noise", "student-t", "--nu", "-2"], "nu must be a positive finite number"),
        (["sde", "nofile.py:opt"], "optimizer file 'nofile.py' does not exist"),
    ],
)
def test_cli_errors_are_one_line(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.slow
def test_catalog_derives_or_refuses_every_builtin(capsys):
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    derived, refused = out.count("SDE of "), out.count(": refused: ")
    assert derived + refused == len(BUILTINS) * 5 * 2 * 2
    assert "refused: optimizer 'sgd' has no SDE limit in the noise-dominated regime" in out
    assert f"{derived} derived, {refused} refused" in out
