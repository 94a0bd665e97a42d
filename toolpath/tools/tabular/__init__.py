"""CoSTA*'s tabular domain as tools: pandas operations over a :class:`DataSource`, a
``DataFrame`` and a :class:`Chart` (:data:`TOOLS`, :data:`SERVES`, :data:`REFERENCE`), the
checks of each step (:data:`VERIFIERS`), and ``domain.yaml``, the declarative spec with the
measured priors. pandas loads only when a name is read."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "Chart": "toolpath.tools.tabular.ops",
    "DataSource": "toolpath.tools.tabular.ops",
    "REFERENCE": "toolpath.tools.tabular.registry",
    "SERVES": "toolpath.tools.tabular.registry",
    "TOOLS": "toolpath.tools.tabular.registry",
    "VERIFIERS": "toolpath.tools.tabular.verify",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.tools.tabular.ops import Chart as Chart
    from toolpath.tools.tabular.ops import DataSource as DataSource
    from toolpath.tools.tabular.registry import REFERENCE as REFERENCE
    from toolpath.tools.tabular.registry import SERVES as SERVES
    from toolpath.tools.tabular.registry import TOOLS as TOOLS
    from toolpath.tools.tabular.verify import VERIFIERS as VERIFIERS
