"""Classical assimilation: Kalman filter / RTS smoother, EnKF, ETKF, LETKF, EnKS, EnKF-N,
iEnKS, 3D-Var and 4D-Var.

Importing the modules registers the methods ``kf``, ``rts``, ``enkf``, ``etkf``, ``letkf``,
``enks``, ``enkf-n``, ``ienks``, ``3dvar`` and ``4dvar`` (see
:func:`pyro_videossm.assimilate.get_method`). The particle filter lives in
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
from pyro_videossm.filters.enkf_n import (
    EnKFNMethod,
    enkf_n_analysis,
    enkf_n_transform,
    run_enkf_n,
)
from pyro_videossm.filters.enks import EnKSMethod, smooth_ensembles, window_products
from pyro_videossm.filters.ensemble import (
    initial_ensemble,
    obs_error_variance,
    post_process,
    random_mean_preserving_rotation,
)
from pyro_videossm.filters.ienks import IEnKSMethod, IEnKSRun, run_ienks
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
from pyro_videossm.filters.var3d import (
    Var3DMethod,
    climatological_covariance,
    run_var3d,
    var3d_analysis,
)
from pyro_videossm.filters.var4d import (
    Var4DMethod,
    WindowAnalysis,
    run_var4d,
    run_var4d_newest,
    var4d_window,
)

__all__ = [
    "ETKFMethod",
    "EnKFMethod",
    "EnKFNMethod",
    "EnKSMethod",
    "EnsembleRun",
    "IEnKSMethod",
    "IEnKSRun",
    "KalmanFilterMethod",
    "KalmanResult",
    "LETKFMethod",
    "RTSSmootherMethod",
    "Var3DMethod",
    "Var4DMethod",
    "WindowAnalysis",
    "climatological_covariance",
    "enkf_n_analysis",
    "enkf_n_transform",
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
    "run_enkf_n",
    "run_etkf",
    "run_ienks",
    "run_var3d",
    "run_var4d",
    "run_var4d_newest",
    "smooth_ensembles",
    "taper_matrix",
    "var3d_analysis",
    "var4d_window",
    "window_products",
]
