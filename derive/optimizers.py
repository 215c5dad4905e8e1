"""The built-in optimizers, written as update rules with PyTorch semantics.

RMSprop is RMSpropW without weight decay, Adam is AdamW without weight decay; weight decay is
decoupled (AdamW style): x <- x (1 - eta theta) before the adaptive step. Bias corrections use
the step count k (1 on the first step), as ``torch.optim.Adam`` does.

Lion (Chen et al. 2023, the lion-pytorch update): the sign of an interpolation with a fixed
beta1, decoupled weight decay, and an EMA with beta2 = 1 - eta rho2. Signum (Bernstein et al.
2018): the sign of an EMA momentum. ClipSGD: SGD with each gradient coordinate clipped to
[-c, c]. SGDM: SGD with EMA heavy-ball momentum m <- beta m + (1 - beta) grad.

The optimizers people train with (reference sections 11 and 12), with PyTorch's semantics and
defaults: ``sgd_momentum`` (torch.optim.SGD with momentum beta held fixed and dampening tau),
``nesterov`` (nesterov=True, dampening 0), ``adam_fixed`` (torch.optim.Adam with beta1 held fixed
and beta2 = 1 - eta rho2; the SDE's x stands for x - c*m of the optimizer, a fast momentum state
eliminated), ``usam`` (SAM without normalisation, radius r = r0 sqrt(eta); its simulators take the
gradient at x + r*grad and H times the noise vector), ``schedulefree_sgd`` (Defazio et al. 2024,
y = (1 - beta) z + beta x, c = 1/(k + 1); its simulators take the gradient at y, and the SDE's 1/t at
the end of each step from t = 0) and ``adagrad`` (torch.optim.Adagrad, initial_accumulator_value 0,
lr_decay 0; its SDE on the clock t = k*eta**2 starts after the first step). All six are in
:data:`BUILTINS`, the set that generated/ covers. PyTorch initialises the momentum buffer to the
first gradient (m_1 = grad); the rule's m_1 = (1 - tau) grad differs only with dampening, on the
first step, which moves x by O(eta): beyond the order-1 SDE.
"""

from __future__ import annotations

from .errors import UnknownNameError
from .spec import Optimizer, State, load_spec

_ADAPTIVE_DEFAULTS = dict(eta=0.01, beta=0.99, beta1=0.9, beta2=0.999, eps=1e-8, theta=0.01)


def _defaults(*names: str) -> dict[str, float]:
    return {n: _ADAPTIVE_DEFAULTS[n] for n in names}


SGD = Optimizer(
    name="sgd",
    doc="stochastic gradient descent",
    hyper={"eta": "lr"},
    update=[("x", "x - eta*grad")],
    defaults=_defaults("eta"),
)

SIGNSGD = Optimizer(
    name="signsgd",
    doc="sign of the stochastic gradient",
    hyper={"eta": "lr"},
    update=[("x", "x - eta*sign(grad)")],
    defaults=_defaults("eta"),
)


def _rmsprop(name: str, weight_decay: bool) -> Optimizer:
    hyper = {"eta": "lr", "beta": "decay", "eps": "eps"}
    x_line = "x - eta*grad/(sqrt(v) + eps)"
    if weight_decay:
        hyper["theta"] = "weight_decay"
    update = [("v", "beta*v + (1 - beta)*grad**2")]
    if weight_decay:
        update.append(("x", "x*(1 - eta*theta)"))
    update.append(("x", x_line))
    return Optimizer(
        name=name,
        doc="RMSprop" + (" with decoupled weight decay" if weight_decay else ""),
        hyper=hyper,
        update=update,
        state=[State("v", positive=True)],
        defaults=_defaults(*hyper),
    )


def _adam(name: str, weight_decay: bool) -> Optimizer:
    hyper = {"eta": "lr", "beta1": "decay", "beta2": "decay", "eps": "eps"}
    if weight_decay:
        hyper["theta"] = "weight_decay"
    update = [
        ("m", "beta1*m + (1 - beta1)*grad"),
        ("v", "beta2*v + (1 - beta2)*grad**2"),
        ("mhat", "m/(1 - beta1**k)"),
        ("vhat", "v/(1 - beta2**k)"),
    ]
    if weight_decay:
        update.append(("x", "x*(1 - eta*theta)"))
    update.append(("x", "x - eta*mhat/(sqrt(vhat) + eps)"))
    return Optimizer(
        name=name,
        doc="Adam" + (" with decoupled weight decay" if weight_decay else "") + ", bias-corrected",
        hyper=hyper,
        update=update,
        state=[State("m"), State("v", positive=True)],
        defaults=_defaults(*hyper),
    )


LION = Optimizer(
    name="lion",
    doc="Lion: sign of an interpolated momentum, decoupled weight decay",
    hyper={"eta": "lr", "beta1": "fixed_decay", "beta2": "decay", "theta": "weight_decay"},
    state=[State("m")],
    update=[
        ("u", "beta1*m + (1 - beta1)*grad"),
        ("x", "x - eta*(sign(u) + theta*x)"),
        ("m", "beta2*m + (1 - beta2)*grad"),
    ],
    defaults=dict(eta=0.01, beta1=0.9, beta2=0.99, theta=0.01),
)

