"""CoSTA*: cost-sensitive A* search for a tool path over a subtask tree, with execution feedback.

A request is split (by an LLM, elsewhere) into a :class:`SubtaskTree`: typed subtasks with parent
links; any order consistent with the parents is allowed. Each :class:`ToolInfo` serves some
subtask types and may require other tools to have run first. A :class:`CostTable` gives the
estimated cost ``C`` and quality ``Q`` of each (tool, subtask type) pair.

A path assigns one tool to each subtask in a valid order. Its objective (lower is better) is
:func:`path_cost`: ``(sum C)**alpha * (2 - prod Q)**(2 - alpha)`` with ``alpha`` in [0, 2]
(0: quality only, 2: cost only). Paths whose quality ``prod Q`` falls below ``q_threshold``
are invalid. The search is generic: nothing here knows about images.

* :func:`astar` is the search. A node is the set of subtasks done, the tools used so far (only
  those some tool requires) and the running ``sum C`` and ``prod Q``. Its ``f`` is a lower bound
  on the objective of any completion (:func:`lower_bound`), the objective evaluated at the
  current ``sum C`` plus each remaining subtask's cheapest tool and the current ``prod Q`` times
  each remaining subtask's best quality. So ``f = g + h`` with ``h = f - g >= 0`` admissible;
  ``f`` never decreases along a path, so the first goal popped is optimal. A node whose
  ``prod Q`` times the remaining best qualities is under the threshold is pruned, and so is one
  dominated (no cheaper and no better quality) by an expanded node with the same done set and
  tools used, which is exact because the rest of the objective depends only on those.
* :func:`uniform_cost` (``h = 0``), :func:`exhaustive` (every order and tool assignment) and
  :func:`greedy` (each subtask's best single-step tool, no search) are baselines;
  :func:`count_search_tree` counts exhaustive's nodes without enumerating them.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolpath.agents.costa.table import CostTable, Estimate
from toolpath.errors import ConfigError, PlanError

__all__ = [
    "ANY", "DEFAULT_Q", "DEFAULT_RULE", "THRESHOLDS", "CostTable", "Estimate", "Search", "SearchResult", "Step", "Subtask",
    "SubtaskTree", "ToolInfo", "astar", "check_alpha", "count_search_tree", "exhaustive",
    "greedy", "heuristic", "lower_bound", "path_cost", "prune", "thresholds", "uniform_cost",
]  # fmt: skip

DEFAULT_RULE, DEFAULT_Q = "normalized", 0.9
"""The default threshold rule and least quality of :func:`costa_agent` and the CLI: the
geometric mean of the planned qualities >= 0.9. Chosen on the dev tasks (generator seed 0 of
both domains, ``benchmarks/results/2026-12-07``): the paper's rule (prod Q >= 0.8) refused 7
of 30 image tasks outright; the per-step and length-normalised rules solved as many as the
best of any rule, and this one re-planned least and expanded the fewest nodes."""

ANY = "*"
"""A tool's data type that matches anything: as an input it takes whatever the working object
is; as an output it leaves the object's type as it was."""

THRESHOLDS = ("product", "step", "normalized")
"""How ``q_threshold`` bounds a plan's quality: ``product`` (the paper's: ``prod Q >= t``),
``step`` (every planned step's ``Q >= t``) or ``normalized`` (the geometric mean per subtask,
``(prod Q) ** (1 / n) >= t``, which is ``prod Q >= t ** n`` for an ``n``-subtask tree)."""


@dataclass(frozen=True)
class Subtask:
    """One subtask: a unique ``id``, the ``type`` tools serve, and the subtasks it must follow."""

    id: str
    type: str
    parents: tuple[str, ...] = ()


