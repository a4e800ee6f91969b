"""PSD / ORA export of a camera-size photo in the real editor (offscreen): the longest gap in the
GUI event loop while the file is written, the write on the GUI thread (how exports ran before)
vs on the pool (FileOps now), side by side in one run.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_export.py --mp 12 --kinds psd,ora
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from editor_settings import private_settings
    from large_scene import SIZES, make_scene

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mp", type=int, default=12, choices=sorted(SIZES))
    ap.add_argument("--kinds", default="psd,ora")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    private_settings()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from mattestudio.types import MattingResult
    from mattestudio.ui.app import create_app
    from mattestudio.ui.file_ops import _writer
    from mattestudio.ui.main_window import MainWindow

    h, w = SIZES[args.mp]
    image, trimap, alpha = make_scene(h, w)
    create_app()
    app = QApplication.instance()
    win = MainWindow()
    win.show()
    doc = win.document
    doc.set_image(image, trimap)
    doc.set_result(MattingResult(alpha, image, "bench"))
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    report: dict = {"mp": args.mp, "size": f"{w}x{h}"}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            for where in ("gui thread", "pool"):
                path = str(Path(tmp) / f"{where[:3]}.{kind}")
                for _ in range(20):
                    app.processEvents()
                gaps.clear()
                last[0] = time.perf_counter()
                timer.start()
                start = time.perf_counter()
                if where == "gui thread":
                    _writer(kind, path, doc, lambda f, t: None)()
                    app.processEvents()
                else:
                    if not win.files.export(kind, path):
                        raise SystemExit("bench_export: the editor refused the export")
                    while win.files.writing:
                        app.processEvents()
                        time.sleep(0.001)
                seconds = time.perf_counter() - start
                for _ in range(5):
                    app.processEvents()
                    time.sleep(0.005)
                timer.stop()
                report[f"{kind} {where}"] = {
                    "seconds": round(seconds, 2),
                    "worst_gap_ms": round(max(gaps) * 1000, 1),
                    "ticks": len(gaps),
                }
    report["loadavg"] = os.getloadavg()
    print(json.dumps(report, indent=1))
    doc.modified = False
    win.close()


if __name__ == "__main__":
    main()
