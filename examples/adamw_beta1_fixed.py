"""AdamW as PyTorch runs it, with beta1 held fixed (0.9 in practice: role ``fixed_decay``) and
beta2 = 1 - eta rho2 (role ``decay``), written by a user with PyTorch's names.

    x <- x (1 - lr wd);  m <- beta1 m + (1 - beta1) g~;  v <- beta2 v + (1 - beta2) g~^2
    x <- x - lr (m / (1 - beta1^k)) / (sqrt(v / (1 - beta2^k)) + eps)

With beta1 fixed, m relaxes in O(1) steps and is eliminated (reference section 11): the SDE is
RMSpropW's x-SDE with v replaced by v/gamma2(t), gamma2 = 1 - exp(-rho2 t) (the bias correction of
v; that of m disappears after O(1) steps), and its x stands for x - c m of the optimizer,
c = lr beta1 / ((1 - beta1) (sqrt(v/gamma2) + eps)). The built-in ``adam_fixed`` is the same
without weight decay. Derive and simulate it with::

    derive sde examples/adamw_beta1_fixed.py:adamw_beta1_fixed
    derive simulate examples/adamw_beta1_fixed.py:adamw_beta1_fixed --module-dir /tmp/derive-modules --eta 0.01

(the simulator starts the SDE at the map of the optimizer's start, x - c*0 = x0).
"""

from derive import Optimizer, State

adamw_beta1_fixed = Optimizer(
    name="adamw_beta1_fixed",
    doc="torch.optim.AdamW with beta1 held fixed, beta2 = 1 - lr*rho2",
    hyper={"lr": "lr", "beta1": "fixed_decay", "beta2": "decay", "eps": "eps", "weight_decay": "weight_decay"},
    state=[State("m"), State("v", positive=True)],
    update=[
        ("x", "x*(1 - lr*weight_decay)"),
        ("m", "beta1*m + (1 - beta1)*grad"),
        ("v", "beta2*v + (1 - beta2)*grad**2"),
        ("x", "x - lr*(m/(1 - beta1**k))/(sqrt(v/(1 - beta2**k)) + eps)"),
    ],
    defaults=dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01),
)
