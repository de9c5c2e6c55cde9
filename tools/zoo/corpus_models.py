"""The zoo's own nn.Modules: small, self-contained architectures for the
families torchvision lacks (image-to-image, sequence, point clouds) and
tensor-only wrappers around torchvision's detection parts.

Everything here is plain torch.nn built by `tools/zoo/export.py` with random,
seeded weights; nothing is downloaded. Each class says which ONNX ops it is
there to exercise. Sizes are kept moderate so that the whole zoo exports in
about ten minutes on two cores.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------
# Detection: backbone + head as tensors, no anchors decoding, no NMS


class DetectionHeads(nn.Module):
    """A detection network's tensor part: `backbone` (image -> dict of
    feature maps) and `head` (list of feature maps -> dict of tensors).
    Returns the head's tensors in `keys` order. Anchor generation, box
    decoding and NMS (torchvision's postprocess) are left out."""

    def __init__(self, backbone, head, keys):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.keys = list(keys)

    def forward(self, x):
        feats = list(self.backbone(x).values())
        out = self.head(feats)
        return tuple(out[k] for k in self.keys)


def ssdlite_heads():
    """SSDLite320 (MobileNetV3-Large backbone with extra depthwise blocks,
    SSDLite heads): [N,3,320,320] -> box regression [N,A,4], class logits
    [N,A,91]."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    return DetectionHeads(model.backbone, model.head, ["bbox_regression", "cls_logits"])


def _resnet18_fpn(extra_blocks):
    from torchvision.models import resnet18
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    # nn.BatchNorm2d rather than detection's FrozenBatchNorm2d, so that the
    # exporter's BatchNorm calibration gives the random backbone sane
    # statistics.
    return _resnet_fpn_extractor(resnet18(weights=None), trainable_layers=5,
                                 returned_layers=[2, 3, 4], extra_blocks=extra_blocks)


def retinanet_heads():
    """ResNet-18 + FPN (P3-P7, LastLevelP6P7) + RetinaNet heads (4 conv+ReLU
    towers, 9 anchors, 91 classes): [N,3,H,W] -> cls logits [N,A,91], box
    regression [N,A,4]. FPN: nearest Resize to the lateral's size + Add."""
    from torchvision.models.detection.retinanet import RetinaNetHead
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    return DetectionHeads(_resnet18_fpn(LastLevelP6P7(256, 256)),
                          RetinaNetHead(256, 9, 91), ["cls_logits", "bbox_regression"])


def fcos_heads():
    """ResNet-18 + FPN (P3-P7) + FCOS heads (GroupNorm(32) towers, one anchor
    per location): cls logits [N,A,91], box regression [N,A,4] and
    centerness [N,A,1]."""
    from torchvision.models.detection.fcos import FCOSHead
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    return DetectionHeads(_resnet18_fpn(LastLevelP6P7(256, 256)), FCOSHead(256, 1, 91),
                          ["cls_logits", "bbox_regression", "bbox_ctrness"])


class KeypointHead(nn.Module):
    """Keypoint R-CNN's per-RoI head: 8 conv3x3(512)+ReLU on pooled RoI
    features [R,256,14,14], ConvTranspose2d(4, stride 2) to 17 keypoint
    heatmaps, bilinear x2 upsampling -> [R,17,56,56]. The batch axis is the
    number of RoIs."""

    def __init__(self):
        super().__init__()
        from torchvision.models.detection.keypoint_rcnn import (
            KeypointRCNNHeads, KeypointRCNNPredictor)
        self.heads = KeypointRCNNHeads(256, [512] * 8)
        self.predictor = KeypointRCNNPredictor(512, 17)

    def forward(self, x):
        return self.predictor(self.heads(x))


# --------------------------------------------------------------------------
# Image to image


class UNetSmall(nn.Module):
    """A 3-level U-Net with InstanceNorm2d (affine) + LeakyReLU, stride-2
    conv downsampling, ConvTranspose2d(2, stride 2) upsampling with skip
    concatenation, and a PixelShuffle (DepthToSpace) output stage:
    [N,3,H,W] -> [N,3,H,W] (H, W multiples of 8)."""

    def __init__(self, ch=32):
        super().__init__()

        def block(cin, cout, stride=1):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                nn.InstanceNorm2d(cout, affine=True),
                nn.LeakyReLU(0.2))

        self.stem = block(3, ch, 2)                        # H/2
        self.down1 = nn.Sequential(block(ch, 2 * ch, 2), block(2 * ch, 2 * ch))      # H/4
        self.down2 = nn.Sequential(block(2 * ch, 4 * ch, 2), block(4 * ch, 4 * ch))  # H/8
        self.mid = block(4 * ch, 4 * ch)
        self.up2 = nn.ConvTranspose2d(4 * ch, 2 * ch, 2, 2)
        self.dec2 = block(4 * ch, 2 * ch)
        self.up1 = nn.ConvTranspose2d(2 * ch, ch, 2, 2)
        self.dec1 = block(2 * ch, ch)
        self.to_rgb = nn.Conv2d(ch, 3 * 4, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        s0 = self.stem(x)
        s1 = self.down1(s0)
        m = self.mid(self.down2(s1))
        d2 = self.dec2(torch.cat([self.up2(m), s1], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), s0], 1))
        return torch.tanh(self.shuffle(self.to_rgb(d1)) + x)


