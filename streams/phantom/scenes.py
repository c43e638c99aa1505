"""Per-step scene textures of the phantom: anatomy painted once per case, warped per frame.

A scene is a square texture larger than the field of view, holding what the per-frame shader
needs: albedo and fine bump height (``surface``) and gloss, illumination from the distance to
the endoscope, and the large-scale surface slope (``light``). Each PitVis step gets its own
anatomy and materials (nasal corridor with turbinates, bony sphenoid, bluish dura at the sella,
yellowish tumour, blood, graft sheet, fat, sealant, packing); out-of-patient scenes show the
operating room. Beside its look, a scene holds an anatomy label texture: the sella (the bony
sellar floor and its opened window) where it is in sight, cleared where an opaque material
(blood, tumour, graft, fat, a cut) is later laid over it. Coordinates are normalised to
[-1, 1] across the texture; at zoom 1 the field of view covers a circle of radius
:data:`VIEW_RADIUS` around the camera's point of interest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from orstream.labels import ANATOMY
from orstream.streams.phantom.difficulty import Difficulty
from orstream.streams.phantom.noise import (
    blobs,
    ellipse_distance,
    fbm,
    grid_coords,
    ridges,
    smoothstep,
)

VIEW_RADIUS = 0.6
"""Radius of the field of view in normalised texture units at zoom 1."""

TEXTURE_PER_RADIUS = 2.0 / VIEW_RADIUS
"""Texture side in pixels per pixel of field-of-view radius (texels match pixels at zoom 1)."""

SELLA = {name: code for code, name in ANATOMY.items()}["sella"]
"""Segmentation code of the sella in a scene's anatomy texture."""

COVERED = 0.5
"""Opacity above which a laid material sets (or clears) the anatomy label beneath it."""

RGB = tuple[float, float, float]
Material = tuple[np.ndarray, np.ndarray, np.ndarray | float]
"""Colour (T, T, 3), fine bump height (T, T) and gloss of a surface, all 0..1."""


@dataclass(frozen=True)
class Look:
    """Shading constants of a scene (see :func:`orstream.streams.phantom.kernels.shade_tissue`)."""

    bump: float = 1.0
    specular: float = 1.6
    sharpness: float = 40.0
    diffuse: float = 0.3
    vignette: float = 0.4
    exposure: float = 1.4


@dataclass
class Scene:
    """Textures of one scene, ready to be warped by the camera.

    Attributes:
        name: ``step_NN`` or an out-of-patient scene name.
        surface: (T, T, 4) uint8: albedo R, G, B and fine bump height.
        light: (T, T, 4) uint8: gloss, illumination, slope x and slope y (128 = facing the camera).
        look: shading constants.
        anatomy: (T, T) uint8: anatomy code of each texel (:data:`SELLA`), 0 = none.
    """

    name: str
    surface: np.ndarray
    light: np.ndarray
    look: Look
    anatomy: np.ndarray
    has_anatomy: bool = field(init=False)

    def __post_init__(self) -> None:
        # Known once per scene, so frames of scenes without anatomy skip the label warp.
        self.has_anatomy = bool(self.anatomy.any())


@dataclass(frozen=True)
class CaseStyle:
    """Anatomy and colour shared by every scene of one case."""

    white_balance: RGB
    tone: float
    side: int
    sella: tuple[float, float]
    drape: RGB


def make_case_style(rng: np.random.Generator, difficulty: Difficulty) -> CaseStyle:
    """Draw the colour cast, tissue tone and anatomy layout of a case."""
    jitter = difficulty.colour_jitter
    # Endoscope cameras are balanced so tissue looks warm: a cast may vary, but never to green.
    balance = np.clip(np.array([1.04, 0.99, 0.97]) + rng.normal(0.0, jitter, 3), 0.75, 1.25)
    balance[1] = min(balance[1], balance[0] - 0.02)
    balance /= balance.mean()
    drapes: list[RGB] = [(0.22, 0.42, 0.62), (0.25, 0.52, 0.5), (0.3, 0.45, 0.72)]
    return CaseStyle(
        white_balance=(float(balance[0]), float(balance[1]), float(balance[2])),
        tone=float(np.clip(rng.normal(0.5, 0.12 + jitter), 0.1, 0.9)),
        side=int(rng.choice([-1, 1])),
        sella=(float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.08, 0.08))),
        drape=drapes[int(rng.integers(len(drapes)))],
    )


def _rgb(value: RGB) -> np.ndarray:
    return np.asarray(value, np.float32)


