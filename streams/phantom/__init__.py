"""The phantom: procedural endoscopic pituitary surgery with exact ground truth.

- ``timeline``: what happens when in a case (steps, instruments, smoke, camera), per seed.
- ``scenes`` / ``instruments``: per-step anatomy textures (with sella labels) and the 18
  instrument sprites.
- ``renderer``: frames of a case (``CaseRenderer``), with step and visible instruments, and on
  request instrument and anatomy masks.
- ``writer``: datasets in the PitVis layout, with instrument and anatomy masks
  (``orstream phantom make``).
- ``source``: ``PhantomSource``, a live camera paced at the real frame rate.
"""
