"""Online, causal smoothing of per-sample step probabilities.

Surgical steps last minutes, so a prediction that flickers between steps for a second or two is
noise. :class:`StepSmoother` keeps an exponential moving average (EMA) of the class
probabilities and switches its output to another class only after that class has been the
EMA's argmax for ``min_dwell`` consecutive samples (hysteresis). The output at time t depends on
samples up to t only, so it runs live, one sample at a time; :meth:`StepSmoother.reset` forgets
the past at a discontinuity (seek, reconnect, source switch).

With ``alpha > 0.5`` a one-hot change that persists moves the EMA's argmax on its first sample,
so the output follows it exactly ``min_dwell`` samples after the change began (at the
``min_dwell``-th sample of the new class); ``min_dwell=1`` gives the EMA's argmax.
"""

from __future__ import annotations

import numpy as np

DEFAULT_ALPHA = 0.7
"""Weight of the newest sample in the EMA."""


class StepSmoother:
    """Causal EMA + hysteresis over one stream of per-sample class probabilities."""

    def __init__(self, num_classes: int, min_dwell: int = 3, alpha: float = DEFAULT_ALPHA) -> None:
        """
        Args:
            num_classes: Length C of each probability vector.
            min_dwell: Consecutive samples another class must lead the EMA before the output
                switches to it (1 switches at once).
            alpha: Weight of the newest sample in the EMA, in (0, 1]; 1 disables the EMA.
        """
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if min_dwell < 1:
            raise ValueError(f"min_dwell must be at least 1, got {min_dwell}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.num_classes = num_classes
        self.min_dwell = min_dwell
        self.alpha = alpha
        self.reset()

    def reset(self) -> None:
        """Forget every past sample: the next one starts the stream afresh."""
        self._ema: np.ndarray | None = None
        self._output = -1
        self._candidate = -1
        self._lead = 0

    def update(self, probs: np.ndarray) -> int:
        """Take one sample's class probabilities ([C]) and return the smoothed class index."""
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (self.num_classes,):
            raise ValueError(f"probs has shape {probs.shape}, expected ({self.num_classes},)")
        if self._ema is None:
            self._ema = probs.copy()
        else:
            self._ema = self.alpha * probs + (1.0 - self.alpha) * self._ema
        leader = int(np.argmax(self._ema))
        if self._output < 0:
            self._output = leader
        elif leader == self._output:
            self._lead = 0
        else:
            self._lead = self._lead + 1 if leader == self._candidate else 1
            self._candidate = leader
            if self._lead >= self.min_dwell:
                self._output, self._lead = leader, 0
        return self._output


def smooth_step_sequence(
    probs: np.ndarray, min_dwell: int = 3, alpha: float = DEFAULT_ALPHA
) -> np.ndarray:
    """Run a fresh :class:`StepSmoother` over ``probs`` ([T, C]) and return int64 [T] classes."""
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"probs has shape {probs.shape}, expected [T, C]")
    smoother = StepSmoother(probs.shape[1], min_dwell=min_dwell, alpha=alpha)
    return np.array([smoother.update(sample) for sample in probs], dtype=np.int64)
