"""Small Qt helpers."""

from __future__ import annotations


def setp(obj, **props):
    """Set Qt properties through their setters and return ``obj``: ``setp(QLabel(), wordWrap=True)``.

    Used instead of constructor keywords (``QLabel(wordWrap=True)``): in PySide6 6.12 each such
    keyword drops a reference to None, and enough of them crash the interpreter at exit.
    """
    for name, value in props.items():
        getattr(obj, "set" + name[0].upper() + name[1:])(value)
    return obj
