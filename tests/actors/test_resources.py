"""Trainer CPU shares: all trainers of a phase must fit at once on the nodes there are."""
from actors.resources import equal_share, scheduling_strategy


def test_equal_share_fits_every_trainer():
    assert equal_share([2.0], 3) == 0.66
    assert equal_share([1.0, 1.0], 3) == 0.5  # 0.66 would leave the third waiting
    assert equal_share([8.0], 2) == 4.0
    assert equal_share([4.0, 1.0], 3) == 1.33  # three on the big node
    for nodes, n in (([1.0, 1.0], 3), ([2.0], 3), ([4.0, 1.0], 5), ([0.5], 2)):
        share = equal_share(nodes, n)
        assert sum(int(c / share + 1e-9) for c in nodes) >= n and share <= sum(nodes) / n


def test_placement_strategy():
    assert scheduling_strategy("spread") == "SPREAD"
    assert scheduling_strategy("pack") == "DEFAULT"
