"""The notebook's GAN written as PyTorch's DCGAN tutorial writes its training step, for bench/train_speed.py: the same
half-width networks (4x4 strided kernels with TensorFlow's 'same' padding, batch normalization, leaky ReLUs), the
same losses (real label 0.9, R1 on the real images where the notebook's cell sets it, by autograd.grad with
create_graph=True), Adam at the notebook's rates and an average of the generator's weights (decay 0.99,
torch.optim.swa_utils) after each update. torch.compile cannot compile a step with R1: aot_autograd has no double
backward. Runs in a Python with torch (the project does not need it):

    .venv-torch/bin/python bench/torch_peer.py DATASET STEPS CHANNELS R1_WEIGHT BATCH [channels_last]
prints one JSON line: {"result": [images per second, 0], "peak_rss_mb": ...}.
"""
import json
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

from measure import peak_rss_mb, time_steps  # bench/ is on the path: this file runs as a script

Z_DIM = 100
LEAK = 0.2
G_CHANNELS, D_CHANNELS = (128, 64, 32), (32, 64, 128)


class SamePad(nn.Module):
    """TensorFlow's padding='same' for a 4x4 kernel of stride 2: the extra row and column go after."""

    def forward(self, x):
        size = x.shape[-1]
        total = max((-(-size // 2) - 1) * 2 + 4 - size, 0)
        return F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))


def generator(channels):
    def up(cin, cout):  # 4x4 transposed convolution of stride 2 with 'same' padding: the size doubles
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout, momentum=0.1),
                nn.LeakyReLU(LEAK)]
    return nn.Sequential(
        nn.Linear(Z_DIM, 7 * 7 * G_CHANNELS[0], bias=False), nn.Unflatten(1, (G_CHANNELS[0], 7, 7)),
        nn.BatchNorm2d(G_CHANNELS[0], momentum=0.1), nn.LeakyReLU(LEAK),
        *up(G_CHANNELS[0], G_CHANNELS[1]), *up(G_CHANNELS[1], G_CHANNELS[2]),
        nn.ConvTranspose2d(G_CHANNELS[2], channels, 3, 1, 1), nn.Tanh())


def discriminator(channels):
    def down(cin, cout, bias):
        return [SamePad(), nn.Conv2d(cin, cout, 4, 2, 0, bias=bias)]
    return nn.Sequential(
        *down(channels, D_CHANNELS[0], True), nn.LeakyReLU(LEAK),
        *down(D_CHANNELS[0], D_CHANNELS[1], False), nn.BatchNorm2d(D_CHANNELS[1]), nn.LeakyReLU(LEAK),
        *down(D_CHANNELS[1], D_CHANNELS[2], False), nn.BatchNorm2d(D_CHANNELS[2]), nn.LeakyReLU(LEAK),
        nn.Flatten(), nn.Linear(4 * 4 * D_CHANNELS[2], 1))


def speed(steps, channels, r1_weight, batch, channels_last):
    torch.manual_seed(0)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    memory = torch.channels_last if channels_last else torch.contiguous_format
    g, d = generator(channels).to(memory_format=memory), discriminator(channels).to(memory_format=memory)
    for module in list(g.modules()) + list(d.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(module.weight, 0, 0.02)
    average = torch.optim.swa_utils.AveragedModel(g, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.99))
    d_opt = torch.optim.Adam(d.parameters(), 5e-4, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real = (torch.rand(batch, channels, 28, 28) * 2 - 1).to(memory_format=memory)
    noise = torch.rand(batch, Z_DIM) * 2 - 1

    def step():
        fake = g(noise)
        real.requires_grad_(r1_weight > 0)
        real_logits = d(real)
        d_loss = bce(real_logits, torch.full_like(real_logits, 0.9)) + bce(d(fake.detach()), torch.zeros_like(real_logits))
        if r1_weight:
            slopes, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            d_loss = d_loss + r1_weight / 2 * slopes.square().sum(dim=[1, 2, 3]).mean()
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        fake_logits = d(fake)
        g_loss = bce(fake_logits, torch.ones_like(fake_logits))
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        average.update_parameters(g)
        return d_loss.item(), g_loss.item()

    return time_steps(step, steps, batch)


if __name__ == '__main__':
    _, dataset, steps, channels, r1_weight, batch, *layout = sys.argv
    ips = speed(int(steps), int(channels), float(r1_weight), int(batch), layout == ['channels_last'])
    print(json.dumps({'result': [ips, 0], 'peak_rss_mb': peak_rss_mb()}))
