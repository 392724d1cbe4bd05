"""Random source populations and their GalSim profiles.

Four classes of sources (names and ids shared by the whole package, see
:data:`CLASS_NAMES`):

``spheroid`` (1)
    One Sérsic profile, ``2.5 <= n <= 6``, round (``q`` mostly > 0.5), red spectral
    slope.
``disk`` (2)
    Sérsic disk ``0.5 <= n <= 1.5``; half of them with a de Vaucouleurs-like bulge
    (``2.5 <= n <= 4.5``, bulge-to-total 0.05-0.4, smaller radius, redder than the
    disk). Bulge and disk share the centre, axis ratio and position angle.
``irregular`` (3)
    Smooth exponential-like disk plus star-forming knots (``galsim.RandomKnots``
    following the disk light, blurred by a 0.5-pixel Gaussian) plus 1-3 offset
    Gaussian clumps; blue.
``point_source`` (4)
    A delta function (the PSF in the image).

Every extended profile is truncated at 5 half-light radii (GalSim ``trunc`` with
``flux_untruncated=False``) so that the stated flux and half-light radius are the
exact values of what is drawn, and Sérsic indices are quantised to steps of 0.05 so
that GalSim's Hankel-transform tables are reused.

Colours: each component has a spectral slope ``beta`` and its flux in a band of pivot
wavelength ``lam`` is ``flux_ref * (lam / lam_ref) ** beta`` (``lam_ref``: detection band).
"""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np
from scipy.special import gammainc

from .bands import GSPARAMS

__all__ = ["CLASS_NAMES", "EMISSION_KINDS", "SourceModel", "draw_population", "make_source"]

#: Class names in class-id order (``class_id`` is the index).
CLASS_NAMES: tuple[str, ...] = ("background", "spheroid", "disk", "irregular", "point_source")

#: Kinds of extended emission-line regions.
EMISSION_KINDS: tuple[str, ...] = ("halo", "cone")

#: Default mix of classes (spheroid, disk, irregular, point_source).
DEFAULT_CLASS_FRACTIONS = {"spheroid": 0.25, "disk": 0.4, "irregular": 0.2, "point_source": 0.15}

TRUNC = 5.0  # truncation radius of every Sérsic component, in half-light radii
N_STEP = 0.05  # quantisation of Sérsic indices


@dataclass
class Component:
    """One achromatic piece of a source: unit-flux profile, reference flux, slope."""

    profile: galsim.GSObject
    flux_ref: float
    beta: float

    def flux(self, ratio: float) -> float:
        """Flux in a band whose wavelength is ``ratio`` times the reference."""
        return self.flux_ref * ratio**self.beta


@dataclass
class SourceModel:
    """Everything needed to draw one source and write its truth row.

    Positions are 0-based pixels; ``x0, y0`` is where the profile origin is placed,
    ``dx, dy`` the offset (pixels) of its centre of light from that origin.
    """

    class_id: int
    x0: float
    y0: float
    r_e: float  # pixels, semi-major half-light radius of the continuum light
    q: float
    pa: float
    n: float
    bulge_fraction: float
    components: list[Component]
    half_width: tuple[float, float]  # (hx, hy) pixel half-sizes of the light, before PSF
    dx: float = 0.0
    dy: float = 0.0
    emission: galsim.GSObject | None = None  # unit flux, arcsec
    emission_kind: str = "none"
    emission_flux: float = 0.0
    emission_extent: float = float("nan")
    emission_half_width: tuple[float, float] = (0.0, 0.0)  # reach of the line light

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_id]

    def flux(self, ratio: float) -> float:
        """Continuum flux in a band whose wavelength is ``ratio`` times the reference."""
        return float(sum(c.flux(ratio) for c in self.components))

    def profile(self, ratio: float, *, emission: bool = False) -> galsim.GSObject:
        """Intrinsic profile (arcsec, origin at ``x0, y0``) in one band."""
        parts = [c.profile * c.flux(ratio) for c in self.components]
        if emission and self.emission is not None and self.emission_flux > 0:
            parts.append(self.emission * self.emission_flux)
        return parts[0] if len(parts) == 1 else galsim.Add(parts, gsparams=GSPARAMS)


def _quantise_n(n: float) -> float:
    return float(np.round(np.round(n / N_STEP) * N_STEP, 2))


_SERSIC_BASE: dict[float, galsim.Sersic] = {}


def _sersic_base(n: float) -> galsim.Sersic:
    """Unit-flux truncated Sérsic with unit half-light radius (cached per index)."""
    base = _SERSIC_BASE.get(n)
    if base is None:
        base = galsim.Sersic(
            n, half_light_radius=1.0, trunc=TRUNC, flux_untruncated=False, gsparams=GSPARAMS
        )
        _SERSIC_BASE[n] = base
    return base


