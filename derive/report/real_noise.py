"""Section 4's real-noise subsection: the minibatch gradient noise of a network measured by
`derive noise` (per-sample gradients: Sigma(x)'s trace and effective rank, and the law of the
standardised minibatch coordinates: kurtosis, Student-t nu with its interval, the recommended law)
at the start and after a short SGD run, one task per batch size.

The validations of the SDEs against real minibatch training (`derive validate --gradients minibatch`,
32 seeds per row, one to three CPU minutes each) do not fit the report's 5-minute budget: the
subsection points at their measured tables in docs/validation.md instead.
"""

from __future__ import annotations

from .common import value_or_error
from .setting import Setting
from .tasks import ReportTask, Results

NAME = "networks/noise"


def measurement(model: str, batch: int, at: tuple[int, ...]):
    """:func:`derive.validate.noise_measure.measure_noise` on one thread, torch's and the BLAS's (a
    report task: the eigenvalues of the Gram matrix and the covariances differ in their last bits
    between thread counts, so one thread gives the same numbers wherever it runs)."""
    from threadpoolctl import threadpool_limits

    from ..validate.noise_measure import measure_noise

    with threadpool_limits(1):
        return measure_noise(model, batch, at=at, threads=1)


def _key(model: str, batch: int) -> str:
    return f"{NAME}/{model}/B{batch}"


def tasks(setting: Setting) -> list[ReportTask]:
    return [
        ReportTask(_key(setting.noise_model, b), measurement, (setting.noise_model, b, setting.noise_at), weight=5.0)
        for b in setting.noise_batches
    ]


def render(setting: Setting, results: Results, out, raw: dict) -> list[str]:
    if not setting.noise_batches:
        return []
    lines = [
        "### Real minibatch noise (`derive noise`)",
        "",
        f"The gradient noise of real minibatches on the {setting.noise_model}, measured from per-sample gradients at "
        f"steps {', '.join(map(str, setting.noise_at))} of an SGD run on minibatches (eta 0.1, sampling with "
        "replacement, seed 0): the trace and effective rank (participation ratio) of Sigma(x), and the law of the "
        "standardised minibatch gradient coordinates: excess kurtosis, the Student-t nu fitted by maximum "
        "likelihood with its 95% bootstrap interval, and the law the likelihood-ratio test recommends. The "
        "validations above inject Gaussian noise sigma zeta instead. The SDEs against real minibatch training "
        "(`derive validate --gradients minibatch`: the variants minibatch-full, minibatch-diag and isotropic, the "
        "least-squares control, SVAG) are measured in docs/validation.md, 'Real noise' (not rerun here: one to "
        "three CPU minutes per row).",
        "",
        "| B | step | loss | trace Sigma | effective rank | excess kurtosis | nu [95% interval] | law | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for batch in setting.noise_batches:
        key = _key(setting.noise_model, batch)
        report, error = value_or_error(results, key)
        if report is None:
            lines.append(f"| {batch} | failed: {error} | | | | | | | |")
            continue
        raw[f"noise_{setting.noise_model}_B{batch}"] = report.to_json()
        for p in report.points:
            law = p.law
            lo, hi = law.nu_ci
            lines.append(
                f"| {batch} | {p.step} | {p.loss:.4g} | {p.trace:.4g} | {p.effective_rank:.3g} | "
                f"{law.kurtosis:.3g} +- {law.kurtosis_se:.2g} | {law.nu:.3g} [{lo:.3g}, {hi:.3g}] | {law.law} | "
                f"{results.seconds(key):.0f} |"
            )
    return lines + [""]
