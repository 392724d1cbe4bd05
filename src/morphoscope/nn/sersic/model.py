"""SersicNet: a compact convolutional encoder-decoder for Sérsic parameters.

The encoder reads a normalised single-band cutout (two channels: the flux-normalised
image and its ``asinh`` S/N stretch), the PSF FWHM and the noise level, and returns
the mean and log-variance of eight standardised targets:

=========  ===============================================================
target     meaning
=========  ===============================================================
log10 n    Sérsic index
log10 r_e  semi-major half-light radius before the PSF, pixels
q          axis ratio b/a
cos 2θ     position angle θ (radians, CCW from +x) as a unit vector
sin 2θ
log10 f/s  total flux over the robust flux scale ``s`` of the stamp
dx, dy     centre offset from the stamp centre, pixels
=========  ===============================================================

The decoder turns the same latent vector into the noiseless PSF-convolved model of the
central galaxy (in units of ``s / 100`` per pixel), which is how the network
deblends it from neighbours and noise.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

__all__ = ["TARGETS", "SersicEncoderDecoder", "normalise_stamps"]

#: Names of the predicted (standardised) targets, in output order.
TARGETS: tuple[str, ...] = ("log_n", "log_re", "q", "cos2pa", "sin2pa", "log_flux", "dx", "dy")

#: Multiplier of the flux-normalised image channel (pixel values of order 0.1-10).
IMAGE_GAIN = 100.0


def _aperture(size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2.0
    return np.hypot(xx - c, yy - c) <= size / 8.0


def normalise_stamps(
    images: np.ndarray, rms: np.ndarray, psf_fwhm: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network inputs from stamps (vectorised; ``O(n size^2)`` time and memory).

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, size, size)`` background-subtracted stamps, finite.
    rms : numpy.ndarray
        ``(n,)`` noise standard deviation per stamp (> 0).
    psf_fwhm : numpy.ndarray
        ``(n,)`` PSF FWHM in pixels (> 0).

    Returns
    -------
    x : numpy.ndarray
        ``(n, 2, size, size)`` float32: ``image / s * 100`` and ``asinh(image / 3 rms) / 3``.
    extra : numpy.ndarray
        ``(n, 2)`` float32: ``log(psf_fwhm)`` and ``log10(100 rms / s)``.
    scale : numpy.ndarray
        ``(n,)`` the robust flux scale ``s``: the flux in a central circle of radius
        ``size / 8``, at least ``3 rms sqrt(N_pix)`` of that circle.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((1, 64, 64), np.float32); img[0, 31:33, 31:33] = 25.0
    >>> x, extra, s = normalise_stamps(img, np.array([1.0]), np.array([2.0]))
    >>> x.shape, float(s[0])
    ((1, 2, 64, 64), 100.0)
    """
    images = np.asarray(images, dtype=np.float32)
    size = images.shape[-1]
    ap = _aperture(size)
    rms = np.asarray(rms, dtype=np.float64)
    flux = images[:, ap].sum(axis=1, dtype=np.float64)
    floor = 3.0 * rms * np.sqrt(ap.sum())
    scale = np.maximum(flux, floor)
    x = np.empty((images.shape[0], 2, size, size), dtype=np.float32)
    x[:, 0] = images * (IMAGE_GAIN / scale)[:, None, None].astype(np.float32)
    x[:, 1] = np.arcsinh(images / (3.0 * rms)[:, None, None].astype(np.float32)) / 3.0
    extra = np.stack(
        [np.log(np.asarray(psf_fwhm, np.float64)), np.log10(IMAGE_GAIN * rms / scale)], axis=1
    ).astype(np.float32)
    return x, extra, scale


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    pad = (k - 1) // 2 if stride == 1 else (k - stride + 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SersicEncoderDecoder(nn.Module):
    """The bare network: ``(x, extra) -> (mean, log_var, reconstruction)``.

    Parameters
    ----------
    size : int
        Side of the input stamps (a multiple of 16).
    width : int
        Channels of the first convolution; they double at each of the 4 down-samplings.
    latent : int
        Size of the latent vector shared by the heads and the decoder.

    Notes
    -----
    With the defaults (64, 16, 256): about 0.9 M parameters, about 9 M multiply-adds
    for the encoder and 2 M for the decoder per stamp.
    """

    def __init__(self, size: int = 64, width: int = 16, latent: int = 256) -> None:
        super().__init__()
        if size % 16:
            raise ValueError("size must be a multiple of 16")
        self.size, self.width, self.latent = size, width, latent
        w = width
        self.encoder = nn.Sequential(
            _conv(2, w, 4, 2),  # size/2
            _conv(w, 2 * w, 3, 2),  # size/4
            _conv(2 * w, 2 * w),
            _conv(2 * w, 4 * w, 3, 2),  # size/8
            _conv(4 * w, 4 * w),
            _conv(4 * w, 8 * w, 3, 2),  # size/16
        )
        feat = 8 * w * (size // 16) ** 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(feat, latent), nn.ReLU(inplace=True))
        self.fc2 = nn.Sequential(nn.Linear(latent + 2, latent), nn.ReLU(inplace=True))
        self.head = nn.Linear(latent, 2 * len(TARGETS))
        s0 = size // 16
        self.dec_fc = nn.Sequential(nn.Linear(latent, 2 * w * s0 * s0), nn.ReLU(inplace=True))
        self._dec_shape = (2 * w, s0, s0)
        up = []
        chans = [2 * w, w, w // 2, w // 4]
        for cin, cout in itertools.pairwise(chans):
            up += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.ReLU(inplace=True)]
        up += [nn.ConvTranspose2d(chans[-1], 1, 4, 2, 1)]
        self.decoder = nn.Sequential(*up)

    def encode(self, x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """Latent vector ``(n, latent)``."""
        h = self.fc(self.encoder(x))
        return self.fc2(torch.cat([h, extra], dim=1))

    def heads(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised means and log-variances, each ``(n, 8)``."""
        out = self.head(z)
        k = len(TARGETS)
        return out[:, :k], out[:, k:].clamp(-14.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(n, size, size)`` in units of ``s / 100``."""
        h = self.dec_fc(z).view(-1, *self._dec_shape)
        return self.decoder(h)[:, 0]

    def forward(self, x: torch.Tensor, extra: torch.Tensor, reconstruct: bool = True):
        z = self.encode(x, extra)
        mu, logvar = self.heads(z)
        rec = self.decode(z) if reconstruct else None
        return mu, logvar, rec
