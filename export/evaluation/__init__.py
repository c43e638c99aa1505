"""``orstream eval segmentation``: a segmentation package scored on a phantom data set."""
