"""Where frames go: H.264 MP4 recordings, RTSP, a window on the display, memory."""
