"""Heat diffusion with Cauchy noise (as in the heat benchmark, on a smaller plate): forecasts
of the noisy observations scored against the noise-free truth over rolling windows.

Rows: persistence and, given a model file (``--model "ConvDMM=PATH"`` with a file from
``videossm train`` or ``benchmarks/heat_forecast.py --out DIR``), a learned forecaster.
"""

from forecasting.config import ForecasterEntry, ForecastSetting

SETTING = ForecastSetting(
    name="heat",
    title="Heat diffusion: rolling-window forecasts against the noise-free truth",
    description=(
        "8 sequences of 40 frames simulated at 32×32 (dx = 0.1, D = 4, 3 FTCS steps per "
        "frame), Cauchy process noise (scale 3) and observation noise (scale 10), seed 2. "
        "Context 10 frames, leads 1–10, a window every "
        "5 frames; MSE, MAE and CRPS of the forecast of the noisy field against the "
        "noise-free truth, pooled over all windows and pixels."
    ),
    data={"simulator": "pyro_videossm.data.heat:simulate_heat",
          "options": {"samples": 8, "steps": 40, "grid": 32, "length": 3.2, "seed": 2}},
    variable="obs",
    truth="truth",
    context=10,
    leads=10,
    stride=5,
    forecasters=(
        ForecasterEntry("persistence", "persistence"),
    ),
)