class SubtaskTree:
    """A validated DAG of subtasks. Raises :class:`PlanError` on an empty tree, a duplicate id,
    an unknown parent or a cycle."""

    def __init__(self, subtasks: Iterable[Subtask]) -> None:
        self.subtasks = tuple(Subtask(s.id, s.type, tuple(s.parents)) for s in subtasks)
        if not self.subtasks:
            raise PlanError("the subtask tree has no subtasks")
        self.index: dict[str, int] = {}
        for i, s in enumerate(self.subtasks):
            if s.id in self.index:
                raise PlanError(f"duplicate subtask id {s.id!r}")
            self.index[s.id] = i
        for s in self.subtasks:
            for p in s.parents:
                if p not in self.index:
                    raise PlanError(f"subtask {s.id!r} has unknown parent {p!r}")
        # Kahn's algorithm: whatever is never freed lies on (or after) a cycle.
        waiting = {s.id: len(set(s.parents)) for s in self.subtasks}
        free = [sid for sid, n in waiting.items() if n == 0]
        while free:
            done = free.pop()
            for s in self.subtasks:
                if done in s.parents:
                    waiting[s.id] -= 1
                    if waiting[s.id] == 0:
                        free.append(s.id)
        stuck = sorted(sid for sid, n in waiting.items() if n > 0)
        if stuck:
            raise PlanError(f"the subtask tree has a cycle through {', '.join(stuck)}")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | str) -> SubtaskTree:
        """A tree from ``{"subtasks": [{"id": "s1", "type": "recolor", "parents": []}, ...]}``
        (a dict or its JSON text)."""
        try:
            data = json.loads(obj) if isinstance(obj, str) else obj
            items = data["subtasks"]
            subtasks = []
            for raw in items:
                parents = raw.get("parents") or []
                if not (isinstance(raw["id"], str) and isinstance(raw["type"], str)):
                    raise TypeError("id and type must be strings")
                if isinstance(parents, str) or not all(isinstance(p, str) for p in parents):
                    raise TypeError("parents must be a list of subtask ids")
                subtasks.append(Subtask(raw["id"], raw["type"], tuple(parents)))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise PlanError(
                'a subtask tree must look like {"subtasks": [{"id": ..., "type": ..., '
                f'"parents": [...]}}, ...]}}: {exc!r}'
            ) from None
        return cls(subtasks)

    def __len__(self) -> int:
        return len(self.subtasks)

    def __iter__(self) -> Iterator[Subtask]:
        return iter(self.subtasks)

    def __getitem__(self, subtask_id: str) -> Subtask:
        return self.subtasks[self.index[subtask_id]]

    def types(self) -> set[str]:
        """The subtask types in the tree."""
        return {s.type for s in self.subtasks}


@dataclass(frozen=True)
class ToolInfo:
    """A tool: the subtask types it ``serves``, its data types, and tools that must run first.

    The working object flows through the path: a tool can run only when the object's current
    type is its ``input_type``, and leaves it of its ``output_type`` (:data:`ANY` matches any
    type, or keeps it)."""

    name: str
    serves: frozenset[str]
    input_type: str = "image"
    output_type: str = "image"
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "serves", frozenset(self.serves))
        object.__setattr__(self, "requires", tuple(self.requires))


@dataclass(frozen=True)
class Step:
    """One step of a path: a subtask, the tool for it, and its cost and quality (estimated in a
    plan, real once executed)."""

    subtask_id: str
    tool: str
    cost: float
    quality: float


@dataclass
class SearchResult:
    """A search's best path and its totals. ``expanded`` counts expanded nodes (for
    :func:`exhaustive`, every node of the enumeration tree, root included); ``paths`` counts the
    complete paths evaluated."""

    path: list[Step]
    cost: float
    quality: float
    objective: float
    expanded: int
    generated: int = 0
    paths: int = 0


def path_cost(costs: Iterable[float], qualities: Iterable[float], alpha: float) -> float:
    """``(sum costs)**alpha * (2 - prod qualities)**(2 - alpha)``, with ``0**0 == 1``."""
    return _objective(math.fsum(costs), math.prod(qualities), alpha)


def _objective(cost: float, quality: float, alpha: float) -> float:
    return (cost**alpha if alpha else 1.0) * (2.0 - quality) ** (2.0 - alpha)


def _tie(value: float) -> float:
    """An objective rounded past float noise: the same steps summed in another order tie."""
    return round(value, 12)


