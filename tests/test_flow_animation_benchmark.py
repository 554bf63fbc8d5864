"""benchmarks/flow_animation.py: the published record runs the recipe's defaults, and the
seed tables count and average what the records hold."""

from __future__ import annotations

import numpy as np
import pytest
from script_loader import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/flow_animation.py", "flow_animation_bench")


def test_published_record_runs_the_defaults_of_the_recipe_and_the_script(bench):
    from pyro_videossm.experiments.animation_recipe import FLOW_ANIMATOR
    from pyro_videossm.experiments.records import read_record

    record = read_record(bench.RECORD)
    options = FLOW_ANIMATOR.make_options()
    assert (options.spectral_weight, options.keep, options.sharpen_amount) == (0.0, "best", None)
    published = record["options"]
    for key in ("spectral_weight", "keep", "warping", "interpolation", "channels",
                "disc_channels", "adversarial_weight", "consistency_weight", "ema_decay",
                "sharpen_amount", "sharpen_sigma", "texture_budget"):
        assert published[key] == getattr(options, key), key
    for key, value in FLOW_ANIMATOR.defaults.items():
        assert published[key] == value, key
    # the script's flags default to the same values: the published record ran the defaults
    defaults = vars(bench.build_parser().parse_args([]))
    for key in bench.RECIPE_KEYS:
        assert {**bench.OPTION_DEFAULTS, **published}[key] == defaults[key], key


def test_runs_on_other_data_get_their_own_group(bench):
    """Records of the published recipe on other clips (``--data-seed``/``--test-seed``) are
    grouped apart from the published data, per data, and never mixed into its seed table."""
    base = {"options": {"seed": 0, "keep": "targets", "spectral_weight": 0.12}}
    fresh = [{"options": {**base["options"], "seed": s, "data_seed": 1, "test_seed": 2000}}
             for s in (0, 1)]
    other = {"options": {**base["options"], "data_seed": 2, "test_seed": 3000}}
    attempts = [(str(i), r) for i, r in enumerate([*fresh, base, other])]
    groups = bench.other_data(base, attempts)
    assert [(data, len(runs)) for data, runs in groups] == [((1, 2000, None), 2),
                                                            ((2, 3000, None), 1)]
    assert bench.data_of(base) == (0, 1000, None) and not bench.same_recipe(fresh[0], base)


def fake_record(seed, l1, epe, spectrum, ref=(0.1, 0.05, 0.2)):
    scores = {"l1": l1, "motion_epe": epe, "spectrum_distance": spectrum}
    base = dict(zip(("l1", "motion_epe", "spectrum_distance"), ref))
    return {"options": {"seed": seed, "keep": "targets"},
            "metrics": {"kept_epoch": 1,
                        "scores": {"flow-animator": scores, "semi-lagrangian": base},
                        "targets": {"l1_below_warping": l1 < base["l1"],
                                    "spectrum_below_warping": spectrum
                                    < base["spectrum_distance"],
                                    "epe_within_10pct_of_warping": epe
                                    <= 1.1 * base["motion_epe"]}}}


def test_seeds_table_splits_tuning_and_confirmation_seeds(bench):
    runs = [fake_record(0, 0.09, 0.05, 0.19), fake_record(1, 0.095, 0.054, 0.18),
            fake_record(5, 0.098, 0.06, 0.21), fake_record(6, 0.11, 0.05, 0.15)]
    text = bench.seeds_table(runs, tuning=(0, 1))
    l1 = np.array([0.09, 0.095, 0.098, 0.11])
    assert (f"| mean ± s.e. (4) | | | {l1.mean():.4f} ± {l1.std(ddof=1) / 2:.4f} |" in text)
    assert "| mean ± s.e., seeds 0, 1 (tuning) | | | 0.0925 ± 0.0025 |" in text
    assert "2 of 2 hold all three |" in text and "0 of 2 hold all three |" in text
    assert "2 of 4 seeds hold all three targets (tuning seeds 0, 1: 2 of 2; confirmation " \
           "seeds 5, 6: 0 of 2)" in text
    assert "seeds holding each target: L1 3; EPE 3; spectrum 3" in text
    # seed 6 misses L1 by 0.01 (10 %), seed 5 the spectrum by 0.01 (5 %), EPE (bound 0.055)
    assert "L1 -0.0100 (seed 6, -10.0 %); EPE -0.0050 (seed 5, -9.1 %); spectrum -0.0100 " \
           "(seed 5, -5.0 %)" in text
    # without both kinds of seed there is no split
    assert "tuning" not in bench.seeds_table(runs[:2], tuning=(0, 1))


def test_other_recipes_are_grouped_per_data_and_named_by_their_difference(bench):
    """Runs of a recipe other than the published one are grouped by recipe, then by data
    (only data with several seeds), and named by the options that differ."""
    pub = {"options": {"seed": 0, "keep": "best", "spectral_weight": 0.0}}
    old = [{"options": {"seed": s, "keep": "targets", "spectral_weight": 0.12}}
           for s in (0, 1)]
    old_fresh = [{"options": {**old[0]["options"], "seed": s, "data_seed": 1,
                              "test_seed": 2000}} for s in (0, 1)]
    single = {"options": {"seed": 0, "keep": "last", "spectral_weight": 0.3}}
    attempts = [(str(i), r) for i, r in enumerate([*old, *old_fresh, single, pub])]
    groups = bench.other_recipes(pub, attempts)
    assert len(groups) == 1
    options, by_data = groups[0]
    assert {d: len(r) for d, r in by_data.items()} == {(0, 1000, None): 2, (1, 2000, None): 2}
    assert bench.difference(options, pub) == "spectral weight 0.12, `--keep targets`"
    calibrated = {"options": {**pub["options"], "sharpen_amount": None, "sharpen_sigma": 0.6,
                              "texture_budget": 0.5}}
    assert bench.difference(dict(bench.recipe_of(pub)), calibrated) == "no sharpening"
    assert bench.difference(dict(bench.recipe_of(calibrated)), pub) == \
        "sharpening calibrated, unsharp-mask sigma 0.6, texture budget 0.5"
