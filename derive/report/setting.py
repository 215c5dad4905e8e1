"""The sizes of a `derive report` run: :class:`Setting` and its three named sizes.

* :data:`QUICK` (``--quick``): the tests' size, one or two rows per section;
* :data:`DEFAULT` (plain ``derive report``): sized to finish in about 5 minutes on 2 cores from
  empty caches, with every claim of the checks and the weak-order studies still resolved: the rows of
  :data:`FULL` at its sizes where a claim needs them, the networks on fewer models and steps;
* :data:`FULL` (``--full``): the sizes the report had before it had a time budget.

Only :data:`QUICK` and the networks of :data:`DEFAULT` drop rows; otherwise a size changes how much
is simulated (paths, steps, step sizes, seeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Setting:
    """Sizes of one report run (the defaults are :data:`FULL`'s)."""

    name: str = "full"
    derivations: tuple = (
        ("sgd", "paper", "full"),
        ("signsgd", "paper", "full"),
        ("rmspropw", "paper", "full"),
        ("adamw", "paper", "full"),
        ("adamw", "paper", "published"),
        ("adam", "noise-dominated", "published"),
    )
    checks: tuple | None = None  #: None: every check
    check_paths: int = 400
    check_window: float = 3.0
    quad_optimizers: tuple = ("sgd", "signsgd", "rmsprop", "adam", "adamw")
    quad_sigmas: tuple = (0.1, 1.0)
    quad_steps: int = 500
    quad_paths: int = 1000
    models: tuple = ("mlp", "cnn", "resnet", "transformer")
    net_optimizers: tuple = ("sgd", "signsgd", "rmsprop", "adam")
    mlp_extra_optimizers: tuple = ("rmspropw", "adamw")
    net_sigmas: dict = field(default_factory=lambda: {"mlp": (0.01, 0.1)})
    net_sigma: float = 0.01
    net_steps: dict = field(default_factory=lambda: {"mlp": 300, "cnn": 200, "resnet": 150, "transformer": 200})
    seeds: tuple = (0, 1, 2)
    eta: float = 0.01
    quad_integrator: tuple = ("weak2", 2)  #: (scheme, substeps) of the SDEs on the quadratic
    net_integrator: tuple = ("weak2", 1)  #: (scheme, substeps) of the SDEs on the networks
    #: the real-noise subsection (`derive noise`): model, batch sizes, steps of the SGD run measured at
    noise_model: str = "mlp"
    noise_batches: tuple = (8, 32)
    noise_at: tuple = (0, 300)
    weak_order: bool = True
    #: (optimizer, landscape) of the weak-order section; each runs the study at weak_etas, weak_paths
    weak_studies: tuple = tuple(
        (o, "quadratic") for o in ("sgd", "signsgd", "rmsprop", "rmspropw", "adam", "adamw")
    ) + tuple((o, land) for land in ("double-well", "rotated") for o in ("sgd", "signsgd", "rmsprop", "adam"))
    weak_etas: tuple = (0.16, 0.08, 0.04, 0.02)
    weak_paths: int = 10000
    #: (optimizer, landscape) -> paths, where a study needs other than weak_paths
    weak_paths_by_study: dict = field(default_factory=dict)
    weak_dt_max: float = 0.01
    #: (model, optimizer) of the network weak-order rows (PyTorch), over weak_net_seeds
    weak_networks: tuple = (("mlp", "sgd"), ("mlp", "adam"))
    weak_net_seeds: tuple = tuple(range(8))
    #: (optimizer, landscape) of the order-2 section (`derive weak-order --order 2`, at order2_etas) and the
    #: (model, optimizer) pairs of its network rows (order 1 against order 2 at order2_net_etas, T = 1)
    order2_studies: tuple = (
        ("sgd", "quadratic"),
        ("adam", "quadratic"),
        ("sgd", "double-well"),
        ("adam", "double-well"),
        ("adamw", "rotated"),
    )
    order2_etas: tuple = (0.08, 0.04, 0.02, 0.01)
    order2_paths: int = 20000
    #: (optimizer, landscape) -> paths, where an order-2 study needs other than order2_paths
    order2_paths_by_study: dict = field(default_factory=dict)
    order2_dt_max: float = 0.005
    order2_networks: tuple = (("mlp", "adam"),)
    order2_net_etas: tuple = (0.01, 0.05)

    def weak_paths_of(self, optimizer: str, landscape: str) -> int:
        """The coupled paths of one weak-order study."""
        return self.weak_paths_by_study.get((optimizer, landscape), self.weak_paths)

    def order2_paths_of(self, optimizer: str, landscape: str) -> int:
        """The coupled paths of one order-2 study."""
        return self.order2_paths_by_study.get((optimizer, landscape), self.order2_paths)


#: the sizes the report had before its time budget (``derive report --full``)
FULL = Setting()

#: the default, sized for about 5 minutes on 2 cores from empty caches (compiling included): every row
#: of FULL but the networks', at FULL's sizes where a claim needs them (the checks' mutants), the networks
#: (413 s of FULL's compute) on the MLP (every optimizer, one sigma) and the CNN at half the steps or
#: fewer, the ResNet and the Transformer left to --full. The weak-order and order-2 studies run fewer paths
#: where FULL resolves every eta by a wide margin. An error's SE grows like 1/sqrt(paths). Weak order: the
#: smallest error of any resolved point of the studies other than SignSGD's was 18.4 SE at FULL's 10000
#: paths and 14.1 SE at 2500 (bench_report.py runs of 2026-12-06), so about 9 SE at the default's 1000,
#: against the 3 SE a point needs. Order 2: 17.2 SE at 20000 in the SGD studies, 8.4 SE at 4000. The
#: studies whose smallest resolved point was within 10 SE at FULL's paths keep them (SignSGD's three: 5.5
#: to 9.7 SE; order-2 adam/quadratic 7.7 and adamw/rotated 4.9), and so does order-2 adam/double-well: at
#: 8000 paths a few outlying paths made one SE ten times FULL's (3.2 SE).
DEFAULT = replace(
    FULL,
    name="default",
    models=("mlp", "cnn"),
    net_steps={"mlp": 150, "cnn": 100},
    net_sigmas={},
    weak_paths=1000,
    weak_paths_by_study={("signsgd", land): FULL.weak_paths for land in ("quadratic", "double-well", "rotated")},
    order2_paths=4000,
    order2_paths_by_study={
        study: FULL.order2_paths for study in (("adam", "quadratic"), ("adam", "double-well"), ("adamw", "rotated"))
    },
)

#: the tests' size (``derive report --quick``)
QUICK = Setting(
    name="quick",
    derivations=(("sgd", "paper", "full"), ("adamw", "paper", "published")),
    checks=("sgd",),
    check_paths=200,
    check_window=2.0,
    quad_optimizers=("sgd", "adam"),
    quad_sigmas=(0.1,),
    quad_steps=100,
    quad_paths=200,
    models=("mlp",),
    net_optimizers=("sgd", "adam"),
    mlp_extra_optimizers=(),
    net_sigmas={},
    net_steps={"mlp": 30},
    seeds=(0, 1),
    noise_batches=(8,),
    noise_at=(0, 20),
    weak_order=True,
    weak_studies=(("sgd", "quadratic"),),
    weak_etas=(0.16, 0.08),
    weak_paths=2000,
    weak_dt_max=0.04,
    weak_networks=(),
    order2_studies=(("sgd", "quadratic"),),
    order2_etas=(0.16, 0.08),
    order2_paths=1000,
    order2_dt_max=0.04,
    order2_networks=(),
)

#: the named sizes, by their names on the command line
SIZES = {s.name: s for s in (QUICK, DEFAULT, FULL)}
