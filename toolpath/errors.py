"""Typed errors shared by the whole package.

Every error a user can cause derives from :class:`ToolpathError`. Its message says what
went wrong and what to do about it, and its ``exit_code`` is what the CLI exits with after
printing the message as one line on stderr.
"""

from __future__ import annotations


class ToolpathError(Exception):
    """Base class for toolpath's errors. ``exit_code`` is used by the CLI."""

    exit_code: int = 1


class ConfigError(ToolpathError):
    """Bad input from the user: an unknown model spec, a bad option value."""

    exit_code = 2


class ModelSpecError(ConfigError):
    """A model spec that names no known backend or model."""


class ModelNotFoundError(ToolpathError):
    """A model file that is not present anywhere toolpath looks, and cannot be fetched."""

    exit_code = 3


class ChecksumError(ToolpathError):
    """A model file whose sha256 differs from the registry's."""

    exit_code = 4


class BackendError(ToolpathError):
    """A chat model backend failed (after its retries, where it retries)."""

    exit_code = 5


class EndpointError(BackendError):
    """An HTTP endpoint that stayed unreachable or kept failing after every retry."""


class NativeToolsUnsupportedError(BackendError):
    """The server refused a request's native ``tools`` (e.g. ``vllm serve`` started without
    ``--enable-auto-tool-choice --tool-call-parser``); the tool agents then switch the model
    to constrained JSON mode."""


class MissingDependencyError(ToolpathError):
    """An optional extra is needed but not installed."""

    exit_code = 6


class ToolSchemaError(ToolpathError):
    """A function whose signature cannot be turned into a tool's JSON schema."""

    exit_code = 2


class ToolError(ToolpathError):
    """A tool call failed. Agents turn this into an observation the model reads."""


class ToolArgumentsError(ToolError):
    """A tool was called with arguments that do not match its schema."""


class DatasetError(ConfigError):
    """A benchmark data set that is missing, unreadable, or failed to download."""


class KernelError(ToolError):
    """A sandboxed code kernel could not be started or restarted, or was used after shutdown."""


class PlanError(ToolpathError):
    """No plan: a bad subtask tree, a subtask type no tool serves, or no tool path at all."""

    exit_code = 2


class ImageError(ToolpathError):
    """An image file that is missing, unreadable or not an image, or an array that is not
    an RGB image."""

    exit_code = 2


class CatalogError(ConfigError):
    """A tool catalog that is missing, unreadable or not valid JSON, YAML or Python."""


class RetrievalError(ToolpathError):
    """Tool retrieval cannot proceed: an empty catalog, duplicate tool names, a saved index
    that is missing or unreadable, or vectors from a different embedder."""

    exit_code = 2


class BrowserError(ToolpathError):
    """The headless browser could not start, or it or one of its pages crashed or closed.
    An eval records the episode as failed and goes on with a restarted page."""

    exit_code = 7
