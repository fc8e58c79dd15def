"""The one feature path: a frozen encoder (BN in inference mode, no state change), and its users."""

from __future__ import annotations

import torch

from simclr import build_encoder, embed, extract_features, linear_eval
from simclr.data.images import ArrayImages
from simclr.eval.features import encode


def test_feature_extraction_leaves_the_encoder_bit_identical() -> None:
    encoder = build_encoder("resnet18", 0.25, "cifar")
    encoder.train()  # the caller's mode is restored afterwards; BN must still not update
    with torch.no_grad():  # make the BN statistics non-trivial first
        encoder(torch.rand(8, 3, 16, 16))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    imgs = ArrayImages(torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8), torch.arange(40) % 4, [])
    feats, labels = extract_features(encoder, imgs, 16, torch.device("cpu"), batch_size=16)
    assert feats.shape == (40, encoder.feature_dim) and not feats.requires_grad
    assert labels.tolist() == (torch.arange(40) % 4).tolist()
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert encoder.training
    # inference-mode BN: a batch's features do not depend on the other images in it
    single, _ = extract_features(encoder, ArrayImages(imgs.images[:1], imgs.labels[:1], []), 16,
                                 torch.device("cpu"))
    torch.testing.assert_close(single[0], feats[0], rtol=1e-4, atol=1e-5)
    res = linear_eval(feats[:30], labels[:30], feats[30:], labels[30:], l2_grid=(1e-3,))
    assert 0.0 <= res["top1"] <= 1.0
    assert all(torch.equal(before[k], encoder.state_dict()[k]) for k in before)


def test_every_feature_path_is_encode() -> None:
    """extract_features, embed and encode give the same rows for the same images (one path)."""
    torch.manual_seed(0)
    encoder = build_encoder("resnet18", 0.25, "cifar").eval()
    images = torch.randint(0, 256, (10, 1, 12, 12), dtype=torch.uint8)  # grayscale, resized to 16
    x, _ = extract_features(encoder, ArrayImages(images, torch.zeros(10, dtype=torch.long), []), 16,
                            torch.device("cpu"), batch_size=4)
    # the same batches give the same rows bit for bit
    torch.testing.assert_close(embed(encoder, images, batch_size=4, image_size=16), x, rtol=0, atol=0)
    chunks = [images[:4], images[4:8], images[8:]]
    torch.testing.assert_close(encode(encoder, chunks, image_size=16), x, rtol=0, atol=0)
    manual = torch.nn.functional.interpolate(images.float() / 255, size=(16, 16), mode="bilinear", antialias=True)
    with torch.no_grad():
        torch.testing.assert_close(encoder(manual.expand(-1, 3, -1, -1)), x, rtol=1e-5, atol=1e-6)
