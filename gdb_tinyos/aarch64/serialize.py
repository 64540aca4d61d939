"""Turn the translation model (dataclasses, enums, tuples) into JSON-ready values.

Addresses stay integers: JSON consumers and MI records format them as they like.

Example::

    json.dumps(to_jsonable(walk(target, va)))
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """A dict/list/str/int/bool/None tree equal in content to ``obj``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    return obj
