"""Start the editor: ``main(["IMAGE", "--trimap", "T"])``, or ``main([])`` for the bundled sample."""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mattestudio", description="Interactive matting editor")
    p.add_argument(
        "image",
        nargs="?",
        help="image or .mattestudio project to open (default: the bundled sample)",
    )
    p.add_argument("--trimap", help="trimap to open with the image")
    return p


def create_app():
    """The QApplication (reused when one exists, as under pytest-qt), with pyqtgraph configured."""
    import cv2  # noqa: F401 - imported now so the first preview does not pay for it
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("mattestudio")
    app.setOrganizationName("mattestudio")
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    return app


def open_window(argv: list[str] | None = None):
    """Build the window and open the requested (or sample) image. Returns the MainWindow."""
    args = build_parser().parse_args([] if argv is None else argv)
    create_app()
    from mattestudio.ui.main_window import MainWindow

    win = MainWindow()
    if args.image:
        win.files.open_any(args.image, args.trimap)
    else:
        from mattestudio.ui.file_ops import sample_arrays

        image, trimap = sample_arrays()
        win.files.open_image(image, args.trimap or trimap)
    return win


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if (
        not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
        and sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
    ):
        print(
            "mattestudio: no display found (DISPLAY is not set); the editor needs a screen. "
            "Use the command line instead (mattestudio matte ..., see mattestudio --help).",
            file=sys.stderr,
        )
        return 1
    app = create_app()
    win = open_window(argv)
    win.show()
    return int(app.exec())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
