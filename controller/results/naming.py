"""MLflow metric names for features, stable across cycles and free of collisions."""

from __future__ import annotations

import hashlib
import re

_INVALID = re.compile(r"[^A-Za-z0-9_\-. ]")
_HASHED = re.compile(r"-[0-9a-f]{8}$")  # what a mapped name ends with


def metric_safe(feature: str) -> str:
    """A name MLflow accepts in a metric key, standing for ``feature`` and no other.

    Valid names are kept as they are. Others have each invalid character replaced by ``_``
    and a short hash of the original appended, so ``a$b`` and ``a%b`` stay apart and keep
    their names from one cycle to the next. Slashes are replaced as well, since MLflow
    treats names as paths.
    """
    cleaned = _INVALID.sub("_", feature).strip()
    if cleaned == feature and feature and len(feature) <= 150 and not _HASHED.search(feature):
        return feature
    digest = hashlib.sha1(feature.encode()).hexdigest()[:8]
    return f"{cleaned[:150]}-{digest}"


def name_map(features) -> dict[str, str]:
    """Original feature name to its metric-safe name, for every name that changed."""
    return {f: metric_safe(f) for f in features if metric_safe(f) != f}
