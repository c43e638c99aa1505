"""Sprites of the 18 PitVis instruments: shaded metal and plastic shapes, drawn once per case.

Each instrument is drawn lying along +x with its tip at the sprite's ``tip`` point and its shaft
running out to the right, long enough to reach past the rim of the field of view from anywhere
inside it. The renderer rotates, scales and places the sprite per frame. Jawed instruments get
several opening states and the drill several burr positions, so they can open, close and spin.
Geometry is written in units of the shaft radius ``r``; shading is a small metal model with a
coaxial highlight and the pink surroundings reflected at grazing angles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

VARIANTS = 3
"""Opening (or spin) states drawn per instrument."""

SUPERSAMPLE = 2

RGB = tuple[float, float, float]
Point = tuple[float, float]
PixelSlices = tuple[slice, slice]
Window = tuple[PixelSlices, np.ndarray, np.ndarray]
"""A part's pixel window: its (rows, columns) slices, then x and y of each pixel in units."""

TISSUE_REFLECTION = np.array([0.85, 0.42, 0.38], np.float32)


@dataclass(frozen=True)
class Material:
    """Surface of an instrument part."""

    base: RGB
    specular: float
    reflection: float
    opacity: float = 1.0


STEEL = Material((0.6, 0.61, 0.64), 1.0, 0.6)
DULL_STEEL = Material((0.45, 0.46, 0.48), 0.6, 0.45)
INSULATION = Material((0.14, 0.17, 0.24), 0.6, 0.25)
BLACK = Material((0.04, 0.04, 0.05), 0.35, 0.1)
LUMEN = Material((0.02, 0.01, 0.01), 0.0, 0.0)
WHITE_PLASTIC = Material((0.86, 0.87, 0.86), 0.45, 0.2, 0.88)
BLUE_PLASTIC = Material((0.3, 0.5, 0.85), 0.5, 0.2, 0.92)
CLEAR_PLASTIC = Material((0.7, 0.78, 0.86), 0.7, 0.3, 0.6)
FOAM = Material((0.9, 0.8, 0.58), 0.05, 0.05)
GLUE = Material((0.55, 0.5, 0.8), 0.9, 0.2, 0.75)
WATER = Material((0.75, 0.8, 0.85), 1.0, 0.2, 0.5)
BURR = Material((0.7, 0.68, 0.6), 0.7, 0.35)


@dataclass(frozen=True)
class Sprite:
    """One drawn state of an instrument.

    Attributes:
        rgba: (h, w, 4) uint8 with premultiplied alpha.
        tip: (x, y) of the instrument's tip in sprite pixels; the shaft runs towards +x.
    """

    rgba: np.ndarray
    tip: tuple[float, float]


def _rotate(points: list[Point], angle: float, centre: Point) -> list[Point]:
    c, s = np.cos(angle), np.sin(angle)
    return [
        (
            centre[0] + c * (x - centre[0]) - s * (y - centre[1]),
            centre[1] + s * (x - centre[0]) + c * (y - centre[1]),
        )
        for x, y in points
    ]