class DCGANGenerator(nn.Module):
    """DCGAN's generator: latent [N,100,1,1] -> ConvTranspose2d(4) +
    BatchNorm + ReLU stages -> Tanh image [N,3,64,64]. N(0, 0.02) conv
    weights as in the DCGAN paper."""

    def __init__(self, nz=100, ngf=64):
        super().__init__()
        layers = []
        chans = [nz, ngf * 8, ngf * 4, ngf * 2, ngf]
        for i in range(4):
            layers += [nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 1 if i == 0 else 2,
                                          0 if i == 0 else 1, bias=False),
                       nn.BatchNorm2d(chans[i + 1]), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, z):
        return self.main(z)


class _Unflatten(nn.Module):
    """nn.Unflatten as a reshape (torch 1.13 cannot export aten::unflatten)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class ConvAutoencoder(nn.Module):
    """Conv encoder (stride-2 conv + ReLU, MaxPool) to a 128-d code through
    Flatten + Linear, decoder Linear + Reshape + nearest Upsample + conv,
    ConvTranspose2d,
    Sigmoid: [N,3,96,96] -> reconstruction [N,3,96,96] and code [N,128]."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(),          # 48
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),         # 24
            nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(),
            nn.MaxPool2d(2),                               # 12
            nn.Conv2d(64, 32, 3, 2, 1), nn.ReLU(),         # 6
            nn.Flatten(), nn.Linear(32 * 6 * 6, 128))
        self.dec = nn.Sequential(
            nn.Linear(128, 32 * 6 * 6), nn.ReLU(), _Unflatten((32, 6, 6)),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(),  # 12
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(),  # 24
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),                                     # 48
            nn.ConvTranspose2d(32, 3, 4, 2, 1), nn.Sigmoid())                                   # 96

    def forward(self, x):
        z = self.enc(x)
        return self.dec(z), z