def check_alpha(alpha: float, q_threshold: float = 0.0, threshold: str = "product") -> None:
    """:class:`ConfigError` unless ``alpha`` is in [0, 2], ``q_threshold`` in [0, 1] and
    ``threshold`` one of :data:`THRESHOLDS`."""
    if not 0.0 <= alpha <= 2.0:
        raise ConfigError(f"alpha must be in [0, 2], got {alpha!r}")
    if not 0.0 <= q_threshold <= 1.0:
        raise ConfigError(f"q_threshold must be in [0, 1], got {q_threshold!r}")
    if threshold not in THRESHOLDS:
        raise ConfigError(f"unknown threshold {threshold!r}; use one of: {', '.join(THRESHOLDS)}")


def thresholds(q_threshold: float, threshold: str, n: int) -> tuple[float, float]:
    """``(least quality of one step, least product of qualities)`` that ``q_threshold`` means
    under the ``threshold`` rule (:data:`THRESHOLDS`) for an ``n``-subtask tree."""
    if threshold == "step":
        return q_threshold, 0.0
    if threshold == "normalized":
        return 0.0, q_threshold**n
    return 0.0, q_threshold


def prune(
    tools: Sequence[ToolInfo], tree: SubtaskTree, initial_types: Iterable[str] = ("image",)
) -> list[ToolInfo]:
    """The tools that can take part in a path for ``tree``: those serving one of its subtask
    types whose input type is available (an initial type or a kept tool's output) and whose
    required tools are kept too (a fixed point, so requirement cycles drop out). Raises
    :class:`PlanError` naming a subtask type that no kept tool serves."""
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate tool names in {names}")
    kinds = tree.types()
    relevant = [t for t in tools if t.serves & kinds]
    kept: set[str] = set()
    available = set(initial_types)
    changed = True
    while changed:
        changed = False
        for t in relevant:
            takes = t.input_type == ANY or t.input_type in available
            if t.name not in kept and takes and kept.issuperset(t.requires):
                kept.add(t.name)
                available.add(t.output_type)
                changed = True
    for kind in sorted(kinds):
        if not any(kind in t.serves for t in relevant if t.name in kept):
            ids = ", ".join(s.id for s in tree if s.type == kind)
            serving = [t.name for t in relevant if kind in t.serves]
            why = (
                f"tools {', '.join(serving)} cannot run (input type or required tool missing)"
                if serving
                else "no tool serves it"
            )
            raise PlanError(f"no tool can do subtask type {kind!r} (subtask {ids}): {why}")
    return [t for t in tools if t.name in kept]


@dataclass(frozen=True)
class _Option:
    tool: str
    cost: float
    quality: float
    needs: int  # bit mask of required tools
    bit: int  # this tool's bit when some tool requires it, else 0
    takes: int  # the working object's type it needs (-1: any)
    gives: int  # the type it leaves (-1: the same)

    def fits(self, used: int, kind: int) -> bool:
        return not self.needs & ~used and self.takes in (-1, kind)

    def after(self, kind: int) -> int:
        return kind if self.gives == -1 else self.gives


