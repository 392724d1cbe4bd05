"""The user-facing SersicNet: load shipped weights, predict a Table from stamps."""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import numpy as np
import torch
from astropy import units as u
from astropy.table import Table

from ...exceptions import InputError, ParameterError
from ...flags import Flag
from .model import TARGETS, SersicEncoderDecoder, normalise_stamps

__all__ = ["WEIGHTS", "SersicNet"]

#: Weights shipped in the package (written by ``morphoscope nn train`` with the
#: shipped ``config.json``); the architecture and statistics are in the sibling JSON.
WEIGHTS = Path(__file__).with_name("sersicnet.pt")

#: Largest fraction of non-finite pixels in a stamp that is filled with zeros
#: (flag ``MASKED_PIXELS``); above it the predictions are NaN (``MEASURE_FAILED``).
MAX_BAD_FRACTION = 0.2

_LN10 = np.log(10.0)


class SersicNet(SersicEncoderDecoder):
    """Neural Sérsic estimator: parameters with uncertainties from a galaxy cutout.

    A compact convolutional encoder (6 convolutions, 4 down-samplings) and a small
    transposed-convolution decoder (see :mod:`morphoscope.nn.sersic.model`). The
    network sees each stamp divided by a robust flux scale (the flux within
    ``size / 8`` pixels of the centre), so that it works in any flux unit, plus the PSF
    FWHM and the noise level. It predicts the Sérsic index ``n``, the semi-major
    half-light radius ``r_e`` (pixels, before the PSF), the axis ratio ``q``, the
    position angle, the total flux and the centre, each with a Gaussian uncertainty
    (in dex for ``n``, ``r_e`` and flux) calibrated on held-out simulations, and the
    noiseless PSF-convolved model of the central galaxy.

    Parameters
    ----------
    size, width, latent : int
        Architecture (see :class:`~morphoscope.nn.sersic.model.SersicEncoderDecoder`).

    Attributes
    ----------
    info : dict
        Architecture, training configuration and metrics (the JSON beside the weights).

    Notes
    -----
    The training domain of the shipped weights (see ``model_card.md``): 64x64 stamps,
    PSF FWHM 1.5-6 px, ``0.5 <= n <= 6``, ``1 <= r_e <= 12`` px, S/N 8-1000. Larger
    galaxies should be binned first (:func:`~morphoscope.nn.predict_catalog` does it).

    Examples
    --------
    >>> from morphoscope.nn import SersicNet
    >>> from morphoscope.simulate import simulate_stamps
    >>> st = simulate_stamps(2, seed=1, sersic_n_range=(1, 4), neighbours=0,
    ...                      class_fractions=[0.5, 0.5, 0, 0])
    >>> net = SersicNet.pretrained()
    >>> cat = net.predict(st.images, psf_fwhm=st.psf_fwhm, rms=st.rms)
    >>> len(cat), "sersic_n" in cat.colnames
    (2, True)
    """

    def __init__(self, size: int = 64, width: int = 16, latent: int = 256) -> None:
        super().__init__(size=size, width=width, latent=latent)
        k = len(TARGETS)
        self.register_buffer("target_mean", torch.zeros(k))
        self.register_buffer("target_std", torch.ones(k))
        self.register_buffer("sigma_scale", torch.ones(k))
        self.info: dict = {"size": size, "width": width, "latent": latent}

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, path: str | Path) -> SersicNet:
        """Load weights ``path`` (``.pt``) and the JSON of the same name beside them."""
        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not path.exists() or not meta_path.exists():
            raise InputError(str(path), "weights or their .json description not found")
        info = json.loads(meta_path.read_text())
        net = cls(int(info["size"]), int(info["width"]), int(info["latent"]))
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.info = info
        net.eval()
        return net

    @classmethod
    def pretrained(cls) -> SersicNet:
        """The network shipped with morphoscope (no download)."""
        return cls.load(WEIGHTS)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.pt`` state dict) and its ``.json`` (``info``) atomically."""
        from ...io.write import atomic_write

        path = Path(path)
        with atomic_write(path) as tmp:
            torch.save(self.state_dict(), tmp)
        with atomic_write(path.with_suffix(".json"), "w") as tmp:
            Path(tmp).write_text(json.dumps(self.info, indent=1, default=_jsonable) + "\n")
        return path

    # -------------------------------------------------------------- predict
    def predict(
        self,
        stamps,
        psf_fwhm,
        rms=None,
        *,
        batch_size: int = 1024,
        reconstruct: bool = False,
    ):
        """Sérsic parameters of the galaxy at the centre of each stamp.

        Parameters
        ----------
        stamps : array_like
            ``(size, size)`` or ``(n, size, size)`` background-subtracted cutouts centred
            (within ~1.5 px) on the galaxy; ``size`` is the network's (64).
        psf_fwhm : float or array_like
            PSF FWHM in pixels, one value or one per stamp.
        rms : float or array_like, optional
            Noise standard deviation per pixel, one value or one per stamp. Default:
            estimated per stamp from the outer ring of pixels (1.4826 x MAD).
        batch_size : int
            Stamps per forward pass (memory ~ ``batch_size`` x 0.5 MB).
        reconstruct : bool
            Also return the noiseless model of each central galaxy.

        Returns
        -------
        table : astropy.table.Table
            One row per stamp: ``sersic_n``, ``sersic_rhalf`` [pix], ``sersic_q``,
            ``sersic_theta`` [rad, CCW from +x], ``sersic_flux`` (stamp units),
            ``sersic_xc``, ``sersic_yc`` [pix, 0-based in the stamp], each with ``_err``
            (1 sigma; also ``_err_dex`` for n, r_e and flux, whose errors are Gaussian
            in log10), ``rms``, ``psf_fwhm`` and ``flag``.
        reconstruction : numpy.ndarray
            ``(n, size, size)`` float32, only when ``reconstruct`` is True.

        Notes
        -----
        Time O(n): about 1 ms per stamp on 2 CPU cores (see the benchmark); memory
        O(batch_size size^2). Stamps with more than 20 % non-finite pixels give NaN and
        ``MEASURE_FAILED``; fewer are zero-filled and flagged ``MASKED_PIXELS``.
        """
        imgs, fwhm, noise, flags, bad = self._check_inputs(stamps, psf_fwhm, rms, batch_size)
        n = imgs.shape[0]
        k = len(TARGETS)
        mu = np.zeros((n, k), np.float32)
        sig = np.zeros((n, k), np.float32)
        scale = np.zeros(n)
        rec = np.zeros((n, self.size, self.size), np.float32) if reconstruct else None
        mean = self.target_mean.numpy()
        std = self.target_std.numpy()
        cal = self.sigma_scale.numpy()
        self.eval()
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                sl = slice(start, min(n, start + batch_size))
                x, extra, s = normalise_stamps(imgs[sl], noise[sl], fwhm[sl])
                xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
                m, lv, r = self(xt, torch.from_numpy(extra), reconstruct)
                mu[sl] = m.numpy() * std + mean
                sig[sl] = np.exp(0.5 * lv.numpy()) * std * cal
                scale[sl] = s
                if reconstruct:
                    rec[sl] = r.numpy() * (s / 100.0)[:, None, None]
        table = self._table(mu, sig, scale, fwhm, noise, flags, bad)
        return (table, rec) if reconstruct else table

    def _check_inputs(self, stamps, psf_fwhm, rms, batch_size):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise ParameterError("batch_size", batch_size, "a positive integer")
        if batch_size < 1:
            raise ParameterError("batch_size", batch_size, "a positive integer")
        try:
            imgs = np.array(stamps, dtype=np.float32, copy=True)
        except (TypeError, ValueError) as exc:
            raise InputError("stamps", f"not a numeric array ({exc})") from None
        if imgs.ndim == 2:
            imgs = imgs[None]
        if imgs.ndim != 3 or imgs.shape[1:] != (self.size, self.size):
            raise InputError(
                "stamps",
                f"expected shape ({self.size}, {self.size}) or (n, {self.size}, {self.size}), "
                f"got {np.shape(stamps)}; cut stamps with morphoscope.nn.predict_catalog",
            )
        n = imgs.shape[0]
        finite = np.isfinite(imgs)
        bad_frac = 1.0 - finite.mean(axis=(1, 2)) if n else np.zeros(0)
        flags = np.where(bad_frac > 0, int(Flag.MASKED_PIXELS), 0).astype(np.int32)
        bad = bad_frac > MAX_BAD_FRACTION
        flags[bad] |= int(Flag.MEASURE_FAILED)
        imgs[~finite] = 0.0
        fwhm = _per_stamp("psf_fwhm", psf_fwhm, n)
        if rms is None:
            noise = _ring_rms(imgs, finite)
        else:
            noise = _per_stamp("rms", rms, n)
        poor = ~(noise > 0)
        noise = np.where(poor, 1.0, noise)
        flags[poor] |= int(Flag.MEASURE_FAILED)
        bad |= poor
        return imgs, fwhm, noise, flags, bad

    def _table(self, mu, sig, scale, fwhm, noise, flags, bad) -> Table:
        idx = {t: i for i, t in enumerate(TARGETS)}
        c = (self.size - 1) / 2.0
        cols: dict[str, tuple[np.ndarray, object]] = {}
        for name, key, unit in (("sersic_n", "log_n", None), ("sersic_rhalf", "log_re", u.pix)):
            val = 10.0 ** mu[:, idx[key]].astype(np.float64)
            cols[name] = (val, unit)
            cols[name + "_err"] = (val * _LN10 * sig[:, idx[key]], unit)
            cols[name + "_err_dex"] = (sig[:, idx[key]], None)
        cols["sersic_q"] = (np.clip(mu[:, idx["q"]], 0.0, 1.0), None)
        cols["sersic_q_err"] = (sig[:, idx["q"]], None)
        cc, ss = mu[:, idx["cos2pa"]], mu[:, idx["sin2pa"]]
        rr = np.maximum(np.hypot(cc, ss), 1e-6)
        theta_err = 0.5 * np.hypot(ss * sig[:, idx["cos2pa"]], cc * sig[:, idx["sin2pa"]]) / rr**2
        cols["sersic_theta"] = (np.mod(0.5 * np.arctan2(ss, cc), np.pi), u.rad)
        cols["sersic_theta_err"] = (np.minimum(theta_err, np.pi / 2), u.rad)
        flux = scale * 10.0 ** mu[:, idx["log_flux"]].astype(np.float64)
        cols["sersic_flux"] = (flux, None)
        cols["sersic_flux_err"] = (flux * _LN10 * sig[:, idx["log_flux"]], None)
        cols["sersic_flux_err_dex"] = (sig[:, idx["log_flux"]], None)
        cols["sersic_xc"] = (c + mu[:, idx["dx"]], u.pix)
        cols["sersic_yc"] = (c + mu[:, idx["dy"]], u.pix)
        cols["sersic_xc_err"] = (sig[:, idx["dx"]], u.pix)
        cols["sersic_yc_err"] = (sig[:, idx["dy"]], u.pix)
        t = Table()
        for name, (val, unit) in cols.items():
            val = np.array(val, dtype=np.float64)
            val[bad] = np.nan
            t[name] = val
            t[name].unit = unit
        t["rms"] = noise
        t["psf_fwhm"] = fwhm
        t["psf_fwhm"].unit = u.pix
        t["flag"] = flags
        return t


def _per_stamp(name: str, value, n: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(name, value, "a positive number or one per stamp") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ParameterError(name, value, f"a finite positive number or {n} of them")
    return arr


def _ring_rms(imgs: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Per-stamp noise from the outer 4-pixel ring (1.4826 x MAD)."""
    size = imgs.shape[-1]
    ring = np.ones((size, size), bool)
    ring[4:-4, 4:-4] = False
    out = np.empty(imgs.shape[0])
    for i in range(imgs.shape[0]):
        v = imgs[i][ring & finite[i]]
        out[i] = 1.4826 * np.median(np.abs(v - np.median(v))) if v.size > 10 else np.nan
    return out


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")
