"""``orstream demo``: the main job end to end on a fresh phantom case."""