def _sersic(n: float, r_circ: float, pixel_scale: float) -> galsim.GSObject:
    """Unit-flux truncated Sérsic, circular half-light radius ``r_circ`` in pixels.

    A dilation of one cached unit profile per index, so that GalSim's tables (and its
    ``maxk``/``stepk`` solutions) are computed once per index.
    """
    return _sersic_base(n).dilate(r_circ * pixel_scale)


def _sersic_enclosed(n: float, x: float) -> float:
    """Fraction of the flux of a truncated Sérsic within ``x`` half-light radii."""
    base = _sersic_base(n)
    r0 = base.scale_radius
    x = min(x, TRUNC) / r0
    return float(gammainc(2 * n, x ** (1 / n)) / gammainc(2 * n, (TRUNC / r0) ** (1 / n)))


def _composite_hlr(parts: list[tuple[float, float, float]]) -> float:
    """Half-light radius of concentric circular Sérsics given as ``(n, hlr, fraction)``."""
    lo, hi = 0.0, TRUNC * max(p[1] for p in parts)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        enc = sum(f * _sersic_enclosed(n, mid / r) for n, r, f in parts)
        lo, hi = (mid, hi) if enc < 0.5 else (lo, mid)
    return 0.5 * (lo + hi)


def _ellipse_half_widths(a: float, q: float, pa: float) -> tuple[float, float]:
    b = q * a
    c, s = np.cos(pa), np.sin(pa)
    return float(np.hypot(a * c, b * s)), float(np.hypot(a * s, b * c))


def _moments(img: np.ndarray, scale: float) -> tuple[float, float, float]:
    """Centroid (x, y) and circular half-light radius about it, in units of ``scale``."""
    ny, nx = img.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    xx -= (nx - 1) / 2
    yy -= (ny - 1) / 2
    w = np.clip(img, 0, None)
    tot = w.sum()
    xc, yc = (w * xx).sum() / tot, (w * yy).sum() / tot
    r = np.hypot(xx - xc, yy - yc).ravel()
    order = np.argsort(r)
    cum = np.cumsum(w.ravel()[order])
    k = int(np.searchsorted(cum, 0.5 * tot))
    if k == 0:
        hlr = r[order][0]
    else:  # interpolate between the bracketing radii
        r1, r2 = r[order][k - 1], r[order][k]
        c1, c2 = cum[k - 1], cum[k]
        hlr = r1 + (0.5 * tot - c1) / max(c2 - c1, 1e-300) * (r2 - r1)
    return xc * scale, yc * scale, hlr * scale


def _measure_circular(obj: galsim.GSObject, radius: float, pixel_scale: float) -> tuple:
    """Centroid and circular half-light radius (arcsec) of ``obj`` drawn 2x oversampled."""
    scale = pixel_scale / 2 if radius < 15 * pixel_scale else pixel_scale
    size = 2 * int(np.ceil(radius / scale)) + 1
    img = obj.drawImage(nx=size, ny=size, scale=scale, method="no_pixel").array
    return _moments(img, scale)


def draw_population(
    rng: np.random.Generator,
    count: int,
    class_probs: np.ndarray,
    flux_range: tuple[float, float],
    pixel_scale: float,
    r_e_range: tuple[float, float],
    flux_slope: float = 2.0,
) -> dict[str, np.ndarray]:
    """Draw classes, reference fluxes, sizes, shapes of ``count`` sources (vectorised).

    Fluxes follow ``dN/dF ~ F**-flux_slope`` in ``flux_range``; half-light radii are
    log-normal (natural-log sigma 0.4) around ``0.25" * (F / 1000)**0.25``, scaled by
    class (spheroids 0.7, irregulars 1.2) and clipped to ``r_e_range`` pixels.
    """
    cls = rng.choice(np.arange(1, 5), size=count, p=class_probs)
    f1, f2 = flux_range
    u = rng.random(count)
    if abs(flux_slope - 1) < 1e-9:
        flux = f1 * (f2 / f1) ** u
    else:
        e = 1 - flux_slope
        flux = (f1**e + u * (f2**e - f1**e)) ** (1 / e)
    size_factor = np.select([cls == 1, cls == 3], [0.7, 1.2], 1.0)
    r_med = 0.25 / pixel_scale * (flux / 1000.0) ** 0.25 * size_factor
    r_e = np.clip(r_med * np.exp(rng.normal(0.0, 0.4, count)), *r_e_range)
    pa = rng.uniform(0, np.pi, count)
    q_sph = np.clip(1 - np.abs(rng.normal(0, 0.25, count)), 0.45, 1.0)
    q_disk = rng.uniform(0.2, 1.0, count)
    q_irr = rng.uniform(0.35, 1.0, count)
    q = np.select([cls == 1, cls == 2, cls == 3], [q_sph, q_disk, q_irr], 1.0)
    return {"class_id": cls, "flux": flux, "r_e": r_e, "q": q, "pa": pa}


