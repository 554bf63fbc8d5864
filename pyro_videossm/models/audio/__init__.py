"""Audio models: sound from silent video (issue 17).

- :mod:`~pyro_videossm.models.audio.spectrogram`: the log-amplitude STFT the models predict
  and Griffin–Lim back to a waveform (librosa);
- :mod:`~pyro_videossm.models.audio.visual_encoder`: face crops to features at the
  spectrogram frame rate (per-frame CNN, temporal convolutions, learned upsampling);
- :mod:`~pyro_videossm.models.audio.sound_model`: :class:`VideoToSpectrogram`, the encoder
  plus a Laplace likelihood on the log-magnitude (Pyro ``model``/``guide``);
- :mod:`~pyro_videossm.models.audio.baselines`: class-average (oracle), retrieval, silence;
- :mod:`~pyro_videossm.models.audio.judge`: the audio judge (food class from a spectrogram).

librosa is imported inside the functions that need it, so this package imports without it.
"""

from pyro_videossm.models.audio.judge import AudioJudge
from pyro_videossm.models.audio.sound_model import VideoToSpectrogram
from pyro_videossm.models.audio.spectrogram import SpectrogramSettings
from pyro_videossm.models.audio.visual_encoder import VisualEncoder

__all__ = ["AudioJudge", "SpectrogramSettings", "VideoToSpectrogram", "VisualEncoder"]
