import pytest

from engine.lr_schedules import gradient_free_lr_factor


def test_gradient_free_schedule_matches_the_reference_values():
    lr = 0.01
    # warm-up starts at lr / W, not 0 (N = 100: W = 10)
    assert lr * gradient_free_lr_factor(0, 100) == pytest.approx(0.001)
    assert lr * gradient_free_lr_factor(9, 100) == pytest.approx(0.01)
    # the held value after 0.8·N_c
    assert lr * gradient_free_lr_factor(99, 100) == pytest.approx(0.0012843, abs=1e-7)
    assert lr * gradient_free_lr_factor(150, 200) == pytest.approx(0.0012843, abs=1e-7)
    assert lr * gradient_free_lr_factor(19, 20) == pytest.approx(0.0017861, abs=1e-7)
    values = [gradient_free_lr_factor(i, 100) for i in range(10, 80)]
    assert all(a >= b for a, b in zip(values, values[1:]))
