"""The tabular data-wrangling domain for CoSTA*: pandas tools declared in the package's
``toolpath/tools/tabular/domain.yaml`` (the declarative form of a
:class:`~toolpath.agents.costa.domain.ToolDomain`), with programmatic verifiers."""

from __future__ import annotations

from importlib import resources

from toolpath.agents.costa.domain import ToolDomain

SPEC = "domain.yaml"


def tabular_domain() -> ToolDomain:
    """Load, clean, join, filter, aggregate, sort and plot CSV data: several tools per subtask
    type that trade cost against quality (see the spec file for the measured priors)."""
    with resources.as_file(resources.files("toolpath.tools.tabular") / SPEC) as path:
        return ToolDomain.from_spec(path)
