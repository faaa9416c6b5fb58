"""Benchmarks: ``python -m bench [module ...]`` runs each module's ``run()`` and writes ``bench/results/``."""