def timestep_embedding(t, dim):
    """Sinusoidal timestep embedding (as in DDPM / diffusers): int64 or float
    timesteps [N] -> [N, dim]; Cast, Exp, Sin, Cos, Concat in ONNX."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResBlock(nn.Module):
    """GroupNorm(32) + SiLU + conv, the timestep embedding added per channel,
    GroupNorm + SiLU + conv, 1x1 skip when channels change."""

    def __init__(self, cin, cout, emb):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(32, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(e))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SpatialSelfAttention(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map
    (GroupNorm, 1x1-conv q/k/v, reshape to [N,heads,HW,d], softmax(q k^T /
    sqrt(d)) v, 1x1-conv projection, residual)."""

    def __init__(self, ch, heads=4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(32, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, d, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]              # [N, heads, d, HW]
        attn = torch.softmax(torch.matmul(q.transpose(2, 3), k) / math.sqrt(d), dim=-1)
        out = torch.matmul(v, attn.transpose(2, 3))            # [N, heads, d, HW]
        return x + self.proj(out.reshape(n, c, h, w))


class DiffusionUNet(nn.Module):
    """A diffusion-style U-Net piece: noisy latent [N,4,32,32] and int64
    timesteps [N] -> predicted noise [N,4,32,32]. Sinusoidal embedding + MLP
    (SiLU), ResBlocks with GroupNorm + SiLU, spatial self-attention at 16x16
    and 8x8, stride-2 conv down, nearest x2 Resize up, skip concatenation."""

    def __init__(self, ch=64, emb=256):
        super().__init__()
        self.ch = ch
        self.temb = nn.Sequential(nn.Linear(ch, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.conv_in = nn.Conv2d(4, ch, 3, 1, 1)
        self.res1 = ResBlock(ch, ch, emb)                          # 32
        self.down1 = nn.Conv2d(ch, ch, 3, 2, 1)                    # 16
        self.res2 = ResBlock(ch, 2 * ch, emb)
        self.attn2 = SpatialSelfAttention(2 * ch)
        self.down2 = nn.Conv2d(2 * ch, 2 * ch, 3, 2, 1)            # 8
        self.mid1 = ResBlock(2 * ch, 2 * ch, emb)
        self.mid_attn = SpatialSelfAttention(2 * ch)
        self.mid2 = ResBlock(2 * ch, 2 * ch, emb)
        self.up2 = ResBlock(4 * ch, 2 * ch, emb)                   # 16
        self.up_attn2 = SpatialSelfAttention(2 * ch)
        self.up1 = ResBlock(3 * ch, ch, emb)                       # 32
        self.norm_out = nn.GroupNorm(32, ch)
        self.conv_out = nn.Conv2d(ch, 4, 3, 1, 1)

    def forward(self, x, t):
        e = self.temb(timestep_embedding(t, self.ch))
        h1 = self.res1(self.conv_in(x), e)
        h2 = self.attn2(self.res2(self.down1(h1), e))
        m = self.mid2(self.mid_attn(self.mid1(self.down2(h2), e)), e)
        u = F.interpolate(m, scale_factor=2.0, mode="nearest")
        u = self.up_attn2(self.up2(torch.cat([u, h2], 1), e))
        u = F.interpolate(u, scale_factor=2.0, mode="nearest")
        u = self.up1(torch.cat([u, h1], 1), e)
        return self.conv_out(F.silu(self.norm_out(u)))


class ESPCN(nn.Module):
    """Efficient sub-pixel CNN super-resolution (the PyTorch ONNX tutorial's
    model): luminance [N,1,H,W] -> conv5x5(64) + ReLU, conv3x3(64) + ReLU,
    conv3x3(32) + ReLU, conv3x3(9) -> PixelShuffle(3) -> [N,1,3H,3W]."""

    def __init__(self, r=3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 64, 5, 1, 2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(64, 32, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(32, r * r, 3, 1, 1))
        self.shuffle = nn.PixelShuffle(r)

    def forward(self, x):
        return self.shuffle(self.body(x))


# --------------------------------------------------------------------------
# Sequences and audio


class AudioCRNN(nn.Module):
    """Keyword-spotting style audio classifier: log-mel [N,64,T] -> 3 x
    (Conv1d + BatchNorm1d + ReLU + MaxPool1d(2)) -> bidirectional 2-layer GRU
    over time -> mean over time -> Linear(35)."""

    def __init__(self, mels=64, classes=35):
        super().__init__()
        layers = []
        cin = mels
        for cout in (128, 128, 128):
            layers += [nn.Conv1d(cin, cout, 5, 1, 2), nn.BatchNorm1d(cout), nn.ReLU(), nn.MaxPool1d(2)]
            cin = cout
        self.conv = nn.Sequential(*layers)
        self.gru = nn.GRU(128, 96, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(192, classes)

    def forward(self, x):
        h = self.conv(x).transpose(1, 2)                   # [N, T/8, 128]
        out, _ = self.gru(h)
        return self.fc(out.mean(dim=1))


class ConformerBlock(nn.Module):
    """Conformer block (Gulati et al. 2020): half-step feed-forward (LayerNorm,
    Linear, SiLU, Linear), multi-head self-attention (nn.MultiheadAttention),
    convolution module (LayerNorm, pointwise Conv1d + GLU, depthwise Conv1d
    k=31, BatchNorm1d, SiLU, pointwise Conv1d), half-step feed-forward,
    LayerNorm."""

    def __init__(self, d=256, heads=4, ff=1024, kernel=31):
        super().__init__()

        def ffn():
            return nn.Sequential(nn.LayerNorm(d), nn.Linear(d, ff), nn.SiLU(), nn.Linear(ff, d))

        self.ff1 = ffn()
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=0.0, batch_first=True)
        self.conv_norm = nn.LayerNorm(d)
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.dw = nn.Conv1d(d, d, kernel, 1, kernel // 2, groups=d)
        self.bn = nn.BatchNorm1d(d)
        self.pw2 = nn.Conv1d(d, d, 1)
        self.ff2 = ffn()
        self.out_norm = nn.LayerNorm(d)

    def forward(self, x):
        x = x + 0.5 * self.ff1(x)
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        h = self.conv_norm(x).transpose(1, 2)              # [N, d, T]
        h = F.glu(self.pw1(h), dim=1)
        h = self.pw2(F.silu(self.bn(self.dw(h))))
        x = x + h.transpose(1, 2)
        x = x + 0.5 * self.ff2(x)
        return self.out_norm(x)


class Conformer(nn.Module):
    """Features [N,T,80] -> Linear(256) -> 4 ConformerBlocks -> [N,T,256]."""

    def __init__(self, feat=80, d=256, layers=4):
        super().__init__()
        self.proj = nn.Linear(feat, d)
        self.blocks = nn.ModuleList([ConformerBlock(d) for _ in range(layers)])

    def forward(self, x):
        x = self.proj(x)
        for b in self.blocks:
            x = b(x)
        return x


class DecoderLayer(nn.Module):
    """Pre-norm GPT-2 style layer with a KV cache: the new tokens' keys and
    values are appended to the past ones (Concat), attention uses a causal
    mask offset by the past length (Range, comparisons, Where)."""

    def __init__(self, d, heads, ff):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x, past_k, past_v):
        n, s, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q = q.reshape(n, s, self.heads, hd).transpose(1, 2)      # [N, H, S, hd]
        k = k.reshape(n, s, self.heads, hd).transpose(1, 2)
        v = v.reshape(n, s, self.heads, hd).transpose(1, 2)
        k = torch.cat([past_k, k], dim=2)                         # [N, H, P+S, hd]
        v = torch.cat([past_v, v], dim=2)
        p = past_k.shape[2]
        qpos = torch.arange(s, device=x.device)[:, None] + p      # [S, 1]
        kpos = torch.arange(k.shape[2], device=x.device)[None, :]  # [1, P+S]
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd)
        scores = scores.masked_fill(kpos > qpos, float("-inf"))
        a = torch.matmul(torch.softmax(scores, dim=-1), v)        # [N, H, S, hd]
        x = x + self.proj(a.transpose(1, 2).reshape(n, s, d))
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))
        return x, k, v


class GPTWithCache(nn.Module):
    """Decoder-only transformer (4 layers, d 256, 8 heads, ff 1024, vocab
    4096), one generation step with a KV cache:
        input_ids [N,S] int64, past_keys / past_values [N,L,H,P,hd]
     -> logits [N,S,4096], present_keys / present_values [N,L,H,P+S,hd].
    Token embedding (Gather), learned positions from P to P+S-1 (Range +
    Gather), tanh-GELU, final LayerNorm, untied LM head. Batch first in the
    cache, so that a benchmark that swaps the batch changes only dim 0."""

    def __init__(self, vocab=4096, d=256, heads=8, layers=4, ff=1024, max_pos=512):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_pos, d)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.layers = nn.ModuleList([DecoderLayer(d, heads, ff) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, input_ids, past_keys, past_values):
        p = past_keys.shape[3]
        s = input_ids.shape[1]
        pos = torch.arange(s, device=input_ids.device) + p
        x = self.tok(input_ids) + self.pos(pos)[None]
        ks, vs = [], []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, past_keys[:, i], past_values[:, i])
            ks.append(k)
            vs.append(v)
        return self.head(self.ln_f(x)), torch.stack(ks, 1), torch.stack(vs, 1)


