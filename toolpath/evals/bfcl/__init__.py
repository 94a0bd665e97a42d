"""The Berkeley Function Calling Leaderboard (BFCL v4): its single-turn Python categories.

:mod:`.data` finds and loads the benchmark files (:func:`~.data.load_items`), downloading the
``bfcl-eval`` wheel when needed; :mod:`.matcher` judges a model's calls against the ground
truth with BFCL's AST rules (:func:`~.matcher.match`).
"""

__all__: list[str] = []
