"""orstream: streaming surgical video, from phantom data and training to live edge inference."""

__version__ = "0.1.0"
