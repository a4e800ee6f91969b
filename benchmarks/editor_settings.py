"""Benchmarks that drive the editor keep its remembered settings (Live on, panes, recent files,
autosave) in a temporary folder: a benchmark neither reads nor changes the user's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def private_settings() -> None:
    from PySide6.QtCore import QSettings

    folder = tempfile.mkdtemp(prefix="mattestudio-bench-settings-")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, folder)
    os.environ["MATTESTUDIO_AUTOSAVE_DIR"] = str(Path(folder) / "autosave")
