import torch

from sva.evaluation.metrics import is_success, linf, mean_absolute_perturbation, perturbed_frames, sparsity, to_uint8


def test_map_is_mean_abs_times_255():
    x = torch.zeros(4, 3, 2, 2)
    adv = x.clone()
    adv[1] = 2 / 255
    assert abs(mean_absolute_perturbation(adv, x) - 0.5) < 1e-6  # a quarter of values moved by 2 levels


def test_sparsity_is_measured_on_the_video():
    x = torch.rand(5, 3, 4, 4)
    adv = x.clone()
    adv[2, 0, 0, 0] += 1e-3
    adv[4] += 0.01
    assert perturbed_frames(adv, x).tolist() == [False, False, True, False, True]
    assert sparsity(adv, x) == 0.6
    assert abs(linf(adv, x) - 0.01) < 1e-6


def test_uint8_rounding_and_success_rule():
    v = torch.tensor([0.0, 0.5 / 255 + 1e-4, 1.0, 1.2])
    assert torch.allclose(to_uint8(v), torch.tensor([0.0, 1 / 255, 1.0, 1.0]))
    assert is_success(3, true_label=2, target=None) and not is_success(2, 2, None)
    assert is_success(5, 2, target=5) and not is_success(3, 2, target=5)