class Painter:
    """Draws shaded primitives, in shaft-radius units, on a supersampled RGBA canvas."""

    def __init__(self, length: float, half_height: float, radius_px: float, seed: int) -> None:
        self.unit = radius_px * SUPERSAMPLE
        self.margin = 2.5
        self.width = int(np.ceil((length + self.margin) * self.unit))
        self.height = int(np.ceil(2 * half_height * self.unit))
        self.length = length
        self.rgb = np.zeros((self.height, self.width, 3), np.float32)
        self.alpha = np.zeros((self.height, self.width), np.float32)
        self.rng = np.random.default_rng(seed)

    def _window(self, x0: float, x1: float, y0: float, y1: float) -> Window | None:
        """Pixel window covering the box [x0, x1] x [y0, y1] and its coordinates in units."""
        u = self.unit
        cx, cy = self.margin * u, self.height / 2
        px0 = max(0, int(np.floor(cx + x0 * u)) - 2)
        px1 = min(self.width, int(np.ceil(cx + x1 * u)) + 2)
        py0 = max(0, int(np.floor(cy + y0 * u)) - 2)
        py1 = min(self.height, int(np.ceil(cy + y1 * u)) + 2)
        if px0 >= px1 or py0 >= py1:
            return None
        ys, xs = np.mgrid[py0:py1, px0:px1].astype(np.float32)
        return (slice(py0, py1), slice(px0, px1)), (xs + 0.5 - cx) / u, (ys + 0.5 - cy) / u

    def _put(
        self,
        window: PixelSlices,
        cover: np.ndarray,
        nz: np.ndarray,
        material: Material,
        albedo: np.ndarray | None = None,
    ) -> None:
        """Shade a primitive from its normal's z and composite it over what is drawn."""
        nz = np.clip(nz, 0.0, 1.0)[..., None]
        base = np.asarray(material.base, np.float32) if albedo is None else albedo
        colour = base * (0.2 + 0.8 * nz)
        colour = colour + material.reflection * TISSUE_REFLECTION * (1.0 - nz) ** 2 * 0.6
        colour = colour + material.specular * (0.9 * nz**40 + 0.25 * nz**6)
        a = (np.clip(cover, 0.0, 1.0) * material.opacity)[..., None]
        region = window
        self.rgb[region] = self.rgb[region] * (1.0 - a) + colour * a
        self.alpha[region] = self.alpha[region] * (1.0 - a[..., 0]) + a[..., 0]

    def _edge(self, distance_units: np.ndarray) -> np.ndarray:
        """Antialiased coverage from a signed distance inside the shape (units)."""
        return np.clip(distance_units * self.unit + 0.5, 0.0, 1.0)

    def tube(self, p0: Point, p1: Point, r0: float, r1: float, material: Material) -> None:
        """A round rod from ``p0`` (radius ``r0``) to ``p1`` (radius ``r1``), round ends."""
        rmax = max(r0, r1)
        box = self._window(
            min(p0[0], p1[0]) - rmax,
            max(p0[0], p1[0]) + rmax,
            min(p0[1], p1[1]) - rmax,
            max(p0[1], p1[1]) + rmax,
        )
        if box is None:
            return
        window, x, y = box
        dx, dy = p1[0] - p0[0], p1[1] - p0[1]
        length2 = dx * dx + dy * dy + 1e-9
        t = np.clip(((x - p0[0]) * dx + (y - p0[1]) * dy) / length2, 0.0, 1.0)
        ex, ey = x - (p0[0] + t * dx), y - (p0[1] + t * dy)
        dist = np.sqrt(ex * ex + ey * ey)
        radius = r0 + (r1 - r0) * t
        u = np.clip(dist / radius, 0.0, 1.0)
        # The light sits a little off the lens axis, so the highlight stripe is off-centre too.
        side = np.sign(ex * -dy + ey * dx)
        offset = np.clip(u * side - 0.2, -1.0, 1.0)
        self._put(window, self._edge(radius - dist), np.sqrt(1.0 - offset * offset), material)

    def ball(
        self, centre: Point, radius: float, material: Material, grit: float = 0.0, spin: float = 0.0
    ) -> None:
        """A sphere; ``grit`` adds the speckled surface of a diamond burr rotated by ``spin``."""
        box = self._window(
            centre[0] - radius, centre[0] + radius, centre[1] - radius, centre[1] + radius
        )
        if box is None:
            return
        window, x, y = box
        dx, dy = x - centre[0], y - centre[1]
        dist = np.sqrt(dx * dx + dy * dy)
        nz = np.sqrt(np.clip(1.0 - (dist / radius) ** 2, 0.0, 1.0))
        albedo = None
        if grit > 0:
            c, s = np.cos(spin), np.sin(spin)
            speck = np.sin(37.0 * (c * dx + s * dy)) * np.sin(41.0 * (-s * dx + c * dy) + 1.7)
            albedo = (
                np.asarray(material.base, np.float32)
                * (1.0 - grit * 0.5 * (speck > 0.3))[..., None]
            )
        self._put(window, self._edge(radius - dist), nz, material, albedo)

    def ring(self, centre: Point, radii: Point, width: float, material: Material) -> None:
        """An elliptical loop of round wire (a curette ring seen at an angle)."""
        rx, ry = radii
        box = self._window(
            centre[0] - rx - width,
            centre[0] + rx + width,
            centre[1] - ry - width,
            centre[1] + ry + width,
        )
        if box is None:
            return
        window, x, y = box
        dx, dy = (x - centre[0]) / rx, (y - centre[1]) / ry
        rho = np.sqrt(dx * dx + dy * dy) + 1e-6
        scale = np.sqrt((dx * rx) ** 2 + (dy * ry) ** 2) / rho
        dist = np.abs(rho - 1.0) * scale
        nz = np.sqrt(np.clip(1.0 - (dist / width) ** 2, 0.0, 1.0))
        self._put(window, self._edge(width - dist), nz, material)

    def cup(
        self, centre: Point, radii: Point, angle: float, material: Material, hollow: float
    ) -> None:
        """A rounded jaw (cup); ``hollow`` (0..1) shows its dark inside when opened."""
        rx, ry = radii
        extent = max(rx, ry)
        box = self._window(
            centre[0] - extent, centre[0] + extent, centre[1] - extent, centre[1] + extent
        )
        if box is None:
            return
        window, x, y = box
        c, s = np.cos(angle), np.sin(angle)
        u = (c * (x - centre[0]) + s * (y - centre[1])) / rx
        v = (-s * (x - centre[0]) + c * (y - centre[1])) / ry
        rho = np.sqrt(u * u + v * v)
        nz = np.sqrt(np.clip(1.0 - rho * rho, 0.0, 1.0))
        self._put(window, self._edge((1.0 - rho) * min(rx, ry)), nz, material)
        if hollow > 0:
            inner = rho / 0.72
            cover = self._edge((1.0 - inner) * min(rx, ry) * 0.72) * hollow
            self._put(window, cover, 0.35 * (1.0 - np.clip(inner, 0, 1)), DULL_STEEL)

    def plate(self, points: list[Point], material: Material, relief: float = 1.0) -> None:
        """A flat blade or jaw outlined by ``points``, with a bevelled, brighter rim."""
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        box = self._window(min(xs), max(xs), min(ys), max(ys))
        if box is None:
            return
        window, x, _ = box
        rows, cols = window
        u = self.unit
        cx, cy = self.margin * u, self.height / 2
        polygon = np.array(
            [[(px * u + cx - cols.start) * 8, (py * u + cy - rows.start) * 8] for px, py in points],
            np.int32,
        )
        mask = np.zeros(x.shape, np.uint8)
        cv2.fillPoly(mask, [polygon], 255, lineType=cv2.LINE_AA, shift=3)
        inside = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3) / u
        bevel = np.clip(inside / 0.25, 0.0, 1.0)
        # A blade is never quite flat: a gentle curve across it gives a brushed-metal sheen.
        _, y = box[1], box[2]
        centre = 0.5 * (min(ys) + max(ys))
        half = max(1e-3, 0.5 * (max(ys) - min(ys)))
        curve = 1.0 - 0.45 * ((y - centre) / half) ** 2
        nz = (0.5 + 0.5 * curve * relief) * (0.75 + 0.25 * bevel) + 0.1 * (1.0 - bevel)
        self._put(window, mask.astype(np.float32) / 255.0, nz, material)

    def sprite(self) -> Sprite:
        """Downsample, darken towards the tip (further from the light) and pack premultiplied."""
        size = (self.width // SUPERSAMPLE, self.height // SUPERSAMPLE)
        rgb = cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.alpha, size, interpolation=cv2.INTER_AREA)
        along = np.linspace(0.0, 1.0, size[0], dtype=np.float32)
        rgb *= (0.72 + 0.28 * np.clip(along * 2.5, 0.0, 1.0))[None, :, None]
        rgba = np.empty((size[1], size[0], 4), np.uint8)
        rgba[..., :3] = np.clip(rgb * 255.0, 0, 255).astype(np.uint8)
        rgba[..., 3] = np.clip(alpha * 255.0, 0, 255).astype(np.uint8)
        tip = (self.margin * self.unit / SUPERSAMPLE, size[1] / 2)
        return Sprite(rgba, tip)


