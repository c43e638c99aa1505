"""Reduced-precision graphs: fp16 rewrites, INT8 Q/DQ graphs, and the calibration behind them."""
