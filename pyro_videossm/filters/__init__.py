"""Classical assimilation: Kalman filter / RTS smoother, EnKF, ETKF, LETKF and EnKS.

Importing the modules registers the methods ``kf``, ``rts``, ``enkf``, ``etkf``, ``letkf``
and ``enks`` (see :func:`pyro_videossm.assimilate.get_method`). The particle filter lives in
:mod:`pyro_videossm.filters.particle`.
"""

from pyro_videossm.filters.enkf import (
    EnKFMethod,
    EnsembleRun,
    ETKFMethod,
    LETKFMethod,
    ensemble_transform,
    full_transform,
    run_enkf,
    run_etkf,
)
from pyro_videossm.filters.enks import EnKSMethod, smooth_ensembles, window_products
from pyro_videossm.filters.ensemble import (
    initial_ensemble,
    obs_error_variance,
    post_process,
    random_mean_preserving_rotation,
)
from pyro_videossm.filters.kalman import (
    KalmanFilterMethod,
    KalmanResult,
    RTSSmootherMethod,
    extended_kalman_filter,
    kalman_filter,
    kalman_predict,
    kalman_update,
    linearised_forecast,
    rts_smoother,
)
from pyro_videossm.filters.localization import gaspari_cohn, local_windows, taper_matrix

__all__ = [
    "ETKFMethod",
    "EnKFMethod",
    "EnKSMethod",
    "EnsembleRun",
    "KalmanFilterMethod",
    "KalmanResult",
    "LETKFMethod",
    "RTSSmootherMethod",
    "ensemble_transform",
    "extended_kalman_filter",
    "full_transform",
    "gaspari_cohn",
    "initial_ensemble",
    "kalman_filter",
    "kalman_predict",
    "kalman_update",
    "linearised_forecast",
    "local_windows",
    "obs_error_variance",
    "post_process",
    "random_mean_preserving_rotation",
    "rts_smoother",
    "run_enkf",
    "run_etkf",
    "smooth_ensembles",
    "taper_matrix",
    "window_products",
]
