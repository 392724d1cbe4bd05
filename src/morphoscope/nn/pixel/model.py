"""The fully convolutional U-Net behind :class:`~morphoscope.nn.pixel.PixelClassifier`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["UNet"]


def _block(c_in: int, c_out: int, n_conv: int, dilation: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n_conv):
        d = dilation if i else 1
        layers += [
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=d, dilation=d, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """Small U-Net: ``len(widths) - 1`` poolings by 2, skip connections, 1x1 head.

    Parameters
    ----------
    in_channels : int
        Input channels (two per band slot: the scaled image and its presence flag).
    n_classes : int
        Output channels (logits).
    widths : sequence of int
        Channels at each resolution, full resolution first.
    dilation : int
        Dilation of the second convolution of the coarsest block (widens the field
        of view at no extra cost).

    Notes
    -----
    Inputs of any size are accepted; they are zero-padded to a multiple of
    ``2 ** (len(widths) - 1)`` and the output is cropped back. Zero is empty sky
    in the scaled input, so padding acts like more sky around the image.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int = 5,
        widths: Sequence[int] = (8, 16, 32, 64),
        dilation: int = 2,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        self.factor = 2 ** (len(widths) - 1)
        self.enc = nn.ModuleList()
        c = in_channels
        for i, w in enumerate(widths):
            last = i == len(widths) - 1
            self.enc.append(_block(c, w, 2, dilation if last else 1))
            c = w
        self.dec = nn.ModuleList()
        for w_skip in reversed(widths[:-1]):
            self.dec.append(_block(c + w_skip, w_skip, 1 if w_skip == widths[0] else 2))
            c = w_skip
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(c, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ny, nx = x.shape[-2:]
        py, px = (-ny) % self.factor, (-nx) % self.factor
        if py or px:
            x = nn.functional.pad(x, (0, px, 0, py))
        skips = []
        for i, block in enumerate(self.enc):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.dec:
            x = block(torch.cat([self.up(x), skips.pop()], dim=1))
        return self.head(x)[..., :ny, :nx]


def inference_copy(net: UNet) -> UNet:
    """A copy of ``net`` for inference: batch norms folded into the preceding convolutions
    and weights in channels-last memory order.

    The outputs equal ``net.eval()``'s to float32 rounding (~1e-5); on CPU the forward pass
    is about twice as fast (oneDNN's convolutions prefer channels-last inputs, and the
    folded network makes one pass less per layer). Feed it channels-last tensors
    (``x.contiguous(memory_format=torch.channels_last)``).
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fast = copy.deepcopy(net).eval()
    for seq in fast.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        mods, fused = list(seq.children()), []
        i = 0
        while i < len(mods):
            conv, bn = mods[i], mods[i + 1] if i + 1 < len(mods) else None
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                fused.append(fuse_conv_bn_eval(conv, bn))
                i += 2
            else:
                fused.append(conv)
                i += 1
        for key in list(seq._modules):
            del seq._modules[key]
        for k, mod in enumerate(fused):
            seq.add_module(str(k), mod)
    return fast.to(memory_format=torch.channels_last)

