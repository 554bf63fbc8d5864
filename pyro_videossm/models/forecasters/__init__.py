"""Neural field forecasters behind :mod:`pyro_videossm.forecast`'s interface: ConvLSTM, the
spatiotemporal transformer, sequence baselines (LSTM, Transformer, seq2seq)."""
