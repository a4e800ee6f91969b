"""Remembered between runs (QSettings, INI format in the user's config folder).

Tests redirect it with ``QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tmp)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

MAX_RECENT = 10


def store() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "mattestudio", "editor")


def get(key: str, default: Any = None, kind: type | None = None) -> Any:
    s = store()
    value = s.value(key, default)
    if kind is None or value is None:
        return value
    try:
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        return kind(value)
    except (TypeError, ValueError):
        return default


def put(key: str, value: Any) -> None:
    s = store()
    s.setValue(key, value)
    s.sync()


def recent_files() -> list[str]:
    value = get("recent", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or []) if v]


def add_recent(path: str | Path) -> list[str]:
    p = str(Path(path).resolve())
    items = [p] + [r for r in recent_files() if r != p]
    put("recent", items[:MAX_RECENT])
    return items[:MAX_RECENT]


def last_dir(kind: str) -> str:
    return str(get(f"dirs/{kind}", "", str) or "")


def set_last_dir(kind: str, path: str | Path) -> None:
    put(f"dirs/{kind}", str(Path(path).parent))
