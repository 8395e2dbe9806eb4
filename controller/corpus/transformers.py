"""The corpus's transformers: ViT-Ti, a Swin-T stage, MobileViT-XS and a BERT-base encoder layer.

Each is written from its paper's definition with the batch as the leading axis of every tensor: windows (Swin)
and patch positions (MobileViT) get axes of their own instead of being folded into the batch, which computes
the same function and keeps every shape batch-first, as the graph IR's are. Attention is written out
(projections, ``q @ k^T`` scaled, softmax, ``@ v``) as the papers give it.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.controller.corpus.blocks import conv_bn
from hwnas.controller.corpus.cnns import InvertedResidual


class Attention(nn.Module):
    """Multi-head self-attention over the second-to-last axis of (B, ..., tokens, dim), with an optional
    additive bias on the scores (Swin's relative position bias and shift mask)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, bias=None):
        *lead, tokens, dim = x.shape
        depth = len(lead)
        qkv = self.qkv(x).reshape(*lead, tokens, 3, self.heads, dim // self.heads)
        # (..., tokens, 3, heads, d) -> (..., 3, heads, tokens, d): the batch stays the leading axis
        q, k, v = qkv.permute(*range(depth), depth + 1, depth + 2, depth, depth + 3).unbind(depth)
        scores = (q @ k.transpose(-2, -1)) * self.scale
        if bias is not None:
            scores = scores + bias
        out = (scores.softmax(-1) @ v).transpose(-3, -2).reshape(*lead, tokens, dim)
        return self.proj(out)


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__(nn.Linear(dim, hidden), act(), nn.Linear(hidden, dim))


class PreNormBlock(nn.Module):
    """A ViT encoder block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, act: type[nn.Module] = nn.GELU,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=eps), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=eps), Mlp(dim, int(dim * mlp_ratio), act)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT (Dosovitskiy et al. 2021) at DeiT-Ti's size: 16x16 patches, 192 wide, 12 blocks of 3 heads, a class
    token and learnt position embeddings, 5.7 M parameters."""

    def __init__(self, image: int = 224, patch: int = 16, dim: int = 192, depth: int = 12, heads: int = 3,
                 classes: int = 1000) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[PreNormBlock(dim, heads, 4.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


def vit_tiny() -> nn.Module:
    return VisionTransformer()


class BertLayer(nn.Module):
    """One BERT-base encoder layer (Devlin et al. 2019): 12-head self-attention with separate Q, K, V
    projections, then a 3072-wide GELU feed-forward, each added back and LayerNorm'd after (post-norm)."""

    def __init__(self, dim: int = 768, heads: int = 12, hidden: int = 3072) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        self.output = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-12)
        self.ffn = Mlp(dim, hidden)
        self.norm2 = nn.LayerNorm(dim, eps=1e-12)

    def _heads(self, x):
        b, tokens, dim = x.shape
        return x.reshape(b, tokens, self.heads, dim // self.heads).permute(0, 2, 1, 3)

    def forward(self, x):
        b, tokens, dim = x.shape
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = (q @ k.transpose(-1, -2)) / (dim // self.heads) ** 0.5
        context = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, tokens, dim)
        x = self.norm1(x + self.output(context))
        return self.norm2(x + self.ffn(x))


def bert_base_layer() -> nn.Module:
    return BertLayer()


def _window_partition(x, window: int):
    """(B, H, W, C) -> (B, windows, window*window, C)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // window) * (w // window), window * window, c)


def _window_merge(x, window: int, h: int, w: int):
    """(B, windows, window*window, C) -> (B, H, W, C)."""
    b, _, _, c = x.shape
    x = x.reshape(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class SwinBlock(nn.Module):
    """Swin's block (Liu et al. 2021): (shifted) window attention with a learnt relative position bias, then
    an MLP, both pre-norm and residual; a shifted block masks the scores across the windows' seams."""

    def __init__(self, dim: int, heads: int, resolution: int, window: int = 7, shift: int = 0) -> None:
        super().__init__()
        self.window, self.shift, self.resolution = window, shift, resolution
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, 4 * dim)
        self.bias_table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("bias_index", relative[..., 0] * (2 * window - 1) + relative[..., 1], persistent=False)
        self.register_buffer("mask", self._shift_mask() if shift else None, persistent=False)

    def _shift_mask(self):
        """-100 where a shifted window's query and key come from different regions of the unshifted map."""
        regions = torch.zeros(1, self.resolution, self.resolution, 1)
        cuts = (slice(0, -self.window), slice(-self.window, -self.shift), slice(-self.shift, None))
        label = 0
        for rows in cuts:
            for cols in cuts:
                regions[:, rows, cols, :] = label
                label += 1
        ids = _window_partition(regions, self.window).squeeze(-1)  # (1, windows, tokens)
        return (ids[:, :, None, :] != ids[:, :, :, None]).float() * -100.0

    def forward(self, x):
        _, h, w, _ = x.shape
        tokens = self.window * self.window
        bias = self.bias_table[self.bias_index.reshape(-1)].reshape(tokens, tokens, -1).permute(2, 0, 1)
        if self.mask is not None:  # (1, windows, 1, tokens, tokens) + (heads, tokens, tokens)
            bias = self.mask[:, :, None] + bias
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        y = _window_merge(self.attn(_window_partition(y, self.window), bias), self.window, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Each 2x2 neighbourhood's four vectors concatenated, LayerNorm'd and projected to twice the width."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        return self.reduction(self.norm(torch.cat(parts, -1)))


class SwinStage(nn.Module):
    """Swin-T's first stage at 224 px: 4x4 patch embedding to 96 channels, a window and a shifted-window
    block (3 heads, 7x7 windows at 56x56), and the patch merging into stage two."""

    def __init__(self, dim: int = 96, heads: int = 3, resolution: int = 56) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, 4)
        self.embed_norm = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(SwinBlock(dim, heads, resolution), SwinBlock(dim, heads, resolution, shift=3))
        self.merge = PatchMerging(dim)

    def forward(self, x):
        x = self.embed_norm(self.patch_embed(x).permute(0, 2, 3, 1))
        return self.merge(self.blocks(x))


def swin_tiny_stage() -> nn.Module:
    return SwinStage()


class MobileVitBlock(nn.Module):
    """MobileViT's block (Mehta & Rastegari 2022): a local 3x3 and a 1x1 conv, transformers over the pixels
    at the same position of every 2x2 patch, a 1x1 conv back, and a 3x3 conv fusing it with the input."""

    def __init__(self, channels: int, dim: int, depth: int, patch: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Sequential(conv_bn(channels, channels, 3, act=nn.SiLU),
                                   nn.Conv2d(channels, dim, 1, bias=False))
        self.transformer = nn.Sequential(*[PreNormBlock(dim, heads, 2.0, nn.SiLU, eps=1e-5) for _ in range(depth)],
                                         nn.LayerNorm(dim))
        self.project = conv_bn(dim, channels, 1, act=nn.SiLU)
        self.fuse = conv_bn(2 * channels, channels, 3, act=nn.SiLU)

    def forward(self, x):
        y = self.local(x)
        b, c, h, w = y.shape
        p = self.patch
        # unfold: (B, C, H, W) -> (B, p*p, patches, C), a sequence of patches per pixel position
        y = y.reshape(b, c, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1).reshape(b, p * p, -1, c)
        y = self.transformer(y)
        y = y.reshape(b, p, p, h // p, w // p, c).permute(0, 5, 3, 1, 4, 2).reshape(b, c, h, w)
        return self.fuse(torch.cat([x, self.project(y)], 1))


def mobilevit_xs(block: type[MobileVitBlock] = MobileVitBlock) -> nn.Module:
    """MobileViT-XS at 256 px: MobileNetV2 blocks (expansion 4, SiLU) and MobileViT blocks of 96, 120 and 144
    wide transformers (2, 4 and 3 layers), 2.3 M parameters; ``block`` lays the MobileViT blocks out."""
    layers: list[nn.Module] = [conv_bn(3, 16, 3, 2, act=nn.SiLU)]
    cin = 16
    for cout, stride, repeats, transformer in ((32, 1, 1, None), (48, 2, 3, None), (64, 2, 1, (96, 2)),
                                               (80, 2, 1, (120, 4)), (96, 2, 1, (144, 3))):
        for k in range(repeats):
            layers.append(InvertedResidual(cin, 4 * cin, cout, 3, stride if k == 0 else 1, nn.SiLU))
            cin = cout
        if transformer:
            layers.append(block(cout, *transformer))
    return nn.Sequential(*layers, conv_bn(96, 384, 1, act=nn.SiLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(384, 1000))


class CrossAttention(nn.Module):
    """Decoder tokens (queries) attending to the encoder's (keys and values), multi-head."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, memory):
        b, tokens, dim = x.shape
        head = dim // self.heads
        q = self.query(x).reshape(b, tokens, self.heads, head).permute(0, 2, 1, 3)
        kv = self.key_value(memory).reshape(b, memory.shape[1], 2, self.heads, head).permute(0, 2, 3, 1, 4)
        k, v = kv.unbind(1)
        scores = (q @ k.transpose(-2, -1)) * self.scale
        return self.proj((scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, tokens, dim))


class DecoderLayer(nn.Module):
    """A post-norm decoder layer: causal self-attention, attention to the encoder, a ReLU feed-forward."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attn, self.norm1 = Attention(dim, heads), nn.LayerNorm(dim)
        self.cross_attn, self.norm2 = CrossAttention(dim, heads), nn.LayerNorm(dim)
        self.ffn, self.norm3 = Mlp(dim, hidden, nn.ReLU), nn.LayerNorm(dim)

    def forward(self, x, memory, causal):
        x = self.norm1(x + self.self_attn(x, causal))
        x = self.norm2(x + self.cross_attn(x, memory))
        return self.norm3(x + self.ffn(x))


class HatTransformer(nn.Module):
    """A HAT-style encoder-decoder (Wang et al. 2020): heterogeneous layers (heads and feed-forward widths per
    layer) and *arbitrary encoder-decoder attention*: each decoder layer attends to the outputs of the last
    1-3 encoder layers, concatenated along the tokens. Inputs: source and target token embeddings (the
    lookups and the vocabulary projection are left out). The configuration is one of HAT's space: 512 wide,
    6 encoder layers, 3 decoder layers."""

    ENCODER = ((8, 3072), (8, 2048), (4, 3072), (8, 1024), (4, 2048), (8, 3072))  # (heads, FFN) per layer
    DECODER = ((8, 2048, 1), (4, 3072, 2), (8, 1024, 3))  # (heads, FFN, encoder layers attended to)

    def __init__(self, dim: int = 512, target_tokens: int = 16) -> None:
        super().__init__()
        self.encoder = nn.ModuleList(BertLayer(dim, heads, hidden) for heads, hidden in self.ENCODER)
        self.decoder = nn.ModuleList(DecoderLayer(dim, heads, hidden) for heads, hidden, _ in self.DECODER)
        future = torch.triu(torch.ones(target_tokens, target_tokens, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal", future.float() * -1e4, persistent=False)

    def forward(self, source, target):
        states = []
        for layer in self.encoder:
            source = layer(source)
            states.append(source)
        for layer, (_, _, attended) in zip(self.decoder, self.DECODER, strict=True):
            memory = torch.cat(states[-attended:], dim=1) if attended > 1 else states[-1]
            target = layer(target, memory, self.causal)
        return target


def hat_encoder_decoder() -> nn.Module:
    return HatTransformer()
