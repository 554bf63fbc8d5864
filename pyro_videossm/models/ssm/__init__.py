"""State-space models: the deep Markov model in composable parts (generative model
``dmm.py``, guides ``guides.py``, hybrid physics ``hybrid.py``, the latent chain
``markov_gaussian.py``, model files ``dmm_file.py``), the DMM as an assimilation method, and
the convolutional DMM for fields and its advection-aware variant for nowcasting
(``advection_conv_dmm.py``)."""
