"""Live loop as a person sees it: mouse-up -> full-resolution alpha and composite on screen.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_live.py [DATASET_DIR] [--name GT01.png]
        [--strokes 15] [--sizes 0.5,1.0] [--json out.json]

Drives the real MainWindow (side by side: the composite in the main view, the alpha in the
result pane) with synthetic brush strokes sent as Qt mouse events to the canvas, Live mode on,
closed-form engine. For each stroke it times, from the release event to the first paint of
each pane's preview item after that pane shows the result computed for the current trimap
revision at full resolution (a pyqtgraph ImageItem paint, recorded by wrapping ImageItem.paint).
Next to it, in the same run and at the same sizes, one full ``mattestudio.matte`` call on the
same photo and trimap (alpha and foreground colors), timed after the same pause as the strokes.

Every frame the main pane shows after a mouse-up is also checked for blur outside the stroke's
region, i.e. outside the pixels the settled full-resolution result changed (grown by 3 px): a
frame "blurs" when more than 0.1 % of those pixels differ by more than 8 grey levels from what
was on screen before the stroke (a coarse whole-image preview does that; a re-solve near the
stroke does not). A 5 ms QTimer records the longest event-loop gap.

DATASET_DIR has the alphamatting-dev layout (input/, trimap1/); without it a synthetic photo
(mattestudio.core.sample) is used. The script uses only the window's public parts, so it also
runs against older versions of the editor for a before/after comparison (PYTHONPATH).
Not a test: numbers depend on the machine and its load (the load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PAUSE_S = 0.4  # a user's pause between strokes; full solves get the same pause


def _photo(dataset: Path | None, name: str):
    from mattestudio.core import trimap as trimap_ops
    from mattestudio.core.io import load_image

    if dataset is None:
        from mattestudio.core.sample import sample_paths

        p = sample_paths()
        image = load_image(p["image"])
        return image, trimap_ops.load(p["trimap"], image.shape)
    image = load_image(dataset / "input" / name)
    return image, trimap_ops.load(dataset / "trimap1" / name, image.shape)


def _resize(image, trimap, pixels: float):
    import cv2

    h, w = trimap.shape
    s = (pixels / (h * w)) ** 0.5
    size = (int(round(w * s)), int(round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    img = np.clip(cv2.resize(image, size, interpolation=interp), 0, 1).astype(np.float32)
    return img, cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)


def _pct(values, q):
    return float(np.percentile(np.asarray(values, float), q)) if values else float("nan")


class Recorder:
    """Paint times of ImageItems, and per-pane 'shows the current full-resolution result' times."""

    def __init__(self):
        import pyqtgraph as pg

        self.paints: dict[int, list[float]] = {}
        original = pg.ImageItem.paint
        rec = self

        def paint(item, *args):
            original(item, *args)
            rec.paints.setdefault(id(item), []).append(time.perf_counter())

        pg.ImageItem.paint = paint

    def first_paint_after(self, item, t: float) -> float | None:
        for p in self.paints.get(id(item), []):
            if p >= t:
                return p
        return None


def _current(doc) -> bool:
    """A full-resolution result for the current trimap is set (it may still be refining)."""
    r = doc.result
    version = getattr(doc, "result_revision", None)
    if version is None:
        version = doc.result_trimap_version
    return r is not None and r.scale == 1.0 and version == doc.trimap_version


def _settled(doc) -> bool:
    """... and the engine has stopped refining it (bounded Live updates, issue 16)."""
    return _current(doc) and not getattr(doc.result, "refining", False)


def _pump(app, seconds: float) -> None:
    from PySide6.QtCore import QEventLoop

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        time.sleep(0.001)


def _send(widget, kind: str, pos) -> None:
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    types = {
        "press": QEvent.Type.MouseButtonPress,
        "move": QEvent.Type.MouseMove,
        "release": QEvent.Type.MouseButtonRelease,
    }
    left = Qt.MouseButton.LeftButton
    button = Qt.MouseButton.NoButton if kind == "move" else left
    buttons = Qt.MouseButton.NoButton if kind == "release" else left
    p = QPointF(pos)
    ev = QMouseEvent(
        types[kind], p, widget.mapToGlobal(p), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, ev)


def _strokes(trimap, n: int, seed: int = 7):
    """n strokes across the unknown band: start on an unknown pixel, 40 px long, 8 segments."""
    rng = np.random.default_rng(seed)
    _h, _w = trimap.shape
    ys, xs = np.nonzero(trimap[60:-60, 60:-60] == 128)
    out = []
    for _ in range(n):
        k = rng.integers(len(ys))
        y, x = ys[k] + 60, xs[k] + 60
        angle = rng.uniform(0, np.pi)
        pts = [
            (x + t * 40 * np.cos(angle), y + t * 40 * np.sin(angle)) for t in np.linspace(0, 1, 8)
        ]
        out.append((pts, "fg" if rng.random() < 0.5 else "bg"))
    return out


def _changed(a: np.ndarray, b: np.ndarray, levels: int) -> np.ndarray:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return (diff.max(axis=2) if diff.ndim == 3 else diff) > levels


def _blurred_frames(before: np.ndarray, frames: list[np.ndarray]) -> int:
    """Frames that change pixels the settled result (the last frame) leaves alone."""
    import cv2

    if not frames or frames[-1].shape != before.shape:
        return 0
    region = _changed(before, frames[-1], 2).astype(np.uint8)
    region = cv2.dilate(region, np.ones((7, 7), np.uint8)).astype(bool)
    outside = ~region
    count = 0
    for frame in frames:
        if frame.shape == before.shape and _changed(before, frame, 8)[outside].mean() > 0.001:
            count += 1
    return count


def live_latency(app, image, trimap, n_strokes: int) -> dict:
    from PySide6.QtCore import QTimer

    from mattestudio.core.document import Document
    from mattestudio.ui.main_window import MainWindow

    rec = Recorder()
    doc = Document(image, trimap)
    win = MainWindow(doc)
    win.resize(1600, 1000)
    win.show()
    win.engine_panel.set_engine("closed-form")
    win.view_panel.set_mode("composite")
    win.set_side_by_side(True)  # the result pane shows the alpha
    win.runner.warm_up()
    _pump(app, 3.0)
    if not win.live_action.isChecked():
        win.live_action.trigger()
    t = time.perf_counter()
    while time.perf_counter() - t < 300 and not (
        _current(doc) and not win.runner.busy and win.canvas.preview_shown is not None
    ):
        _pump(app, 0.05)
    _pump(app, 1.0)
    panes = (win.canvas, win.result_view)
    frames: list[tuple[float, np.ndarray]] = []
    ready: dict = {}

    def on_ready(pane):
        if pane is win.canvas and pane.preview_shown is not None:
            frames.append((time.perf_counter(), pane.preview_shown.copy()))
        if _current(doc):
            ready.setdefault(id(pane), time.perf_counter())

    for pane in panes:
        pane.preview_ready.connect(lambda p=pane: on_ready(p))
    ticks: list[float] = []
    gaps: list[float] = []  # event-loop gaps between mouse-up and the settled result

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    latencies, blurred, timeouts = [], 0, 0
    firsts: list[float] = []  # mouse-up -> the first full-resolution result on screen
    win.tools.set_size(15)
    win.tools.set_tool("brush")
    for pts, value in _strokes(trimap, n_strokes):
        win.tools.set_value(value)
        vp = win.canvas.viewport()
        widget_pts = [win.canvas.image_to_widget(x, y) for x, y in pts]
        _send(vp, "press", widget_pts[0])
        for p in widget_pts[1:]:
            _pump(app, 0.012)
            _send(vp, "move", p)
        before = win.canvas.preview_shown.copy()
        frames.clear()
        ready.clear()
        ticks.clear()
        t0 = time.perf_counter()
        _send(vp, "release", widget_pts[-1])
        done = first = None
        while time.perf_counter() - t0 < 60:
            app.processEvents()
            if all(id(p) in ready for p in panes) and _current(doc):
                painted = [rec.first_paint_after(p.preview_item, ready[id(p)]) for p in panes]
                if all(x is not None for x in painted):
                    first = max(painted) if first is None else first
                    if _settled(doc):
                        done = max(painted)
                        break
            time.sleep(0.0005)
        if done is None:
            timeouts += 1
        else:
            latencies.append(done - t0)
            firsts.append(first - t0)
            stamps = [t0] + [t for t in ticks if t <= done] + [done]
            gaps.extend(np.diff(stamps).tolist())
        _pump(app, PAUSE_S)  # later frames of this stroke, if any, count too
        blurred += _blurred_frames(before, [f for _, f in frames])
    timer.stop()
    worst_gap = max(gaps) * 1000 if gaps else float("nan")
    gap_p99 = 1000 * _pct(gaps, 99)
    win.document.modified = False
    win.close()
    return {
        "p50_ms": 1000 * _pct(latencies, 50),
        "p95_ms": 1000 * _pct(latencies, 95),
        "first_p50_ms": 1000 * _pct(firsts, 50),
        "first_p95_ms": 1000 * _pct(firsts, 95),
        "strokes": len(latencies),
        "timeouts": timeouts,
        "blurred_frames": blurred,
        "event_loop_worst_gap_ms": worst_gap,
        "event_loop_gap_p99_ms": gap_p99,
    }


def full_solve(image, trimap, repeats: int = 5) -> dict:
    import mattestudio

    mattestudio.matte(image, trimap, engine="closed-form")  # compile and warm up, not timed
    times = []
    for _ in range(repeats):
        time.sleep(PAUSE_S)
        t = time.perf_counter()
        mattestudio.matte(image, trimap, engine="closed-form")
        times.append(time.perf_counter() - t)
    return {"p50_ms": 1000 * _pct(times, 50), "min_ms": 1000 * min(times)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", nargs="?", type=Path)
    ap.add_argument("--name", default="GT01.png")
    ap.add_argument("--strokes", type=int, default=15)
    ap.add_argument("--sizes", default="0.5,1.0", help="megapixels, comma-separated")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from editor_settings import private_settings

    from mattestudio.machine import summary
    from mattestudio.ui.app import create_app

    private_settings()  # the editor's remembered settings (Live, panes, background) stay out
    app = create_app()
    load0 = " ".join(f"{v:.2f}" for v in os.getloadavg())
    image0, trimap0 = _photo(args.dataset, args.name)
    rows = []
    for mp in (float(v) for v in args.sizes.split(",")):
        image, trimap = _resize(image0, trimap0, mp * 1e6)
        live = live_latency(app, image, trimap, args.strokes)
        full = full_solve(image, trimap)
        rows.append(
            {
                "megapixels": round(image.shape[0] * image.shape[1] / 1e6, 2),
                "size": f"{image.shape[1]}x{image.shape[0]}",
                "live": live,
                "full": full,
                "ratio_p50": live["p50_ms"] / full["p50_ms"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (at start {load0})")
    print(summary("numpy", "scipy", "pymatting", "PySide6", "pyqtgraph"))
    print()
    print(
        "| photo | Live mouse-up -> first full-res result, p50 / p95 "
        "| -> settled alpha + composite on screen, p50 / p95 | full `matte` p50 "
        "| p50 ratio (settled) | blurred frames | worst event-loop gap | strokes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        lv, fl = r["live"], r["full"]
        print(
            f"| {r['size']} ({r['megapixels']} MP) "
            f"| {lv['first_p50_ms']:.0f} / {lv['first_p95_ms']:.0f} ms "
            f"| {lv['p50_ms']:.0f} / {lv['p95_ms']:.0f} ms "
            f"| {fl['p50_ms']:.0f} ms | {r['ratio_p50']:.2f}x | {lv['blurred_frames']} "
            f"| {lv['event_loop_worst_gap_ms']:.0f} ms "
            f"| {lv['strokes']} (+{lv['timeouts']} timed out) |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
