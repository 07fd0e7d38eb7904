"""Errors raised by driftctl.

Every error names the problem and how to fix it; the CLI prints both and exits with 2.

    DriftctlError
    ├── InputError (ValueError)      bad data: columns, dtypes, values, files
    │   └── NotEnoughDataError       too little data yet (labels, say): more will come
    ├── PolicyError (ValueError)     a policy file that cannot be used
    ├── NotFoundError (LookupError)  model, alias, version, baseline or batches missing
    ├── TrackingError                MLflow reported an error (an unreachable server, say)
    └── ModelLoadError               a registered model that cannot be loaded here
"""

from __future__ import annotations


class DriftctlError(Exception):
    """Base class: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\nFix: {fix}")


class InputError(DriftctlError, ValueError):
    """The data given to driftctl cannot be used as it is."""


class NotEnoughDataError(InputError):
    """A step that cannot run *yet*: the data it needs (labelled rows, say) has not arrived.

    Run on its own, the step fails like any bad input; a ``cycle`` whose results call for it
    records that it waits and tries again when new data arrives.
    """


class PolicyError(DriftctlError, ValueError):
    """The policy file is invalid."""


class NotFoundError(DriftctlError, LookupError):
    """Something driftctl needs does not exist in MLflow."""


class TrackingError(DriftctlError):
    """MLflow tracking or the model registry reported an error."""


class ModelLoadError(DriftctlError):
    """A model logged in MLflow cannot be loaded here: its files are gone, its flavor's
    library is missing, or it was saved by another version of that library."""


def shown(values, limit: int = 5, width: int = 60) -> str:
    """``values`` as an error message shows them: the first ``limit``, each cut to ``width``
    characters, and how many more. A 10 MB cell or 10,000 column names stay one line."""
    values = list(values)
    parts = [repr(v) for v in values[:limit]]
    parts = [p if len(p) <= width else p[:width] + "..." for p in parts]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return f"[{', '.join(parts)}]{more}"
