"""Which SDEs a validation compares with an optimizer: full, published (where it differs) and,
for RMSprop(W) and Adam(W), the noise-dominated SDE of Malladi et al."""

from __future__ import annotations

#: the SDEs by label: (label, regime, form)
SDE_KINDS = (
    ("full", "paper", "full"),
    ("published", "paper", "published"),
    ("noise-dominated", "noise-dominated", "published"),
)
#: optimizers with a noise-dominated SDE in the comparison (reference: RMSprop and Adam)
NOISE_DOMINATED = ("rmsprop", "rmspropw", "adam", "adamw")
OPTIMIZERS = ("sgd", "signsgd", "rmsprop", "rmspropw", "adam", "adamw")


def _same_sde(optimizer: str, noise: str, nu, a: tuple[str, str], b: tuple[str, str]) -> bool:
    from ..engine import derive_sde

    try:
        x, y = (derive_sde(optimizer, noise, r, f, nu=nu) for r, f in (a, b))
    except Exception:  # noqa: BLE001 - a refused derivation is simply not the same SDE
        return False
    return list(x.drift) == list(y.drift) and x.diffusion == y.diffusion


def sde_kinds(optimizer: str, noise: str = "gaussian", nu=None, compare=None) -> list[tuple[str, str, str]]:
    """The SDEs compared for ``optimizer``: full, published unless it equals full (SGD, SignSGD), and
    the noise-dominated SDE for RMSprop(W) and Adam(W). ``compare`` (labels) overrides the choice."""
    labels = {k[0]: k for k in SDE_KINDS}
    if compare is not None:
        unknown = [c for c in compare if c not in labels]
        if unknown:
            from ..errors import UnknownNameError

            raise UnknownNameError("SDE", ",".join(unknown), list(labels))
        return [labels[c] for c in dict.fromkeys(compare)]
    kinds = [labels["full"]]
    if not _same_sde(optimizer, noise, nu, ("paper", "full"), ("paper", "published")):
        kinds.append(labels["published"])
    if optimizer in NOISE_DOMINATED:
        kinds.append(labels["noise-dominated"])
    return kinds
