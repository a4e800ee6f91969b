"""File menu work: open (image, trimap, project), recent files, exports, projects, autosave.

All reading and writing goes through mattestudio.core (io, trimap, export, layered, project).
Every failure becomes a dialog with the reason; the open document is only replaced after the
new data has been read and checked completely.

FileOps works on the Document and talks through signals; it does not know the window. The
window gives it ``settings_source`` (the session's ProjectSettings for saving) and listens to
``settings_loaded``, ``message`` and ``run_requested``. An export of a result older than the
trimap asks for a run first and writes once the fresh result has arrived.

Exports are written on a pool thread (a 12 MP PSD takes seconds) from a snapshot of the
document taken when asked, with ``progress`` reports (the PSD and ORA writers report each
layer) and a cancel (``cancel_writes``, the window's Cancel); every writer in mattestudio.core is
atomic (temp file + rename), so a reader never sees a half-written file, cancelled or not. Autosave runs there
too, and only when the trimap changed since the last one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

from mattestudio.core import export, io, layered, project
from mattestudio.core import trimap as trimap_ops
from mattestudio.errors import Cancelled, MattestudioError
from mattestudio.progress import scaled
from mattestudio.types import CancelToken
from mattestudio.ui import settings
from mattestudio.ui.qt_utils import setp
from mattestudio.ui.tasks import run_task

IMAGE_FILTER = "Images (" + " ".join("*" + s for s in io.IMAGE_SUFFIXES) + ");;All files (*)"
PROJECT_FILTER = f"mattestudio projects (*{project.SUFFIX})"

#: kind -> (menu text, default suffix, dialog filter)
EXPORTS = {
    "alpha8": (
        "Alpha mask (black and white PNG, 8-bit)...",
        "_alpha.png",
        "PNG (*.png);;TIFF (*.tif *.tiff)",
    ),
    "alpha16": (
        "Alpha mask (black and white PNG, 16-bit)...",
        "_alpha16.png",
        "PNG (*.png);;TIFF (*.tif *.tiff)",
    ),
    "cutout": (
        "Cut-out with transparency (RGBA PNG)...",
        "_cutout.png",
        "PNG (*.png);;TIFF (*.tif *.tiff);;WebP (*.webp)",
    ),
    "composite": (
        "Composite over the background (PNG / JPEG)...",
        "_composite.png",
        "PNG (*.png);;JPEG (*.jpg *.jpeg);;TIFF (*.tif)",
    ),
    "trimap": ("Trimap PNG...", "_trimap.png", "PNG (*.png)"),
    "ora": ("New layer with mask (OpenRaster .ora: GIMP, Krita)...", ".ora", "OpenRaster (*.ora)"),
    "psd": ("Layered PSD with a layer mask (Photoshop)...", ".psd", "Photoshop (*.psd)"),
}
AUTOSAVE_MS = 20_000


class FileOps(QObject):
    recent_changed = Signal(list)
    opened = Signal(str)
    #: A status-bar message.
    message = Signal(str)
    #: A project was opened: its ProjectSettings, for the widgets.
    settings_loaded = Signal(object)
    #: An export needs a fresh result: run the engine (a clean full solve).
    run_requested = Signal()
    #: An export on the pool thread: (fraction, text); 1.0 when it is over.
    progress = Signal(float, str)

    def __init__(self, document, parent=None):
        super().__init__(parent)
        self.dialog_parent = parent
        self.doc = document
        self.settings_source: Callable[[], project.ProjectSettings] = project.ProjectSettings
        self.pending_export: tuple[str, str] | None = None
        document.result_changed.connect(self._result_arrived)
        self.autosave_timer = setp(QTimer(self), interval=AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self._autosaved_version = -1
        self._autosave_busy = False
        self.writing = 0  # exports still being written on the pool
        self._write_tokens: set[CancelToken] = set()

    # -- helpers -------------------------------------------------------------------------------------
    def error(self, title: str, exc) -> None:
        text = exc.reason if isinstance(exc, MattestudioError) and exc.path is None else str(exc)
        QMessageBox.warning(self.dialog_parent, title, text)

    def _ask_open(self, title: str, kind: str, filt: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self.dialog_parent, title, settings.last_dir(kind), filt
        )
        if path:
            settings.set_last_dir(kind, path)
        return path or None

    def _ask_save(self, title: str, kind: str, suggested: str, filt: str) -> str | None:
        start = str(Path(settings.last_dir(kind) or Path.home()) / suggested)
        path, _ = QFileDialog.getSaveFileName(self.dialog_parent, title, start, filt)
        if path:
            settings.set_last_dir(kind, path)
        return path or None

    def _stem(self) -> str:
        return self.doc.image_path.stem if self.doc.image_path else "untitled"

    # -- opening ---------------------------------------------------------------------------------------
    def open_any(self, path: str | None = None, trimap_path: str | None = None) -> bool:
        """Open an image (with an optional trimap) or a project, by dialog when ``path`` is None."""
        if path is None:
            path = self._ask_open(
                "Open image or project",
                "images",
                f"Images and projects (*{project.SUFFIX} " + IMAGE_FILTER[8:],
            )
            if path is None:
                return False
        if Path(path).suffix.lower() == project.SUFFIX:
            return self.open_project(path)
        return self.open_image(path, trimap_path)

    def open_image(self, path: str, trimap_path: str | None = None) -> bool:
        try:
            image = io.load_image(path)
        except (MattestudioError, MemoryError) as exc:
            self.error("Cannot open image", exc)
            return False
        trimap = None
        if trimap_path is not None:
            try:
                trimap = trimap_ops.load(
                    trimap_path, image.shape, image_source=Path(path).name, require_unknown=False
                )
            except MattestudioError as exc:
                self.error("Cannot use the trimap", exc)
        self.doc.set_image(image, trimap, image_path=path, trimap_path=trimap_path)
        self._autosaved_version = self.doc.trimap_version
        self._remember(path)
        h, w = self.doc.shape
        self.message.emit(
            f"Opened {Path(path).name} ({w}x{h}): paint the subject (F), the background (B) "
            "and soft edges (U), then Run (Ctrl+R)"
        )
        self._offer_recovery(path)
        return True

    def _remember(self, path: str) -> None:
        self.recent_changed.emit(settings.add_recent(path))
        self.opened.emit(str(path))

    def _offer_recovery(self, path: str) -> None:
        found = project.find_autosave(path)
        if found is None:
            return
        answer = QMessageBox.question(
            self.dialog_parent,
            "Recover unsaved work?",
            f"An autosave of the trimap for {Path(path).name} was found (the editor did not close normally).\n"
            "Restore it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            state = project.load_project(found, image=self.doc.image)
            if state.trimap.shape != self.doc.shape:
                raise MattestudioError("the autosaved trimap does not match the image size")
            self.doc.set_trimap(state.trimap, "recover autosave", as_base=False, source="autosave")
        except MattestudioError as exc:
            self.error("Cannot recover the autosave", exc)

    def open_trimap(self, path: str | None = None) -> bool:
        path = path or self._ask_open("Open trimap", "trimaps", IMAGE_FILTER)
        if path is None:
            return False
        try:
            tri = trimap_ops.load(
                path,
                self.doc.shape,
                image_source=self.doc.image_path and self.doc.image_path.name,
                require_unknown=False,
            )
        except (MattestudioError, MemoryError) as exc:
            self.error("Cannot use the trimap", exc)
            return False
        self.doc.set_trimap(tri, "load trimap", path=path, source="loaded")
        return True

    def open_project(self, path: str | None = None) -> bool:
        path = path or self._ask_open("Open project", "projects", PROJECT_FILTER)
        if path is None:
            return False
        try:
            state = project.load_project(path)
        except (MattestudioError, MemoryError) as exc:
            self.error("Cannot open project", exc)
            return False
        saved = project.ProjectSettings.from_dict(state.settings)
        self.doc.set_image(
            state.image, state.trimap, image_path=state.image_path or path, strokes=state.strokes
        )
        if state.alpha is not None:
            from mattestudio.types import MattingResult

            fg = state.foreground if state.foreground is not None else state.image
            result = MattingResult(
                alpha=state.alpha,
                foreground=fg,
                engine=saved.engine or "project",
                seconds=saved.result_seconds or 0.0,
            )
            self.doc.set_result(result, self.doc.revision if saved.result_current else -1)
        self._autosaved_version = self.doc.trimap_version
        self._remember(path)
        if state.alpha is None:
            shown = "no result saved: Run (Ctrl+R) to matte it"
        elif saved.result_current:
            shown = f"result of {saved.engine or 'an engine'} restored"
        else:
            shown = "its saved result is older than the trimap: Run (Ctrl+R) to update it"
        self.message.emit(f"Opened project {Path(path).name}: {shown}")
        # after the message: a warning about the settings (bad values replaced) must stay visible
        self.settings_loaded.emit(saved)
        return True

    # -- saving --------------------------------------------------------------------------------------
    def state(self) -> project.ProjectState:
        alpha = self.doc.alpha()
        fg = self.doc.foreground() if alpha is not None else None
        return project.ProjectState(
            image=self.doc.image,
            trimap=self.doc.trimap.copy(),
            alpha=alpha,
            foreground=fg,
            settings=self.settings_source().to_dict(),
            image_path=str(self.doc.image_path) if self.doc.image_path else None,
            strokes=list(self.doc.strokes),
        )

    def save_project(self, path: str | None = None) -> bool:
        path = path or self._ask_save(
            "Save project", "projects", self._stem() + project.SUFFIX, PROJECT_FILTER
        )
        if path is None:
            return False
        if Path(path).suffix.lower() != project.SUFFIX:
            path += project.SUFFIX
        try:
            project.save_project(path, self.state())
            project.clear_autosave(project.autosave_key(self.doc.image_path))
        except (MattestudioError, OSError) as exc:
            self.error("Cannot save project", exc)
            return False
        self.doc.modified = False
        self.message.emit(f"Saved {path}")
        return True

    def save_trimap(self, path: str | None = None) -> bool:
        return self.export("trimap", path)

    def export(self, kind: str, path: str | None = None) -> bool:
        text, suffix, filt = EXPORTS[kind]
        alpha = self.doc.alpha()
        if alpha is None and kind != "trimap":
            QMessageBox.information(
                self.dialog_parent,
                "Nothing to export yet",
                "There is no alpha matte yet: paint a trimap and press Run (Ctrl+R).",
            )
            return False
        path = path or self._ask_save(text.rstrip("."), "exports", self._stem() + suffix, filt)
        if path is None:
            return False
        doc = self.doc
        if kind != "trimap" and not _exportable(doc.result, doc.result_is_stale):
            # What is on screen is older than the trimap, a coarse preview or a Live result
            # with approximate regions: never write it.
            self.pending_export = (kind, path)
            self.message.emit(
                "The result is not final (older than the trimap, or approximate): "
                "running the engine before exporting..."
            )
            self.run_requested.emit()
            return False
        return self._write(kind, path)

    def _result_arrived(self, *_) -> None:
        doc = self.doc
        if self.pending_export is None or doc.result is None:
            return
        if not _exportable(doc.result, doc.result_is_stale):
            return
        kind, path = self.pending_export
        self.pending_export = None
        self._write(kind, path)

    def drop_pending_export(self) -> None:
        if self.pending_export is not None:
            self.pending_export = None
            self.message.emit("Export not written: the engine did not finish")

    def _write(self, kind: str, path: str) -> bool:
        """Start writing ``kind`` to ``path`` on the pool; True when started. The file appears
        (atomically) when done; ``wait_writes`` waits for it."""
        doc = self.doc
        if doc.alpha() is None and kind != "trimap":
            self.message.emit("Nothing to export yet: run the engine first")
            return False
        token = CancelToken()
        write = _writer(kind, path, doc, self.progress.emit, token)
        name = Path(path).name
        self.writing += 1
        self._write_tokens.add(token)
        self.progress.emit(0.0, f"Exporting {name}...")

        def done(_) -> None:
            self.writing -= 1
            self._write_tokens.discard(token)
            self.progress.emit(1.0, f"Exported {path}")
            self.message.emit(f"Exported {path}")

        def failed(exc: BaseException) -> None:
            self.writing -= 1
            self._write_tokens.discard(token)
            if isinstance(exc, Cancelled):
                self.progress.emit(1.0, f"Export of {name} cancelled: no file written")
                return
            self.progress.emit(1.0, f"Export of {name} failed")
            if isinstance(exc, (MattestudioError, OSError, MemoryError)):
                self.error("Export failed", exc)
            else:
                self.error("Export failed", f"{type(exc).__name__}: {exc}")

        run_task(write, done, failed)
        return True

    def cancel_writes(self) -> bool:
        """Stop the exports being written (each leaves no file); whether there were any."""
        for token in self._write_tokens:
            token.cancel()
        return bool(self._write_tokens)

    def wait_writes(self, timeout_s: float = 300.0) -> bool:
        """Process events until every export started so far is written (closing, tests)."""
        import time

        from PySide6.QtCore import QCoreApplication

        end = time.monotonic() + timeout_s
        while self.writing and time.monotonic() < end:
            QCoreApplication.processEvents()
            time.sleep(0.005)
        return not self.writing

    # -- autosave ------------------------------------------------------------------------------------
    def autosave(self, wait: bool = False) -> None:
        """Save the trimap (and the rest of the session) for crash recovery, off the GUI thread."""
        if self._autosave_busy or self.doc.image_path is None or not self.doc.modified:
            return
        if self._autosaved_version == self.doc.trimap_version:
            return
        state = project.ProjectState(
            image=self.doc.image,
            trimap=self.doc.trimap.copy(),
            settings=self.settings_source().to_dict(),
            image_path=str(self.doc.image_path),
            strokes=list(self.doc.strokes),
        )  # the image is not written: an autosave refers to the source file (core.project)
        version = self.doc.trimap_version
        self._autosave_busy = True

        def done(_):
            self._autosave_busy = False
            self._autosaved_version = version

        def failed(exc):
            self._autosave_busy = False
            self.message.emit(f"Autosave failed: {exc}")

        if wait:
            try:
                done(project.autosave(state))
            except Exception as exc:
                failed(exc)
        else:
            run_task(lambda: project.autosave(state), done, failed)

    def discard_autosave(self) -> None:
        if self.doc.image_path is not None:
            with contextlib.suppress(MattestudioError):
                project.clear_autosave(project.autosave_key(self.doc.image_path))


def _exportable(result, stale: bool) -> bool:
    """A result that may be written: current, full resolution, nothing approximate in it."""
    return result is not None and not stale and result.scale == 1.0 and not result.approximate


def _writer(
    kind: str,
    path: str,
    doc,
    report: Callable[[float, str], None],
    cancel: CancelToken | None = None,
) -> Callable[[], None]:
    """The write of one export as a function for the pool, over a snapshot of the document (its
    image and result arrays are replaced, never edited, so they are shared, not copied)."""
    from mattestudio.core import edges as edge_ops

    trimap = doc.trimap.copy()
    image, background, edges = doc.image, doc.background, doc.edges
    alpha, fg = doc.alpha(), doc.foreground()
    cached = getattr(doc, "_output_cache", None)
    out = (
        cached[2] if cached is not None and cached[0] is doc.result and cached[1] == edges else None
    )
    name = Path(path).name

    def write() -> None:
        if kind == "trimap":
            export.save_trimap_png(path, trimap)
            return
        a, f = out if out is not None else (alpha, fg)
        if out is None:  # every export shows the edge adjustments (issue 13)
            report(0.1, f"Exporting {name}: edge adjustments")
            a, f = edge_ops.apply(alpha, image if fg is None else fg, image, edges)
        report(0.3, f"Exporting {name}: writing")
        if cancel is not None:
            cancel.raise_if_cancelled()
        layers = scaled(lambda frac, text: report(frac, f"Exporting {name}: {text}"), 0.3, 0.99)
        if kind in ("alpha8", "alpha16"):
            export.save_alpha_png(path, a, bits=16 if kind == "alpha16" else 8)
        elif kind == "cutout":
            export.save_cutout(path, f, a)
        elif kind == "composite":
            export.save_composite(path, f, a, background, original=image)
        elif kind == "ora":
            layered.save_ora(path, image, f, a, background, trimap, layers, cancel)
        elif kind == "psd":
            layered.save_psd(path, image, f, a, background, trimap, progress=layers, cancel=cancel)

    return write


def sample_arrays() -> tuple[str, str]:
    """Paths of the bundled sample image and its trimap."""
    from mattestudio.core.sample import sample_paths

    p = sample_paths()
    return str(p["image"]), str(p["trimap"])


def load_background_image(path: str) -> np.ndarray:
    return io.load_image(path)
