"""Noise-conditional networks f(z, log sigma) for :class:`DenoisingScore` (needs torch).

Two architectures share one calling convention, ``net(z, log_sigma)``: ``z`` has shape
(..., p) (flattened rows, any leading dimensions, including none under
``torch.func.vmap``), ``log_sigma`` is a scalar or has one entry per row, and the output
has the shape of ``z``. The score is f / sigma (see :class:`DenoisingScore`).

* ``MLPNet``: the row and log(sigma) concatenated, then a plain MLP with a smooth
  activation.
* ``UNet``: a small U-Net for images in the spirit of the NCSN (Song & Ermon 2019):
  residual blocks with GroupNorm (per-sample, so outputs stay pointwise in the rows)
  and SiLU, two resolutions below the input, skip connections, and noise conditioning
  by an embedding of log(sigma) added to every block (and a constant log(sigma)
  input channel). The input is zero-padded to a multiple of 2**(levels - 1) and the
  output cropped back.

The classes subclass ``torch.nn.Module``, so they are built on first use
(:func:`network_classes`) and reachable as module attributes through ``__getattr__``,
which keeps a fitted model picklable while importing this module needs no torch.
"""

from __future__ import annotations

import math

__all__ = ["network_classes", "build_network"]

_ACTIVATIONS = {"silu": "SiLU", "softplus": "Softplus", "tanh": "Tanh"}
_CLASSES: dict = {}


def _import_torch():
    from ._denoising import _import_torch as imp

    return imp()


def _groups(channels: int) -> int:
    """Largest group count <= 8 dividing ``channels`` (GroupNorm needs a divisor)."""
    return max(g for g in range(1, 9) if channels % g == 0)


def network_classes() -> dict:
    """Build (once) and return the torch module classes ``MLPNet`` and ``UNet``."""
    if _CLASSES:
        return _CLASSES
    torch = _import_torch()
    nn = torch.nn
    F = torch.nn.functional

    def per_row(log_sigma, n, like):
        """log(sigma) as a (n,) tensor (a scalar is repeated)."""
        ls = torch.as_tensor(log_sigma, dtype=like.dtype, device=like.device).reshape(-1)
        return ls.expand(n) if ls.numel() == 1 else ls.reshape(n)

    class MLPNet(nn.Module):
        """z (..., p) and log sigma -> MLP([z, log sigma]) (..., p)."""

        def __init__(self, n_features, hidden, activation="silu"):
            super().__init__()
            act = getattr(nn, _ACTIVATIONS[activation])
            layers, width = [], n_features + 1
            for h in hidden:
                layers += [nn.Linear(width, int(h)), act()]
                width = int(h)
            layers.append(nn.Linear(width, n_features))
            self.layers = nn.Sequential(*layers)

        def forward(self, z, log_sigma):
            lead = z.shape[:-1]
            flat = z.reshape(-1, z.shape[-1])
            ls = per_row(log_sigma, flat.shape[0], flat)[:, None]
            return self.layers(torch.cat([flat, ls], dim=1)).reshape(*lead, z.shape[-1])

    class ResBlock(nn.Module):
        """GroupNorm-SiLU-conv twice, plus a per-channel bias from the noise embedding."""

        def __init__(self, c_in, c_out, emb):
            super().__init__()
            self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
            self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
            self.emb = nn.Linear(emb, c_out)
            self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
            self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

        def forward(self, x, e):
            h = self.conv1(F.silu(self.norm1(x)))
            h = h + self.emb(e)[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return h + self.skip(x)

    class UNet(nn.Module):
        """Images (..., H * W) and log sigma -> (..., H * W); ``channels`` per resolution."""

        def __init__(self, image_shape, channels=(16, 32, 64), emb=32):
            super().__init__()
            self.image_shape = tuple(int(v) for v in image_shape)
            ch = tuple(int(c) for c in channels)
            self.mult = 2 ** (len(ch) - 1)
            self.embed = nn.Sequential(nn.Linear(1, emb), nn.SiLU(), nn.Linear(emb, emb))
            self.inp = nn.Conv2d(2, ch[0], 3, padding=1)
            self.down = nn.ModuleList()
            self.pool = nn.ModuleList()
            for i, c in enumerate(ch):
                self.down.append(ResBlock(c if i == 0 else ch[i - 1], c, emb))
                if i < len(ch) - 1:
                    self.pool.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
            self.mid = ResBlock(ch[-1], ch[-1], emb)
            self.up = nn.ModuleList()
            for i in range(len(ch) - 2, -1, -1):
                self.up.append(ResBlock(ch[i + 1] + ch[i], ch[i], emb))
            self.out_norm = nn.GroupNorm(_groups(ch[0]), ch[0])
            self.out = nn.Conv2d(ch[0], 1, 3, padding=1)

        def forward(self, z, log_sigma):
            H, W = self.image_shape
            lead, p = z.shape[:-1], z.shape[-1]
            x = z.reshape(-1, 1, H, W)
            n = x.shape[0]
            ls = per_row(log_sigma, n, x)
            ph, pw = (-H) % self.mult, (-W) % self.mult
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph))
            e = self.embed(ls[:, None])
            x = torch.cat([x, ls[:, None, None, None].expand(n, 1, *x.shape[2:])], dim=1)
            h = self.inp(x)
            skips = []
            for i, block in enumerate(self.down):
                h = block(h, e)
                if i < len(self.pool):
                    skips.append(h)
                    h = self.pool[i](h)
            h = self.mid(h, e)
            for block in self.up:
                skip = skips.pop()
                h = F.interpolate(h, size=skip.shape[2:], mode="nearest")
                h = block(torch.cat([h, skip], dim=1), e)
            h = self.out(F.silu(self.out_norm(h)))[:, :, :H, :W]
            return h.reshape(*lead, p)

    for cls in (MLPNet, ResBlock, UNet):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
        _CLASSES[cls.__name__] = cls
    return _CLASSES


def build_network(
    architecture: str,
    n_features: int,
    *,
    hidden=(256, 256),
    activation="silu",
    image_shape=None,
    channels=(16, 32, 64),
):
    """Return an untrained ``MLPNet`` or ``UNet`` (float32, CPU)."""
    classes = network_classes()
    if architecture == "mlp":
        return classes["MLPNet"](n_features, hidden, activation)
    if math.prod(image_shape) != n_features:
        raise ValueError(
            f"image_shape={tuple(image_shape)} holds {math.prod(image_shape)} pixels but X "
            f"has {n_features} features; pass the shape of one image."
        )
    return classes["UNet"](image_shape, channels)


def __getattr__(name):
    # Unpickling a fitted DenoisingScore looks the network classes up here.
    if name in ("MLPNet", "ResBlock", "UNet"):
        return network_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
