"""The procedural eating clips, video files, and face tracking (the eating-sounds data half)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("soundfile")

from pyro_videossm.cli import main  # noqa: E402
from pyro_videossm.data.conventions import open_dataset  # noqa: E402
from pyro_videossm.data.eating import (  # noqa: E402
    FOODS,
    N_TRAIN_FACES,
    SAMPLE_RATE,
    eating_face_crops,
    face_identity,
    face_pool,
    jaw_opening,
    plan_clip,
    simulate_eating,
    synthesize_audio,
    write_eating_mp4,
)
from pyro_videossm.data.face_tracking import face_crops, track_face  # noqa: E402
from pyro_videossm.data.video_files import (  # noqa: E402
    read_video,
    resample_frames,
    write_mp4,
    write_wav,
)
from pyro_videossm.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def clips():
    """Two test-split clips of 1 s at 64 pixels."""
    return simulate_eating(2, seconds=1.0, size=64, seed=3, split="test")


def test_layout_dtypes_and_labels(clips):
    ds = clips
    assert ds["frames"].dims == ("clip", "time", "channel", "y", "x")
    assert ds["frames"].shape == (2, 25, 3, 64, 64) and ds["frames"].dtype == np.float32
    f = ds["frames"].values
    assert f.min() >= 0 and f.max() <= 1
    np.testing.assert_allclose(f * 255, np.round(f * 255), atol=1e-3)  # 8-bit levels
    assert ds["audio"].shape == (2, SAMPLE_RATE) and ds["audio"].dtype == np.float32
    assert ds.attrs["fps"] == 25 and ds.attrs["sample_rate"] == 16000
    assert ds["food"].attrs["flag_meanings"].split() == list(FOODS)
    t, k = ds["event_time"].values, ds["event_kind"].values
    assert np.array_equal(np.isnan(t), k == -1) and np.all(np.isfinite(t[:, 0]))
    assert np.nanmin(t) >= 0 and np.nanmax(t) < 1.0
    assert ds["face_box"].shape == (2, 25, 4)


def test_same_seed_same_clips_and_faces_from_disjoint_pools():
    a = simulate_eating(2, seconds=0.5, size=32, seed=5)
    b = simulate_eating(2, seconds=0.5, size=32, seed=5)
    c = simulate_eating(2, seconds=0.5, size=32, seed=6)
    for name in ("frames", "audio", "event_time", "face", "food"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert not np.array_equal(a["audio"].values, c["audio"].values)
    test = simulate_eating(2, seconds=0.5, size=32, seed=5, split="test")
    assert np.all(a["face"].values < N_TRAIN_FACES) and np.all(test["face"].values >= 800)
    assert not set(face_pool("train")) & set(face_pool("test"))
    # a face's look depends on its id alone
    assert np.array_equal(face_identity(801)["skin"], face_identity(801)["skin"])
    assert not np.array_equal(face_identity(801)["skin"], face_identity(802)["skin"])


def test_jaw_closes_and_sound_starts_exactly_at_the_event_times():
    rng = np.random.default_rng(0)
    for food in range(len(FOODS)):
        plan = plan_clip(rng, face=1, food=food, seconds=2.0)
        events = plan.event_times
        assert len(events) >= 2
        np.testing.assert_allclose(jaw_opening(plan, events), 0.0, atol=1e-12)
        # the jaw is open everywhere else: the zeros of a fine grid are the closures
        grid = np.arange(0, 2.0, 1e-3)
        open_ = jaw_opening(plan, grid)
        minima = grid[1:-1][(open_[1:-1] <= open_[:-2]) & (open_[1:-1] <= open_[2:])]
        np.testing.assert_allclose(minima, events, atol=1e-3)
        # the sound: room noise before each event's first sample, a burst from it on
        audio = synthesize_audio(plan)
        for t in events:
            i = int(round(t * SAMPLE_RATE))
            before = np.sqrt(np.mean(audio[i - 160:i] ** 2))
            after = np.sqrt(np.mean(audio[i:i + 160] ** 2))
            assert after > 5 * before, (FOODS[food], t)


def test_the_rendered_mouth_follows_the_jaw(clips):
    """Dark mouth-interior pixels in the face box: their count rises and falls with the jaw
    opening (the drawn mouth, not only the stored opening, closes at the events)."""
    f = clips["frames"].values[0].transpose(0, 2, 3, 1)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    inside = (r > 0.12) & (r < 0.4) & (g < 0.1) & (b < 0.1)
    area = inside.reshape(len(f), -1).sum(axis=1)
    opening = clips["jaw_opening"].values[0]
    assert np.corrcoef(area, opening)[0, 1] > 0.9


def test_cli_writes_what_python_simulates(tmp_path):
    out = tmp_path / "eating.nc"
    assert main(["simulate", "eating", "-o", str(out), "--clips", "1", "--seconds", "0.5",
                 "--size", "32", "--split", "test", "--seed", "2", "--no-progress"]) == 0
    back = open_dataset(out)
    ref = simulate_eating(1, seconds=0.5, size=32, seed=2, split="test")
    np.testing.assert_allclose(back["frames"].values, ref["frames"].values, atol=1e-6)
    np.testing.assert_array_equal(back["audio"].values, ref["audio"].values)
    np.testing.assert_array_equal(back["event_kind"].values, ref["event_kind"].values)
    assert back["frames"].dtype == np.float32


def test_bad_options_are_one_line_errors():
    for kwargs in ({"n_clips": 0}, {"seconds": 0.1}, {"size": 33}, {"seed": -1},
                   {"split": "valid"}, {"foods": ("pizza",)}):
        with pytest.raises(InputError):
            simulate_eating(**{"n_clips": 1, "seconds": 0.5, "size": 32, **kwargs})


def test_mp4_round_trip_keeps_the_face_and_the_sound(clips, tmp_path):
    """Each clip written as MP4 (with its sound) and read back: 25 fps, the sound intact, the
    Haar cascade finds the face in >= 95 % of the frames, and the tracked crops match the
    crops of the frames in memory."""
    in_memory = eating_face_crops(clips, 48, track=True)
    for c in range(clips.sizes["clip"]):
        path = write_eating_mp4(clips, c, tmp_path / f"clip{c}.mp4", scale=2)
        video = read_video(path, with_audio=True)
        assert video.fps == 25 and video.frames.shape == (25, 128, 128, 3)
        sound = clips["audio"].values[c]
        assert video.audio is not None and len(video.audio) >= len(sound) - 1024
        n = min(len(sound), len(video.audio))
        assert np.corrcoef(sound[:n], video.audio[:n])[0, 1] > 0.99
        crops = face_crops(video.frames, 48)
        assert crops.detection_rate >= 0.95
        assert np.abs(crops.crops - in_memory[c]).mean() < 0.06
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip0.mp4", "clip1.mp4"]


def test_tracked_box_matches_the_true_face_box(clips):
    f = clips["frames"].values[1].transpose(0, 2, 3, 1)
    track = track_face(f)
    true = clips["face_box"].values[1]
    centre = lambda b: np.column_stack([b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]]) / 2  # noqa: E731
    side = true[:, 2] - true[:, 0]
    assert np.max(np.abs(centre(track.boxes) - centre(true))) < 0.12 * side.mean()
    np.testing.assert_allclose(track.boxes[:, 2] - track.boxes[:, 0], side, rtol=0.15)


def test_resampling_takes_the_nearest_frame_in_time():
    frames = np.arange(30)
    np.testing.assert_array_equal(resample_frames(frames, 50, 25), np.arange(0, 30, 2))
    np.testing.assert_array_equal(resample_frames(frames, 30, 25),
                                  np.floor(np.arange(25) * 1.2 + 0.5).astype(int))
    np.testing.assert_array_equal(resample_frames(np.arange(4), 10, 25),
                                  [0, 0, 1, 1, 2, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(resample_frames(frames, 25, 25), frames)


def test_a_video_at_another_frame_rate_is_resampled(tmp_path):
    """A 50 fps file whose frame i is grey level 8 i: read at 25 fps, frame j is 16 j."""
    levels = 8 * np.arange(20)
    frames = np.broadcast_to(levels[:, None, None, None], (20, 32, 32, 3)).astype(np.uint8)
    path = write_mp4(tmp_path / "fifty.mp4", frames, fps=50)
    video = read_video(path)
    assert video.source_fps == 50 and video.fps == 25 and len(video.frames) == 10
    np.testing.assert_allclose(video.frames.mean(axis=(1, 2, 3)), levels[::2], atol=3)
    assert len(read_video(path, fps=None).frames) == 20


def test_no_face_and_no_video_stream_are_one_line_errors(tmp_path):
    blank = np.full((6, 64, 64, 3), 120, np.uint8)
    with pytest.raises(InputError, match=r"^no face found in 6 frames$"):
        face_crops(blank, 48)
    path = write_mp4(tmp_path / "blank.mp4", blank, fps=25)
    with pytest.raises(InputError, match="no face found in 6 frames"):
        face_crops(read_video(path).frames, 48)
    wav = write_wav(tmp_path / "sound.wav", np.zeros(1600, np.float32))
    with pytest.raises(InputError, match="no video stream"):
        read_video(wav)
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video\n")
    for bad in (junk, tmp_path / "missing.mp4"):
        with pytest.raises(InputError) as err:
            read_video(bad)
        assert "\n" not in str(err.value)
    assert Path(wav).stat().st_size > 44  # a WAV header and samples
