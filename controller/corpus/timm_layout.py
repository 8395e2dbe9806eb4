"""Swin's stage and MobileViT-XS laid out as timm writes them: windows and patch positions folded into the
batch axis, and q, k and v picked by moving the batch axis (``qkv.permute(2, 0, 3, 1, 4).unbind(0)``).

The corpus's own versions (``transformers``) give windows and patch positions axes of their own. These hold
the very same parameters (the same module names, so one's ``state_dict`` loads into the other) and compute
the same function, in the layout a user's timm export has: Swin partitions (B, H, W, C) into (B * windows,
49, C) and back, masks a shifted block's scores through a view that unfolds the windows again, and MobileViT
unfolds (B, C, H, W) into (B * 4, patches, C) through (B * C * rows, 2, columns, 2). The graph IR reads every
leading axis as the batch times a count of the sample's own (``ComputationGraph.with_batch``).
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.controller.corpus.transformers import Attention, MobileVitBlock, SwinBlock, SwinStage, mobilevit_xs


class TimmAttention(Attention):
    """Attention over (B', tokens, dim) as timm writes it; ``mask`` (windows, tokens, tokens) is added per
    window through a view of the scores as (B, windows, heads, tokens, tokens)."""

    def forward(self, x, bias=None, mask=None):
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        scores = (q @ k.transpose(-2, -1)) * self.scale
        if bias is not None:
            scores = scores + bias
        if mask is not None:
            windows = mask.shape[0]
            scores = scores.view(batch // windows, windows, self.heads, tokens, tokens) + mask.unsqueeze(1).unsqueeze(0)
            scores = scores.view(-1, self.heads, tokens, tokens)
        return self.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, tokens, dim))


class TimmSwinBlock(SwinBlock):
    def __init__(self, dim: int, heads: int, resolution: int, window: int = 7, shift: int = 0) -> None:
        super().__init__(dim, heads, resolution, window, shift)
        self.attn = TimmAttention(dim, heads)

    def forward(self, x):
        b, h, w, c = x.shape
        ws, tokens = self.window, self.window * self.window
        bias = self.bias_table[self.bias_index.reshape(-1)].reshape(tokens, tokens, -1).permute(2, 0, 1)
        y = self.norm1(x)
        if self.shift:
            y = y.roll((-self.shift, -self.shift), (1, 2))
        windows = y.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, tokens, c)
        out = self.attn(windows, bias, None if self.mask is None else self.mask[0])
        y = out.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if self.shift:
            y = y.roll((self.shift, self.shift), (1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


def swin_tiny_stage_timm() -> nn.Module:
    stage = SwinStage()
    dim, heads, resolution = 96, 3, 56
    stage.blocks = nn.Sequential(TimmSwinBlock(dim, heads, resolution),
                                 TimmSwinBlock(dim, heads, resolution, shift=3))
    return stage


class TimmMobileVitBlock(MobileVitBlock):
    def __init__(self, channels: int, dim: int, depth: int, patch: int = 2, heads: int = 4) -> None:
        super().__init__(channels, dim, depth, patch, heads)
        for block in self.transformer[:-1]:
            block.attn = TimmAttention(dim, heads)

    def forward(self, x):
        y = self.local(x)
        b, c, h, w = y.shape
        p, rows, cols = self.patch, h // self.patch, w // self.patch
        y = y.reshape(b * c * rows, p, cols, p).transpose(1, 2)
        y = y.reshape(b, c, rows * cols, p * p).transpose(1, 3).reshape(b * p * p, rows * cols, c)
        y = self.transformer(y)
        y = y.contiguous().view(b, p * p, rows * cols, c).transpose(1, 3).reshape(b * c * rows, cols, p, p)
        y = y.transpose(1, 2).reshape(b, c, h, w)
        return self.fuse(torch.cat([x, self.project(y)], 1))


def mobilevit_xs_timm() -> nn.Module:
    return mobilevit_xs(block=TimmMobileVitBlock)
