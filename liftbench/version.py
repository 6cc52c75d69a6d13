"""liftbench's version: one line, read by setuptools (pyproject.toml), the package root and every result row."""

__version__ = "0.1.0"
