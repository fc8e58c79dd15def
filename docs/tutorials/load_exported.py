"""The tutorials' export check: a run's ``--format torchvision`` state dict loaded into torchvision's
resnet18 and timm's, and h compared with ``simclr.load_encoder``'s on a few of the photos.

usage: python docs/tutorials/load_exported.py RUN EXPORTED.pth PHOTOS_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision
from PIL import Image

from simclr import load_encoder


def main() -> None:
    run, exported, photos = sys.argv[1:4]
    files = sorted(Path(photos).rglob("*.jpg"))[:8]
    size = int(load_encoder(run).image_size)
    x = torch.stack([torchvision.transforms.functional.to_tensor(Image.open(f).convert("RGB").resize((size, size)))
                     for f in files])
    with torch.no_grad():
        h = load_encoder(run).eval()(x)
        tv = torchvision.models.resnet18()
        tv.fc = torch.nn.Identity()
        tv.load_state_dict(torch.load(exported, weights_only=True))
        h_tv = tv.eval()(x)
        print(f"torchvision resnet18: h {tuple(h_tv.shape)}, largest difference to load_encoder's h "
              f"{(h_tv - h).abs().max():.2e}")
        try:
            import timm
        except ImportError:
            print("timm is not installed (pip install 'simclr[timm]'): its check skipped")
            return
        tm = timm.create_model("resnet18", pretrained=False, num_classes=0)
        tm.load_state_dict(torch.load(exported, weights_only=True))
        h_tm = tm.eval()(x)
        print(f"timm resnet18: h {tuple(h_tm.shape)}, largest difference to load_encoder's h "
              f"{(h_tm - h).abs().max():.2e}")


if __name__ == "__main__":
    main()
