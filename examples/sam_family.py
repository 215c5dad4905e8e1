"""Sharpness-aware minimisation written by a user (reference section 12).

USAM takes the gradient at x + r g~, the same minibatch at both points. With the radius r of
role ``radius`` (r = r0 sqrt(eta), the scaling of Compagnoni et al., ICML 2023) the gradient there
is expanded about x, g~(x + r g~) = g~ + r H g~ + O(r^2), and the SDE is

    dX = -(g + r H g) dt + sqrt(eta) (I + r H) sigma dW,

printed with hvp(u) = H u; the noise term r H sigma dW is one Hessian-vector product of the
Brownian increment per step. With an independent minibatch at the perturbed point
(``grad_1(x + r*grad)``) the same H acts on the other draw, an independent Brownian motion.
Normalised SAM divides by the norm of the whole gradient, which couples every coordinate: the
engine refuses it by name. Derive them with::

    derive sde examples/sam_family.py:usam_user
    derive sde examples/sam_family.py:usam_two_batches
    derive sde examples/sam_family.py:sam_normalised     (refused: norm(grad))

and simulate the first two (the optimizer's step takes the landscape's gradient at x + r*grad, the
SDE's step one Hessian-vector product of its noise vector; r = 0.1 = r0 sqrt(eta) at eta = 0.01)::

    derive simulate examples/sam_family.py:usam_user --hyper r=0.1 --module-dir modules
    derive simulate examples/sam_family.py:usam_two_batches --hyper r=0.1 --module-dir modules
"""

from derive import Optimizer

usam_user = Optimizer(
    name="usam_user",
    doc="USAM as a user writes it",
    hyper={"eta": "lr", "r": "radius"},
    update=[("x", "x - eta*grad(x + r*grad)")],
)

usam_two_batches = Optimizer(
    name="usam_two_batches",
    doc="USAM with an independent minibatch at the perturbed point",
    hyper={"eta": "lr", "r": "radius"},
    update=[("x", "x - eta*grad_1(x + r*grad)")],
)

sam_normalised = Optimizer(
    name="sam_normalised",
    doc="SAM with the normalised perturbation r*grad/norm(grad) (refused)",
    hyper={"eta": "lr", "r": "radius"},
    update=[("x", "x - eta*grad(x + r*grad/norm(grad))")],
)
