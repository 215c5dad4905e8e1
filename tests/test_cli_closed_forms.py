"""Every closed-form command on every built-in, law, regime and form: a result or one clear line.

The CLI's main function is called in-process (derivations are cached per process); each case must
end with exit 0 and output, or exit 2 and exactly one stderr line naming what is unsupported,
never a traceback. Then a few spot checks through a real subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from itertools import product

import pytest

from derive.cli import main
from derive.optimizers import BUILTINS
from derive.regimes import FORMS, REGIMES

# Student-t with a symbolic nu is left out: linearising ClipSGD's and Lion's SDEs there takes SymPy
# minutes per case (limits of hypergeometric forms); the real nu that users estimate are in.
LAWS = [
    ["--noise", "gaussian"],
    ["--noise", "student-t", "--nu", "2.5"],
    ["--noise", "student-t", "--nu", "5"],
    ["--noise", "cauchy"],
    ["--noise", "laplace"],
    ["--noise", "uniform"],
    ["--noise", "cdf:1/(1+exp(-y))"],
]
NUMBERS = ["--eta", "0.01", "--sigma", "0.5", "--curvature", "1,4", "--format", "json"]


def cases(covering: bool = False) -> list[list[str]]:
    """1,374 command lines: stationary (symbolic, and evaluated as JSON), scaling under both
    criteria, per built-in (10) x law (7) x regime x form (less ClipSGD under Student-t, whose
    linearisation takes SymPy over a minute per case); phases per law in both formats.

    ``covering``: every built-in in both regimes, the forms and the laws rotating (one combination
    per built-in and regime; ClipSGD skips Student-t): 109 lines, a twelfth of the cost; the default
    run."""
    out = []
    pairs = list(product(REGIMES, FORMS))
    for i, opt in enumerate(BUILTINS):
        for j, (regime, form) in enumerate(pairs):
            for k, law in enumerate(LAWS):
                if covering and (form != FORMS[(i + j // len(FORMS)) % len(FORMS)] or k != (i + j) % len(LAWS)):
                    continue
                if opt == "clipsgd" and "student-t" in law:  # linearising takes SymPy over a minute per case
                    continue
                out += _commands(opt, law, regime, form)
    for law, fmt in product(LAWS, ("text", "json")):
        out.append(["phases", *law, "--format", fmt])
    return out


def _commands(opt: str, law: list[str], regime: str, form: str) -> list[list[str]]:
    where = [opt, *law, "--regime", regime, "--form", form]
    return [
        ["stationary", *where],
        ["stationary", *where, *NUMBERS],
        ["scaling", *where, "--criterion", "sde"],
        ["scaling", *where, "--criterion", "stationary"],
        ["scaling", *where, "--criterion", "stationary", "--format", "json"],
    ]


@pytest.mark.parametrize(
    "covering", [True, pytest.param(False, marks=pytest.mark.slow, id="all")], ids=lambda c: "covering" if c else "all"
)
def test_every_closed_form_command_gives_a_result_or_one_line(capsys, covering):
    failures, counts, start = [], {0: 0, 2: 0}, time.perf_counter()
    commands = cases(covering)
    for argv in commands:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - the test reports every case that raised
            code = f"raised {type(exc).__name__}: {exc}"
        out, err = capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        if code == 0 and out.strip() and not lines:
            if "--format" in argv and argv[argv.index("--format") + 1] == "json":
                json.loads(out)  # valid JSON
            counts[0] += 1
        elif code == 2 and len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err:
            counts[2] += 1
        else:
            failures.append(f"derive {' '.join(argv)} -> {code!r}; stderr: {err[-300:]!r}")
    assert not failures, f"{len(failures)} of {len(commands)} cases failed:\n" + "\n".join(failures[:40])
    # most combinations have results; refusals exist
    assert counts[0] > len(commands) // 3 and counts[2] > len(commands) // 30, counts
    print(
        f"{sum(counts.values())} cases: {counts[0]} results, {counts[2]} refusals, {time.perf_counter() - start:.0f} s"
    )


def test_json_expected_loss_is_summed_over_the_coordinates(capsys):
    argv = [
        "stationary",
        "signsgd",
        "--noise",
        "student-t",
        "--nu",
        "2.5",
        "--eta",
        "0.002",
        "--sigma",
        "0.5",
        "--curvature",
        "1,4.75,8.5,12.25,16",
        "--format",
        "json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    per = [c["exact"]["expected_loss"] for c in data["coordinates"]]
    assert len(per) == 5 and data["expected_loss"] == pytest.approx(sum(per), rel=1e-12)
    assert data["expected_loss_method"].startswith("exact")
    # linear phase: E f = eta sigma / (8 p(0)) per coordinate, p(0) of t(2.5); the exact law is within 1%
    from scipy.special import gamma

    p0 = gamma(1.75) / ((2.5 * 3.141592653589793) ** 0.5 * gamma(1.25))
    assert data["expected_loss_linearised"] == pytest.approx(5 * 0.002 * 0.5 / (8 * p0), rel=1e-9)
    assert data["expected_loss"] == pytest.approx(data["expected_loss_linearised"], rel=0.01)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["stationary", "signsgd", "--noise", "uniform"], "E x^2 = eta*sigma**2/(lambda*(eta*lambda + 2*sigma))"),
        (["phases", "--noise", "uniform"], "phase 2: none"),
        (["phases", "--noise", "student-t", "--nu", "2.5"], "phase 1, |y| >= 4.258"),
        (
            ["stationary", "signsgd", "--noise", "student-t", "--nu", "2.5"],
            "E f = sqrt(10)*eta*sigma*beta(1/2, 5/4)/16",
        ),
    ],
)
def test_cli_spot_checks_in_a_subprocess(argv, needle):
    proc = subprocess.run([sys.executable, "-m", "derive", *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in proc.stdout, proc.stdout


def test_cli_bad_numbers_are_one_line(capsys):
    for argv, needle in [
        (["stationary", "sgd", "--eta", "-1", "--curvature", "1"], "eta must be > 0"),
        (
            ["stationary", "adam", "--hyper", "beta1=1.5", "--eta", "0.1", "--curvature", "1"],
            "beta1 must lie in (0, 1)",
        ),
        (["stationary", "adam", "--hyper", "gamma=1", "--curvature", "1"], "unknown hyperparameter"),
        (["stationary", "sgd", "--curvature", "1,-2", "--eta", "0.1", "--sigma", "1"], "not positive"),
        (["stationary", "sgd", "--eta", "0.1"], "give --curvature"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
