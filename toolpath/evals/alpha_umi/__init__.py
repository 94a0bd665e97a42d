"""α-UMi's evaluation and training data: GLPFT dialogues (:func:`load_glpft`), the static
step-level evaluation (:func:`run_static_eval`) and the per-role SFT export
(:func:`export_sft`); :func:`trajectory_record` turns an agent run into a GLPFT record."""

from typing import TYPE_CHECKING

from toolpath.lazy import lazy_exports

_WHERE = {
    "Dialogue": "toolpath.evals.alpha_umi.glpft",
    "GLPFTData": "toolpath.evals.alpha_umi.glpft",
    "backbone_history": "toolpath.evals.alpha_umi.glpft",
    "load_glpft": "toolpath.evals.alpha_umi.glpft",
    "trajectory_record": "toolpath.evals.alpha_umi.glpft",
    "arun_static_eval": "toolpath.evals.alpha_umi.static",
    "run_static_eval": "toolpath.evals.alpha_umi.static",
    "summary_markdown": "toolpath.evals.alpha_umi.static",
    "export_sft": "toolpath.evals.alpha_umi.sft_export",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

if TYPE_CHECKING:
    from toolpath.evals.alpha_umi.glpft import Dialogue as Dialogue
    from toolpath.evals.alpha_umi.glpft import GLPFTData as GLPFTData
    from toolpath.evals.alpha_umi.glpft import backbone_history as backbone_history
    from toolpath.evals.alpha_umi.glpft import load_glpft as load_glpft
    from toolpath.evals.alpha_umi.glpft import trajectory_record as trajectory_record
    from toolpath.evals.alpha_umi.sft_export import export_sft as export_sft
    from toolpath.evals.alpha_umi.static import arun_static_eval as arun_static_eval
    from toolpath.evals.alpha_umi.static import run_static_eval as run_static_eval
    from toolpath.evals.alpha_umi.static import summary_markdown as summary_markdown
