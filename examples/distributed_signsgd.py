"""Distributed SignSGD with sign compression over n workers (Compagnoni et al. 2025).

Each worker draws its own stochastic gradient at the same point, g + sigma zeta_i (independent
draws of the same law: ``grad_1 ... grad_n`` in the update rule), sends its sign, and the server
steps along the mean of the signs:

    x <- x - eta (1/n) sum_i sign(grad_i)

The engine averages the n independent draws exactly: the drift is that of SignSGD, -s(g/sigma),
and the variance of the mean of n independent signs is (1 - s^2)/n, so the diffusion is
sqrt(eta (1 - s^2) / n). Derive and simulate (4 workers)::

    derive sde examples/distributed_signsgd.py:signsgd_4workers --noise student-t --nu 3
    derive simulate examples/distributed_signsgd.py:signsgd_4workers --noise student-t --nu 3 \\
        --compare optimizer,full --dim 4 --paths 2000 --steps 400 --eta 0.01 --sigma 1 --seed 1
"""

from derive import Optimizer


def distributed_signsgd(workers: int) -> Optimizer:
    """SignSGD with sign compression over ``workers`` workers (majority of signs by their mean)."""
    signs = " + ".join(f"sign(grad_{i})" for i in range(1, workers + 1))
    return Optimizer(
        name=f"signsgd_{workers}workers",
        doc=f"SignSGD, sign compression over {workers} workers: x - eta * mean_i sign(grad_i)",
        hyper={"eta": "lr"},
        update=[("x", f"x - eta*({signs})/{workers}")],
        defaults={"eta": 0.01},
    )


signsgd_4workers = distributed_signsgd(4)
