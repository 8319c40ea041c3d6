"""LRCN (Donahue et al., CVPR 2015): per-frame CNN -> LSTM -> per-step FC, averaged.

Backbones:

* ``inception_v3`` (paper scale, §4.1): torchvision's Inception v3 architecture with
  ``weights=None`` (nothing is downloaded; train it or load a checkpoint), no auxiliary
  head, ``transform_input=False`` (the victim normalises itself), the final fc removed
  so each frame gives the 2048-d pooled feature. Frames of any other size are resized
  to 299x299 (bilinear) inside the model.
* ``small_cnn`` (embedded default): a stride-2 3x3 conv stem (``w = backbone_width``
  channels) and two 3x3 conv + 2x2 max-pool blocks (``2w``, ``2w`` channels), each
  conv followed by BatchNorm and ReLU, then adaptive average
  pooling to a 4x4 grid, flattened and projected (linear + BatchNorm + ReLU) to a
  256-d frame feature. The 4x4
  grid keeps the spatial layout (global pooling would hide *where* the object is, and
  the synthetic classes are defined by where it goes).

The LSTM (one layer, ``hidden`` units) reads the frame features in order; a shared FC
maps every step's hidden state (after dropout) to logits, and the logits are averaged
over time, as in the original LRCN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sva.victims.models.fold import FoldedSequential
from sva.victims.models.normalize import Normalize

INCEPTION_SIZE = 299
SMALL_FEATURE_DIM = 256
SMALL_GRID = 4


class SmallCNN(nn.Module):
    def __init__(self, width: int = 32, feature_dim: int | None = None, grid: int | None = None):
        super().__init__()
        feature_dim = SMALL_FEATURE_DIM if feature_dim is None else feature_dim
        grid = SMALL_GRID if grid is None else grid
        w = width
        # stem: stride-2 conv (full-resolution layers dominate the CPU time)
        layers: list[nn.Module] = [
            nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
        ]
        cin = w
        for cout in (2 * w, 2 * w):
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            cin = cout
        layers.append(nn.AdaptiveAvgPool2d(grid))
        # eval without autograd: each BatchNorm folded into its convolution (fold.py)
        self.conv = FoldedSequential(*layers)
        flat = cin * grid * grid
        # BatchNorm before the ReLU: without it most projection units died within the
        # first few dozen Adam steps and training crawled (docs/victims.md)
        self.proj = (
            nn.Sequential(nn.Linear(flat, feature_dim, bias=False), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
            if feature_dim
            else None
        )
        self.out_dim = feature_dim or flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(x), 1)
        return self.proj(x) if self.proj is not None else x


class InceptionFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False)
        net.fc = nn.Identity()
        self.net = net
        self.out_dim = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        return self.net(x)


class LRCN(nn.Module):
    def __init__(
        self,
        num_classes: int,
        backbone: str = "inception_v3",
        backbone_width: int = 32,
        hidden: int = 256,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.normalize = Normalize()
        if backbone == "inception_v3":
            self.backbone: nn.Module = InceptionFeatures()
        elif backbone == "small_cnn":
            self.backbone = SmallCNN(backbone_width)
        else:
            raise ValueError(f"unknown LRCN backbone {backbone!r}")
        # channels-last convolutions: the small CNN's forward is ~1.5x faster on this CPU
        # (max-pooling in NCHW dominated it; docs/victims.md, LRCN)
        self.backbone.to(memory_format=torch.channels_last)
        self.lstm = nn.LSTM(self.backbone.out_dim, hidden, batch_first=True)
        with torch.no_grad():  # forget-gate bias 1 (Jozefowicz et al. 2015); gates: i, f, g, o
            self.lstm.bias_ih_l0[hidden : 2 * hidden].fill_(1.0)
            self.lstm.bias_hh_l0[hidden : 2 * hidden].zero_()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, 3, H, W) in [0, 1] -> logits (B, num_classes)."""
        b, t = x.shape[:2]
        x = self.normalize(x)
        frames = x.flatten(0, 1).contiguous(memory_format=torch.channels_last)
        feats = self.backbone(frames).view(b, t, -1)
        out, _ = self.lstm(feats)
        return self.fc(self.dropout(out)).mean(dim=1)
