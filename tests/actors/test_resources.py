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


def test_coordinators_prefer_the_head_and_workers_follow_placement(ray_session):
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from actors.phases.evomerge import trial_resources
    from actors.resources import actor_options, head_node_id
    from forge.config import Resources
    from forge.phases.evomerge_config import EvoMergePhaseConfig

    assert head_node_id() == ray.get_runtime_context().get_node_id()  # one node: the head
    coordinator = actor_options(Resources(num_cpus=0), "spread")["scheduling_strategy"]
    assert isinstance(coordinator, NodeAffinitySchedulingStrategy)
    assert coordinator.node_id == head_node_id() and not coordinator.soft
    worker = actor_options(Resources(num_cpus=1), "spread")
    assert worker["scheduling_strategy"] == "SPREAD" and worker["num_cpus"] == 1
    pinned = actor_options(Resources(num_cpus=0, custom={"gpu_box": 1}), "pack")
    assert pinned["scheduling_strategy"] == "DEFAULT" and pinned["resources"] == {"gpu_box": 1}
    settings = EvoMergePhaseConfig()
    spread, pack = trial_resources(settings, "spread"), trial_resources(settings, "pack")
    assert spread.strategy == "SPREAD" and pack.strategy == "PACK"
    assert spread.bundles == [{"CPU": settings.trial_cpus, "GPU": settings.trial_gpus}]  # 1 logical GPU
