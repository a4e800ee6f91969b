"""The desktop editor (PySide6 + pyqtgraph). Entry point: ``mattestudio.ui.app.main``."""
