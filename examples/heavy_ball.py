"""SGD with heavy-ball momentum in EMA form (PyTorch ``SGD(momentum=beta, dampening=beta)``).

    m <- beta m + (1 - beta) g~        x <- x - eta m

Derive its SDE with ``derive sde examples/heavy_ball.py:heavy_ball``.
"""

from derive import Optimizer, State

heavy_ball = Optimizer(
    name="heavy_ball",
    doc="SGD with EMA heavy-ball momentum",
    hyper={"eta": "lr", "beta": "decay"},
    state=[State("m")],
    update=[
        ("m", "beta*m + (1 - beta)*grad"),
        ("x", "x - eta*m"),
    ],
)
