"""A tiny flow animator trained on six procedural cloud clips, for the tests of the
``flow-animator`` recipe's epoch keeping (``--keep best``/``targets``)."""

from __future__ import annotations

from pyro_videossm.data.clouds import simulate_clouds

#: Network and recipe sizes small enough for a test (2 of the 6 clips validate).
TINY_ANIMATOR = dict(channels=4, disc_channels=4, disc_layers=2, levels=1, valid_fraction=0.34,
                     ema_decay=0.01)


def tiny_clouds():
    """Six 4-frame 16 × 16 procedural cloud clips (seed 0)."""
    return simulate_clouds(clips=6, frames=4, size=16, seed=0)


def fit_tiny_animator(data, path, *, keep: str, epochs: int, lr: float, **options):
    """Train the tiny animator on ``data`` into ``path`` (batch 2) keeping ``keep``;
    ``options`` override :data:`TINY_ANIMATOR`. Returns the history."""
    from pyro_videossm.experiments.animation_recipe import FLOW_ANIMATOR
    from pyro_videossm.experiments.recipe import TrainingRun

    return FLOW_ANIMATOR.fit(TrainingRun(data, path, epochs=epochs, batch_size=2, lr=lr,
                                         progress=False),
                             FLOW_ANIMATOR.make_options(keep=keep,
                                                        **{**TINY_ANIMATOR, **options}))
