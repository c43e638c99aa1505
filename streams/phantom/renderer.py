"""Renders the frames of one phantom case, with their exact ground truth.

Everything slow happens once per case in :class:`CaseRenderer`'s constructor: the scene
textures of every step the case visits, the instrument sprites, the smoke field. A frame then
costs two 4-channel affine warps of the current scene (OpenCV), one numba shading pass over the
circular field of view, a warp and blend per visible instrument, and, only when they occur, a
cross-fade, a box blur for fast camera moves and a haze pass; labels (instrument mask, anatomy
warped nearest-neighbour) only when asked for. ``render(i)`` is a pure function
of the frame index, so frames can be drawn in any order and the same seed always gives the same
pixels.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from orstream.labels import NO_INSTRUMENT, OUT_OF_PATIENT, UNUSED_SLOT
from orstream.streams.phantom import kernels
from orstream.streams.phantom.difficulty import Difficulty
from orstream.streams.phantom.instruments import VARIANTS, Sprite, draw_instrument
from orstream.streams.phantom.noise import fbm
from orstream.streams.phantom.scenes import (
    TEXTURE_PER_RADIUS,
    VIEW_RADIUS,
    CaseStyle,
    Look,
    Scene,
    build_scene,
    make_case_style,
    scene_name,
)
from orstream.streams.phantom.timeline import Appearance, CasePlan, Waypoint, build_plan

FADE_S = 0.6
"""Length of the cross-fade between the scenes of consecutive segments."""

JAWED = frozenset({1, 3, 4, 8, 10, 11})
SPINNING = frozenset({17})
DRIPPING = frozenset({6, 7, 12, 18})
SMOKE_COLOUR = np.array([225.0, 222.0, 218.0], np.float32)

SCENE_IDS = {f"step_{k:02d}": k for k in range(1, 15)} | {"room": 20}
"""Stable per-scene seed streams, so a scene's look does not depend on which others exist."""


def case_rng(seed: int, video: int, stream: int) -> np.random.Generator:
    """Independent random stream ``stream`` of case ``video`` under dataset seed ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, video, stream]))


@dataclass(frozen=True)
class ViewGeometry:
    """Where the circular field of view sits in the frame, and the block that holds it."""

    width: int
    height: int
    cx: float
    cy: float
    radius: float
    bx0: int
    by0: int
    bx1: int
    by1: int
    texture: int

    @classmethod
    def for_frame(cls, width: int, height: int) -> ViewGeometry:
        """An endoscope's circle, a little taller than the frame (top and bottom cropped)."""
        radius = min(0.54 * height, 0.49 * width)
        cx, cy = width / 2.0, height / 2.0
        return cls(
            width=width,
            height=height,
            cx=cx,
            cy=cy,
            radius=radius,
            bx0=max(0, math.floor(cx - radius) - 1),
            by0=max(0, math.floor(cy - radius) - 1),
            bx1=min(width, math.ceil(cx + radius) + 1),
            by1=min(height, math.ceil(cy + radius) + 1),
            texture=max(16, round(radius * TEXTURE_PER_RADIUS)),
        )

    @property
    def block(self) -> tuple[int, int]:
        """(height, width) of the block around the field of view."""
        return self.by1 - self.by0, self.bx1 - self.bx0

    @property
    def area(self) -> float:
        """Pixels inside the field of view (the circle clipped by the frame)."""
        dy = np.arange(self.height) + 0.5 - self.cy
        chords = 2.0 * np.sqrt(np.clip(self.radius**2 - dy * dy, 0.0, None))
        return float(np.minimum(chords, self.width).sum())


@dataclass(frozen=True)
class RenderedFrame:
    """A frame and what it shows.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        step: PitVis step code of the frame's time.
        instruments: codes of the instruments visible in the frame, in order of entry
            (at most two); empty inside the patient with none visible or outside the patient.
    """

    image: np.ndarray
    step: int
    instruments: tuple[int, ...]

    @property
    def slots(self) -> tuple[int, int]:
        """The PitVis ``(int_instrument1, int_instrument2)`` codes of this frame."""
        return slot_codes(self.step, self.instruments)


def slot_codes(step: int, visible: tuple[int, ...]) -> tuple[int, int]:
    """PitVis instrument slot codes for a frame's step and visible instruments."""
    if step == OUT_OF_PATIENT:
        return OUT_OF_PATIENT, UNUSED_SLOT
    padded = (*visible, UNUSED_SLOT, UNUSED_SLOT)
    return (padded[0] if visible else NO_INSTRUMENT), padded[1]


