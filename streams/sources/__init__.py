"""Where frames come from: GStreamer and PyAV sources, and opening one by URI."""
