"""A simulated field that shares no code with ``morphoscope.simulate`` (nor GalSim).

Detection benchmarks run on data made by the package's own simulator would test the
detector on the kind of data it was developed against. This generator builds galaxies with
``astropy.modeling.models.Sersic2D`` (sub-pixel oversampled), stars and galaxies blurred by
a Moffat PSF with ``scipy.signal.fftconvolve``, Gaussian sky noise plus Poisson noise and,
optionally, a smooth background gradient.

Population (defaults):

* galaxies: Sérsic index 0.5-6 (log-uniform), half-light radius log-normal clipped to
  2-25 px (larger for brighter sources), axis ratio 0.2-1, random orientation;
  10 % of them placed 1-2.5 half-light radii from another galaxy (close pairs);
* stars (PSF only): ``n // 10`` of them;
* matched-filter S/N (``sqrt(sum(model**2)) / sigma``) drawn from a power law
  ``dN/dS ~ S**-1.7`` between 3 and 2000 at the reference depth (stars up to 5000);
  total fluxes follow from the S/N of each rendered profile.

Truth: table with ``id, x, y, n, r_e, q, pa, flux, class, snr`` (``r_e`` = 0 and ``n`` =
NaN for stars) and a segmentation map where a pixel belongs to the source with the largest
noiseless contribution, where that contribution exceeds 1 sigma of the sky.

Usage::

    python benchmarks/independent_field.py --out field/ [--size 2048] [--n 1500] [--seed 0]
        [--gradient] [--depth 1.0]

writes ``image.fits``, ``rms.fits`` (the sky noise, constant), ``psf.fits``, ``truth.ecsv``
and ``truth_segmap.fits``. From Python::

    from independent_field import make_field
    field = make_field(size=512, n=100, seed=1)
    field["image"], field["rms"], field["psf"], field["truth"], field["segmap"]

Cost: about ``n * (2 R)**2`` Sérsic evaluations (R = stamp radius, ~5 r_e) plus one small
FFT per source; a few seconds for the default 2048 x 2048 field with 1500 galaxies.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.modeling.models import Moffat2D, Sersic2D
from astropy.table import Table
from scipy.signal import fftconvolve

__all__ = ["make_field", "moffat_psf", "render_sersic", "write_field"]

SKY_SIGMA = 1.0  # sky noise at depth 1 (image units)
GAIN = 4.0  # "electrons" per image unit at depth 1 (Poisson noise)


def _oversampled(model, xs: np.ndarray, ys: np.ndarray, factor: int):
    """Mean of ``model`` over ``factor x factor`` sub-pixels of pixels centred on (xs, ys)."""
    off = (np.arange(factor) + 0.5) / factor - 0.5
    sx = (xs[..., None, None] + off[None, :]).astype(float)
    sy = (ys[..., None, None] + off[:, None]).astype(float)
    return model(sx, sy).mean(axis=(-1, -2))


def moffat_psf(
    fwhm: float = 3.0,
    beta: float = 3.0,
    half: int = 20,
    dx: float = 0.0,
    dy: float = 0.0,
    oversample: int = 5,
) -> np.ndarray:
    """Pixel-integrated Moffat PSF of shape ``(2 half + 1, 2 half + 1)``, unit sum.

    ``dx, dy`` shift the centre from the central pixel (sub-pixel positions of stars).
    """
    gamma = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    model = Moffat2D(amplitude=1.0, x_0=dx, y_0=dy, gamma=gamma, alpha=beta)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    img = _oversampled(model, xx, yy, oversample)
    return img / img.sum()


def render_sersic(
    r_e: float, n: float, q: float, pa: float, dx: float, dy: float, half: int
) -> np.ndarray:
    """Unit-flux Sérsic profile on a ``(2 half + 1)**2`` stamp, centre offset (dx, dy).

    Whole stamp sampled at pixel centres; the inner 21 x 21 pixels averaged over 5 x 5
    sub-pixels and the central 3 x 3 pixels over 15 x 15 (the cusp of high-n profiles).
    """
    model = Sersic2D(amplitude=1.0, r_eff=r_e, n=n, x_0=dx, y_0=dy, ellip=1.0 - q, theta=pa)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
    img = model(xx, yy)
    for box, factor in ((min(half, 10), 5), (1, 15)):
        sl = (slice(half - box, half + box + 1),) * 2
        img[sl] = _oversampled(model, xx[sl], yy[sl], factor)
    img = np.clip(img, 0.0, None)
    return img / img.sum()


def _place(image: np.ndarray, stamp: np.ndarray, x0: int, y0: int):
    """Slices of the image and of the stamp (centred on integer pixel x0, y0) that overlap."""
    h = stamp.shape[0] // 2
    ny, nx = image.shape
    ya, yb = max(y0 - h, 0), min(y0 + h + 1, ny)
    xa, xb = max(x0 - h, 0), min(x0 + h + 1, nx)
    if ya >= yb or xa >= xb:
        return None
    return (slice(ya, yb), slice(xa, xb)), (
        slice(ya - y0 + h, yb - y0 + h),
        slice(xa - x0 + h, xb - x0 + h),
    )


def make_field(
    size: int = 2048,
    n: int = 1500,
    seed: int = 0,
    *,
    n_stars: int | None = None,
    psf_fwhm: float = 3.0,
    psf_beta: float = 3.0,
    pair_fraction: float = 0.1,
    snr_range: tuple[float, float] = (3.0, 2000.0),
    snr_slope: float = 1.7,
    depth: float = 1.0,
    gradient: bool = False,
    edge: int = 5,
) -> dict:
    """Simulate a field of Sérsic galaxies and stars with its truth.

    Parameters
    ----------
    size : int
        The image is ``size x size`` pixels.
    n : int
        Number of galaxies.
    seed : int
        Seed of every random draw (``numpy.random.default_rng``).
    n_stars : int, optional
        Number of stars (default ``n // 10``).
    psf_fwhm, psf_beta : float
        Moffat PSF FWHM (pixels) and beta.
    pair_fraction : float
        Fraction of galaxies placed 1-2.5 half-light radii (sum of both) from another one.
    snr_range, snr_slope : tuple, float
        Matched-filter S/N at depth 1 drawn from ``dN/dS ~ S**-snr_slope`` in ``snr_range``.
    depth : float
        Exposure depth: sky sigma is ``1 / sqrt(depth)`` and the Poisson gain ``4 depth``;
        the source population (fluxes) does not change, so S/N scales as ``sqrt(depth)``.
    gradient : bool
        Add a smooth background (a plane plus a broad bump, peak-to-peak ~3 sigma).
    edge : int
        Source centres are kept at least this many pixels from the border.

    Returns
    -------
    dict
        ``image`` (float32, noisy, background included), ``rms`` (float32 sky sigma map),
        ``psf`` (float64, unit sum), ``truth`` (Table), ``segmap`` (int32 truth map),
        ``noiseless`` (float32), ``background`` (float32; zeros without ``gradient``),
        ``sigma`` (float).
    """
    rng = np.random.default_rng(seed)
    n_stars = n // 10 if n_stars is None else int(n_stars)
    sigma = SKY_SIGMA / np.sqrt(depth)
    gain = GAIN * depth
    psf_half = int(np.ceil(4 * psf_fwhm))
    psf = moffat_psf(psf_fwhm, psf_beta, psf_half)

    # --- galaxy population -----------------------------------------------------------
    def powerlaw(lo, hi, slope, k):
        a = 1.0 - slope
        u = rng.uniform(size=k)
        return (lo**a + u * (hi**a - lo**a)) ** (1.0 / a)

    snr_gal = powerlaw(*snr_range, snr_slope, n)
    sersic_n = 10 ** rng.uniform(np.log10(0.5), np.log10(6.0), n)
    log_re = np.log(3.5) + 0.22 * np.log(snr_gal / 10.0) + rng.normal(0.0, 0.45, n)
    r_e = np.clip(np.exp(log_re), 2.0, 25.0)
    q = rng.uniform(0.2, 1.0, n)
    pa = rng.uniform(0.0, np.pi, n)
    x = rng.uniform(edge, size - 1 - edge, n)
    y = rng.uniform(edge, size - 1 - edge, n)
    n_pairs = round(pair_fraction * n)
    if n_pairs and n > 1:
        movers = rng.choice(n, n_pairs, replace=False)
        for i in movers:
            j = int(rng.integers(n))
            while j == i:
                j = int(rng.integers(n))
            sep = rng.uniform(1.0, 2.5) * max(r_e[i] + r_e[j], 4.0) * 0.5 + 2.0
            ang = rng.uniform(0, 2 * np.pi)
            x[i] = np.clip(x[j] + sep * np.cos(ang), edge, size - 1 - edge)
            y[i] = np.clip(y[j] + sep * np.sin(ang), edge, size - 1 - edge)

    snr_star = powerlaw(snr_range[0], 5000.0, snr_slope, n_stars)
    xs = rng.uniform(edge, size - 1 - edge, n_stars)
    ys = rng.uniform(edge, size - 1 - edge, n_stars)

    n_all = n + n_stars
    noiseless = np.zeros((size, size), np.float64)
    best = np.zeros((size, size), np.float32)
    owner = np.zeros((size, size), np.int32)
    flux = np.zeros(n_all)
    snr_true = np.zeros(n_all)

    def add(k, stamp_unit, xc, yc, target_snr):
        ix, iy = int(np.floor(xc + 0.5)), int(np.floor(yc + 0.5))
        sl = _place(noiseless, stamp_unit, ix, iy)
        if sl is None:
            return
        img_sl, st_sl = sl
        part = stamp_unit[st_sl]
        # Flux from the S/N at depth 1 of the part inside the image.
        unit_snr = np.sqrt(np.sum(part**2)) / SKY_SIGMA
        f = target_snr / unit_snr
        contrib = (f * part).astype(np.float32)
        noiseless[img_sl] += contrib
        better = contrib > best[img_sl]
        best[img_sl][better] = contrib[better]
        owner[img_sl][better] = k + 1
        flux[k] = f * stamp_unit.sum()
        snr_true[k] = np.sqrt(np.sum(contrib.astype(float) ** 2)) / sigma

    for k in range(n):
        half = int(np.clip(np.ceil(5.0 * r_e[k] * (1.0 + 0.15 * sersic_n[k])), 10, 200))
        dx = x[k] - np.floor(x[k] + 0.5)
        dy = y[k] - np.floor(y[k] + 0.5)
        gal = render_sersic(r_e[k], sersic_n[k], q[k], pa[k], dx, dy, half)
        conv = fftconvolve(np.pad(gal, psf_half), psf, mode="same")
        add(k, np.clip(conv, 0.0, None), x[k], y[k], snr_gal[k])
    for s in range(n_stars):
        dx = xs[s] - np.floor(xs[s] + 0.5)
        dy = ys[s] - np.floor(ys[s] + 0.5)
        add(n + s, moffat_psf(psf_fwhm, psf_beta, psf_half, dx, dy), xs[s], ys[s], snr_star[s])

    segmap = np.where(best > sigma, owner, 0).astype(np.int32)

    background = np.zeros((size, size), np.float32)
    if gradient:
        yy, xx = np.mgrid[0:size, 0:size] / float(size)
        gx, gy = rng.uniform(-1, 1, 2)
        cx, cy = rng.uniform(0.2, 0.8, 2)
        bump = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.25**2))
        background = (SKY_SIGMA * (1.5 * (gx * (xx - 0.5) + gy * (yy - 0.5)) + 1.5 * bump)).astype(
            np.float32
        )

    # Noise: Poisson on the source counts, Gaussian sky.
    poisson = rng.poisson(np.clip(noiseless, 0, None) * gain) / gain - noiseless
    image = noiseless + poisson + rng.normal(0.0, sigma, noiseless.shape) + background
    rms = np.full((size, size), sigma, np.float32)

    nan = np.full(n_stars, np.nan)
    truth = Table()
    truth["id"] = np.arange(1, n_all + 1, dtype=np.int32)
    truth["x"] = np.concatenate([x, xs])
    truth["y"] = np.concatenate([y, ys])
    truth["n"] = np.concatenate([sersic_n, nan])
    truth["r_e"] = np.concatenate([r_e, np.zeros(n_stars)])
    truth["q"] = np.concatenate([q, np.ones(n_stars)])
    truth["pa"] = np.concatenate([pa, np.zeros(n_stars)])
    truth["flux"] = flux
    truth["class"] = np.array(["galaxy"] * n + ["star"] * n_stars)
    truth["snr"] = snr_true
    truth["x"].unit = truth["y"].unit = truth["r_e"].unit = "pix"
    truth["pa"].unit = "rad"
    truth.meta.update(
        size=size,
        n=n,
        n_stars=n_stars,
        seed=seed,
        psf_fwhm=psf_fwhm,
        psf_beta=psf_beta,
        sky_sigma=float(sigma),
        gain=float(gain),
        depth=float(depth),
        gradient=bool(gradient),
    )
    return {
        "image": image.astype(np.float32),
        "rms": rms,
        "psf": psf,
        "truth": truth,
        "segmap": segmap,
        "noiseless": noiseless.astype(np.float32),
        "background": background,
        "sigma": float(sigma),
    }


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_field(field: dict, out: str | os.PathLike) -> None:
    """Write image.fits, rms.fits, psf.fits, truth.ecsv and truth_segmap.fits into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, key in (
        ("image", "image"),
        ("rms", "rms"),
        ("psf", "psf"),
        ("truth_segmap", "segmap"),
    ):
        data = field[key]
        _atomic(
            out / f"{name}.fits",
            lambda tmp, d=data: fits.PrimaryHDU(d).writeto(tmp, overwrite=True),
        )
    _atomic(
        out / "truth.ecsv",
        lambda tmp: field["truth"].write(tmp, format="ascii.ecsv", overwrite=True),
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--n", type=int, default=1500, help="number of galaxies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--depth", type=float, default=1.0)
    p.add_argument("--gradient", action="store_true", help="add a smooth background")
    args = p.parse_args(argv)
    field = make_field(args.size, args.n, args.seed, depth=args.depth, gradient=args.gradient)
    write_field(field, args.out)
    t = field["truth"]
    print(f"wrote {args.out}: {len(t)} sources, {int((t['snr'] > 20).sum())} with S/N > 20")


if __name__ == "__main__":
    main()
