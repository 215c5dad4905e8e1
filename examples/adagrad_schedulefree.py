"""AdaGrad and schedule-free SGD written by a user (reference section 12).

``adagrad_warm`` is ``torch.optim.Adagrad(params, lr, initial_accumulator_value=0.1)``: the
accumulator s starts at 0.1 instead of 0, so the SDE, on the clock t = k*eta**2 with V = eta**2*s
(the tool chooses the clock from the update rule: s accumulates without decay), starts at t = 0
from V(0) = 0.1*eta**2 > 0; from s = 0 (the built-in ``adagrad``) it starts after the first step.
``schedulefree_sgd_user`` is the built-in's rule with beta = 0.95: the gradient at
y = (1 - beta) z + beta x, an O(1) different point, kept as gradf(y) in the SDE, and x the running
average of z with weight 1/(k + 1), eta/t in the SDE. Derive and simulate them with::

    derive sde examples/adagrad_schedulefree.py:adagrad_warm
    derive simulate examples/adagrad_schedulefree.py:adagrad_warm --eta 0.02 --steps 2000 --module-dir modules
    derive sde examples/adagrad_schedulefree.py:schedulefree_sgd_user
    derive simulate examples/adagrad_schedulefree.py:schedulefree_sgd_user --module-dir modules
"""

from derive import Optimizer, State

adagrad_warm = Optimizer(
    name="adagrad_warm",
    doc="Adagrad with initial_accumulator_value 0.1",
    hyper={"eta": "lr", "eps": "eps"},
    state=[State("s", init=0.1, positive=True)],
    update=[("s", "s + grad**2"), ("x", "x - eta*grad/(sqrt(s) + eps)")],
    defaults=dict(eta=0.01, eps=1e-10),
)

schedulefree_sgd_user = Optimizer(
    name="schedulefree_sgd_user",
    doc="schedule-free SGD with beta = 0.95",
    hyper={"eta": "lr", "beta": "const"},
    state=[State("z", init="x")],
    update=[
        ("y", "(1 - beta)*z + beta*x"),
        ("z", "z - eta*grad(y)"),
        ("x", "(1 - 1/(k + 1))*x + z/(k + 1)"),
    ],
    defaults=dict(eta=0.01, beta=0.95),
)
