#!/usr/bin/env python3
"""The peer in grasp-train's throughput benchmark: PyTorch eager running the same GG-CNN
(GG-CNN2 layout, bilinear up-sampling, align_corners=False), the same positional loss and the same
Adam step as `grasp-train fit`, on random data.

usage: bench_pytorch_train.py THREADS INPUT_SIZE BATCH STEPS
Prints {"images_per_second": x} on stdout. Needs a Python with torch (e.g. pip install torch)."""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

class GGCNN2(nn.Module):
    def __init__(self):
        super().__init__()
        c = lambda i, o, k, d=1: nn.Conv2d(i, o, k, padding=(k - 1) * d // 2, dilation=d)
        self.first = nn.ModuleList([c(3, 16, 11), c(16, 16, 5), c(16, 16, 5), c(16, 16, 5)])
        self.dil = nn.ModuleList([c(16, 32, 5, 2), c(32, 32, 5, 4)])
        self.up = nn.ModuleList([c(32, 16, 3), c(16, 16, 3)])
        self.heads = nn.ModuleList([nn.Conv2d(16, 1, 1) for _ in range(4)])

    def forward(self, x):
        x = F.relu(self.first[0](x)); x = F.relu(self.first[1](x)); x = F.max_pool2d(x, 2)
        x = F.relu(self.first[2](x)); x = F.relu(self.first[3](x)); x = F.max_pool2d(x, 2)
        x = F.relu(self.dil[0](x)); x = F.relu(self.dil[1](x))
        for conv in self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = F.relu(conv(x))
        return [h(x) for h in self.heads]

def main():
    threads, size, batch, steps = map(int, sys.argv[1:5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = GGCNN2()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, 3, size, size) - 0.5
    q = (torch.rand(batch, 1, size, size) > 0.9).float()
    targets = [q, torch.rand_like(q), torch.rand_like(q), torch.rand_like(q)]
    def step():
        out = net(x)
        loss = F.mse_loss(out[0], targets[0]) + sum(((targets[0] * (o - t)) ** 2).mean() for o, t in zip(out[1:], targets[1:]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    print(json.dumps({"images_per_second": steps * batch / (time.perf_counter() - t)}))

main()
