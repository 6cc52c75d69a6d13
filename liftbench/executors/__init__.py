"""Executors: where the runs of a grid execute. The built-in one runs them in this process."""
