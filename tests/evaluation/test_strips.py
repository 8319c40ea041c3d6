import torch
from PIL import Image

from sva.evaluation.strips import perturbation_strip


def test_strip_is_a_png_with_three_rows(tmp_path):
    x = torch.rand(6, 3, 16, 16)
    adv = x.clone()
    adv[2] = (adv[2] + 0.03).clamp(0, 1)
    path = perturbation_strip(x, adv, tmp_path / "s.png", "title")
    img = Image.open(path)
    assert img.format == "PNG" and img.width > img.height
    # unperturbed video: still a valid figure
    assert perturbation_strip(x, x.clone(), tmp_path / "none.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["none.png", "s.png"]