# ---------------------------------------------------------------- the 18 instruments
# Each painter draws one state; ``a`` is the opening (0 closed .. 1 open) or spin phase.


def _bipolar_forceps(p: Painter, a: float) -> None:
    gap = 0.12 + 0.55 * a
    for side in (-1.0, 1.0):
        p.tube((6.0, side * (gap + 0.35)), (p.length, side * 0.95), 0.3, 0.4, INSULATION)
        p.tube((0.0, side * gap), (6.2, side * (gap + 0.36)), 0.2, 0.3, STEEL)


def _cottle(p: Painter, a: float) -> None:
    del a
    p.tube((7.0, 0.0), (p.length, 0.0), 0.55, 0.6, STEEL)
    p.plate([(0.0, -0.3), (0.5, -0.75), (7.3, -0.6), (7.3, 0.6), (0.5, 0.75), (0.0, 0.3)], STEEL)
    for mark in (2.0, 3.0, 4.0, 5.0):
        p.plate([(mark, -0.45), (mark + 0.1, -0.45), (mark + 0.1, 0.45), (mark, 0.45)], BLACK, 0)


def _cup_forceps(p: Painter, a: float) -> None:
    p.tube((3.2, 0.0), (p.length, 0.0), 0.72, 0.75, STEEL)
    p.cup((1.7, 0.38), (1.7, 0.7), 0.0, STEEL, 0.0)
    hinge = (3.2, 0.0)
    angle = -np.radians(38.0) * a
    centre = _rotate([(1.7, -0.38)], angle, hinge)[0]
    p.cup(centre, (1.7, 0.7), angle, STEEL, a)