@dataclass(frozen=True)
class Camera:
    """Camera pose: texture point at the view's centre (pixels), zoom and roll (radians)."""

    u: float
    v: float
    zoom: float
    roll: float


class CaseRenderer:
    """Frames of one case, drawn on demand from its plan and precomputed textures."""

    def __init__(
        self,
        seed: int,
        video: int,
        seconds: int,
        difficulty: Difficulty,
        width: int = 1280,
        height: int = 720,
        fps: float = 24.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.seed = seed
        self.video = video
        self.fps = fps
        self.difficulty = difficulty
        self.plan: CasePlan = build_plan(case_rng(seed, video, 0), video, seconds, difficulty)
        self.style: CaseStyle = make_case_style(case_rng(seed, video, 1), difficulty)
        self.view = ViewGeometry.for_frame(width, height)
        self.frame_count = round(seconds * fps)
        names = sorted({scene_name(s.step) for s in self.plan.segments})
        self.scenes: dict[str, Scene] = {}
        for name in names:
            if progress:
                progress(f"painting {name}")
            rng = case_rng(seed, video, 100 + SCENE_IDS[name])
            self.scenes[name] = build_scene(name, self.view.texture, rng, self.style, difficulty)
        self.sprites: dict[int, list[Sprite]] = {}
        for code in sorted({a.code for a in self.plan.appearances}):
            states = VARIANTS if code in JAWED | SPINNING | DRIPPING else 1
            self.sprites[code] = [
                draw_instrument(code, k, self.view.radius, seed * 1000 + code)
                for k in range(states)
            ]
        smoke = fbm(case_rng(seed, video, 2), (self.view.texture,) * 2, 3, octaves=4)
        self.smoke = (np.clip(0.55 + 0.3 * smoke, 0.0, 1.0) * 255).astype(np.uint8)
        self.starts = [a.start for a in self.plan.appearances]
        self.longest = max((a.end - a.start for a in self.plan.appearances), default=0.0)
        bh, bw = self.view.block
        self._surface = np.empty((bh, bw, 4), np.uint8)
        self._light = np.empty((bh, bw, 4), np.uint8)
        self._surface2 = np.empty((bh, bw, 4), np.uint8)
        self._light2 = np.empty((bh, bw, 4), np.uint8)
        self._fog = np.empty((bh, bw), np.uint8)
        self._labels = np.empty((bh, bw), np.uint8)
        self._occluders = np.zeros((height, width), np.uint8)
        yy, xx = np.mgrid[self.view.by0 : self.view.by1, self.view.bx0 : self.view.bx1]
        inside = np.hypot(xx + 0.5 - self.view.cx, yy + 0.5 - self.view.cy) < self.view.radius
        self._inside = np.where(inside, 255, 0).astype(np.uint8)
        self._params = np.zeros(kernels.NUM_SHADE_PARAMS, np.float32)
        self._circle = np.array(
            [self.view.cx, self.view.cy, self.view.radius, max(1.0, 0.012 * self.view.radius), 0.0],
            np.float32,
        )
        self._no_mask = np.zeros((0, 0), np.uint8)
        self.visible_pixels = max(4.0, 0.0005 * self.view.area)

    # ------------------------------------------------------------------ camera

    def camera(self, segment_index: int, t: float) -> Camera:
        """Camera pose at time ``t`` while showing segment ``segment_index``'s scene."""
        u, v, zoom, roll = _glide(self.plan.waypoints[segment_index], t)
        outside = self.plan.segments[segment_index].step == OUT_OF_PATIENT
        p = self.plan.drift
        m = self.difficulty.camera_motion * (2.0 if outside else 1.0)
        tau = 2.0 * math.pi * t
        u += 0.03 * m * (math.sin(0.05 * tau + p[0]) + 0.5 * math.sin(0.13 * tau + p[1]))
        v += 0.03 * m * (math.sin(0.04 * tau + p[2]) + 0.5 * math.sin(0.11 * tau + p[3]))
        for move in self.plan.moves:
            if move.start > t:
                break
            du, dv = move.shift(t)
            u += du
            v += dv
        zoom *= 1.0 + 0.05 * m * math.sin(0.03 * tau + p[4])
        roll += 0.05 * m * math.sin(0.02 * tau + p[5])
        # Keep the whole field of view on the texture.
        limit = max(0.0, 0.98 - VIEW_RADIUS / zoom)
        u = min(limit, max(-limit, u))
        v = min(limit, max(-limit, v))
        half = self.view.texture / 2.0
        return Camera(half * (1.0 + u), half * (1.0 + v), zoom, roll)

    def _warp_matrix(self, camera: Camera) -> np.ndarray:
        """Block pixel -> texture pixel affine map for ``camera``."""
        c = math.cos(camera.roll) / camera.zoom
        s = math.sin(camera.roll) / camera.zoom
        ox = self.view.cx - self.view.bx0
        oy = self.view.cy - self.view.by0
        return np.array(
            [[c, -s, camera.u - c * ox + s * oy], [s, c, camera.v - s * ox - c * oy]], np.float32
        )

    def _warp_scene(
        self, scene: Scene, camera: Camera, surface: np.ndarray, light: np.ndarray
    ) -> None:
        matrix = self._warp_matrix(camera)
        size = (surface.shape[1], surface.shape[0])
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        cv2.warpAffine(
            scene.surface, matrix, size, dst=surface, flags=flags, borderMode=cv2.BORDER_REFLECT
        )
        cv2.warpAffine(
            scene.light, matrix, size, dst=light, flags=flags, borderMode=cv2.BORDER_REFLECT
        )

    # ------------------------------------------------------------------ frames

    def render(
        self,
        index: int,
        out: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        anatomy: np.ndarray | None = None,
    ) -> RenderedFrame:
        """Draw frame ``index``.

        Args:
            index: frame number from 0 (time = index / fps).
            out: optional (H, W, 3) uint8 buffer, black outside the field of view (it is
                only written inside); a new black frame when omitted.
            mask: optional (H, W) uint8 zeroed buffer that receives each visible instrument's
                code on its pixels.
            anatomy: optional (H, W) uint8 zeroed buffer that receives the anatomy code
                (:data:`~orstream.streams.phantom.scenes.SELLA`) of the scene's pixels, 0
                outside the field of view and under instruments.

        Returns:
            The frame and its ground truth.
        """
        view = self.view
        frame = out if out is not None else np.zeros((view.height, view.width, 3), np.uint8)
        t = index / self.fps
        plan = self.plan
        current = plan.segment_index(t)
        segment = plan.segments[current]
        scene = self.scenes[scene_name(segment.step)]
        camera = self.camera(current, t)
        self._warp_scene(scene, camera, self._surface, self._light)
        look = scene.look
        other, weight = self._fade(current, t)
        if other is not None:
            neighbour = plan.segments[other]
            other_scene = self.scenes[scene_name(neighbour.step)]
            self._warp_scene(other_scene, self.camera(other, t), self._surface2, self._light2)
            cv2.addWeighted(
                self._surface, 1.0 - weight, self._surface2, weight, 0.0, dst=self._surface
            )
            cv2.addWeighted(self._light, 1.0 - weight, self._light2, weight, 0.0, dst=self._light)
            look = _mix_looks(look, other_scene.look, weight)
        self._motion_blur(current, t, camera)
        gain = 1.0 + 0.04 * math.sin(2.0 * math.pi * 0.23 * t + plan.drift[6])
        self._shade(look, camera, gain, frame)
        if anatomy is not None and mask is None:
            mask = self._occluders
            mask.fill(0)
        shown = self._instruments(t, index, frame, mask, gain)
        if anatomy is not None and mask is not None:
            # A cross-fade never gives the other scene more than half the weight, so the
            # labels are the current scene's, the one the frame's step names.
            self._anatomy(scene, camera, anatomy, mask)
        self._smoke(t, camera, frame)
        return RenderedFrame(frame, segment.step, shown)

    def _anatomy(self, scene: Scene, camera: Camera, anatomy: np.ndarray, mask: np.ndarray) -> None:
        """Warp the scene's anatomy labels into ``anatomy`` where no instrument is in front."""
        if not scene.has_anatomy:
            return
        view = self.view
        labels = self._labels
        cv2.warpAffine(
            scene.anatomy,
            self._warp_matrix(camera),
            (labels.shape[1], labels.shape[0]),
            dst=labels,
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        cv2.bitwise_and(labels, self._inside, dst=labels)
        block = (slice(view.by0, view.by1), slice(view.bx0, view.bx1))
        np.multiply(labels, mask[block] == 0, out=anatomy[block])

    def _fade(self, current: int, t: float) -> tuple[int | None, float]:
        """The neighbouring segment being faded to or from, and its weight."""
        segments = self.plan.segments
        segment = segments[current]
        half = FADE_S / 2.0
        if current + 1 < len(segments) and t > segment.end - half:
            other, x = current + 1, (t - (segment.end - half)) / FADE_S
        elif current > 0 and t < segment.start + half:
            other, x = current - 1, 1.0 - (t - (segment.start - half)) / FADE_S
        else:
            return None, 0.0
        neighbour = segments[other]
        if scene_name(neighbour.step) == scene_name(segment.step):
            return None, 0.0
        x = min(1.0, max(0.0, x))
        return other, x * x * (3.0 - 2.0 * x)

    def _motion_blur(self, current: int, t: float, camera: Camera) -> None:
        """Smear the scene along the camera's movement over one frame, when it is fast."""
        before = self.camera(current, t - 1.0 / self.fps)
        du = (camera.u - before.u) * camera.zoom
        dv = (camera.v - before.v) * camera.zoom
        c, s = math.cos(camera.roll), math.sin(camera.roll)
        dx, dy = abs(c * du + s * dv), abs(-s * du + c * dv)
        if max(dx, dy) < 3.0:
            return
        kernel = (max(1, round(dx)), max(1, round(dy)))
        cv2.blur(self._surface, kernel, dst=self._surface, borderType=cv2.BORDER_REFLECT)

    def _shade(self, look: Look, camera: Camera, gain: float, frame: np.ndarray) -> None:
        p = self._params
        view = self.view
        p[kernels.P_CX] = view.cx
        p[kernels.P_CY] = view.cy
        p[kernels.P_RADIUS] = view.radius
        p[kernels.P_EDGE] = self._circle[3]
        p[kernels.P_INV_FOCAL] = 1.0 / (1.2 * view.radius)
        p[kernels.P_BUMP] = look.bump * 0.008 * (view.radius / 389.0) * camera.zoom
        p[kernels.P_SLOPE_COS] = math.cos(camera.roll)
        p[kernels.P_SLOPE_SIN] = -math.sin(camera.roll)
        p[kernels.P_SPECULAR] = look.specular
        p[kernels.P_SHARPNESS] = look.sharpness
        p[kernels.P_DIFFUSE] = look.diffuse
        p[kernels.P_VIGNETTE] = look.vignette
        p[kernels.P_EXPOSURE] = look.exposure * gain
        p[kernels.P_LIGHT_DX] = 0.04
        p[kernels.P_LIGHT_DY] = -0.03
        self._circle[4] = look.vignette
        kernels.shade_tissue(self._surface, self._light, frame, view.bx0, view.by0, p)

    def _instruments(
        self, t: float, index: int, frame: np.ndarray, mask: np.ndarray | None, gain: float
    ) -> tuple[int, ...]:
        first = bisect.bisect_left(self.starts, t - self.longest)
        last = bisect.bisect_right(self.starts, t)
        shown: list[int] = []
        for item in self.plan.appearances[first:last]:
            depth = item.insertion(t)
            if depth <= 0.0:
                continue
            pixels = self._draw(item, depth, t, index, frame, mask, gain)
            if pixels >= self.visible_pixels and item.code not in shown:
                shown.append(item.code)
        return tuple(shown)

    def _draw(
        self,
        item: Appearance,
        depth: float,
        t: float,
        index: int,
        frame: np.ndarray,
        mask: np.ndarray | None,
        gain: float,
    ) -> int:
        """Place one instrument: it pivots about its entry point on the rim as the tip moves."""
        view = self.view
        radius = view.radius
        tau = 2.0 * math.pi * t
        cos_r, sin_r = math.cos(item.rim_angle), math.sin(item.rim_angle)
        entry = (view.cx + 1.15 * radius * cos_r, view.cy + 1.15 * radius * sin_r)
        outside = (view.cx + 1.35 * radius * cos_r, view.cy + 1.35 * radius * sin_r)
        wobble = 0.035 * radius
        target = (
            view.cx + radius * item.target[0] + wobble * math.sin(0.7 * tau + item.phase),
            view.cy + radius * item.target[1] + wobble * math.sin(0.5 * tau + 1.3 * item.phase),
        )
        tip = (
            outside[0] + (target[0] - outside[0]) * depth,
            outside[1] + (target[1] - outside[1]) * depth,
        )
        angle = math.atan2(entry[1] - tip[1], entry[0] - tip[0])
        scale = item.scale * (1.0 + 0.05 * math.sin(0.4 * tau + item.phase))
        sprite = self._sprite_state(item, t, index)
        h, w = sprite.rgba.shape[:2]
        c, s = math.cos(angle) * scale, math.sin(angle) * scale
        corners_x, corners_y = [], []
        for sx, sy in ((0.0, 0.0), (w, 0.0), (0.0, h), (w, h)):
            lx, ly = sx - sprite.tip[0], sy - sprite.tip[1]
            corners_x.append(tip[0] + c * lx - s * ly)
            corners_y.append(tip[1] + s * lx + c * ly)
        x0 = max(view.bx0, math.floor(min(corners_x)))
        x1 = min(view.bx1, math.ceil(max(corners_x)) + 1)
        y0 = max(view.by0, math.floor(min(corners_y)))
        y1 = min(view.by1, math.ceil(max(corners_y)) + 1)
        if x0 >= x1 or y0 >= y1:
            return 0
        ic, is_ = math.cos(angle) / scale, math.sin(angle) / scale
        # Block pixel (x - x0, y - y0) -> sprite pixel: rotate back about the tip and unscale.
        bx, by = x0 - tip[0], y0 - tip[1]
        matrix = np.array(
            [
                [ic, is_, sprite.tip[0] + ic * bx + is_ * by],
                [-is_, ic, sprite.tip[1] - is_ * bx + ic * by],
            ],
            np.float32,
        )
        warped = cv2.warpAffine(
            sprite.rgba,
            matrix,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0, 0),
        )
        return kernels.composite_sprite(
            frame,
            warped,
            x0,
            y0,
            self._circle,
            gain,
            self._no_mask if mask is None else mask,
            item.code,
        )

    def _sprite_state(self, item: Appearance, t: float, index: int) -> Sprite:
        states = self.sprites[item.code]
        if len(states) == 1:
            return states[0]
        if item.code in SPINNING:
            return states[index % len(states)]
        if item.code in JAWED:
            opening = 0.5 + 0.5 * math.sin(2.0 * math.pi * 0.6 * t + item.phase)
            return states[min(len(states) - 1, int(opening * len(states)))]
        return states[int(t * 0.8 + item.phase) % len(states)]

    def _smoke(self, t: float, camera: Camera, frame: np.ndarray) -> None:
        amount = sum(puff.amount(t) for puff in self.plan.puffs if puff.start <= t)
        if amount < 0.01:
            return
        drift = Camera(camera.u + 9.0 * t, camera.v - 14.0 * t, camera.zoom * 0.8, camera.roll)
        cv2.warpAffine(
            self.smoke,
            self._warp_matrix(drift),
            (self._fog.shape[1], self._fog.shape[0]),
            dst=self._fog,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        kernels.apply_haze(
            frame,
            self._fog,
            self.view.bx0,
            self.view.by0,
            self._circle,
            min(0.85, amount),
            SMOKE_COLOUR,
        )


def _glide(waypoints: tuple[Waypoint, ...], t: float) -> tuple[float, float, float, float]:
    """Camera (u, v, zoom, roll) along a segment's waypoints, gliding smoothly between them."""
    k = max(0, bisect.bisect_right([w.time for w in waypoints], t) - 1)
    here = waypoints[k]
    x = 1.0 if k == 0 else min(1.0, max(0.0, (t - here.time) / here.glide_s))
    if x >= 1.0:
        return here.u, here.v, here.zoom, here.roll
    before = waypoints[k - 1]
    x = x * x * (3.0 - 2.0 * x)
    return (
        before.u + (here.u - before.u) * x,
        before.v + (here.v - before.v) * x,
        before.zoom + (here.zoom - before.zoom) * x,
        before.roll + (here.roll - before.roll) * x,
    )


def _mix_looks(a: Look, b: Look, weight: float) -> Look:
    def mix(x: float, y: float) -> float:
        return x + (y - x) * weight

    return Look(
        mix(a.bump, b.bump),
        mix(a.specular, b.specular),
        mix(a.sharpness, b.sharpness),
        mix(a.diffuse, b.diffuse),
        mix(a.vignette, b.vignette),
        mix(a.exposure, b.exposure),
    )
