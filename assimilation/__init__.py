"""Assimilation experiments: one config module per benchmark setting and one runner.

``python -m assimilation.run lorenz63_sakov2012 --seeds 3 --write-docs`` (see run.py).
"""