def _dural_scissors(p: Painter, a: float) -> None:
    p.tube((4.0, 0.0), (p.length, 0.0), 0.55, 0.6, STEEL)
    hinge = (4.1, 0.0)
    for side in (-1.0, 1.0):
        blade = [(0.0, 0.0), (4.3, side * 0.42), (4.3, -side * 0.12)]
        p.plate(_rotate(blade, side * np.radians(16.0) * a, hinge), STEEL)


def _freer_elevator(p: Painter, a: float) -> None:
    del a
    p.tube((6.5, 0.0), (p.length, 0.0), 0.5, 0.52, STEEL)
    outline = [(0.55 - 0.55 * np.cos(t), 0.55 * np.sin(t)) for t in np.linspace(-1.5, 1.5, 12)]
    p.plate([*outline[6:], (6.6, 0.32), (6.6, -0.32), *outline[:6]], STEEL)


def _haemostatic_foam(p: Painter, a: float) -> None:
    p.tube((1.8, 0.0), (p.length, 0.0), 0.85, 0.9, WHITE_PLASTIC)
    p.tube((2.5, 0.0), (p.length, 0.0), 0.35, 0.35, Material((0.7, 0.62, 0.5), 0.2, 0.1, 0.5))
    lumps = p.rng.uniform(-0.5, 0.5, (12, 2))
    for dx, dy in lumps:
        p.ball((1.0 + dx, dy * (0.8 + 0.6 * a)), float(p.rng.uniform(0.3, 0.6)) + 0.15 * a, FOAM)


def _irrigation_syringe(p: Painter, a: float) -> None:
    p.tube((5.0, 0.0), (p.length, 0.0), 1.25, 1.3, WHITE_PLASTIC)
    p.tube((1.4, 0.0), (5.0, 0.0), 0.35, 1.25, WHITE_PLASTIC)
    p.tube((0.0, 0.0), (1.6, 0.0), 0.28, 0.3, DULL_STEEL)
    p.ball((-0.2 - 0.3 * a, 0.05), 0.22 + 0.15 * a, WATER)


def _kerrisons(p: Painter, a: float) -> None:
    p.tube((0.6, 0.35), (p.length, 0.35), 0.65, 0.7, STEEL)
    p.plate([(0.0, -1.1), (0.8, -1.1), (0.9, 0.9), (0.0, 0.9)], STEEL)
    p.tube((1.0 + 1.6 * a, -0.62), (p.length, -0.62), 0.38, 0.42, DULL_STEEL)


def _micro_doppler(p: Painter, a: float) -> None:
    del a
    bend = (6.0, -0.7)
    p.tube(bend, (p.length, -0.7), 0.42, 0.45, STEEL)
    p.tube((0.3, 0.0), bend, 0.36, 0.42, STEEL)
    p.tube((2.4, -0.28), (3.2, -0.37), 0.44, 0.44, BLACK)
    p.ball((0.3, 0.0), 0.45, STEEL)


def _nasal_cutting_forceps(p: Painter, a: float) -> None:
    p.tube((4.0, 0.0), (p.length, 0.0), 0.85, 0.88, STEEL)
    hinge = (4.1, 0.0)
    for side, angle in ((1.0, 0.0), (-1.0, -np.radians(28.0) * a)):
        jaw = [(0.0, side * 0.1), (0.4, side * 0.85), (4.2, side * 0.85), (4.2, side * 0.05)]
        window = [(1.1, side * 0.3), (1.3, side * 0.65), (3.2, side * 0.65), (3.2, side * 0.3)]
        p.plate(_rotate(jaw, angle, hinge), STEEL)
        p.plate(_rotate(window, angle, hinge), LUMEN, 0)


def _pituitary_rongeurs(p: Painter, a: float) -> None:
    p.tube((4.6, 0.0), (p.length, 0.0), 1.0, 1.0, STEEL)
    hinge = (4.6, 0.0)
    for side, angle in ((1.0, 0.0), (-1.0, -np.radians(40.0) * a)):
        centre = _rotate([(2.2, side * 0.5)], angle, hinge)[0]
        p.cup(centre, (2.3, 0.95), angle, STEEL, a if side < 0 else 0.0)
        teeth = [(0.4 + 0.5 * k, side * 0.05) for k in range(7)]
        for tx, ty in _rotate(teeth, angle, hinge):
            p.ball((tx, ty), 0.14, DULL_STEEL)


