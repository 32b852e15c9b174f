"""Every method: N copies of one model merge into that model; bad input names the parameter."""
import pytest
import torch

from forge.merge import MERGE_METHODS, MergeParams, get_merge, merge, merged_config
from forge.models import CognateForCausalLM
from tests.merge.conftest import logits

# Per method, parameters under which merging copies must give the copy back.
IDENTITY_PARAMS = {
    "linear": MergeParams(weights=(0.2, 0.5, 0.3)),
    "slerp": MergeParams(t=0.37),
    "ties": MergeParams(density=1.0),
    "dare_linear": MergeParams(p=0.0),
    "dare_ties": MergeParams(p=0.0),
    "dare": MergeParams(p=0.0),
    "frankenmerge": MergeParams(slices=((0, 0, 1), (2, 1, 2))),
    "dfs": MergeParams(path=((1, 0), (0, 1)), scales=(1.0, 1.0)),
}


def test_every_registered_method_has_an_identity_case():
    assert set(IDENTITY_PARAMS) == set(MERGE_METHODS)


@pytest.mark.parametrize("name", sorted(MERGE_METHODS))
def test_merging_copies_returns_that_model(family, name):
    model = family["children"][0]
    copies = [model.state_dict()] * (2 if name == "slerp" else 3)
    base = family["base"].state_dict()  # a different ancestor: task vectors are not zero
    out = get_merge(name)(copies, base if name in {"ties", "dare", "dare_linear", "dare_ties"}
                          else None, IDENTITY_PARAMS[name], torch.Generator().manual_seed(0))
    assert out.keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(out[key], value, atol=1e-6, rtol=1e-6)
    merged = CognateForCausalLM(merged_config(model.config, out)).eval()
    merged.load_state_dict(out)
    torch.testing.assert_close(logits(merged), logits(model), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["ties", "dare_linear", "dare_ties"])
def test_random_and_trimming_methods_return_copies_when_base_is_the_model(family, name):
    sd = family["children"][2].state_dict()
    out = get_merge(name)([sd, sd], sd, MergeParams(density=0.1, p=0.9),
                          torch.Generator().manual_seed(0))
    assert all(torch.equal(out[k], v) for k, v in sd.items())


def test_unknown_method_names_method():
    with pytest.raises(ValueError, match="method: unknown merge 'soup'.*linear"):
        get_merge("soup")


@pytest.mark.parametrize("field, value", [("density", 0.0), ("density", 1.5), ("p", 1.0),
                                          ("p", -0.1), ("t", 1.2), ("scale", float("nan")),
                                          ("weights", (1.0, float("inf")))])
def test_out_of_range_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"MergeParams.{field}: got"):
        MergeParams(**{field: value})


def test_from_dict_turns_lists_into_tuples_and_names_unknown_keys():
    params = MergeParams.from_dict({"slices": [[0, 0, 2]], "weights": [1, 2]})
    assert params.slices == ((0, 0, 2),) and params.weights == (1, 2)
    with pytest.raises(ValueError, match="unknown key.*'densty'"):
        MergeParams.from_dict({"densty": 0.5})


def _pair():
    return {"a": torch.zeros(2, 3), "b": torch.ones(4)}


@pytest.mark.parametrize("name", ["linear", "slerp", "ties", "dare_ties"])
def test_mismatched_keys_and_shapes_name_the_state_dict(name):
    base = _pair()
    with pytest.raises(ValueError, match=r"models\[1\]: keys differ"):
        merge(name, [_pair(), {"a": torch.zeros(2, 3)}], base)
    with pytest.raises(ValueError, match=r"models\[1\]\['a'\]: shape \(3, 2\)"):
        merge(name, [_pair(), {"a": torch.zeros(3, 2), "b": torch.ones(4)}], base)


@pytest.mark.parametrize("name", ["ties", "dare_linear", "dare_ties"])
def test_task_vector_methods_need_a_base(name):
    with pytest.raises(ValueError, match="base: "):
        merge(name, [_pair(), _pair()], None)
    with pytest.raises(ValueError, match=r"base\['b'\]: shape"):
        merge(name, [_pair(), _pair()], {"a": torch.zeros(2, 3), "b": torch.ones(5)})


def test_weights_count_must_match_models():
    with pytest.raises(ValueError, match="MergeParams.weights"):
        merge("linear", [_pair(), _pair()], None, MergeParams(weights=(1.0, 2.0, 3.0)))
