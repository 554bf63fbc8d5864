"""Pinball loss, interval coverage (ICP) and mean interval length (MIL): hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.metrics.quantile import (
    check_levels,
    interval_coverage,
    interval_length,
    pinball,
    quantile_loss,
    quantile_scores,
)


def test_pinball_hand_cases_torch():
    levels = (0.1, 0.5, 0.9)
    pred = torch.tensor([[0.0, 1.0, 2.0]])  # (N=1, Q=3)
    # y = 3: all under-predict; losses tau * (y - q) = 0.3, 1.0, 0.9
    assert quantile_loss(pred, torch.tensor([3.0]), levels, dim=-1).item() == pytest.approx(
        (0.3 + 1.0 + 0.9) / 3)
    # y = -1: all over-predict; losses (1 - tau) (q - y) = 0.9, 1.0, 0.3
    assert quantile_loss(pred, torch.tensor([-1.0]), levels, dim=-1).item() == pytest.approx(
        (0.9 + 1.0 + 0.3) / 3)
    # y = 1 (at the median): 0.1 * 1, 0, 0.1 * 1
    assert quantile_loss(pred, torch.tensor([1.0]), levels, dim=-1).item() == pytest.approx(
        0.2 / 3)
    # median only: half the absolute error
    q = torch.tensor([[2.0], [5.0]])
    y = torch.tensor([0.0, 6.0])
    assert quantile_loss(q, y, (0.5,), dim=1).item() == pytest.approx((1.0 + 0.5) / 2)


def test_pinball_mask_and_level_dim():
    pred = torch.zeros(2, 3, 4)  # levels on dim 1
    y = torch.tensor([[1.0, 1.0, 1.0, 100.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    got = quantile_loss(pred, y, (0.1, 0.5, 0.9), dim=1, mask=mask).item()
    assert got == pytest.approx(0.5)  # mean of tau over levels, times |y| = 1


def test_pinball_is_minimised_by_the_true_quantile():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.normal(size=20000))
    grid = torch.linspace(-2.5, 2.5, 501)
    losses = torch.stack([quantile_loss(g.expand(len(y), 1), y, (0.9,), dim=1) for g in grid])
    assert grid[losses.argmin()].item() == pytest.approx(1.2816, abs=0.05)


def _q(values, levels=(0.1, 0.5, 0.9)):
    arr = np.asarray(values, float)  # (Q, N)
    return xr.DataArray(arr, dims=("quantile", "pixel"), coords={"quantile": list(levels)})


def test_icp_mil_hand_cases():
    truth = xr.DataArray([0.5, 2.0, -1.0, 1.0, np.nan], dims="pixel")
    q = _q([[0, 0, 0, 1, 0], [0.5, 0.5, 0.5, 1, 0.5], [1, 1, 1, 3, 1]])
    lo, hi = q.sel(quantile=0.1), q.sel(quantile=0.9)
    # inside: 0.5 in [0,1] yes; 2 no; -1 no; 1 in [1,3] yes (ends count); NaN skipped
    assert float(interval_coverage(lo, hi, truth)) == pytest.approx(0.5)
    assert float(interval_length(lo, hi, truth)) == pytest.approx((1 + 1 + 1 + 2) / 4)
    s = quantile_scores(q, truth)
    assert s["icp"] == pytest.approx(0.5) and s["mil"] == pytest.approx(1.25)
    # pinball of pixel 0: y = 0.5, q = (0, .5, 1): 0.1 * .5, 0, 0.1 * .5 -> 0.1 / 3
    p0 = float(pinball(q.isel(pixel=[0]), truth.isel(pixel=[0])))
    assert p0 == pytest.approx(0.1 / 3)
    assert s["median_mse"] == pytest.approx(np.mean([0, 1.5**2, 1.5**2, 0]))


def test_xarray_pinball_matches_torch():
    rng = np.random.default_rng(1)
    q = np.sort(rng.normal(size=(3, 50)), axis=0)
    y = rng.normal(size=50)
    ref = quantile_loss(torch.from_numpy(q.T), torch.from_numpy(y), (0.1, 0.5, 0.9)).item()
    assert float(pinball(_q(q), xr.DataArray(y, dims="pixel"))) == pytest.approx(ref)


def test_bad_levels():
    with pytest.raises(InputError, match="increasing"):
        check_levels([0.5, 0.1])
    with pytest.raises(InputError, match=r"\(0, 1\)"):
        check_levels([0.0, 0.5])
    with pytest.raises(InputError, match="no level 0.05"):
        quantile_scores(_q(np.zeros((3, 2))), xr.DataArray([0.0, 0.0], dims="pixel"),
                        lower=0.05)