class MixerBlock(nn.Module):
    def __init__(self, tokens, d, tok_hidden, ch_hidden):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.tok = nn.Sequential(nn.Linear(tokens, tok_hidden), nn.GELU(), nn.Linear(tok_hidden, tokens))
        self.ln2 = nn.LayerNorm(d)
        self.ch = nn.Sequential(nn.Linear(d, ch_hidden), nn.GELU(), nn.Linear(ch_hidden, d))

    def forward(self, x):                                   # [N, T, d]
        x = x + self.tok(self.ln1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ch(self.ln2(x))


class MLPMixer(nn.Module):
    """MLP-Mixer (Tolstikhin et al. 2021), small: 16x16 patches of a 224x224
    image (conv stride 16) -> 196 tokens of 256, 8 blocks of token-mixing MLP
    (Linear over the token axis, between Transposes) and channel MLP (exact
    GELU: Erf), LayerNorm, mean over tokens, Linear(1000)."""

    def __init__(self, d=256, depth=8, patch=16, size=224, classes=1000):
        super().__init__()
        tokens = (size // patch) ** 2
        self.stem = nn.Conv2d(3, d, patch, patch)
        self.blocks = nn.Sequential(*[MixerBlock(tokens, d, 128, 1024) for _ in range(depth)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = self.ln(self.blocks(x))
        return self.head(x.mean(dim=1))


class TextCNN(nn.Module):
    """Kim (2014) text CNN: int64 token ids [N,T] -> Embedding(8000, 128) ->
    Conv1d with kernels 3, 4, 5 (100 filters each) + ReLU -> max over time
    (ReduceMax) -> Concat -> Linear(4)."""

    def __init__(self, vocab=8000, d=128, filters=100, classes=4):
        super().__init__()
        self.emb = nn.Embedding(vocab, d, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(d, filters, k) for k in (3, 4, 5)])
        self.fc = nn.Linear(3 * filters, classes)

    def forward(self, ids):
        x = self.emb(ids).transpose(1, 2)                  # [N, d, T]
        pooled = [torch.amax(F.relu(c(x)), dim=2) for c in self.convs]
        return self.fc(torch.cat(pooled, 1))


# --------------------------------------------------------------------------
# Swin-style windowed attention, written out


def _window_partition(x, w):
    n, h, wd, c = x.shape
    x = x.view(n, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _window_reverse(x, w, n, h, wd):
    c = x.shape[-1]
    x = x.view(n, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h, wd, c)


class SwinBlock(nn.Module):
    """One Swin transformer block on a [N,H,W,C] map whose sides are not
    multiples of the window: Pad to a multiple, optional cyclic shift
    (torch.roll: Slice + Concat), window partition (Reshape/Transpose),
    window attention with a relative-position bias gathered from a table
    (Gather) and, when shifted, the shifted-window mask; reverse, roll back,
    crop, MLP."""

    def __init__(self, dim, heads, window, shift, h, w):
        super().__init__()
        self.dim, self.heads, self.window, self.shift = dim, heads, window, shift
        self.h, self.w = h, w
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.bias_table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                            indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("bias_index", (rel[..., 0] * (2 * window - 1) + rel[..., 1]).flatten(),
                             persistent=False)
        hp, wp = -(-h // window) * window, -(-w // window) * window
        if shift:
            img = torch.zeros(1, hp, wp, 1)
            cnt = 0
            for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                    img[:, hs, ws, :] = cnt
                    cnt += 1
            win = _window_partition(img, window).squeeze(-1)           # [nW, w*w]
            mask = win[:, None, :] - win[:, :, None]
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        else:
            mask = torch.zeros(1, window * window, window * window)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):                                  # [N, H, W, C]
        n, h, w, c = x.shape
        win = self.window
        shortcut = x
        x = self.ln1(x)
        pad_b, pad_r = (win - h % win) % win, (win - w % win) % win
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        xw = _window_partition(x, win)                    # [N*nW, w*w, C]
        b, t, _ = xw.shape
        hd = c // self.heads
        qkv = self.qkv(xw).reshape(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.matmul(q, k.transpose(-2, -1)) * hd ** -0.5
        bias = self.bias_table[self.bias_index].view(t, t, self.heads).permute(2, 0, 1)
        attn = attn + bias[None]
        nw = self.mask.shape[0]
        attn = attn.view(-1, nw, self.heads, t, t) + self.mask[None, :, None]
        attn = torch.softmax(attn.view(-1, self.heads, t, t), dim=-1)
        out = self.proj(torch.matmul(attn, v).transpose(1, 2).reshape(b, t, c))
        x = _window_reverse(out, win, n, hp, wp)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + x[:, :h, :w, :]
        return x + self.mlp(self.ln2(x))


class PatchMerging(nn.Module):
    """Swin's 2x2 patch merging: strided Slices, Concat, LayerNorm, Linear."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinSmall(nn.Module):
    """A two-stage Swin on a 200x200 image: 4x4 patch embedding -> 50x50x96
    (padded to 56 for 7x7 windows), 2 blocks (regular, shifted), patch
    merging -> 25x25x192 (padded to 28), 2 blocks, LayerNorm, mean, Linear."""

    def __init__(self, size=200, window=7, classes=1000):
        super().__init__()
        s = size // 4
        self.embed = nn.Conv2d(3, 96, 4, 4)
        self.embed_norm = nn.LayerNorm(96)
        self.stage1 = nn.Sequential(SwinBlock(96, 3, window, 0, s, s), SwinBlock(96, 3, window, 3, s, s))
        self.merge = PatchMerging(96)
        s2 = -(-s // 2)
        self.stage2 = nn.Sequential(SwinBlock(192, 6, window, 0, s2, s2),
                                    SwinBlock(192, 6, window, 3, s2, s2))
        self.norm = nn.LayerNorm(192)
        self.head = nn.Linear(192, classes)

    def forward(self, x):
        x = self.embed_norm(self.embed(x).permute(0, 2, 3, 1))
        x = self.stage2(self.merge(self.stage1(x)))
        return self.head(self.norm(x).mean(dim=(1, 2)))


# --------------------------------------------------------------------------
# Hard-swish CNN


class HardSE(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.fc1 = nn.Conv2d(ch, ch // 4, 1)
        self.fc2 = nn.Conv2d(ch // 4, ch, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class HardSwishCNN(nn.Module):
    """A MobileNetV3/EfficientNet-lite style CNN where nearly every
    activation is HardSwish: stem conv + BN + HardSwish, inverted residuals
    with depthwise 3x3/5x5 (one dilated), HardSigmoid squeeze-excite, ReLU6
    (Clip) in one stage, AvgPool2d(2) in place of one strided conv,
    GlobalAveragePool, Linear + HardSwish, Linear(1000)."""

    def __init__(self):
        super().__init__()

        def cbh(cin, cout, k=3, s=1, g=1, d=1, act=nn.Hardswish):
            return nn.Sequential(nn.Conv2d(cin, cout, k, s, d * (k // 2), dilation=d, groups=g, bias=False),
                                 nn.BatchNorm2d(cout), act())

        class IR(nn.Module):
            def __init__(self, cin, cout, k, s, exp, d=1, act=nn.Hardswish, se=True):
                super().__init__()
                mid = cin * exp
                self.body = nn.Sequential(
                    cbh(cin, mid, 1, act=act), cbh(mid, mid, k, s, mid, d, act=act),
                    HardSE(mid) if se else nn.Identity(),
                    nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
                self.res = s == 1 and cin == cout

            def forward(self, x):
                y = self.body(x)
                return x + y if self.res else y

        self.features = nn.Sequential(
            cbh(3, 24, 3, 2),                                     # 112
            IR(24, 24, 3, 1, 2, act=nn.ReLU6, se=False),
            IR(24, 32, 3, 2, 4, act=nn.ReLU6, se=False),          # 56
            IR(32, 32, 5, 1, 4),
            nn.AvgPool2d(2),                                      # 28
            IR(32, 64, 5, 1, 4),
            IR(64, 64, 3, 1, 4, d=2),
            IR(64, 96, 3, 2, 6),                                  # 14
            IR(96, 96, 5, 1, 6),
            IR(96, 160, 5, 2, 6),                                 # 7
            IR(160, 160, 3, 1, 6),
            cbh(160, 640, 1))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(640, 1024), nn.Hardswish(), nn.Linear(1024, 1000))

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1))


# --------------------------------------------------------------------------
# Point clouds: Gather and Scatter


class PointNetKNN(nn.Module):
    """A DGCNN / serialized-point-cloud style classifier with a per-point
    head, on points [N,P,3]:
      * k nearest neighbours from pairwise squared distances (MatMul,
        TopK k=16); neighbour coordinates fetched with index_select on the
        flattened cloud (Gather), neighbour features with torch.gather
        (GatherElements); edge MLPs max-pooled over the neighbours;
      * serialization: points sorted by their x coordinate (argsort: TopK
        over the whole axis), features gathered into that order
        (GatherElements), a 1-D conv along it, and scattered back to the
        points' own slots with index_put (ScatterND, unique indices);
      * voxel pooling: features summed and points counted per cell of a
        4x4x4 grid with scatter_add (ScatterElements, reduction add);
      * outputs: class logits [N,40] and per-point logits [N,P,8].
    Sorting uses the raw input coordinate, so no rounding can reorder it."""

    def __init__(self, k=16, grid=4):
        super().__init__()
        self.k, self.grid = k, grid
        self.edge1 = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64))
        self.edge2 = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128))
        self.serial = nn.Conv1d(128, 128, 5, 1, 2)
        self.point = nn.Sequential(nn.Linear(320, 256), nn.ReLU())
        self.vox = nn.Linear(128, 128)
        self.cls = nn.Sequential(nn.Linear(256 + 128, 256), nn.ReLU(), nn.Linear(256, 40))
        self.seg = nn.Sequential(nn.Linear(256 + 256, 128), nn.ReLU(), nn.Linear(128, 8))

    def forward(self, pts):                                # [N, P, 3]
        n, p, _ = pts.shape
        k = self.k
        sq = (pts * pts).sum(-1)
        dist = sq[:, :, None] + sq[:, None, :] - 2 * torch.matmul(pts, pts.transpose(1, 2))
        idx = torch.topk(-dist, k, dim=-1).indices         # [N, P, k]
        # neighbour coordinates: Gather on the flattened cloud
        flat = idx + (torch.arange(n, device=pts.device) * p)[:, None, None]
        nb = pts.reshape(n * p, 3).index_select(0, flat.reshape(-1)).reshape(n, p, k, 3)
        ctr = pts[:, :, None, :].expand(n, p, k, 3)
        f1 = self.edge1(torch.cat([ctr, nb - ctr], -1)).amax(dim=2)        # [N, P, 64]
        # neighbour features: GatherElements
        g = torch.gather(f1, 1, idx.reshape(n, p * k, 1).expand(n, p * k, 64)).reshape(n, p, k, 64)
        c1 = f1[:, :, None, :].expand(n, p, k, 64)
        f2 = self.edge2(torch.cat([c1, g - c1], -1)).amax(dim=2)           # [N, P, 128]
        # serialization: sort by x, conv along the order, scatter back
        order = torch.argsort(pts[..., 0], dim=1)                          # [N, P]
        seq = torch.gather(f2, 1, order[..., None].expand(n, p, 128))      # [N, P, 128]
        seq = F.relu(self.serial(seq.transpose(1, 2))).transpose(1, 2)
        bidx = torch.arange(n, device=pts.device)[:, None].expand(n, p)
        back = torch.zeros_like(seq).index_put((bidx, order), seq)         # [N, P, 128]
        feat = self.point(torch.cat([f1, f2, back], -1))                   # [N, P, 256]
        # voxel pooling: ScatterElements with reduction add
        cell = ((pts.clamp(-1.999, 1.999) + 2.0) * (self.grid / 4.0)).floor().to(torch.int64)
        vid = (cell[..., 0] * self.grid + cell[..., 1]) * self.grid + cell[..., 2]   # [N, P]
        cells = self.grid ** 3
        vf = self.vox(f2)
        vsum = torch.zeros(n, cells, 128, dtype=pts.dtype, device=pts.device).scatter_add(
            1, vid[..., None].repeat(1, 1, 128), vf)
        count = torch.zeros(n, cells, dtype=pts.dtype, device=pts.device).scatter_add(
            1, vid, torch.ones_like(pts[..., 0]))
        vmean = vsum / count.clamp(min=1.0)[..., None]                     # [N, cells, 128]
        glob = feat.amax(dim=1)                                            # [N, 256]
        logits = self.cls(torch.cat([glob, vmean.amax(dim=1)], -1))
        seg = self.seg(torch.cat([feat, glob[:, None].expand(n, p, 256)], -1))
        return logits, seg
