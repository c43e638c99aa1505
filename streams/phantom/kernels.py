"""Per-frame pixel kernels of the phantom renderer (numba, single-threaded, vectorised rows).

Every kernel works on whole rows of C-contiguous arrays, limited to the chord of the circular
field of view, so LLVM can vectorise the inner loop; there is no per-pixel Python anywhere in
the frame path.
"""

from __future__ import annotations

import numpy as np
from numba import njit

F = np.float32

# Layout of the float32 parameter vector of :func:`shade_tissue`.
P_CX, P_CY, P_RADIUS, P_EDGE = 0, 1, 2, 3
P_INV_FOCAL, P_BUMP, P_SLOPE_COS, P_SLOPE_SIN = 4, 5, 6, 7
P_SPECULAR, P_SHARPNESS, P_DIFFUSE, P_VIGNETTE, P_EXPOSURE = 8, 9, 10, 11, 12
P_LIGHT_DX, P_LIGHT_DY = 13, 14
NUM_SHADE_PARAMS = 15


@njit(cache=True, fastmath=True, nogil=True, boundscheck=False)
def shade_tissue(
    surface: np.ndarray,
    light: np.ndarray,
    frame: np.ndarray,
    bx0: int,
    by0: int,
    p: np.ndarray,
) -> None:
    """Light the warped scene into ``frame`` inside the circular field of view.

    Args:
        surface: (h, w, 4) uint8 warped albedo RGB + fine bump height.
        light: (h, w, 4) uint8 warped gloss, illumination, slope x, slope y (128 = flat).
        frame: (H, W, 3) uint8 RGB output; the warped block sits at (by0, bx0).
        bx0: frame column of the block's first column.
        by0: frame row of the block's first row.
        p: float32 parameters, indexed by the ``P_*`` constants.
    """
    h, w = surface.shape[0], surface.shape[1]
    # Pixel (x, y) has its centre at (x + 0.5, y + 0.5) in frame coordinates.
    cx = p[P_CX] - F(bx0) - F(0.5)
    cy = p[P_CY] - F(by0) - F(0.5)
    radius = p[P_RADIUS]
    inv_r2 = F(1.0) / (radius * radius)
    edge_gain = radius / (F(2.0) * p[P_EDGE])
    inv_f = p[P_INV_FOCAL]
    bump = p[P_BUMP]
    sc = p[P_SLOPE_COS] * F(1.0 / 128.0)
    ss = p[P_SLOPE_SIN] * F(1.0 / 128.0)
    spec_gain = p[P_SPECULAR]
    sharp = p[P_SHARPNESS]
    diffuse = p[P_DIFFUSE]
    vignette = p[P_VIGNETTE]
    exposure = p[P_EXPOSURE] * F(1.0 / 255.0)
    ldx = p[P_LIGHT_DX]
    ldy = p[P_LIGHT_DY]
    one = F(1.0)
    zero = F(0.0)
    top = F(255.0)
    for y in range(h):
        dy = F(y) - cy
        rest = radius * radius - dy * dy
        if rest <= 0:
            continue
        half = np.sqrt(rest)
        x0 = max(1, int(np.floor(cx - half)))
        x1 = min(w - 1, int(np.ceil(cx + half)) + 1)
        if x0 >= x1:
            continue
        srow = surface[y].ravel()
        sup = surface[max(y - 1, 0)].ravel()
        sdn = surface[min(y + 1, h - 1)].ravel()
        lrow = light[y].ravel()
        orow = frame[by0 + y].ravel()
        vy = dy * inv_f + ldy
        dy2 = dy * dy
        o = 3 * bx0
        for x in range(x0, x1):
            dx = F(x) - cx
            gx = (F(srow[4 * x + 7]) - F(srow[4 * x - 1])) * bump
            gy = (F(sdn[4 * x + 3]) - F(sup[4 * x + 3])) * bump
            sx = F(lrow[4 * x + 2]) - F(128.0)
            sy = F(lrow[4 * x + 3]) - F(128.0)
            tx = gx + sc * sx - ss * sy - (dx * inv_f + ldx)
            ty = gy + ss * sx + sc * sy - vy
            q = tx * tx + ty * ty
            spot = max(zero, one - q * sharp)
            spot = spot * spot
            spot = spot * spot
            illum = F(lrow[4 * x + 1])
            r2 = (dx * dx + dy2) * inv_r2
            fall = max(zero, one - vignette * r2) * min(one, max(zero, (one - r2) * edge_gain))
            lit = illum * fall * exposure
            shade = lit * (one - diffuse * min(q, one))
            spec = spot * F(lrow[4 * x]) * lit * spec_gain
            orow[o + 3 * x] = np.uint8(min(top, F(srow[4 * x]) * shade + spec))
            orow[o + 3 * x + 1] = np.uint8(min(top, F(srow[4 * x + 1]) * shade + spec))
            orow[o + 3 * x + 2] = np.uint8(min(top, F(srow[4 * x + 2]) * shade + spec))