def make_source(
    rng: np.random.Generator,
    class_id: int,
    flux: float,
    r_e: float,
    q: float,
    pa: float,
    x0: float,
    y0: float,
    pixel_scale: float,
    *,
    emission_kind: str | None = None,
    emission_ratio: float = 0.0,
) -> SourceModel:
    """Build the GalSim model of one source from its drawn parameters.

    ``r_e`` is the semi-major half-light radius in pixels; circular profiles of radius
    ``r_e * sqrt(q)`` are sheared (area-preserving) to axis ratio ``q`` at angle ``pa``.
    ``emission_kind`` ("halo" or "cone") adds a line component of flux
    ``emission_ratio`` times the continuum reference flux (scaled to the emission band
    by the caller).
    """
    shear = galsim.Shear(q=q, beta=pa * galsim.radians)
    r_c = r_e * np.sqrt(q)
    comps: list[Component] = []
    dx = dy = 0.0
    bulge_fraction = float("nan")
    n_main = float("nan")
    if class_id == 4:  # point source
        comps.append(Component(galsim.DeltaFunction(gsparams=GSPARAMS), flux, rng.normal(0, 0.8)))
        src = SourceModel(4, x0, y0, 0.0, 1.0, 0.0, n_main, bulge_fraction, comps, (0.0, 0.0))
        return src
    if class_id == 1:  # spheroid
        n_main = _quantise_n(float(np.clip(rng.normal(4.0, 1.0), 2.5, 6.0)))
        prof = _sersic(n_main, r_c, pixel_scale).shear(shear)
        comps.append(Component(prof, flux, rng.normal(1.0, 0.3)))
        bulge_fraction = 1.0
        half = _ellipse_half_widths(TRUNC * r_e, q, pa)
    elif class_id == 2:  # disk (+ bulge)
        n_main = _quantise_n(rng.uniform(0.5, 1.5))
        beta_disk = rng.normal(0.0, 0.3)
        bt = rng.uniform(0.05, 0.4) if rng.random() < 0.5 else 0.0
        if bt > 0:
            n_b = _quantise_n(rng.uniform(2.5, 4.5))
            rb_c = max(r_c * rng.uniform(0.2, 0.5), 0.5)
            # The composite is more compact than the disk: rescale both components so
            # that the whole galaxy has the drawn half-light radius.
            scale = r_c / _composite_hlr([(n_main, r_c, 1 - bt), (n_b, rb_c, bt)])
            disk_c = _sersic(n_main, r_c * scale, pixel_scale)
            bulge_c = _sersic(n_b, rb_c * scale, pixel_scale)
            hlr = _composite_hlr([(n_main, r_c * scale, 1 - bt), (n_b, rb_c * scale, bt)])
            r_e = hlr / np.sqrt(q)
            comps.append(Component(disk_c.shear(shear), flux * (1 - bt), beta_disk))
            comps.append(Component(bulge_c.shear(shear), flux * bt, beta_disk + 0.8))
            half = _ellipse_half_widths(TRUNC * r_c * scale / np.sqrt(q), q, pa)
        else:
            comps.append(Component(_sersic(n_main, r_c, pixel_scale).shear(shear), flux, beta_disk))
            half = _ellipse_half_widths(TRUNC * r_e, q, pa)
        bulge_fraction = float(bt)
    elif class_id == 3:  # irregular: smooth disk + knots + clumps, built in a circular frame
        n_main = _quantise_n(rng.uniform(0.5, 1.5))
        beta_s = rng.normal(-0.4, 0.3)
        f_smooth = rng.uniform(0.35, 0.6)
        f_knots = rng.uniform(0.2, 0.4) * (1 - f_smooth) / 0.6
        n_clumps = int(rng.integers(1, 4))
        f_clumps = 1 - f_smooth - f_knots
        smooth = _sersic(n_main, r_c, pixel_scale)
        knot_seed = int(rng.integers(1, 2**31 - 1))
        knots = galsim.RandomKnots(
            int(rng.integers(10, 40)),
            profile=galsim.Exponential(half_light_radius=r_c * pixel_scale),
            rng=galsim.BaseDeviate(knot_seed),
            gsparams=GSPARAMS,
        )
        knots = galsim.Convolve(knots, galsim.Gaussian(sigma=0.5 * pixel_scale), gsparams=GSPARAMS)
        clump_parts = []
        weights = rng.dirichlet(np.ones(n_clumps))
        reach = TRUNC * r_c
        for w in weights:
            rad = rng.uniform(0.4, 1.3) * r_c
            ang = rng.uniform(0, 2 * np.pi)
            sig = max(rng.uniform(0.1, 0.25) * r_c, 0.6)
            reach = max(reach, rad + 5 * sig)
            clump_parts.append(
                galsim.Gaussian(sigma=sig * pixel_scale, flux=w, gsparams=GSPARAMS).shift(
                    rad * np.cos(ang) * pixel_scale, rad * np.sin(ang) * pixel_scale
                )
            )
        clumps = galsim.Add(clump_parts, gsparams=GSPARAMS)
        beta_k = beta_s - 0.6
        whole = galsim.Add([smooth * f_smooth, knots * f_knots, clumps * f_clumps])
        # Knots are drawn with the same seed, so their layout is identical in all bands.
        xc, yc, hlr = _measure_circular(whole, reach * pixel_scale, pixel_scale)
        r_e = hlr / pixel_scale / np.sqrt(q)
        cx, cy = shear.getMatrix() @ np.array([xc, yc])  # centre of light after shearing
        dx, dy = float(cx) / pixel_scale, float(cy) / pixel_scale
        comps.append(Component(smooth.shear(shear), flux * f_smooth, beta_s))
        comps.append(Component(knots.shear(shear), flux * f_knots, beta_k))
        comps.append(Component(clumps.shear(shear), flux * f_clumps, beta_k))
        a = reach / np.sqrt(q)
        half = _ellipse_half_widths(a, q, pa)
        bulge_fraction = 0.0
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(f"unknown class id {class_id}")

    src = SourceModel(
        class_id, x0, y0, float(r_e), float(q), float(pa), n_main, bulge_fraction, comps, half
    )
    src.dx, src.dy = dx, dy
    if emission_kind is not None:
        _add_emission(rng, src, emission_kind, emission_ratio * flux, pixel_scale)
    return src