class _Problem:
    """A tree, pruned tools and table compiled to bit masks, plus the start states from ``done``
    (one per type the working object may start as; after ``done``, the type its last step
    left). Options below ``step_min`` quality are left out."""

    def __init__(
        self,
        tree: SubtaskTree,
        tools: Sequence[ToolInfo],
        table: CostTable | None,
        done: Sequence[Step] = (),
        start_types: Sequence[str] = ("image",),
        step_min: float = 0.0,
    ) -> None:
        self.tree = tree
        self.n = len(tree)
        self.full = (1 << self.n) - 1
        usable = prune(tools, tree, start_types)
        required = sorted({r for t in usable for r in t.requires})
        rbit = {name: 1 << k for k, name in enumerate(required)}
        names = sorted({*start_types, *(x for t in tools for x in (t.input_type, t.output_type))})
        tid = {name: i for i, name in enumerate(n for n in names if n != ANY)}
        tid[ANY] = -1
        self.parents = [sum(1 << tree.index[p] for p in s.parents) for s in tree]
        self.options: list[list[_Option]] = []
        for s in tree:
            opts = []
            for t in usable:
                if s.type in t.serves:
                    cost, quality = table.get(t.name, s.type) if table is not None else (0.0, 1.0)
                    if quality < step_min:
                        continue
                    needs = sum(rbit[r] for r in t.requires)
                    types = tid[t.input_type], tid[t.output_type]
                    opts.append(_Option(t.name, cost, quality, needs, rbit.get(t.name, 0), *types))
            if not opts:
                raise PlanError(
                    f"no tool for subtask {s.id!r} ({s.type}) reaches the per-step quality "
                    f"threshold {step_min}"
                )
            self.options.append(opts)
        self.min_cost = [min(o.cost for o in opts) for opts in self.options]
        self.max_quality = [max(o.quality for o in opts) for opts in self.options]
        self._rest: dict[int, tuple[float, float]] = {}
        # The executed prefix: checked, then folded into the start state.
        by_name = {t.name: t for t in tools}
        self.mask = self.used = 0
        self.cost, self.quality = 0.0, 1.0
        self.kinds = sorted({tid[k] for k in start_types})
        for step in done:
            i = tree.index.get(step.subtask_id)
            if i is None or self.mask >> i & 1 or self.parents[i] & ~self.mask:
                raise PlanError(f"executed step {step} is not a valid next step of the tree")
            tool = by_name.get(step.tool)
            if tool is None or tree.subtasks[i].type not in tool.serves:
                raise PlanError(f"executed step {step} uses a tool that does not serve it")
            self.mask |= 1 << i
            self.used |= rbit.get(step.tool, 0)
            self.cost += step.cost
            self.quality *= step.quality
            if tool.output_type != ANY:
                self.kinds = [tid[tool.output_type]]
        self.prefix = list(done)

    def rest(self, mask: int) -> tuple[float, float]:
        """Sum of best costs and product of best qualities of the subtasks not in ``mask``."""
        got = self._rest.get(mask)
        if got is None:
            todo = [i for i in range(self.n) if not mask >> i & 1]
            got = (
                math.fsum(self.min_cost[i] for i in todo),
                math.prod(self.max_quality[i] for i in todo),
            )
            self._rest[mask] = got
        return got

    def moves(self, mask: int, used: int, kind: int) -> Iterator[tuple[int, _Option]]:
        """Every (subtask index, option) allowed next: parents done, required tools used, and
        the working object of the type the tool takes."""
        for i in range(self.n):
            if not mask >> i & 1 and not self.parents[i] & ~mask:
                for o in self.options[i]:
                    if o.fits(used, kind):
                        yield i, o

    def step(self, i: int, o: _Option) -> Step:
        return Step(self.tree.subtasks[i].id, o.tool, o.cost, o.quality)


def lower_bound(
    tree: SubtaskTree,
    tools: Sequence[ToolInfo],
    table: CostTable,
    done: Sequence[Step] = (),
    *,
    alpha: float = 1.0,
    start_types: Sequence[str] = ("image",),
) -> float:
    """A lower bound on the objective of every completion of the path ``done``: the objective at
    ``sum C`` plus the remaining subtasks' best costs and ``prod Q`` times their best qualities."""
    check_alpha(alpha)
    p = _Problem(tree, tools, table, done, start_types)
    rc, rq = p.rest(p.mask)
    return _objective(p.cost + rc, p.quality * rq, alpha)


def heuristic(
    tree: SubtaskTree,
    tools: Sequence[ToolInfo],
    table: CostTable,
    done: Sequence[Step] = (),
    *,
    alpha: float = 1.0,
    start_types: Sequence[str] = ("image",),
) -> float:
    """A*'s ``h`` after the path ``done``: :func:`lower_bound` minus the objective ``g`` so far."""
    g = path_cost([s.cost for s in done], [s.quality for s in done], alpha)
    return lower_bound(tree, tools, table, done, alpha=alpha, start_types=start_types) - g


def _no_path(p: _Problem, q_threshold: float) -> PlanError:
    rq = p.rest(p.mask)[1]
    return PlanError(
        f"no tool path completes the {p.n - p.mask.bit_count()} remaining subtask(s) with "
        f"quality >= {q_threshold:.4g} (at best {p.quality * rq:.4g} before tool requirements "
        "and data types)"
    )


