"""Import hook for .ci/hostile-unprivileged.sh: ``toolpath`` comes from the copy at @SRC@.

Like an editable install, it finds the package without putting its folder on ``sys.path``, so
a sandboxed kernel (which may read the ``sys.path`` folders) still cannot read the code.
"""

import importlib.machinery
import sys


class Finder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name == "toolpath":
            return importlib.machinery.PathFinder.find_spec(name, ["@SRC@"])
        return None


sys.meta_path.insert(0, Finder)
