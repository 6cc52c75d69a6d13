"""Executors: where the runs of a grid execute: ``local`` (this process) and ``slurm`` (a cluster, through submitit)."""
