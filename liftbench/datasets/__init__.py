"""Volumes: the containers every dataset returns (``volumes``) and the built-in loaders.

The loaders (MedMNIST 3D, LIDC, MM-WHS, the synthetic and diagnostic sets) are registered by the built-in
plugin package (``liftbench_plugins.datasets``), exactly as a third party's loaders would be.
"""
