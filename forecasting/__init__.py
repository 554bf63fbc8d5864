"""Forecast settings (one module each) and their runner (``python -m forecasting.run``)."""