def _retractable_knife(p: Painter, a: float) -> None:
    p.tube((1.3, 0.0), (p.length, 0.0), 0.55, 0.6, STEEL)
    p.tube((3.0, 0.0), (4.4, 0.0), 0.58, 0.6, BLACK)
    reach = 0.6 + 0.8 * (1.0 - a)
    p.plate([(1.4 - reach * 1.6, -0.15), (1.5, -0.5), (1.5, 0.25)], STEEL)


def _ring_curette(p: Painter, a: float) -> None:
    del a
    p.tube((2.6, 0.0), (p.length, 0.0), 0.45, 0.5, STEEL)
    p.tube((1.3, -0.9), (2.6, 0.0), 0.33, 0.42, STEEL)
    p.ring((0.3, -1.6), (1.15, 0.8), 0.2, STEEL)


def _spatula_dissector(p: Painter, a: float) -> None:
    del a
    p.tube((2.8, 0.0), (p.length, 0.0), 0.45, 0.5, STEEL)
    p.tube((1.6, 0.7), (2.8, 0.0), 0.3, 0.4, STEEL)
    paddle = [(-0.4, 0.55), (1.7, 0.45), (1.7, 1.05), (-0.4, 1.3)]
    p.plate(_rotate(paddle, -0.35, (1.6, 0.7)), STEEL)


def _stealth_pointer(p: Painter, a: float) -> None:
    del a
    p.tube((8.0, 0.0), (p.length, 0.0), 0.62, 0.65, STEEL)
    p.tube((0.5, 0.0), (8.0, 0.0), 0.3, 0.62, STEEL)
    p.tube((8.4, 0.0), (9.0, 0.0), 0.66, 0.66, BLACK)
    p.ball((0.45, 0.0), 0.48, STEEL)


def _suction(p: Painter, a: float) -> None:
    del a
    bend = (6.0, 0.0)
    p.tube(bend, (p.length, -0.9), 0.82, 0.85, STEEL)
    p.tube((0.3, 0.0), bend, 0.8, 0.82, STEEL)
    p.cup((0.2, 0.0), (0.32, 0.78), 0.0, DULL_STEEL, 0.0)
    p.cup((0.2, 0.0), (0.22, 0.56), 0.0, LUMEN, 0.0)


def _surgical_drill(p: Painter, a: float) -> None:
    p.tube((2.6, 0.0), (p.length, 0.0), 0.95, 1.0, DULL_STEEL)
    p.tube((0.9, 0.0), (2.7, 0.0), 0.3, 0.3, STEEL)
    p.ball((0.9, 0.0), 0.95, BURR, grit=1.0, spin=a * 2.1)


def _tissue_glue(p: Painter, a: float) -> None:
    p.tube((2.6, 0.0), (p.length, 0.0), 0.72, 0.75, BLUE_PLASTIC)
    p.tube((0.2, 0.0), (2.6, 0.0), 0.18, 0.72, CLEAR_PLASTIC)
    p.ball((-0.1 - 0.2 * a, 0.0), 0.25 + 0.12 * a, GLUE)


INSTRUMENT_PAINTERS: dict[int, Callable[[Painter, float], None]] = {
    1: _bipolar_forceps,
    2: _cottle,
    3: _cup_forceps,
    4: _dural_scissors,
    5: _freer_elevator,
    6: _haemostatic_foam,
    7: _irrigation_syringe,
    8: _kerrisons,
    9: _micro_doppler,
    10: _nasal_cutting_forceps,
    11: _pituitary_rongeurs,
    12: _retractable_knife,
    13: _ring_curette,
    14: _spatula_dissector,
    15: _stealth_pointer,
    16: _suction,
    17: _surgical_drill,
    18: _tissue_glue,
}

SHAFT_RADIUS = 0.06
"""Shaft radius as a fraction of the field-of-view radius, at scale 1."""

SPRITE_LENGTH = 2.6
"""Sprite length (tip to tail) in field-of-view radii, at scale 1."""


def draw_instrument(code: int, variant: int, view_radius: float, seed: int) -> Sprite:
    """Draw state ``variant`` (0..VARIANTS-1) of instrument ``code`` for a view of this radius."""
    radius_px = max(1.0, SHAFT_RADIUS * view_radius)
    length = SPRITE_LENGTH / SHAFT_RADIUS
    painter = Painter(length, 3.2, radius_px, seed)
    INSTRUMENT_PAINTERS[code](painter, variant / (VARIANTS - 1))
    return painter.sprite()
