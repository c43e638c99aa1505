"""X servers for display tests, and screenshots of them read into numpy.

``two_monitor_xorg`` runs Xorg with its dummy video driver, whose RandR outputs DUMMY0
(1280x800 at 0,0, primary) and DUMMY1 (1024x768 at 1280,0) GTK lists as monitors 0 and 1, as
it would two HDMI outputs of a GPU. (Xvfb has a single RandR output, and GTK 3 takes monitors
only from RandR outputs: neither Xvfb's Xinerama screens nor RandR monitors without an output
count.) ``xvfb`` runs a one-screen Xvfb. ``screenshot`` reads ``xwd -root``.
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

TWO_MONITORS_CONF = """
Section "ServerFlags"
  Option "AutoAddDevices" "false"
  Option "DontVTSwitch" "true"
EndSection
Section "Device"
  Identifier "dummy"
  Driver "dummy"
  VideoRam 32768
  Option "Monitor-DUMMY0" "left"
  Option "Monitor-DUMMY1" "right"
EndSection
Section "Monitor"
  Identifier "left"
  Modeline "1280x800" 83.50 1280 1352 1480 1680 800 803 809 831
  Option "PreferredMode" "1280x800"
  Option "Position" "0 0"
  Option "Primary" "true"
EndSection
Section "Monitor"
  Identifier "right"
  Modeline "1024x768" 65.00 1024 1048 1184 1344 768 771 777 806
  Option "PreferredMode" "1024x768"
  Option "Position" "1280 0"
  Option "Enable" "true"
EndSection
Section "Screen"
  Identifier "screen"
  Device "dummy"
  Monitor "left"
  DefaultDepth 24
  SubSection "Display"
    Depth 24
    Virtual 2304 800
  EndSubSection
EndSection
"""
MONITORS = {0: (0, 0, 1280, 800), 1: (1280, 0, 1024, 768)}
"""x, y, width, height of the two monitors."""


def start_x_server(command: list[str], log: Path) -> Iterator[str]:
    """Run an X server on a display number it picks (``-displayfd``); yield ``:N``."""
    read, write = os.pipe()
    with log.open("wb") as output:
        # setpriv: the kernel ends the server when the test process ends, even one that
        # crashed or was killed before its fixtures could stop it (no Python runs in the
        # child: the test process has gRPC's threads, and a fork with them must exec at once).
        server = subprocess.Popen(
            ["setpriv", "--pdeathsig", "TERM", *command,
             "-displayfd", str(write), "-nolisten", "tcp", "-noreset"],
            pass_fds=(write,), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as announced:
        number = announced.readline().strip()  # written once the server takes clients
    try:
        if not number:
            pytest.fail(f"{command[0]} did not start: {log.read_text(errors='replace')[-2000:]}")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def two_monitor_xorg(root: Path) -> Iterator[str]:
    """Xorg with monitors 0 and 1 (:data:`MONITORS`); yields its display name."""
    (root / "xorg.conf").write_text(TWO_MONITORS_CONF)
    # The server itself rather than the Xorg wrapper, which lets only console users start it.
    xorg = "/usr/lib/xorg/Xorg" if Path("/usr/lib/xorg/Xorg").exists() else "Xorg"
    command = [xorg, "-config", str(root / "xorg.conf"), "-logfile", str(root / "xorg.log")]
    yield from start_x_server([*command, "-novtswitch", "-sharevts"], root / "out.log")


def xvfb(root: Path, *options: str) -> Iterator[str]:
    """Xvfb with one 1280x800 screen (and ``options``); yields its display name."""
    yield from start_x_server(["Xvfb", "-screen", "0", "1280x800x24", *options], root / "xvfb.log")


def read_xwd(data: bytes) -> np.ndarray:
    """The RGB image of an XWD file (X Window Dump, version 7, a TrueColor ZPixmap).

    The header is 25 big-endian uint32 fields followed by the window's name, then ``ncolors``
    12-byte colour entries, then ``height`` rows of ``bytes_per_line`` bytes whose pixels are
    ``bits_per_pixel`` wide, in ``byte_order``, with red, green and blue under their masks.
    """
    (
        header_size, version, pixmap_format, _depth, width, height, _xoffset, byte_order,
        _bitmap_unit, _bit_order, _bitmap_pad, bits_per_pixel, bytes_per_line, visual_class,
        red_mask, green_mask, blue_mask, _bits_per_rgb, _entries, ncolors, *_window,
    ) = struct.unpack(">25I", data[:100])  # fmt: skip
    assert version == 7 and pixmap_format == 2 and visual_class in (4, 5), "not a TrueColor dump"
    assert bits_per_pixel in (24, 32), f"{bits_per_pixel} bits per pixel"
    step = bits_per_pixel // 8
    rows = np.frombuffer(
        data, np.uint8, count=height * bytes_per_line, offset=header_size + 12 * ncolors
    ).reshape(height, bytes_per_line)
    pixels = rows[:, : width * step].reshape(height, width, step).astype(np.uint32)
    order = range(step) if byte_order == 0 else range(step - 1, -1, -1)  # 0: LSB first
    values = sum(pixels[:, :, i] << (8 * shift) for shift, i in enumerate(order))
    channels = []
    for mask in (red_mask, green_mask, blue_mask):
        shift = (mask & -mask).bit_length() - 1
        channels.append(((values & mask) >> shift) * 255 // (mask >> shift))
    return np.stack(channels, axis=-1).astype(np.uint8)


def screenshot(display: str) -> np.ndarray:
    dump = subprocess.run(
        ["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True,
        timeout=30,
    )  # fmt: skip
    return read_xwd(dump.stdout)


def picture_box(shot: np.ndarray) -> tuple[int, int, int, int] | None:
    """x0, y0, x1, y1 (exclusive) of everything on the screen that is not black."""
    ys, xs = np.nonzero(shot.max(axis=-1) > 100)  # half way up a scaled edge
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def letterboxed(frame_w: int, frame_h: int, x: int, y: int, w: int, h: int) -> tuple[int, ...]:
    """Where a frame goes on a ``w`` x ``h`` area at ``x, y``: as large as fits, centred."""
    scale = min(w / frame_w, h / frame_h)
    shown_w, shown_h = round(frame_w * scale), round(frame_h * scale)
    left, top = x + (w - shown_w) // 2, y + (h - shown_h) // 2
    return left, top, left + shown_w, top + shown_h