class Canvas:
    """Float maps a scene is painted on before it is quantised into a :class:`Scene`."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.x, self.y = grid_coords(size)
        self.colour: np.ndarray = np.zeros((size, size, 3), np.float32)
        self.bump: np.ndarray = np.full((size, size), 0.5, np.float32)
        self.gloss: np.ndarray = np.zeros((size, size), np.float32)
        self.depth: np.ndarray = np.ones((size, size), np.float32)
        self.anatomy: np.ndarray = np.zeros((size, size), np.uint8)
        self._materials: dict[tuple[object, ...], Material] = {}

    def material(self, paint: Callable[..., Material], *args: object) -> Material:
        """A material painted once per canvas and reused wherever it is laid again."""
        key = (paint.__name__, *args)
        if key not in self._materials:
            self._materials[key] = paint(self, *args)
        return self._materials[key]

    def noise(self, cells: float, octaves: int = 5, persistence: float = 0.5) -> np.ndarray:
        """Fractal noise over the whole canvas (unit standard deviation)."""
        return fbm(self.rng, (self.size, self.size), cells, octaves, persistence)

    def streaks(self, cells: float, stretch: float, angle: float) -> np.ndarray:
        """Anisotropic noise (fibres, flow lines) stretched along ``angle``."""
        long_side = int(self.size * 1.5)
        short_side = max(4, int(long_side / stretch))
        field = fbm(self.rng, (short_side, long_side), cells, octaves=4)
        field = cv2.resize(field, (long_side, long_side), interpolation=cv2.INTER_LINEAR)
        centre = (long_side / 2, long_side / 2)
        rotation: np.ndarray = cv2.getRotationMatrix2D(centre, float(np.degrees(angle)), 1.0)
        rotation[:, 2] -= (long_side - self.size) / 2
        return cv2.warpAffine(field, rotation, (self.size, self.size), flags=cv2.INTER_LINEAR)

    def region(
        self,
        centre: tuple[float, float],
        radii: tuple[float, float],
        angle: float = 0.0,
        wobble: float = 0.15,
        soft: float = 0.06,
    ) -> np.ndarray:
        """Soft-edged irregular ellipse mask (0..1)."""
        d = ellipse_distance(self.x, self.y, centre, radii, angle)
        if wobble > 0:
            d = d + wobble * self.noise(6, octaves=4, persistence=0.6)
        return 1.0 - smoothstep(1.0 - soft, 1.0 + soft, d)

    def box(
        self, centre: tuple[float, float], half: tuple[float, float], soft: float = 0.02
    ) -> np.ndarray:
        """Soft-edged axis-aligned rectangle mask (0..1)."""
        d = np.maximum(np.abs(self.x - centre[0]) - half[0], np.abs(self.y - centre[1]) - half[1])
        return 1.0 - smoothstep(-soft, soft, d)

    def lay(
        self,
        mask: np.ndarray,
        colour: np.ndarray,
        bump: np.ndarray | float,
        gloss: np.ndarray | float,
        anatomy: int | None = 0,
    ) -> None:
        """Paint a material where ``mask`` is set (alpha blend of every map).

        Args:
            mask: opacity of the material, 0..1.
            colour: albedo, (T, T, 3) or RGB.
            bump: fine bump height.
            gloss: gloss.
            anatomy: anatomy code the material shows where it covers what lies beneath
                (opacity above :data:`COVERED`): 0 for a material that hides the anatomy, or
                None for one that keeps the label beneath (a thin deposit or lining).
        """
        m = mask[..., None]
        self.colour += (colour - self.colour) * m
        self.bump += (bump - self.bump) * mask
        self.gloss += (gloss - self.gloss) * mask
        if anatomy is not None:
            self.anatomy[mask > COVERED] = anatomy

    def cavity(
        self,
        centre: tuple[float, float],
        radii: tuple[float, float],
        depth: float,
        angle: float = 0.0,
    ) -> None:
        """Push the surface away from the endoscope: a dark opening or recess."""
        d = ellipse_distance(self.x, self.y, centre, radii, angle)
        self.depth += depth * np.exp(-2.0 * d * d)

    def dome(
        self,
        centre: tuple[float, float],
        radii: tuple[float, float],
        height: float,
        angle: float = 0.0,
    ) -> np.ndarray:
        """Bring a rounded structure towards the endoscope; returns its footprint (0..1)."""
        d = ellipse_distance(self.x, self.y, centre, radii, angle)
        shape = np.clip(1.0 - d * d, 0.0, 1.0)
        shape = (shape * (2.0 - shape)).astype(np.float32)
        self.depth -= height * shape
        return smoothstep(0.0, 0.5, shape)

    def corridor(
        self, centre: tuple[float, float], radii: tuple[float, float], depth: float, near: float
    ) -> None:
        """The overall funnel of an endoscopic view: near walls around, depth ahead."""
        d = ellipse_distance(self.x, self.y, centre, radii)
        self.depth = self.depth - near * np.clip(d - 0.6, 0.0, None) + depth * np.exp(-d * d)

    def finish(self, name: str, style: CaseStyle, look: Look) -> Scene:
        """Quantise the maps into the uint8 textures the renderer warps."""
        occlusion = np.clip(0.7 + 0.6 * self.bump, 0.5, 1.15)[..., None]
        balance = _rgb(style.white_balance)
        colour = np.clip(self.colour * occlusion * balance, 0.0, 1.0)
        # Low-frequency unevenness breaks perfectly concentric highlights of ideal shapes.
        depth = self.depth * (1.0 + 0.06 * self.noise(3, 3))
        depth = np.maximum(cv2.GaussianBlur(depth, (0, 0), max(1.0, self.size / 300)), 0.35)
        grad_y, grad_x = (np.asarray(g) for g in np.gradient(depth, 2.0 / self.size))
        illumination = np.clip(1.0 / (depth * depth), 0.0, 1.3) / 1.3
        surface = np.empty((self.size, self.size, 4), np.uint8)
        surface[..., :3] = (colour * 255.0 + 0.5).astype(np.uint8)
        surface[..., 3] = (np.clip(self.bump, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        light = np.empty((self.size, self.size, 4), np.uint8)
        light[..., 0] = (np.clip(self.gloss, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        light[..., 1] = (illumination * 255.0 + 0.5).astype(np.uint8)
        light[..., 2] = (128.0 + 127.0 * np.clip(-grad_x * 0.5, -1.0, 1.0)).astype(np.uint8)
        light[..., 3] = (128.0 + 127.0 * np.clip(-grad_y * 0.5, -1.0, 1.0)).astype(np.uint8)
        return Scene(name, surface, light, look, self.anatomy)


# ---------------------------------------------------------------- materials


def mucosa(cv: Canvas, tone: float, vessels: float = 1.0) -> Material:
    """Moist pink-white to red mucosa with branching vessels and fine wet bumps."""
    low = cv.noise(4, 3)
    pale, red = _rgb((0.95, 0.7, 0.68)), _rgb((0.8, 0.32, 0.32))
    t = np.clip(0.5 + 0.22 * low + (tone - 0.5), 0.0, 1.0)[..., None]
    colour = pale + (red - pale) * t
    colour *= (1.0 + 0.05 * cv.noise(24, 3))[..., None]
    shape = (cv.size, cv.size)
    veins = ridges(cv.rng, shape, 3, 0.05) * smoothstep(-0.5, 0.8, cv.noise(3, 2))
    veins += 0.7 * ridges(cv.rng, shape, 8, 0.03) * smoothstep(0.0, 1.0, cv.noise(4, 2))
    # Vessels lie under a wet, translucent surface: soften them a little.
    veins = cv2.GaussianBlur(np.clip(veins * vessels, 0.0, 1.0), (0, 0), max(0.5, cv.size / 900))
    colour = colour + (_rgb((0.62, 0.12, 0.16)) - colour) * (0.4 * veins[..., None])
    bump = 0.5 + 0.05 * cv.noise(110, 2) + 0.2 * cv.noise(16, 3, 0.45)
    gloss = np.clip(0.75 + 0.25 * cv.noise(8, 2), 0.3, 1.0)
    return colour, bump, gloss


def bone(cv: Canvas) -> Material:
    """Ivory bone with pores, yellowish patches and pinpoint bleeding."""
    low = cv.noise(5, 3)[..., None]
    colour = _rgb((0.98, 0.81, 0.72)) + _rgb((0.0, -0.03, -0.09)) * np.clip(low, 0, None)
    colour = colour + _rgb((0.0, -0.1, -0.07)) * np.clip(-low, 0, None)
    pores = smoothstep(1.9, 2.7, cv.noise(170, 1))[..., None]
    colour = colour + (_rgb((0.8, 0.58, 0.52)) - colour) * (0.5 * pores)
    bleed = smoothstep(2.5, 3.0, cv.noise(60, 2))[..., None]
    colour = colour + (_rgb((0.72, 0.2, 0.16)) - colour) * bleed
    bump = 0.5 + 0.12 * cv.noise(50, 3, 0.55) - 0.15 * pores[..., 0]
    return colour, bump, 0.25


def dura(cv: Canvas) -> Material:
    """Bluish-grey fibrous dura with fine purple vessels."""
    fibres = cv.streaks(30, 6.0, float(cv.rng.uniform(0, np.pi)))[..., None]
    low = cv.noise(5, 3)[..., None]
    colour = _rgb((0.6, 0.6, 0.74)) + 0.05 * low * _rgb((1.0, 0.6, 0.2)) + 0.03 * fibres
    veins = np.clip(ridges(cv.rng, (cv.size, cv.size), 6, 0.035), 0.0, 1.0)[..., None]
    colour = colour + (_rgb((0.5, 0.25, 0.38)) - colour) * (0.6 * veins)
    bump = 0.5 + 0.06 * fibres[..., 0] + 0.06 * cv.noise(60, 2)
    return colour, bump, 0.6


def tumour(cv: Canvas) -> Material:
    """Soft, lumpy adenoma: greyish-tan with yellowish and purplish patches."""
    low = cv.noise(7, 3)[..., None]
    colour = _rgb((0.84, 0.7, 0.56)) + _rgb((0.04, 0.04, -0.1)) * np.clip(low, 0, None)
    colour = colour + _rgb((-0.08, -0.12, 0.0)) * np.clip(-low, 0, None)
    lumps = cv.noise(28, 3)
    bump = 0.5 + 0.22 * lumps + 0.06 * cv.noise(100, 2)
    return colour * (1.0 + 0.06 * lumps[..., None]), bump, 0.7


def blood(cv: Canvas) -> Material:
    """Glossy fresh and darker pooled blood."""
    t = smoothstep(-0.8, 0.8, cv.noise(6, 3))[..., None]
    fresh, pooled = _rgb((0.52, 0.04, 0.05)), _rgb((0.22, 0.015, 0.02))
    colour = (fresh + (pooled - fresh) * t) * (1.0 + 0.08 * cv.noise(40, 2))[..., None]
    bump = 0.5 + 0.05 * cv.noise(12, 2) + 0.02 * cv.noise(80, 2)
    return colour, bump, 1.0


def clot(cv: Canvas) -> Material:
    """Dark maroon clotted blood, lumpy and less shiny."""
    lumps = cv.noise(40, 3)
    colour = _rgb((0.3, 0.05, 0.05)) * (1.0 + 0.25 * lumps[..., None])
    return colour, 0.5 + 0.25 * lumps, 0.55


def fat(cv: Canvas, centre: tuple[float, float], spread: float, count: int) -> Material:
    """Bright yellow fat lobules, each a glossy dome, with reddish septa between them."""
    lobes = blobs(cv.rng, cv.size, count, centre, spread, (0.04, 0.09))
    tone = cv.noise(10, 2)[..., None]
    colour = _rgb((0.95, 0.78, 0.4)) + 0.04 * tone
    septa = (1.0 - smoothstep(0.0, 0.35, lobes))[..., None]
    colour = colour + (_rgb((0.78, 0.4, 0.28)) - colour) * septa
    return colour, 0.25 + 0.6 * lobes, 0.95


def sheet(cv: Canvas) -> Material:
    """White synthetic dural graft: fibrous, gently wrinkled, matte."""
    fibres = cv.streaks(50, 8.0, float(cv.rng.uniform(0, np.pi)))
    colour = _rgb((0.88, 0.85, 0.78)) + 0.025 * fibres[..., None]
    bump = 0.55 + 0.05 * fibres + 0.12 * cv.noise(5, 2)
    return colour, bump, 0.3


def plate(cv: Canvas) -> Material:
    """Rigid porous polyethylene gasket plate: flat, light grey, fine regular pores."""
    pores = smoothstep(1.2, 1.9, cv.noise(160, 1))
    colour = _rgb((0.74, 0.78, 0.86)) - 0.2 * pores[..., None]
    return colour, 0.6 - 0.15 * pores, 0.35


def packing(cv: Canvas) -> Material:
    """White nasal packing sponge: porous, with faint blood staining."""
    pores = smoothstep(1.2, 2.2, cv.noise(160, 2))[..., None]
    stain = smoothstep(0.6, 1.8, cv.noise(5, 3))[..., None]
    colour = _rgb((0.88, 0.88, 0.85)) - 0.12 * pores
    colour = colour + (_rgb((0.86, 0.55, 0.55)) - colour) * (0.6 * stain)
    return colour, 0.55 + 0.2 * cv.noise(90, 2) - 0.2 * pores[..., 0], 0.12


# ---------------------------------------------------------------- step anatomy


def _ragged(cv: Canvas, lumps: np.ndarray) -> np.ndarray:
    """Irregular mask from a lobule field: torn edges instead of perfect discs."""
    return smoothstep(0.15, 0.45, lumps + 0.3 * cv.noise(25, 3))


def _splotches(cv: Canvas, centre: tuple[float, float], spread: float, level: float) -> np.ndarray:
    """Irregular patches (clots, debris) scattered around ``centre``; fewer as ``level`` rises."""
    field = cv.noise(9, 4, 0.55) + 0.6 * cv.noise(30, 2)
    near = cv.region(centre, (spread, spread), wobble=0.3, soft=0.5)
    return smoothstep(level, level + 0.3, field) * near


def _jitter(cv: Canvas, spread: float) -> tuple[float, float]:
    return float(cv.rng.normal(0.0, spread)), float(cv.rng.normal(0.0, spread))


def _nasal(cv: Canvas, style: CaseStyle, turbinates: float) -> None:
    """Nasal corridor: red mucosa, a dark slit ahead, turbinates on the lateral side."""
    cv.lay(np.ones_like(cv.x), *cv.material(mucosa, min(1.0, style.tone + 0.12)))
    ox, oy = _jitter(cv, 0.05)
    cv.corridor((ox, oy), (0.5, 0.6), 0.3, 0.6)
    cv.cavity((ox - 0.05 * style.side, oy), (0.11, 0.5), 2.6, angle=float(cv.rng.normal(0, 0.15)))
    for k in range(3):
        cy = -0.45 + 0.45 * k + cv.rng.normal(0, 0.05)
        cx = style.side * (0.3 + cv.rng.uniform(0.0, 0.12))
        radii = (0.18 + 0.06 * cv.rng.random(), 0.24 + 0.08 * cv.rng.random())
        footprint = cv.dome((cx, cy), radii, 0.35 * turbinates, angle=float(cv.rng.normal(0, 0.3)))
        colour, bump, gloss = cv.material(mucosa, min(1.0, style.tone + 0.25), 1.3)
        cv.lay(footprint * turbinates, colour, bump, gloss)
    septum = cv.region((-style.side * 0.42, 0.0), (0.25, 0.9), wobble=0.1)
    colour, bump, gloss = cv.material(mucosa, max(0.0, style.tone - 0.25), 0.6)
    cv.lay(septum, colour, bump, gloss)


def _sinus(cv: Canvas, style: CaseStyle, mucosa_left: float) -> None:
    """Sphenoid sinus: a bony cavity with septations, torn mucosa and dark recesses."""
    cv.lay(np.ones_like(cv.x), *cv.material(bone))
    patches = smoothstep(0.0, 0.6, cv.noise(3, 4) + (mucosa_left - 0.5) * 2.0)
    cv.lay(patches, *cv.material(mucosa, min(1.0, style.tone + 0.2)))
    cv.corridor(style.sella, (0.55, 0.55), 0.15, 0.5)
    for _ in range(3):
        angle = cv.rng.uniform(0, 2 * np.pi)
        centre = (0.55 * np.cos(angle), 0.55 * np.sin(angle))
        cv.cavity(centre, (0.12, 0.16), 1.6, angle=float(angle))


def _sella(cv: Canvas, style: CaseStyle, window: float) -> np.ndarray:
    """Sellar floor: a bony dome ahead; returns the mask of its opened window."""
    _sinus(cv, style, 0.35)
    sx, sy = style.sella
    cv.dome((sx, sy), (0.5, 0.42), 0.2)
    floor = cv.region((sx, sy), (0.4, 0.34), wobble=0.3, soft=0.3)
    cv.lay(floor, *cv.material(bone), anatomy=SELLA)
    if window <= 0:
        return np.zeros_like(cv.x)
    opening = cv.region((sx, sy), (0.3 * window, 0.24 * window), wobble=0.15)
    edge = cv.region((sx, sy), (0.34 * window, 0.28 * window), wobble=0.15)
    cv.lay(edge * (1.0 - opening), *cv.material(bone), anatomy=SELLA)
    cv.bump += 0.15 * edge * (1.0 - opening)
    cv.lay(opening, *cv.material(dura), anatomy=SELLA)
    return opening


def _clutter(cv: Canvas, style: CaseStyle, amount: float) -> None:
    """Features of neighbouring steps that make recognition harder."""
    if amount <= 0:
        return
    for _ in range(int(cv.rng.poisson(2.5 * amount))):
        centre = _jitter(cv, 0.35)
        radii = (cv.rng.uniform(0.05, 0.16), cv.rng.uniform(0.05, 0.16))
        mask = cv.region(centre, radii, wobble=0.3) * smoothstep(-0.3, 0.6, cv.noise(12, 3))
        kind = int(cv.rng.integers(4))
        material = (
            cv.material(mucosa, style.tone) if kind == 3 else cv.material((blood, clot, bone)[kind])
        )
        # Bone chips and mucosa scraps lie on bone like the sinus lining; blood and clot hide it.
        anatomy = 0 if kind < 2 else None
        cv.lay(mask * cv.rng.uniform(0.4, 0.8), *material, anatomy=anatomy)


def _step_01(cv: Canvas, style: CaseStyle, s: float) -> None:
    _nasal(cv, style, turbinates=0.6 + 0.4 * s)


def _step_02(cv: Canvas, style: CaseStyle, s: float) -> None:
    _nasal(cv, style, turbinates=0.5)
    cx, cy = style.sella[0] * 0.5, style.sella[1] * 0.5
    face = cv.region((cx, cy), (0.38 * s + 0.08, 0.32 * s + 0.08), wobble=0.25)
    cv.depth = cv.depth * (1.0 - face) + (1.15 + 0.1 * cv.noise(4, 2)) * face
    cv.lay(face, *cv.material(bone))
    for k in range(2):
        ostium = (cx + (k - 0.5) * 0.28 + cv.rng.normal(0, 0.03), cy + cv.rng.normal(0, 0.05))
        cv.cavity(ostium, (0.06 + 0.05 * s, 0.09 + 0.05 * s), 2.2)
    pits = blobs(cv.rng, cv.size, 14, (cx, cy), 0.15, (0.02, 0.05))
    cv.bump -= 0.3 * pits * face
    cv.lay(smoothstep(1.6, 2.3, cv.noise(12, 2)) * face, *cv.material(blood))


def _step_03(cv: Canvas, style: CaseStyle, s: float) -> None:
    _nasal(cv, style, turbinates=0.4)
    # The septum sits on the medial side, beside (not over) the dark corridor ahead.
    x = -style.side * 0.36
    plate_mask = cv.region((x, 0.0), (0.14 + 0.12 * s, 0.9), angle=0.1 * style.side, wobble=0.1)
    cv.depth = cv.depth * (1.0 - plate_mask) + 0.85 * plate_mask
    colour, bump, _ = cv.material(mucosa, 0.0, 0.3)
    # Bare septal cartilage: bluish white where the mucosa has been lifted off it.
    cartilage = colour * 0.3 + _rgb((0.9, 0.88, 0.92)) * 0.7
    cv.lay(plate_mask, cartilage, bump * 0.5 + 0.25, 0.6)
    crack = cv.region((x, 0.0), (0.012, 0.7), angle=0.1 * style.side, wobble=0.015)
    cv.lay(crack * plate_mask * s, _rgb((0.5, 0.14, 0.14)), 0.2, 0.9)
    edge = (x + style.side * (0.15 + 0.12 * s), 0.1)
    flap = cv.region(edge, (0.05, 0.6), wobble=0.2)
    cv.dome(edge, (0.05, 0.6), 0.08)
    cv.lay(0.8 * flap, *cv.material(mucosa, 0.75, 1.2))


def _step_04(cv: Canvas, style: CaseStyle, s: float) -> None:
    _sinus(cv, style, 0.55 - 0.3 * s)
    sx, sy = style.sella
    cv.dome((sx, sy), (0.38, 0.32), 0.12)
    # The sellar floor bulges into the sinus, still under its lining: the sella up to the rim.
    cv.anatomy[ellipse_distance(cv.x, cv.y, (sx, sy), (0.38, 0.32)) < 1.0] = SELLA


def _step_05(cv: Canvas, style: CaseStyle, s: float) -> None:
    _sella(cv, style, 0.35 + 0.3 * s)
    area = cv.region(style.sella, (0.5, 0.45), wobble=0.2)
    pits = blobs(cv.rng, cv.size, 20, style.sella, 0.2, (0.02, 0.05))
    cv.bump -= 0.35 * pits * area
    dust = smoothstep(1.6, 2.3, cv.noise(70, 2)) * area
    # Bone dust on the sellar floor leaves it the sella.
    cv.lay(np.clip(dust + 0.5 * pits * s, 0, 1), _rgb((0.98, 0.96, 0.92)), 0.75, 0.1, anatomy=None)


def _step_06(cv: Canvas, style: CaseStyle, s: float) -> None:
    _sella(cv, style, 0.9)
    pool = smoothstep(-0.2 - 0.6 * s, 0.3 - 0.6 * s, cv.noise(3, 4) + 0.6 * cv.y)
    cv.lay(pool, *cv.material(blood))
    cv.lay(_splotches(cv, style.sella, 0.45, 0.8) * s, *cv.material(clot))


def _reconstruction_base(cv: Canvas, style: CaseStyle) -> np.ndarray:
    """Sella after the tumour is out: an opened window with a dark defect behind it."""
    opening = _sella(cv, style, 1.0)
    cv.cavity(style.sella, (0.18, 0.15), 1.5)
    cv.lay(opening * smoothstep(0.3, 1.0, cv.noise(4, 2) + 0.5), *cv.material(tumour))
    return opening


def _step_07(cv: Canvas, style: CaseStyle, s: float) -> None:
    _reconstruction_base(cv, style)
    sx, sy = style.sella
    graft = cv.region(
        (sx + 0.04, sy),
        (0.25 + 0.12 * s, 0.2 + 0.1 * s),
        angle=float(cv.rng.uniform(0, np.pi)),
        wobble=0.06,
        soft=0.03,
    )
    cv.depth = cv.depth * (1.0 - graft) + (1.05 + 0.08 * cv.noise(3, 2)) * graft
    cv.lay(graft, *cv.material(sheet))


def _step_08(cv: Canvas, style: CaseStyle, s: float) -> None:
    _sella(cv, style, 1.1 + 0.3 * s)
    sx, sy = style.sella
    cut_angle = float(cv.rng.uniform(0, np.pi))
    lengths = (0.2 * s + 0.06, float(cv.rng.uniform(0.0, 0.12)) * s)
    for angle, length in zip((cut_angle, cut_angle + np.pi / 2), lengths, strict=True):
        if length <= 0.01:
            continue
        gape = cv.region((sx, sy), (length, 0.03 + 0.02 * s), angle=angle, wobble=0.04)
        cv.lay(gape, *cv.material(tumour))
        cut = cv.region((sx, sy), (length, 0.01 + 0.006 * s), angle=angle, wobble=0.02)
        cv.lay(cut, _rgb((0.4, 0.16, 0.12)), 0.25, 0.8)
        cv.cavity((sx, sy), (length, 0.025), 0.4, angle=angle)


def _step_09(cv: Canvas, style: CaseStyle, s: float) -> None:
    opening = _sella(cv, style, 1.0)
    sx, sy = style.sella
    cv.lay(
        opening * cv.region((sx, sy), (0.22 + 0.1 * s, 0.18 + 0.08 * s), wobble=0.2),
        *cv.material(tumour),
    )
    cv.cavity((sx + 0.03, sy), (0.1 + 0.06 * s, 0.09 + 0.05 * s), 2.8)
    lumps = blobs(cv.rng, cv.size, 14, (sx, sy), 0.12, (0.03, 0.08))
    colour, bump, gloss = cv.material(tumour)
    cv.lay(_ragged(cv, lumps) * opening, colour, bump + 0.08 * lumps, gloss)
    cv.lay(smoothstep(1.5, 2.2, cv.noise(8, 3)) * opening, *cv.material(blood))


def _step_10(cv: Canvas, style: CaseStyle, s: float) -> None:
    _reconstruction_base(cv, style)
    sx, sy = style.sella
    colour, bump, gloss = cv.material(fat, (sx, sy), 0.08 + 0.06 * s, int(30 + 50 * s))
    mask = smoothstep(0.27, 0.32, bump)
    cv.depth -= 0.25 * (bump - 0.25) * mask
    cv.lay(mask, colour, bump, gloss)


def _step_11(cv: Canvas, style: CaseStyle, s: float) -> None:
    _reconstruction_base(cv, style)
    sx, sy = style.sella
    angle = float(cv.rng.uniform(0, np.pi))
    under = cv.region((sx, sy), (0.34, 0.27), angle=angle, wobble=0.08, soft=0.03)
    cv.lay(under, *cv.material(sheet))
    gasket = cv.region(
        (sx, sy), (0.2 + 0.08 * s, 0.15 + 0.06 * s), angle=angle, wobble=0.0, soft=0.015
    )
    cv.depth = cv.depth * (1.0 - gasket) + 0.98 * gasket
    cv.lay(gasket, *cv.material(plate))


def _step_12(cv: Canvas, style: CaseStyle, s: float) -> None:
    _step_07(cv, style, 0.8)
    sx, sy = style.sella
    film = cv.region((sx, sy), (0.35 + 0.15 * s, 0.3 + 0.12 * s), wobble=0.25)
    cv.colour = (
        cv.colour + (cv.colour * _rgb((0.86, 0.95, 1.08)) + 0.03 - cv.colour) * film[..., None]
    )
    bubbles = blobs(cv.rng, cv.size, int(40 * s) + 5, (sx, sy), 0.18, (0.008, 0.025))
    cv.bump = cv.bump * (1.0 - 0.7 * film) + (0.5 * 0.7 + 0.4 * bubbles) * film
    cv.gloss = cv.gloss * (1.0 - film) + film
    flow = cv.streaks(15, 5.0, float(cv.rng.uniform(0, np.pi)))
    cv.bump += 0.05 * flow * film


def _step_13(cv: Canvas, style: CaseStyle, s: float) -> None:
    _nasal(cv, style, turbinates=0.7)
    for k in range(2):
        centre = (
            -style.side * 0.05 + (k - 0.5) * 0.22 + cv.rng.normal(0, 0.03),
            cv.rng.normal(0, 0.08),
        )
        pack = cv.region(
            centre,
            (0.1 + 0.06 * s, 0.45 + 0.2 * s),
            angle=float(cv.rng.normal(0, 0.2)),
            wobble=0.06,
            soft=0.04,
        )
        cv.depth = cv.depth * (1.0 - pack) + 0.95 * pack
        cv.lay(pack, *cv.material(packing))


def _step_14(cv: Canvas, style: CaseStyle, s: float) -> None:
    _nasal(cv, style, turbinates=0.5)
    cv.lay(_splotches(cv, (0.0, 0.1), 0.6, 1.1 - 0.3 * s), *cv.material(clot))
    chips = blobs(cv.rng, cv.size, 4, (0.0, 0.0), 0.3, (0.012, 0.03))
    cv.lay(_ragged(cv, chips), *cv.material(bone))
    fluid = smoothstep(0.8 - 0.5 * s, 1.6 - 0.5 * s, cv.noise(3, 3))
    colour = cv.colour * 0.85 + _rgb((0.08, 0.0, 0.0))
    cv.lay(fluid * 0.7, colour, 0.5, 1.0)


STEP_PAINTERS: dict[int, Callable[[Canvas, CaseStyle, float], None]] = {
    1: _step_01,
    2: _step_02,
    3: _step_03,
    4: _step_04,
    5: _step_05,
    6: _step_06,
    7: _step_07,
    8: _step_08,
    9: _step_09,
    10: _step_10,
    11: _step_11,
    12: _step_12,
    13: _step_13,
    14: _step_14,
}


# ---------------------------------------------------------------- outside the patient


def _room(cv: Canvas, style: CaseStyle) -> None:
    """Operating room seen through an unfocused endoscope: walls, lamps, drapes, a monitor."""
    horizon = float(cv.rng.uniform(-0.2, 0.1))
    wall = _rgb((0.72, 0.78, 0.74)) + 0.03 * cv.noise(3, 2)[..., None]
    wall = wall * (1.0 - 0.25 * smoothstep(-1.0, horizon, cv.y))[..., None]
    cv.lay(np.ones_like(cv.x), wall, 0.5, 0.0)
    folds = np.sin((cv.x * 9.0 + 1.5 * cv.noise(2, 2)) * (1.0 + 0.3 * cv.rng.random()))
    drape_mask = smoothstep(horizon - 0.03, horizon + 0.03, cv.y + 0.08 * cv.noise(2, 2))
    drape = _rgb(style.drape) * (0.8 + 0.2 * folds)[..., None]
    cv.lay(drape_mask, drape, 0.5 + 0.1 * folds, 0.0)
    cv.depth = 1.0 - 0.15 * folds * drape_mask
    mx, my = float(cv.rng.uniform(-0.5, 0.5)), horizon - 0.3
    cv.lay(cv.box((mx, my), (0.24, 0.15)), _rgb((0.07, 0.07, 0.08)), 0.5, 0.0)
    cv.lay(cv.box((mx, my), (0.21, 0.125)), _rgb((0.12, 0.1, 0.1)), 0.5, 0.0)
    view = cv.region((mx, my), (0.1, 0.1), wobble=0.0, soft=0.1)
    cv.lay(view, _rgb((0.9, 0.5, 0.48)), 0.5, 0.0)
    for _ in range(int(cv.rng.integers(1, 3))):
        centre = (float(cv.rng.uniform(-0.5, 0.5)), float(cv.rng.uniform(-0.6, horizon - 0.25)))
        cv.lay(
            cv.box((centre[0] + 0.3, centre[1] - 0.02), (0.3, 0.02)),
            _rgb((0.6, 0.62, 0.64)),
            0.5,
            0.0,
        )
        cv.lay(
            cv.region(centre, (0.2, 0.2), wobble=0.0, soft=0.05), _rgb((0.55, 0.57, 0.6)), 0.5, 0.0
        )
        lamp = cv.region(centre, (0.15, 0.15), wobble=0.0, soft=0.15)
        cv.lay(lamp, _rgb((1.0, 1.0, 0.97)), 0.5, 0.0)
        cv.depth -= 0.45 * lamp
    cv.lay(
        cv.box((float(cv.rng.uniform(-0.6, 0.6)), horizon + 0.05), (0.18, 0.12)),
        _rgb((0.55, 0.56, 0.58)),
        0.5,
        0.0,
    )
    px = float(cv.rng.uniform(-0.7, 0.7))
    gown = _rgb(style.drape) * 0.7 + _rgb((0.15, 0.2, 0.2))
    cv.lay(cv.region((px, horizon + 0.2), (0.22, 0.45), wobble=0.15), gown, 0.5, 0.0)
    cv.lay(
        cv.region((px, horizon - 0.32), (0.09, 0.1), wobble=0.05),
        _rgb((0.85, 0.66, 0.55)),
        0.5,
        0.0,
    )
    cv.lay(cv.region((px, horizon - 0.38), (0.1, 0.06), wobble=0.05), gown, 0.5, 0.0)
    cv.colour = cv2.GaussianBlur(cv.colour, (0, 0), cv.size / 120)


ROOM_LOOK = Look(bump=0.0, specular=0.0, diffuse=0.0, vignette=0.25, exposure=1.0)


def build_scene(
    name: str,
    size: int,
    rng: np.random.Generator,
    style: CaseStyle,
    difficulty: Difficulty,
) -> Scene:
    """Paint the scene ``name`` (``step_NN`` or ``room``) on a ``size`` texture."""
    cv = Canvas(size, rng)
    if name == "room":
        _room(cv, style)
        return cv.finish(name, style, ROOM_LOOK)
    step = int(name.removeprefix("step_"))
    STEP_PAINTERS[step](cv, style, difficulty.signature)
    _clutter(cv, style, difficulty.clutter)
    return cv.finish(name, style, Look())


def scene_name(step: int) -> str:
    """Scene shown for a PitVis step code (-1, out of patient: the operating room)."""
    return "room" if step < 0 else f"step_{step:02d}"
