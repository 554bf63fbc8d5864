"""State-space models: the deep Markov model (neural and hybrid with known physics), the
DMM as an assimilation method, and the convolutional DMM for fields."""
