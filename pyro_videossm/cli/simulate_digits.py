"""``videossm simulate moving-digits -o digits.nc``: moving-MNIST videos (standard recipe)."""

from __future__ import annotations

from pathlib import Path

from pyro_videossm.cli.simulate import register_simulator
from pyro_videossm.data.moving_digits import STANDARD, moving_digits


def _arguments(parser) -> None:
    parser.add_argument("--clips", type=int, default=1000, help="number of clips (default 1000)")
    parser.add_argument("--split", choices=["train", "test", "all"], default="train",
                        help="digits from the training part, the held-out test part, or all "
                             "(default train)")
    parser.add_argument("--seed", type=int,
                        help="random seed (default: 0 for train, a fixed seed for test)")
    parser.add_argument("--mnist", type=Path,
                        help="digit file, e.g. MNIST: .npz with images (N, h, w) uint8 and "
                             "labels (N,) (default: scikit-learn's bundled 8x8 digits upscaled "
                             "to 28x28)")
    parser.add_argument("--canvas", type=int, default=STANDARD["canvas"],
                        help=f"canvas side in pixels (default {STANDARD['canvas']})")
    parser.add_argument("--digits", type=int, default=STANDARD["n_digits"],
                        help=f"digits per clip (default {STANDARD['n_digits']})")
    parser.add_argument("--frames", type=int, default=STANDARD["n_frames"],
                        help=f"frames per clip (default {STANDARD['n_frames']})")
    parser.add_argument("--context", type=int,
                        help="context frames, recorded as an attribute (default: half the "
                             "frames, 10 of 20)")
    parser.add_argument("--speed", type=float, default=STANDARD["speed"],
                        help=f"pixels per frame (default {STANDARD['speed']})")


def _build(args):
    return moving_digits(args.clips, split=args.split, seed=args.seed, canvas=args.canvas,
                         n_digits=args.digits, n_frames=args.frames, n_context=args.context,
                         speed=args.speed, mnist_path=args.mnist)


register_simulator(
    "moving-digits",
    "moving MNIST digits: 64x64 canvas, 2 digits, 3.6 px/frame, reflecting borders, 20 frames",
    _arguments,
    _build,
)