def _best_first(p: _Problem, alpha: float, q_threshold: float, *, informed: bool) -> SearchResult:
    """A* (``informed``: f = lower bound, lookahead threshold pruning) or uniform-cost search
    (f = g, prune once prod Q is under the threshold), with dominance pruning."""

    def f_of(mask: int, cost: float, quality: float) -> float:
        if not informed:
            return _objective(cost, quality, alpha)
        rc, rq = p.rest(mask)
        return _objective(cost + rc, quality * rq, alpha)

    def hopeless(mask: int, quality: float) -> bool:
        return quality * (p.rest(mask)[1] if informed else 1.0) < q_threshold

    if hopeless(p.mask, p.quality):
        raise _no_path(p, q_threshold)
    Node = tuple[Any, Step] | None  # a path as a linked list, newest step first
    start: Node = None
    f0 = _tie(f_of(p.mask, p.cost, p.quality))
    # Entries: (f, -depth, steps taken out of the tree's order, tiebreak, state...). Plans that
    # differ only in the order of their steps cost the same up to float rounding, so f is
    # rounded and the tree's own order (the request's, when the tree leaves it open) wins.
    heap: list[tuple[float, int, int, int, int, int, int, float, float, Node]] = [
        (f0, 0, 0, -1 - k, p.mask, p.used, kind, p.cost, p.quality, start)
        for k, kind in enumerate(p.kinds)
    ]
    closed: dict[tuple[int, int, int], list[tuple[float, float]]] = {}
    expanded = generated = 0

    def dominated(key: tuple[int, int, int], cost: float, quality: float) -> bool:
        return any(c <= cost and q >= quality for c, q in closed.get(key, ()))

    while heap:
        _, _, skips, _, mask, used, kind, cost, quality, node = heapq.heappop(heap)
        if dominated((mask, used, kind), cost, quality):
            continue
        closed.setdefault((mask, used, kind), []).append((cost, quality))
        expanded += 1
        if mask == p.full:
            steps: list[Step] = []
            while node is not None:
                node, step = node
                steps.append(step)
            path = p.prefix + steps[::-1]
            return SearchResult(
                path, cost, quality, _objective(cost, quality, alpha), expanded, generated, 1
            )
        for i, o in p.moves(mask, used, kind):
            mask2, used2, kind2 = mask | 1 << i, used | o.bit, o.after(kind)
            cost2, quality2 = cost + o.cost, quality * o.quality
            if hopeless(mask2, quality2) or dominated((mask2, used2, kind2), cost2, quality2):
                continue
            generated += 1
            skips2 = skips + (~mask & ((1 << i) - 1)).bit_count()  # earlier subtasks left undone
            entry = (_tie(f_of(mask2, cost2, quality2)), -mask2.bit_count(), skips2, generated)
            state = (mask2, used2, kind2, cost2, quality2, (node, p.step(i, o)))
            heapq.heappush(heap, (*entry, *state))
    raise _no_path(p, q_threshold)


class Search:
    """A tool-path search (:func:`astar`, :func:`uniform_cost`, :func:`exhaustive`,
    :func:`greedy`), made from its ``body``: called with a tree, the tools and the table, it
    checks ``alpha`` and the quality threshold, compiles the problem (starting after the
    executed steps ``done``, which the returned path includes, with the working object of one
    of ``start_types``) and hands it to ``body(problem, alpha, least_product_quality)``.
    ``threshold`` says how ``q_threshold`` applies (:data:`THRESHOLDS`)."""

    thresholded = True  # greedy, the no-search baseline, ignores every quality threshold

    def __init__(self, body: Callable[[_Problem, float, float], SearchResult]) -> None:
        self.body = body
        self.__name__ = self.__qualname__ = body.__name__
        self.__doc__ = body.__doc__

    def __call__(
        self,
        tree: SubtaskTree,
        tools: Sequence[ToolInfo],
        table: CostTable,
        *,
        alpha: float = 1.0,
        q_threshold: float = 0.8,
        threshold: str = "product",
        done: Sequence[Step] = (),
        start_types: Sequence[str] = ("image",),
    ) -> SearchResult:
        check_alpha(alpha, q_threshold, threshold)
        step_min, product_min = thresholds(q_threshold, threshold, len(tree))
        if not self.thresholded:
            step_min, product_min = 0.0, 0.0
        problem = _Problem(tree, tools, table, done, start_types, step_min)
        return self.body(problem, alpha, product_min)

    def __repr__(self) -> str:
        return f"<search {self.__name__}>"

    def __reduce__(self) -> str:
        return self.__qualname__  # pickled by name, as a function is


