"""The tutorials' stand-in for a folder of your photos: Fashion-MNIST images written as JPEG files in one
subfolder per class (photos/Sneaker/00042.jpg), the layout ``--dataset folder`` reads.

usage: python docs/tutorials/make_photos.py --fmnist /usr/share/datasets/fashion-mnist --out photos --n 3000
"""

from __future__ import annotations

import argparse
from pathlib import Path

from simclr.data.sources import load_images

NAMES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle-boot")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fmnist", required=True, help="the directory of Fashion-MNIST's IDX files")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=3000, help="images to write (the first N of the train split)")
    a = p.parse_args()
    images = load_images("fashion-mnist", "train", a.fmnist, a.n, 0, 28)
    for i in range(len(images)):
        image, label = images.load(i)
        folder = Path(a.out) / NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i:05d}.jpg", quality=95)
    print(f"{len(images)} JPEG files in {len(NAMES)} class folders under {a.out}")


if __name__ == "__main__":
    main()
