"""Optimizer specifications written as update rules.

An :class:`Optimizer` is the coordinate-wise discrete update of an optimizer, written the way
PyTorch code reads: an ordered list of assignments ``name <- expression``. Later assignments see
the values assigned before them, so ``m`` in the ``x`` line of Adam is the *new* first moment.
Names an expression may use:

* ``x`` (the parameter coordinate) and the declared auxiliary states (``m``, ``v``, ...);
* ``grad``, the stochastic gradient coordinate g~ = g + sigma*zeta of this step;
* ``grad_1``, ``grad_2``, ...: further stochastic gradients of the same step, independent draws of
  the same law at the same point, g + sigma*zeta_i (e.g. n workers: ``grad_1 ... grad_n``);
* ``grad(P)``, ``grad_i(P)``: the stochastic gradient at the point P (the same draw as ``grad``,
  resp. ``grad_i``: one minibatch at both points), as in SAM, ``x - eta*grad(x + r*grad)``, or
  schedule-free SGD (see :mod:`derive.points`);
* ``xi``, ``xi_1``, ...: injected standard Gaussian draws, independent of everything else, scaled
  by a hyperparameter of the user's choice (role ``noise_scale`` for a scale that grows with the
  gradient noise in the noise-dominated regime, ``const`` for a fixed one);
* ``k``, the step count (1 on the first step, as PyTorch's ``step``);
* the hyperparameters, each with a role that tells a scaling regime how it scales with eta:
  ``lr`` (the step size, exactly one), ``decay`` (an EMA factor beta in (0, 1) with
  1 - beta = eta^a rho), ``fixed_decay`` (an EMA factor in (0, 1) held fixed as eta -> 0, as
  Lion's beta1 or PyTorch's momentum), ``eps``, ``weight_decay``, ``noise_scale`` (scales like
  sigma), ``radius`` (a distance that scales like sqrt(eta), SAM's r = r0 sqrt(eta)), ``const``
  (held fixed) and ``positive`` (held fixed and > 0, e.g. a clipping threshold);
* temporaries assigned earlier in the list (``mhat``, ...), and the functions
  ``sqrt, exp, log, sign, Abs, Min, Max, Heaviside``, ``clip(a, lo, hi) = Min(Max(a, lo), hi)`` and
  ``norm`` (the Euclidean norm over all coordinates; parsed so that the engine can refuse it by
  name: it couples every coordinate, as normalised SAM's ``r*grad/norm(grad)``).

A state starts at ``State.init``: a number, or ``"x"`` for the parameter's initial value
(schedule-free SGD's z).

The spec knows nothing about noise laws or SDEs: :mod:`derive.engine` consumes it.
"""

from __future__ import annotations

import builtins
import keyword
import re
import runpy
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

from . import symbols as S
from .errors import SpecError
from .parsing import ExpressionError, parse_expression
from .points import grad_at, norm

ROLES = ("lr", "decay", "fixed_decay", "eps", "weight_decay", "noise_scale", "radius", "const", "positive")


def clip(a: sp.Expr, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    """clip(a, lo, hi) = Min(Max(a, lo), hi) (lo <= hi)."""
    return sp.Min(sp.Max(a, lo), hi)


FUNCTIONS = {f.__name__: f for f in (sp.sqrt, sp.exp, sp.log, sp.sign, sp.Abs, sp.Min, sp.Max, sp.Heaviside)}
FUNCTIONS["abs"] = sp.Abs
FUNCTIONS["clip"] = clip
FUNCTIONS["norm"] = norm
RESERVED = {"x", "grad", "k", "g", "t", "zeta", "sigma", "nu", "xi", "gradf", "hvp"}
_DRAW = re.compile(r"\b(grad_[1-9][0-9]*|xi(?:_[1-9][0-9]*)?)\b")
_GRADS = re.compile(r"\b(grad(?:_[1-9][0-9]*)?)\b")


def gradient_at(name: str):
    """The function ``grad(P)`` (``grad_i(P)``) of update rules: the stochastic gradient of that draw at P."""
    index = S.draw_index(sp.Symbol(name), "grad")

    def at(*args: sp.Expr) -> sp.Expr:
        if len(args) != 1:
            raise SpecError(f"{name}(...) takes one argument, the point P, got {len(args)}")
        return grad_at(sp.sympify(args[0]), index)

    return at


def check_name(optimizer: str, kind: str, name: str) -> None:
    """Refuse a user name that generated code could confuse with its own: names starting with an
    underscore belong to the generator (every name it owns does), and Python keywords and built-ins
    (``max``, ``abs``, ...) are used by the printed kernels."""
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"optimizer {optimizer!r}: {kind} name {name!r} is not a Python identifier")
    if name.startswith("_"):
        raise SpecError(
            f"optimizer {optimizer!r}: {kind} name {name!r} starts with an underscore; "
            "names starting with '_' are reserved for generated code"
        )
    if keyword.iskeyword(name) or name in _BUILTIN_NAMES:
        raise SpecError(
            f"optimizer {optimizer!r}: {kind} name {name!r} is a Python keyword or built-in; choose another name"
        )


_BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True)
class State:
    """An auxiliary state variable (the parameter ``x`` is implicit).

    ``init`` is its value before the first step: a number, or ``"x"`` for the parameter's initial
    value (schedule-free SGD's z starts at x); ``positive`` declares that it stays positive
    (a second-moment estimate), which lets the engine simplify sqrt(v).
    """

    name: str
    init: float | str = 0.0
    positive: bool = False

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name, positive=True) if self.positive else sp.Symbol(self.name, real=True)


X = sp.Symbol("x", real=True)


@dataclass(frozen=True, eq=False)
class Optimizer:
    """A coordinate-wise optimizer given by its update rule.

    ``hyper`` maps each hyperparameter name to its role (one of :data:`ROLES`); ``update`` is the
    ordered list of assignments; ``state`` the auxiliary states; ``defaults`` optional default
    hyperparameter values used by simulators.
    """

    name: str
    hyper: dict[str, str]
    update: tuple[tuple[str, str], ...]
    state: tuple[State, ...] = ()
    doc: str = ""
    defaults: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "update", tuple(tuple(a) for a in self.update))
        object.__setattr__(self, "state", tuple(self.state))
        self._validate()

    # -- symbols -------------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        """All state names, the parameter first: ('x', 'm', 'v', ...)."""
        return ("x",) + tuple(s.name for s in self.state)

    @property
    def state_symbols(self) -> tuple[sp.Symbol, ...]:
        return (X,) + tuple(s.symbol for s in self.state)

    def hyper_symbols(self) -> dict[str, sp.Symbol]:
        return {n: S.hyper_symbol(n, r) for n, r in self.hyper.items()}

    def hypers_with_role(self, role: str) -> list[str]:
        return [n for n, r in self.hyper.items() if r == role]

    @property
    def lr(self) -> sp.Symbol:
        return self.hyper_symbols()[self.hypers_with_role("lr")[0]]

    # -- parsing ---------------------------------------------------------------------------
    def _namespace(self) -> dict[str, object]:
        ns: dict[str, object] = dict(FUNCTIONS)
        ns.update(self.hyper_symbols())
        ns.update(dict(zip(self.state_names, self.state_symbols, strict=False)))
        ns["grad"], ns["k"] = S.grad, S.k
        return ns

    def _parse(self, target: str, text: str, known: set[str]) -> sp.Expr:
        where = f"optimizer {self.name!r}, assignment {target} <- {text!r}"
        if not isinstance(text, str):
            raise SpecError(f"{where}: the expression must be a string, got {type(text).__name__}")
        ns = self._namespace()
        temps = {n: sp.Symbol(n, real=True) for n in known if n not in ns}
        ns.update(temps)
        ns.update({name: sp.Symbol(name, real=True) for name in _DRAW.findall(text)})
        names = {n: v for n, v in ns.items() if n not in FUNCTIONS}
        functions = dict(FUNCTIONS)
        functions.update({n: gradient_at(n) for n in set(_GRADS.findall(text))})  # grad(P), grad_i(P)
        try:  # unknown names become symbols here, listed together below
            expr = parse_expression(text, names=names, functions=functions, where=where, new_symbol=sp.Symbol)
        except ExpressionError as exc:
            raise SpecError(str(exc)) from None
        except SpecError as exc:  # grad(P) with a wrong number of arguments
            raise SpecError(f"{where}: {exc}") from None
        if not isinstance(expr, sp.Expr):
            raise SpecError(f"{where}: the expression is not a scalar expression")
        allowed = known | set(self.hyper) | {"grad", "k"} | set(_DRAW.findall(text))
        unknown = sorted(s.name for s in expr.free_symbols if s.name not in allowed)
        if unknown:
            raise SpecError(
                f"{where}: unknown name(s) {', '.join(unknown)}; allowed: the states "
                f"{', '.join(self.state_names)}, grad, grad_1, ..., xi, xi_1, ..., k, the hyperparameters {', '.join(self.hyper)}"
                + (
                    f", the temporaries {', '.join(sorted(known - set(self.state_names)))}"
                    if known - set(self.state_names)
                    else ""
                )
            )
        return expr

    def _validate(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise SpecError(f"an optimizer needs a non-empty name, got {self.name!r}")
        for n, r in self.hyper.items():
            check_name(self.name, "hyperparameter", n)
            if r not in ROLES:
                raise SpecError(
                    f"optimizer {self.name!r}: hyperparameter {n!r} has role {r!r}; allowed roles: {', '.join(ROLES)}"
                )
            if n in RESERVED or n in FUNCTIONS or _DRAW.fullmatch(n) or S.draw_index(sp.Symbol(n), "zeta") is not None:
                raise SpecError(
                    f"optimizer {self.name!r}: hyperparameter name {n!r} is reserved; reserved: {', '.join(sorted(RESERVED))}"
                )
        if len(self.hypers_with_role("lr")) != 1:
            raise SpecError(
                f"optimizer {self.name!r} must have exactly one hyperparameter with role 'lr', has {self.hypers_with_role('lr')}"
            )
        for s in self.state:
            check_name(self.name, "state", s.name)
            if s.init != "x" and (isinstance(s.init, (bool, str)) or not isinstance(s.init, (int, float))):
                raise SpecError(
                    f"optimizer {self.name!r}: state {s.name!r} has init {s.init!r}; allowed: a number, or 'x' "
                    "(the parameter's initial value)"
                )
            if s.name in RESERVED or s.name in self.hyper or _DRAW.fullmatch(s.name):
                raise SpecError(
                    f"optimizer {self.name!r}: state name {s.name!r} clashes with a reserved or hyperparameter name"
                )
        targets = [a[0] for a in self.update]
        if "x" not in targets:
            raise SpecError(f"optimizer {self.name!r}: the update never assigns the parameter 'x'")
        for st in self.state_names[1:]:
            if st not in targets:
                raise SpecError(f"optimizer {self.name!r}: state {st!r} is declared but never updated")
        self.parsed()  # parse everything once so errors surface at construction

    def parsed(self) -> tuple[tuple[str, sp.Expr], ...]:
        """The assignments as (target, SymPy expression) in order (parsed once per spec)."""
        cache = self.__dict__.setdefault("_cache", {})
        if "parsed" not in cache:
            cache["parsed"] = self._parse_all()
        return cache["parsed"]

    def _parse_all(self) -> tuple[tuple[str, sp.Expr], ...]:
        known = set(self.state_names)
        out = []
        for assignment in self.update:
            if len(assignment) != 2:
                raise SpecError(f"optimizer {self.name!r}: each assignment is (target, expression), got {assignment!r}")
            target, text = assignment
            check_name(self.name, "assignment target", target)
            if (
                target in self.hyper
                or target in ("grad", "k")
                or _DRAW.fullmatch(str(target))
                or not str(target).isidentifier()
            ):
                raise SpecError(
                    f"optimizer {self.name!r}: cannot assign to {target!r}; assign to a state or a new temporary name"
                )
            out.append((target, self._parse(target, text, known)))
            known.add(target)
        return tuple(out)

    # -- composition -----------------------------------------------------------------------
    def step_map(self, hold: frozenset[str] = frozenset()) -> dict[str, sp.Expr]:
        """New value of every state after one step, in terms of the old states, grad and k.

        ``hold`` names auxiliary states whose *new* value the parameter's update reads as a
        placeholder symbol ``<name>_next`` instead of its expression (used by the published
        forms that keep the same-step momentum in the drift).
        """
        cache = self.__dict__.setdefault("_cache", {})
        key = ("step_map", frozenset(hold))
        if key not in cache:
            cache[key] = self._compose(frozenset(hold))
        return dict(cache[key])

    def _compose(self, hold: frozenset[str]) -> dict[str, sp.Expr]:
        env: dict[sp.Symbol, sp.Expr] = {}
        held_env: dict[sp.Symbol, sp.Expr] = {}
        by_name = dict(zip(self.state_names, self.state_symbols, strict=False))
        for target, expr in self.parsed():
            sym = by_name.get(target, sp.Symbol(target, real=True))
            env[sym] = expr.xreplace(env)
            held_env[sym] = next_symbol(target) if target in hold else expr.xreplace(held_env)
        return {n: (held_env if n == "x" else env)[s] for n, s in by_name.items()}

    def grad_degree(self, name: str) -> int | None:
        """Total degree in the stochastic gradients (grad, grad_1, ...) of a state's new value
        (None if not polynomial in them)."""
        return grad_degree(self.step_map()[name])

    @property
    def draws(self) -> tuple[sp.Symbol, ...]:
        """The noise draws the update reads: grad, grad_1, ..., xi, xi_1, ... (sorted by name)."""
        names = set()
        for _, expr in self.parsed():
            names |= {s for s in expr.free_symbols if s == S.grad or S.draw_index(s, "grad") or S.is_gaussian_draw(s)}
            names |= {S.grad_draw(a.draw) for a in expr.atoms(grad_at)}  # grad_i(P) draws grad_i
        return tuple(sorted(names, key=lambda s: s.name))

    def describe(self) -> str:
        """The update rule as readable text."""
        lines = [f"optimizer {self.name}: " + (self.doc or "")]
        lines.append("  hyperparameters: " + ", ".join(f"{n} ({r})" for n, r in self.hyper.items()))
        if self.state:
            lines.append("  states: " + ", ".join(f"{s.name} (init {s.init})" for s in self.state))
        lines += [f"  {tgt} <- {txt}" for tgt, txt in self.update]
        return "\n".join(lines)


def grad_degree(expr: sp.Expr) -> int | None:
    """Total degree of ``expr`` in the stochastic gradients grad, grad_1, ... (None if not polynomial)."""
    grads = sorted((s for s in expr.free_symbols if S.draw_index(s, "grad") is not None), key=lambda s: s.name)
    if not grads:
        return 0
    try:
        return sp.Poly(expr, *grads).total_degree()
    except sp.PolynomialError:
        return None


def next_symbol(name: str) -> sp.Symbol:
    """Placeholder for the new value of state ``name`` within the same step."""
    return sp.Symbol(f"{name}_next", real=True)


def load_spec(ref: str) -> Optimizer:
    """Load an optimizer from a user file: ``path/to/file.py:NAME``."""
    path_text, sep, name = ref.rpartition(":")
    if not sep or not path_text or not name:
        raise SpecError(f"a user optimizer is given as path/to/file.py:NAME, got {ref!r}")
    path = Path(path_text)
    if not path.is_file():
        raise SpecError(f"optimizer file {str(path)!r} does not exist (from {ref!r})")
    try:
        namespace = runpy.run_path(str(path))
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - report any failure of the user's file
        raise SpecError(f"optimizer file {str(path)!r} failed to run: {type(exc).__name__}: {exc}") from None
    found = sorted(k for k, v in namespace.items() if isinstance(v, Optimizer))
    if name not in namespace:
        raise SpecError(
            f"optimizer file {str(path)!r} does not define {name!r}; it defines the optimizers: {', '.join(found) or 'none'}"
        )
    spec = namespace[name]
    if not isinstance(spec, Optimizer):
        raise SpecError(f"{name!r} in {str(path)!r} is a {type(spec).__name__}, not a derive.Optimizer")
    return spec
