"""The LightningDataModules (``*_datamodule``) that feed each task's module, and the readers they
share: decoded-frame and slide-tile caches, label masks, clip narrations, VLM features and the
simulated corrective clicks of interactive segmentation. Export's evaluations read data through
the same helpers, so training and evaluation see the same pixels, masks and texts; the modules
in :mod:`orstream.training.modules` import from here, never the other way."""
