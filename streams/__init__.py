"""Video in and out of orstream: the Frame type, video files (PyAV) and the phantom source."""
