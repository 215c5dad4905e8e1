"""SGD with momentum as PyTorch runs it, written by a user: the momentum factor beta is held fixed
(0.9 in practice: role ``fixed_decay``) and the buffer is damped by tau = 0.5.

    m <- beta m + (1 - tau) g~        x <- x - eta m

With beta fixed, m relaxes in O(1) steps: it is a fast variable, not a state of the SDE. The
engine eliminates it by the change of variables x - c m, c = eta beta/(1 - beta) (reference
section 11), and the SDE is SGD's with the learning rate eta (1 - tau)/(1 - beta) = 5 eta here
(beta = 0.9): dX = -(1 - tau)/(1 - beta) g dt + (1 - tau)/(1 - beta) sqrt(eta) sigma dW. The
look-ahead form takes the gradient at x - eta beta m (a point O(eta) from x), which at order 1
changes nothing: the same SDE with tau = 0. Derive them with::

    derive sde examples/pytorch_momentum.py:damped_heavy_ball
    derive sde examples/pytorch_momentum.py:lookahead_momentum

and simulate the first (the optimizer with its m, and the SDE started at x - c*m = x0 from m = 0)::

    derive simulate examples/pytorch_momentum.py:damped_heavy_ball --module-dir /tmp/derive-modules

The built-ins sgd_momentum (dampening tau a hyperparameter) and nesterov come with generated
simulators. The look-ahead optimizer's own simulator needs the gradient at another point in the
optimizer kernel, which the code generator does not compile yet (its SDE is nesterov's).
"""

from derive import Optimizer, State

damped_heavy_ball = Optimizer(
    name="damped_heavy_ball",
    doc="PyTorch SGD(momentum=beta, dampening=0.5), beta held fixed",
    hyper={"eta": "lr", "beta": "fixed_decay"},
    state=[State("m")],
    update=[
        ("m", "beta*m + (1 - 0.5)*grad"),
        ("x", "x - eta*m"),
    ],
    defaults=dict(eta=0.01, beta=0.9),
)

lookahead_momentum = Optimizer(
    name="lookahead_momentum",
    doc="momentum with the gradient at the look-ahead point x - eta*beta*m",
    hyper={"eta": "lr", "beta": "fixed_decay"},
    state=[State("m")],
    update=[
        ("m", "beta*m + grad(x - eta*beta*m)"),
        ("x", "x - eta*m"),
    ],
    defaults=dict(eta=0.01, beta=0.9),
)
