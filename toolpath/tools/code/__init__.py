"""The code interpreter: a sandboxed Jupyter kernel per :class:`PythonKernel`, lent by a
:class:`KernelPool`, limited by :class:`KernelLimits`; :func:`python_tool` wraps a kernel as the
``python`` tool. The sandbox itself (limits, uid, environment) is :mod:`.sandbox`."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "ExecResult": "toolpath.tools.code.kernel",
    "KernelLimits": "toolpath.tools.code.kernel",
    "KernelPool": "toolpath.tools.code.kernel",
    "PythonKernel": "toolpath.tools.code.kernel",
    "python_tool": "toolpath.tools.code.kernel",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.tools.code.kernel import ExecResult as ExecResult
    from toolpath.tools.code.kernel import KernelLimits as KernelLimits
    from toolpath.tools.code.kernel import KernelPool as KernelPool
    from toolpath.tools.code.kernel import PythonKernel as PythonKernel
    from toolpath.tools.code.kernel import python_tool as python_tool
