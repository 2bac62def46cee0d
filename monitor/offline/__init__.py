"""Offline: the live rules run over recorded or simulated data (backtest), their plots and the HTML report."""
