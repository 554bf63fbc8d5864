"""Audio scores: log-spectral distance, onset F1, onset-envelope offset (closed forms)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("librosa")

from pyro_videossm.data.eating import FOODS, plan_clip, synthesize_audio  # noqa: E402
from pyro_videossm.errors import InputError  # noqa: E402
from pyro_videossm.metrics.audio import (  # noqa: E402
    audio_onset_f1,
    detect_onsets,
    log_spectral_distance,
    match_onsets,
    median_abs_offset_ms,
    onset_f1,
    onset_offset,
    spectral_distance_db,
)

SR = 16000


def _noise(seed: int = 0, seconds: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * SR)).astype(np.float32)


def test_lsd_is_zero_for_equal_signals_and_20log10k_for_a_scaled_one():
    x = _noise()
    assert log_spectral_distance(x, x) == 0.0
    for k in (0.5, 2.0, 10.0):
        assert log_spectral_distance(k * x, x) == pytest.approx(abs(20 * np.log10(k)), abs=1e-3)
    y = _noise(1)
    assert log_spectral_distance(x, y) == pytest.approx(log_spectral_distance(y, x))
    assert log_spectral_distance(x, y) > 3.0


def test_spectral_distance_closed_form_per_frame():
    """Frame 1 differs by 20 dB in half its bins: sqrt(mean(d^2)) = sqrt(200); frame 0 by
    nothing; the mean over frames is sqrt(200) / 2."""
    a = np.ones((4, 2))
    b = a.copy()
    b[:2, 1] = 10.0
    assert spectral_distance_db(a, b) == pytest.approx(np.sqrt(200.0) / 2)
    with pytest.raises(InputError):
        spectral_distance_db(a, b[:, :1])


def test_one_to_one_matching_is_optimal_not_greedy():
    # greedy nearest-first would pair 0.10 with 0.13 and leave 0.16 alone
    pairs = match_onsets([0.10, 0.16], [0.13, 0.06], tolerance=0.05)
    assert sorted(pairs) == [(0, 1), (1, 0)]
    # two estimates near one reference: one match only
    s = onset_f1([0.10, 0.12], [0.11])
    assert (s.matched, s.precision, s.recall) == (1, 0.5, 1.0)
    assert s.f1 == pytest.approx(2 / 3)
    assert onset_f1([], []).f1 == 1.0 and onset_f1([0.2], []).f1 == 0.0
    assert onset_f1([0.2, np.nan], [0.249]).f1 == 1.0  # NaN padding ignored
    assert onset_f1([0.2], [0.251]).f1 == 0.0


def _clicks(times, seconds: float = 2.0) -> np.ndarray:
    """Decaying noise bursts at ``times`` (an impulse train made audible) plus faint noise."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1e-3, int(seconds * SR))
    burst = rng.normal(0, 0.3, 800) * np.exp(-np.arange(800) / 120)
    for t in times:
        i = int(round(t * SR))
        x[i:i + 800] += burst[: len(x[i:i + 800])]
    return x.astype(np.float32)


@pytest.mark.parametrize("shift", [0.06, -0.03, 0.0])
def test_offset_recovers_a_known_shift_of_an_impulse_train(shift):
    times = np.array([0.3, 0.75, 1.1, 1.6])
    true = _clicks(times)
    late = _clicks(times + shift)
    assert onset_offset(late, true) == pytest.approx(shift, abs=0.004)
    assert onset_offset(true, late) == pytest.approx(-shift, abs=0.004)


def test_median_abs_offset_ms():
    assert median_abs_offset_ms([0.01, -0.03, 0.02]) == pytest.approx(20.0)
    with pytest.raises(InputError):
        median_abs_offset_ms([])


def test_simulated_events_are_detected_and_shifted_ones_are_not():
    """Onset F1 = 1 for the simulator's sound against its own event times (the events are
    detectable), for every food; shifting the events by 80 ms (beyond the 50 ms tolerance)
    makes it 0, by 30 ms keeps it 1."""
    rng = np.random.default_rng(11)
    for food in range(len(FOODS)):
        plan = plan_clip(rng, face=0, food=food, seconds=2.0)
        audio = synthesize_audio(plan)
        onsets = detect_onsets(audio)
        assert onset_f1(onsets, plan.event_times).f1 == 1.0, FOODS[food]
        assert onset_f1(onsets, plan.event_times + 0.03).f1 == 1.0
        assert onset_f1(onsets, plan.event_times + 0.08).f1 == 0.0
    assert audio_onset_f1(audio, audio).f1 == 1.0


def test_bad_waveforms_are_refused():
    with pytest.raises(InputError):
        log_spectral_distance(np.zeros((2, 100)), np.zeros(100))
    with pytest.raises(InputError):
        onset_offset(np.full(1000, np.nan), np.zeros(1000))
