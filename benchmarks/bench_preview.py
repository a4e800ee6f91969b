"""The editor's preview of a camera-size result, without an engine: memory and time of loading
the photo, drawing a whole result, Live-style box patches and a full redraw.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_preview.py --mp 12

The photo and matte are benchmarks/large_scene.py's. The window (1400 x 900, fitted: the
preview pyramid shows a reduced level) gets the photo, then a result (alpha + foreground) in
the composite view over the checkerboard, then ``--patches`` results that differ inside a
400 x 400 box each (drawn as patches), then a whole new result (a full redraw). For each stage:
the editor's peak RSS during it (VmHWM, reset at the stage's start) and its RSS after, in MB,
and the stage's seconds. Run it with two checkouts' PYTHONPATH to compare them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _mem() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(line.split()[1]) / 1024
    return out


def _reset_hwm() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from editor_settings import private_settings
    from large_scene import SIZES, make_scene

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mp", type=int, default=12, choices=sorted(SIZES))
    ap.add_argument("--patches", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    private_settings()
    from PySide6.QtWidgets import QApplication

    from mattestudio.types import MattingResult
    from mattestudio.ui.app import create_app
    from mattestudio.ui.main_window import MainWindow

    h, w = SIZES[args.mp]
    image, trimap, alpha = make_scene(h, w)
    create_app()
    app = QApplication.instance()
    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    doc, canvas = win.document, win.canvas
    stages: list[dict] = []

    def settle() -> None:
        app.processEvents()
        while canvas.preview_pending:
            app.processEvents()
            time.sleep(0.002)
        app.processEvents()

    def stage(name: str, action) -> None:
        settle()
        _reset_hwm()
        t = time.perf_counter()
        action()
        settle()
        mem = _mem()
        stages.append(
            {
                "stage": name,
                "seconds": time.perf_counter() - t,
                "peak_mb": mem["VmHWM"],
                "rss_after_mb": mem["VmRSS"],
            }
        )

    stage("load the photo", lambda: doc.set_image(image, trimap))
    win.view_panel.set_mode("composite")
    canvas.fit()
    fg = image.copy()
    stage(
        "first result (whole preview)",
        lambda: doc.set_result(MattingResult(alpha=alpha.copy(), foreground=fg, engine="bench")),
    )
    patches_before = canvas.patches

    def patches() -> None:
        for k in range(args.patches):
            a = doc.result.alpha.copy()  # a new result per change, as the engine process makes
            y0, x0 = h // 3, w // 4 + 100 * k
            a[y0 : y0 + 400, x0 : x0 + 400] = 0.5
            res = MattingResult(alpha=a, foreground=doc.result.foreground.copy(), engine="bench")
            doc.set_result(res, box=(y0, y0 + 400, x0, x0 + 400))
            app.processEvents()

    stage(f"{args.patches} box patches", patches)
    stage(
        "new result (whole preview)",
        lambda: doc.set_result(MattingResult(alpha=alpha.copy(), foreground=fg, engine="bench")),
    )
    report = {
        "mp": args.mp,
        "size": f"{w}x{h}",
        "preview_level": getattr(canvas, "preview_level", 0),
        "patched": canvas.patches - patches_before,
        "stages": stages,
        "loadavg": os.getloadavg(),
    }
    print(json.dumps(report, indent=1))
    doc.modified = False
    win.close()


if __name__ == "__main__":
    main()
