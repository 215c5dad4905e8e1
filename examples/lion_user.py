"""Lion (Chen et al. 2023) written by a user, as it reads: beta1 is a fixed interpolation factor
(role ``fixed_decay``: held fixed in (0, 1) as eta -> 0), beta2 an EMA factor 1 - eta rho2.

    u <- beta1 m + (1 - beta1) g~     x <- x - eta (sign(u) + theta x)     m <- beta2 m + (1 - beta2) g~

The sign is averaged through the law's CDF (E sign(u) = s(u/((1 - beta1) sigma)) with the
interpolation u = beta1 m + (1 - beta1) g) and the x-m noise covariance through the partial moment
E[zeta sign(y + zeta)] = 2 (h_1 - K_1(-y)) (Gaussian: 2 phi(y)). Derive and simulate::

    derive sde examples/lion_user.py:lion_user
    derive simulate examples/lion_user.py:lion_user --compare optimizer,full --dim 4 --paths 2000 \\
        --steps 500 --eta 0.01 --sigma 1 --seed 1
"""

from derive import Optimizer, State

lion_user = Optimizer(
    name="lion_user",
    doc="Lion as a user writes it",
    hyper={"eta": "lr", "beta1": "fixed_decay", "beta2": "decay", "theta": "weight_decay"},
    state=[State("m")],
    update=[
        ("u", "beta1*m + (1 - beta1)*grad"),
        ("x", "x - eta*(sign(u) + theta*x)"),
        ("m", "beta2*m + (1 - beta2)*grad"),
    ],
    defaults={"eta": 0.01, "beta1": 0.9, "beta2": 0.99, "theta": 0.01},
)
