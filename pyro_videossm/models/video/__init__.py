"""Video models: the disentangled sequential VAE."""
