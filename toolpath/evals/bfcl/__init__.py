"""The Berkeley Function Calling Leaderboard (BFCL v4): its single-turn Python categories.

:mod:`.data` finds and loads the benchmark files (:func:`load_items`), downloading the
``bfcl-eval`` wheel when needed; :mod:`.matcher` judges a model's calls against the ground
truth with BFCL's AST rules (:func:`match`); :mod:`.tasks` runs toolpath's tool calling and a
hand-written baseline side by side (:func:`run_bfcl`); :mod:`.retrieval` makes a
tool-retrieval benchmark of the categories' functions and questions (:func:`derive_benchmark`).
"""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "BfclItem": "toolpath.evals.bfcl.data",
    "data_dir": "toolpath.evals.bfcl.data",
    "load_items": "toolpath.evals.bfcl.data",
    "Match": "toolpath.evals.bfcl.matcher",
    "match": "toolpath.evals.bfcl.matcher",
    "BfclTask": "toolpath.evals.bfcl.tasks",
    "run_bfcl": "toolpath.evals.bfcl.tasks",
    "RetrievalBenchmark": "toolpath.evals.bfcl.retrieval",
    "derive_benchmark": "toolpath.evals.bfcl.retrieval",
    "paraphrase_queries": "toolpath.evals.bfcl.retrieval",
    "write_benchmark": "toolpath.evals.bfcl.retrieval",
    "write_queries": "toolpath.evals.bfcl.retrieval",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.evals.bfcl.data import BfclItem as BfclItem
    from toolpath.evals.bfcl.data import data_dir as data_dir
    from toolpath.evals.bfcl.data import load_items as load_items
    from toolpath.evals.bfcl.matcher import Match as Match
    from toolpath.evals.bfcl.matcher import match as match
    from toolpath.evals.bfcl.retrieval import RetrievalBenchmark as RetrievalBenchmark
    from toolpath.evals.bfcl.retrieval import derive_benchmark as derive_benchmark
    from toolpath.evals.bfcl.retrieval import paraphrase_queries as paraphrase_queries
    from toolpath.evals.bfcl.retrieval import write_benchmark as write_benchmark
    from toolpath.evals.bfcl.retrieval import write_queries as write_queries
    from toolpath.evals.bfcl.tasks import BfclTask as BfclTask
    from toolpath.evals.bfcl.tasks import run_bfcl as run_bfcl