@njit(cache=True, fastmath=True, nogil=True, boundscheck=False)
def composite_sprite(
    frame: np.ndarray,
    sprite: np.ndarray,
    ox: int,
    oy: int,
    circle: np.ndarray,
    gain: float,
    mask: np.ndarray,
    code: int,
) -> int:
    """Blend a warped premultiplied RGBA sprite into ``frame`` inside the field of view.

    Args:
        frame: (H, W, 3) uint8 RGB, modified in place.
        sprite: (h, w, 4) uint8 premultiplied RGBA, placed with its corner at (oy, ox).
        ox: frame column of the sprite's first column.
        oy: frame row of the sprite's first row.
        circle: float32 [cx, cy, radius, edge width, vignette] of the field of view.
        gain: brightness factor (exposure) applied to the sprite.
        mask: (H, W) uint8 label mask to stamp ``code`` into, or an empty array for none.
        code: value written into ``mask`` where the sprite is mostly opaque.

    Returns:
        Number of mostly-opaque sprite pixels inside the field of view.
    """
    h, w = sprite.shape[0], sprite.shape[1]
    cx, cy, radius = circle[0] - F(0.5), circle[1] - F(0.5), circle[2]
    inv_r2 = F(1.0) / (radius * radius)
    edge_gain = radius / (F(2.0) * circle[3])
    vignette = circle[4]
    one = F(1.0)
    zero = F(0.0)
    top = F(255.0)
    inv = F(1.0 / 255.0)
    write_mask = mask.shape[0] > 0
    visible = 0
    for y in range(h):
        fy = oy + y
        dy = F(fy) - cy
        rest = radius * radius - dy * dy
        if rest <= 0:
            continue
        half = np.sqrt(rest)
        x0 = max(ox, int(np.floor(cx - half)))
        x1 = min(ox + w, int(np.ceil(cx + half)) + 1)
        if x0 >= x1:
            continue
        srow = sprite[y].ravel()
        orow = frame[fy].ravel()
        dy2 = dy * dy
        count = 0
        for x in range(x0, x1):
            s = x - ox
            a = F(srow[4 * s + 3])
            dx = F(x) - cx
            r2 = (dx * dx + dy2) * inv_r2
            fall = max(zero, one - vignette * r2) * min(one, max(zero, (one - r2) * edge_gain))
            keep = one - a * inv
            k = fall * gain
            orow[3 * x] = np.uint8(min(top, F(orow[3 * x]) * keep + F(srow[4 * s]) * k))
            orow[3 * x + 1] = np.uint8(min(top, F(orow[3 * x + 1]) * keep + F(srow[4 * s + 1]) * k))
            orow[3 * x + 2] = np.uint8(min(top, F(orow[3 * x + 2]) * keep + F(srow[4 * s + 2]) * k))
            count += 1 if (a >= F(128.0)) and (r2 < one) else 0
        visible += count
        if write_mask and count > 0:
            mrow = mask[fy]
            for x in range(x0, x1):
                s = x - ox
                dx = F(x) - cx
                if srow[4 * s + 3] >= 128 and (dx * dx + dy2) * inv_r2 < one:
                    mrow[x] = code
    return visible


@njit(cache=True, fastmath=True, nogil=True, boundscheck=False)
def apply_haze(
    frame: np.ndarray,
    fog: np.ndarray,
    bx0: int,
    by0: int,
    circle: np.ndarray,
    amount: float,
    colour: np.ndarray,
) -> None:
    """Veil the field of view with smoke: blend towards ``colour`` by ``amount`` x fog density.

    Args:
        frame: (H, W, 3) uint8 RGB, modified in place.
        fog: (h, w) uint8 smoke density of the view block at (by0, bx0).
        bx0: frame column of the block's first column.
        by0: frame row of the block's first row.
        circle: float32 [cx, cy, radius, edge width, vignette] of the field of view.
        amount: overall smoke density, 0..1.
        colour: float32 [3] smoke colour (0..255) before vignetting.
    """
    h, w = fog.shape[0], fog.shape[1]
    cx, cy, radius = circle[0] - F(0.5), circle[1] - F(0.5), circle[2]
    inv_r2 = F(1.0) / (radius * radius)
    edge_gain = radius / (F(2.0) * circle[3])
    vignette = circle[4]
    one = F(1.0)
    zero = F(0.0)
    scale = F(amount) * F(1.0 / 255.0)
    cr, cg, cb = colour[0], colour[1], colour[2]
    for y in range(h):
        fy = by0 + y
        dy = F(fy) - cy
        rest = radius * radius - dy * dy
        if rest <= 0:
            continue
        half = np.sqrt(rest)
        x0 = max(bx0, int(np.floor(cx - half)))
        x1 = min(bx0 + w, int(np.ceil(cx + half)) + 1)
        frow = fog[y]
        orow = frame[fy].ravel()
        dy2 = dy * dy
        for x in range(x0, x1):
            f = F(frow[x - bx0]) * scale
            dx = F(x) - cx
            r2 = (dx * dx + dy2) * inv_r2
            fall = max(zero, one - vignette * r2) * min(one, max(zero, (one - r2) * edge_gain))
            r = F(orow[3 * x])
            g = F(orow[3 * x + 1])
            b = F(orow[3 * x + 2])
            orow[3 * x] = np.uint8(r + (cr * fall - r) * f)
            orow[3 * x + 1] = np.uint8(g + (cg * fall - g) * f)
            orow[3 * x + 2] = np.uint8(b + (cb * fall - b) * f)
