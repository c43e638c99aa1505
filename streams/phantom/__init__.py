"""The phantom: procedural endoscopic pituitary surgery with exact ground truth.

- ``timeline``: what happens when in a case (steps, instruments, smoke, camera), per seed.
- ``scenes`` / ``instruments``: per-step anatomy textures and the 18 instrument sprites.
- ``renderer``: frames of a case (``CaseRenderer``), with step and visible instruments.
- ``writer``: datasets in the PitVis layout (``orstream phantom make``).
- ``source``: ``PhantomSource``, a live camera paced at the real frame rate.
"""