@Search
def astar(p: _Problem, alpha: float, q_threshold: float) -> SearchResult:
    """The optimal path (lowest :func:`path_cost` with ``prod Q >= q_threshold``) that starts
    with the executed steps ``done``, found by A*. Raises :class:`PlanError` when there is none.
    The returned path includes ``done``; cost, quality and objective are for the whole path."""
    return _best_first(p, alpha, q_threshold, informed=True)


@Search
def uniform_cost(p: _Problem, alpha: float, q_threshold: float) -> SearchResult:
    """As :func:`astar` with ``h = 0`` (the baseline A* is measured against)."""
    return _best_first(p, alpha, q_threshold, informed=False)


@Search
def exhaustive(p: _Problem, alpha: float, q_threshold: float) -> SearchResult:
    """The optimum by enumerating every valid order times tool assignment after ``done``, with
    no pruning. ``expanded`` is the number of enumeration-tree nodes (root included, equal to
    :func:`count_search_tree`), ``paths`` the complete paths."""
    best: list[Any] = [math.inf, None]
    counts = [0, 0]  # nodes, complete paths
    steps: list[Step] = []

    def visit(mask: int, used: int, kind: int, cost: float, quality: float) -> None:
        counts[0] += 1
        if mask == p.full:
            counts[1] += 1
            value = _objective(cost, quality, alpha)
            if quality >= q_threshold and _tie(value) < _tie(best[0]):  # ties: tree order
                best[:] = [value, (list(steps), cost, quality)]
            return
        for i, o in p.moves(mask, used, kind):
            steps.append(p.step(i, o))
            visit(mask | 1 << i, used | o.bit, o.after(kind), cost + o.cost, quality * o.quality)
            steps.pop()

    for kind in p.kinds:
        visit(p.mask, p.used, kind, p.cost, p.quality)
    if best[1] is None:
        raise _no_path(p, q_threshold)
    path, cost, quality = best[1]
    return SearchResult(p.prefix + path, cost, quality, best[0], counts[0], counts[0], counts[1])


def count_search_tree(
    tree: SubtaskTree,
    tools: Sequence[ToolInfo],
    done: Sequence[Step] = (),
    start_types: Sequence[str] = ("image",),
) -> tuple[int, int]:
    """``(nodes, complete paths)`` of :func:`exhaustive`'s enumeration tree, counted by dynamic
    programming over (done set, tools used, object type) instead of enumerated."""
    p = _Problem(tree, tools, None, done, start_types)
    layer = {(p.mask, p.used, kind): 1 for kind in p.kinds}
    nodes = 0
    while layer:
        nodes += sum(layer.values())
        if next(iter(layer))[0] == p.full:
            return nodes, sum(layer.values())
        nxt: dict[tuple[int, int, int], int] = {}
        for (mask, used, kind), ways in layer.items():
            for i, o in p.moves(mask, used, kind):
                key = (mask | 1 << i, used | o.bit, o.after(kind))
                nxt[key] = nxt.get(key, 0) + ways
        layer = nxt
    return nodes, 0


@Search
def greedy(p: _Problem, alpha: float, q_threshold: float) -> SearchResult:
    """The "no search" baseline: take subtasks in tree order as they become ready, each with the
    tool of best single-step objective ``C**alpha * (2 - Q)**(2 - alpha)``. It ignores the
    quality threshold (the caller can compare its ``quality``); :class:`PlanError` if stuck."""
    mask, used, cost, quality, path = p.mask, p.used, p.cost, p.quality, list(p.prefix)
    kind = p.kinds[0]
    while mask != p.full:
        moves = list(p.moves(mask, used, kind))
        if not moves:
            raise _no_path(p, 0.0)
        first = moves[0][0]
        i, o = min(
            ((i, o) for i, o in moves if i == first),
            key=lambda m: (_objective(m[1].cost, m[1].quality, alpha), m[1].cost),
        )
        path.append(p.step(i, o))
        mask, used, kind = mask | 1 << i, used | o.bit, o.after(kind)
        cost, quality = cost + o.cost, quality * o.quality
    return SearchResult(
        path, cost, quality, _objective(cost, quality, alpha), len(path) - len(p.prefix), 0, 1
    )


greedy.thresholded = False
