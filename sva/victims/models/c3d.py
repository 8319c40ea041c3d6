"""C3D (Tran et al., ICCV 2015), scalable in width and input size.

Eight 3x3x3 convolutions (conv1a, conv2a, conv3a/b, conv4a/b, conv5a/b; 64, 128, 256,
256, 512, 512, 512, 512 channels times ``width_mult``), five max-pools (pool1 1x2x2,
pool2-5 2x2x2, pool5 padded (0, 1, 1) as in the original at 112x112), fc6, fc7
(``fc_dim``, ReLU, dropout) and fc8. Optional BatchNorm (``batchnorm``) after each
convolution and after fc6 and fc7.

The flattened size after pool5 is computed analytically from the input size at
construction (:func:`c3d_feature_shape`; no dummy forward, so the paper-scale model
builds instantly); at 16x112x112 it is 512x1x4x4 = 8192, as in the original. A pool
whose kernel would be larger than its input along a dimension (short clips, tiny
frames) uses kernel 1 there instead, so any input of at least 1x1x1 works.
"""

from __future__ import annotations

import torch
from torch import nn

from sva.victims.models.fold import FoldedSequential
from sva.victims.models.normalize import Normalize

BASE_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
# (conv indices before the pool, pool kernel, pool padding)
_BLOCKS = (
    ((0,), (1, 2, 2), (0, 0, 0)),
    ((1,), (2, 2, 2), (0, 0, 0)),
    ((2, 3), (2, 2, 2), (0, 0, 0)),
    ((4, 5), (2, 2, 2), (0, 0, 0)),
    ((6, 7), (2, 2, 2), (0, 1, 1)),
)
_CONV_NAMES = ("conv1a", "conv2a", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")


def _pool_out(n: int, k: int, p: int) -> int:
    return (n + 2 * p - k) // 2 + 1 if k > 1 else n


def _pool_params(size: tuple[int, int, int]) -> list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """Per pool: (kernel, stride, padding), shrunk to 1 where the input is too small."""
    out = []
    dims = list(size)
    for _, kernel, pad in _BLOCKS:
        k = tuple(kd if n >= kd else 1 for kd, n in zip(kernel, dims))
        p = tuple(pd if kd > 1 else 0 for pd, kd in zip(pad, k))
        out.append((k, k, p))
        dims = [_pool_out(n, kd, pd) for n, kd, pd in zip(dims, k, p)]
    return out


def c3d_feature_shape(num_frames: int, height: int, width: int) -> tuple[int, int, int]:
    """(T, H, W) after pool5 for an input clip of the given size."""
    dims = [num_frames, height, width]
    for k, _, p in _pool_params((num_frames, height, width)):
        dims = [_pool_out(n, kd, pd) for n, kd, pd in zip(dims, k, p)]
    return tuple(dims)  # type: ignore[return-value]


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` (same parameters, same state dict) that runs a **single video** on
    the CPU through oneDNN (``torch.mkldnn_convolution``) when no gradient is needed.

    PyTorch's CPU backend choice sends a 3x3x3 convolution of a batch of one small clip
    to its reference ``slow_conv3d`` (its rule: batch > 1 or a large first slab), which
    is 4-6x slower than oneDNN here; batches of two or more already take oneDNN. The
    oracle asks about single videos in every sequential search of the hard-label
    attacks, so this is their hottest path (``docs/victims.md``, "The inference path").
    Training and every batch > 1 run ``nn.Conv3d`` unchanged.
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (x.shape[0] == 1 and x.device.type == "cpu" and x.dtype == torch.float32 and _ONEDNN_SINGLE
                and not torch.is_grad_enabled() and self.padding_mode == "zeros"
                and not isinstance(self.padding, str)):
            return torch.mkldnn_convolution(x, weight, bias, self.padding, self.stride, self.dilation, self.groups)
        return super()._conv_forward(x, weight, bias)


class C3D(nn.Module):
    def __init__(
        self,
        num_classes: int,
        input_size: tuple[int, int, int] = (16, 112, 112),
        width_mult: float = 1.0,
        batchnorm: bool = False,
        fc_dim: int = 4096,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.input_size = tuple(int(v) for v in input_size)
        self.normalize = Normalize()
        chans = [max(1, int(round(c * width_mult))) for c in BASE_CHANNELS]
        self.channels = chans
        pools = _pool_params(self.input_size)  # type: ignore[arg-type]
        layers: list[nn.Module] = []
        names: list[str] = []
        cin = 3
        for b, (convs, _, _) in enumerate(_BLOCKS):
            for ci in convs:
                layers.append(Conv3d(cin, chans[ci], kernel_size=3, padding=1, bias=not batchnorm))
                names.append(_CONV_NAMES[ci])
                if batchnorm:
                    layers.append(nn.BatchNorm3d(chans[ci]))
                    names.append(_CONV_NAMES[ci].replace("conv", "bn"))
                layers.append(nn.ReLU(inplace=True))
                names.append(_CONV_NAMES[ci].replace("conv", "relu"))
                cin = chans[ci]
            k, s, p = pools[b]
            layers.append(nn.MaxPool3d(kernel_size=k, stride=s, padding=p))
            names.append(f"pool{b + 1}")
        # eval without autograd: each BatchNorm folded into its convolution (fold.py)
        self.features = FoldedSequential()
        for n, layer in zip(names, layers):
            self.features.add_module(n, layer)
        t, h, w = c3d_feature_shape(*self.input_size)
        self.flat_dim = cin * t * h * w
        self.classifier = nn.Sequential()
        fc_in = self.flat_dim
        for i in (6, 7):
            self.classifier.add_module(f"fc{i}", nn.Linear(fc_in, fc_dim, bias=not batchnorm))
            if batchnorm:  # without it, fc6's ReLUs died within the first steps on some seeds
                self.classifier.add_module(f"bn{i}", nn.BatchNorm1d(fc_dim))
            self.classifier.add_module(f"relu{i}", nn.ReLU(inplace=True))
            self.classifier.add_module(f"drop{i}", nn.Dropout(dropout))
            fc_in = fc_dim
        self.classifier.add_module("fc8", nn.Linear(fc_dim, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=5**0.5)  # torch default, explicit
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, 3, H, W) in [0, 1] -> logits (B, num_classes)."""
        if tuple(x.shape[1:2]) + tuple(x.shape[3:]) != self.input_size:
            raise ValueError(f"C3D built for (T, H, W) = {self.input_size}, got input of shape {tuple(x.shape)}")
        x = self.normalize(x).transpose(1, 2)  # (B, 3, T, H, W)
        if x.is_cuda or _CHANNELS_LAST:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


_CHANNELS_LAST = True  # measured faster on CPU too: see docs/victims.md
#: one video on the CPU goes through oneDNN (:class:`Conv3d`); off: PyTorch's own choice
_ONEDNN_SINGLE = torch.backends.mkldnn.is_available()
