"""Names of the integration schemes and boundary rules that the generated kernels implement, for
code that runs them without importing the generator (the maths: :mod:`derive.codegen.schemes`).

* ``euler``: split-step Euler-Maruyama, weak order 1; ``weak2``: its Talay-Tubaro extrapolation
  2 E phi(X^{h/2}) - E phi(X^h), weak order 2.
* Positive states (v) after each step: v' = max(v', B v') with B = -1 (``reflect``, |v'|) or
  B = 0 (``floor``, an absorbing floor at 0); the kernels read B from the parameter ``_boundary``.
"""

from __future__ import annotations

SCHEMES = ("euler", "weak2")
BOUNDARIES = {"reflect": -1.0, "floor": 0.0}
