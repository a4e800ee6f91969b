"""Window state: what a project stores (snapshot/apply) and what QSettings remembers (restore).

Functions over a MainWindow, kept apart so the window module stays composition only.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor

from mattestudio.core.project import ProjectSettings
from mattestudio.ui import settings
from mattestudio.ui.view_panel import color_to_spec


def snapshot(win) -> ProjectSettings:
    """The window's widgets -> the settings a project stores."""
    doc = win.document
    bg = doc.background
    return ProjectSettings(
        engine=win.engine_panel.engine or None,
        params=win.engine_panel.params_raw(),
        background=bg if isinstance(bg, str) else (list(bg) if isinstance(bg, tuple) else "image"),
        brush_size=win.tools.size,
        band=win.tools.band,
        view=win.canvas.mode,
        result_seconds=doc.result.seconds if doc.result is not None else None,
        result_current=not doc.result_is_stale,
        edges=doc.edges.to_dict(),  # issue 13: edge adjustments
    )


def apply(win, s: ProjectSettings) -> None:
    """A project's settings -> the window's widgets (what is not stored stays as it is)."""
    from mattestudio.core.edges import EdgeAdjustmentError, EdgeAdjustments  # issue 13

    try:  # issue 13: edge adjustments; a bad value keeps the defaults and says so
        win.document.set_edges(EdgeAdjustments.from_dict(s.edges))
    except EdgeAdjustmentError as exc:
        win.status(f"Edge adjustments in the project ignored: {exc}")
    if s.engine:
        win.engine_panel.set_engine(s.engine)
        win.engine_panel.set_params(s.params)
    bg = s.background
    if isinstance(bg, str) and bg != "image":
        win.document.set_background(bg)
        win.view_panel.set_background_key(bg)
    elif isinstance(bg, list):
        win.document.set_background(tuple(bg))
        win.view_panel.set_background_key("color")
    if s.brush_size:
        win.tools.set_size(s.brush_size)
    if s.band:
        win.tools.set_band(s.band)
    if s.view:
        win.view_panel.set_mode(s.view)


def restore(win) -> None:
    """Window layout, brush, engine, Live and background from QSettings."""
    geo, state = settings.get("window/geometry"), settings.get("window/state")
    if geo is not None:
        win.restoreGeometry(geo)
    if state is not None:
        win.restoreState(state)
    win.tools.set_size(settings.get("brush/size", 20.0, float))
    name = settings.get("engine/name", None, str)
    if name:
        win.engine_panel.set_engine(name)
    win.set_live(settings.get("run/live", False, bool))
    win.set_side_by_side(settings.get("view/side_by_side", False, bool))
    bg = settings.get("view/background", "checker", str)
    if bg == "color":
        win.document.set_background(
            color_to_spec(QColor(settings.get("view/background_color", "#ffffff", str)))
        )
    elif bg == "image":
        path = settings.get("view/background_image", "", str)
        if not (path and Path(path).is_file() and win.set_background_image(path)):
            bg = "checker"
            win.document.set_background(bg)
    else:
        win.document.set_background(bg)
    win.view_panel.set_background_key(bg)