def _add_emission(
    rng: np.random.Generator, src: SourceModel, kind: str, flux: float, pixel_scale: float
) -> None:
    """Attach an extended line-emission component (unit-flux profile + flux)."""
    r_e = max(src.r_e, 1.5)
    if kind == "halo":
        hlr_major = r_e * rng.uniform(2.0, 4.0)
        q_h = rng.uniform(0.6, 1.0)
        pa_h = src.pa + rng.normal(0, 0.3)
        prof = _sersic(1.0, hlr_major * np.sqrt(q_h), pixel_scale).shear(
            galsim.Shear(q=q_h, beta=pa_h * galsim.radians)
        )
        reach = TRUNC * hlr_major
    else:  # cone: two elongated lobes on opposite sides along a random axis
        axis = rng.uniform(0, np.pi)
        dist = r_e * rng.uniform(1.5, 3.0)
        lobe_major = r_e * rng.uniform(0.6, 1.2)
        q_l = rng.uniform(0.25, 0.5)
        lobe = _sersic(1.0, lobe_major * np.sqrt(q_l), pixel_scale).shear(
            galsim.Shear(q=q_l, beta=axis * galsim.radians)
        )
        ox, oy = dist * np.cos(axis) * pixel_scale, dist * np.sin(axis) * pixel_scale
        prof = galsim.Add([lobe.shift(ox, oy) * 0.5, lobe.shift(-ox, -oy) * 0.5])
        reach = dist + TRUNC * lobe_major
    # Centre of the line light = centre of the continuum light.
    prof = prof.shift(src.dx * pixel_scale, src.dy * pixel_scale)
    hlr = _line_half_light_radius(prof, src, reach, pixel_scale)
    src.emission = prof
    src.emission_kind = kind
    src.emission_flux = float(flux)
    src.emission_extent = float(hlr)
    hx, hy = src.half_width
    extra = reach + np.hypot(src.dx, src.dy)
    src.emission_half_width = (max(hx, extra), max(hy, extra))


def _line_half_light_radius(
    prof: galsim.GSObject, src: SourceModel, reach: float, pixel_scale: float
) -> float:
    """Radius (pixels) of the circle about the source's centre of light holding half of ``prof``.

    Drawn on a grid of pixel size ``step`` (1 pixel, coarser for very extended light so
    that the grid stays below ~300 x 300).
    """
    step = max(1.0, (reach + np.hypot(src.dx, src.dy)) / 150.0)
    size = 2 * int(np.ceil((reach + np.hypot(src.dx, src.dy)) / step)) + 3
    img = prof.drawImage(
        nx=size, ny=size, scale=pixel_scale * step, method="no_pixel",
        offset=(-src.dx / step, -src.dy / step),
    ).array  # fmt: skip
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    r = np.hypot(xx - (size - 1) / 2, yy - (size - 1) / 2).ravel() * step
    w = np.clip(img, 0, None).ravel()
    order = np.argsort(r)
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, 0.5 * cum[-1]))
    return float(r[order][k])
