"""The standard normal quantile Phi^{-1}, for the quantile coupling of non-Gaussian noise.

A coupled run (docs/validation.md, "Coupling") gives the SDE's first Brownian increment the normal
n = Phi^{-1}(F(zeta)) of the optimizer's draw zeta, so n and zeta are comonotone and n ~ N(0, 1)
exactly whatever the law F. Generated modules compute it (``_coupled_normal``) from the lower tail,
n = -sign(zeta) Phi^{-1}(F(-|zeta|)), so that no 1 - F cancels for large |zeta|.
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True)
def ndtri(q):
    """Phi^{-1}(q) for 0 < q < 1: Wichura's algorithm AS 241 (PPND16), relative error about 1e-16."""
    r = q - 0.5
    if abs(r) <= 0.425:
        s = 0.180625 - r * r
        num = (
            (
                (
                    (
                        ((2509.0809287301226727 * s + 33430.575583588128105) * s + 67265.770927008700853) * s
                        + 45921.953931549871457
                    )
                    * s
                    + 13731.693765509461125
                )
                * s
                + 1971.5909503065514427
            )
            * s
            + 133.14166789178437745
        ) * s + 3.387132872796366608
        den = (
            (
                (
                    (
                        ((5226.495278852545925 * s + 28729.085735721942674) * s + 39307.89580009271061) * s
                        + 21213.794301586595867
                    )
                    * s
                    + 5394.1960214247511077
                )
                * s
                + 687.1870074920579083
            )
            * s
            + 42.313330701600911252
        ) * s + 1.0
        return r * num / den
    s = q if r < 0.0 else 1.0 - q
    s = math.sqrt(-math.log(s))
    if s <= 5.0:
        s -= 1.6
        num = (
            (
                (
                    (
                        ((7.7454501427834140764e-4 * s + 0.0227238449892691845833) * s + 0.24178072517745061177) * s
                        + 1.27045825245236838258
                    )
                    * s
                    + 3.64784832476320460504
                )
                * s
                + 5.7694972214606914055
            )
            * s
            + 4.6303378461565452959
        ) * s + 1.42343711074968357734
        den = (
            (
                (
                    (
                        ((1.05075007164441684324e-9 * s + 5.475938084995344946e-4) * s + 0.0151986665636164571966) * s
                        + 0.14810397642748007459
                    )
                    * s
                    + 0.68976733498510000455
                )
                * s
                + 1.6763848301838038494
            )
            * s
            + 2.05319162663775882187
        ) * s + 1.0
    else:
        s -= 5.0
        num = (
            (
                (
                    (
                        ((2.01033439929228813265e-7 * s + 2.71155556874348757815e-5) * s + 0.0012426609473880784386) * s
                        + 0.026532189526576123093
                    )
                    * s
                    + 0.29656057182850489123
                )
                * s
                + 1.7848265399172913358
            )
            * s
            + 5.4637849111641143699
        ) * s + 6.6579046435011037772
        den = (
            (
                (
                    (
                        ((2.04426310338993978564e-15 * s + 1.4215117583164458887e-7) * s + 1.8463183175100546818e-5) * s
                        + 7.868691311456132591e-4
                    )
                    * s
                    + 0.0148753612908506148525
                )
                * s
                + 0.13692988092273580531
            )
            * s
            + 0.59983220655588793769
        ) * s + 1.0
    value = num / den
    return -value if r < 0.0 else value