SIGNUM = Optimizer(
    name="signum",
    doc="Signum: sign of an EMA momentum",
    hyper={"eta": "lr", "beta": "decay"},
    state=[State("m")],
    update=[("m", "beta*m + (1 - beta)*grad"), ("x", "x - eta*sign(m)")],
    defaults=dict(eta=0.01, beta=0.9),
)

CLIPSGD = Optimizer(
    name="clipsgd",
    doc="SGD with coordinate-wise gradient clipping to [-c, c]",
    hyper={"eta": "lr", "c": "positive"},
    update=[("x", "x - eta*clip(grad, -c, c)")],
    defaults=dict(eta=0.01, c=1.0),
)

SGDM = Optimizer(
    name="sgdm",
    doc="SGD with EMA heavy-ball momentum",
    hyper={"eta": "lr", "beta": "decay"},
    state=[State("m")],
    update=[("m", "beta*m + (1 - beta)*grad"), ("x", "x - eta*m")],
    defaults=dict(eta=0.01, beta=0.9),
)

SGD_MOMENTUM = Optimizer(
    name="sgd_momentum",
    doc="PyTorch SGD with momentum beta held fixed and dampening tau (heavy ball)",
    hyper={"eta": "lr", "beta": "fixed_decay", "tau": "const"},
    state=[State("m")],
    update=[("m", "beta*m + (1 - tau)*grad"), ("x", "x - eta*m")],
    defaults=dict(eta=0.01, beta=0.9, tau=0.0),
)

NESTEROV = Optimizer(
    name="nesterov",
    doc="PyTorch SGD with Nesterov momentum beta held fixed",
    hyper={"eta": "lr", "beta": "fixed_decay"},
    state=[State("m")],
    update=[("m", "beta*m + grad"), ("x", "x - eta*(grad + beta*m)")],
    defaults=dict(eta=0.01, beta=0.9),
)

ADAM_FIXED = Optimizer(
    name="adam_fixed",
    doc="PyTorch Adam with beta1 held fixed and beta2 = 1 - eta rho2, bias-corrected",
    hyper={"eta": "lr", "beta1": "fixed_decay", "beta2": "decay", "eps": "eps"},
    state=[State("m"), State("v", positive=True)],
    update=[
        ("m", "beta1*m + (1 - beta1)*grad"),
        ("v", "beta2*v + (1 - beta2)*grad**2"),
        ("mhat", "m/(1 - beta1**k)"),
        ("vhat", "v/(1 - beta2**k)"),
        ("x", "x - eta*mhat/(sqrt(vhat) + eps)"),
    ],
    defaults=_defaults("eta", "beta1", "beta2", "eps"),
)

USAM = Optimizer(
    name="usam",
    doc="unnormalised SAM: the gradient at x + r*grad (one minibatch), radius r = r0 sqrt(eta)",
    hyper={"eta": "lr", "r": "radius"},
    update=[("x", "x - eta*grad(x + r*grad)")],
    defaults=dict(eta=0.01, r=0.05),
)

SCHEDULEFREE_SGD = Optimizer(
    name="schedulefree_sgd",
    doc="schedule-free SGD: the gradient at y = (1 - beta) z + beta x, x the running average of z",
    hyper={"eta": "lr", "beta": "const"},
    state=[State("z", init="x")],
    update=[
        ("y", "(1 - beta)*z + beta*x"),
        ("z", "z - eta*grad(y)"),
        ("x", "(1 - 1/(k + 1))*x + z/(k + 1)"),
    ],
    defaults=dict(eta=0.01, beta=0.9),
)

ADAGRAD = Optimizer(
    name="adagrad",
    doc="PyTorch Adagrad: the sum of squared gradients, no decay (initial_accumulator_value 0)",
    hyper={"eta": "lr", "eps": "eps"},
    state=[State("s", positive=True)],
    update=[("s", "s + grad**2"), ("x", "x - eta*grad/(sqrt(s) + eps)")],
    defaults=dict(eta=0.01, eps=1e-10),
)

BUILTINS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        SGD,
        SIGNSGD,
        _rmsprop("rmsprop", False),
        _rmsprop("rmspropw", True),
        _adam("adam", False),
        _adam("adamw", True),
        LION,
        SIGNUM,
        CLIPSGD,
        SGDM,
        SGD_MOMENTUM,
        NESTEROV,
        ADAM_FIXED,
        USAM,
        SCHEDULEFREE_SGD,
        ADAGRAD,
    )
}


def get_optimizer(ref: str | Optimizer) -> Optimizer:
    """A built-in optimizer by name, a user spec ``path/to/file.py:NAME``, or a spec itself."""
    if isinstance(ref, Optimizer):
        return ref
    if isinstance(ref, str) and ref.lower() in BUILTINS:
        return BUILTINS[ref.lower()]
    if isinstance(ref, str) and ".py:" in ref:
        return load_spec(ref)
    raise UnknownNameError("optimizer", ref, list(BUILTINS) + ["path/to/file.py:NAME"])
