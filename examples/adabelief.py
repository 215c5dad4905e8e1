"""AdaBelief (Zhuang et al. 2020): the second moment tracks the "belief" (grad - m)^2 instead of
grad^2, with bias corrections with the step k (as torch.optim.Adam):

    m <- beta1 m + (1 - beta1) g~           s <- beta2 s + (1 - beta2) (g~ - m)^2
    x <- x - eta (m / (1 - beta1^k)) / (sqrt(s / (1 - beta2^k)) + eps)

The reference implementation also adds eps to s at every step. Held fixed as eta -> 0 that is an
increment of order 1 per step, which has no SDE limit: written that way the engine answers
"E[Delta s]/dt is of order eta^-1" (eps of about 1e-16 makes it negligible in practice), so this
spec keeps eps in the denominator only.

Derive and simulate::

    derive sde examples/adabelief.py:adabelief
    derive simulate examples/adabelief.py:adabelief --compare optimizer,full --dim 4 --paths 2000 \\
        --steps 500 --eta 0.01 --sigma 1 --seed 1
"""

from derive import Optimizer, State

adabelief = Optimizer(
    name="adabelief",
    doc="AdaBelief, bias-corrected",
    hyper={"eta": "lr", "beta1": "decay", "beta2": "decay", "eps": "eps"},
    state=[State("m"), State("s", positive=True)],
    update=[
        ("m", "beta1*m + (1 - beta1)*grad"),
        ("s", "beta2*s + (1 - beta2)*(grad - m)**2"),
        ("mhat", "m/(1 - beta1**k)"),
        ("shat", "s/(1 - beta2**k)"),
        ("x", "x - eta*mhat/(sqrt(shat) + eps)"),
    ],
    defaults={"eta": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
)
