"""Estimators with embedding nets round-trip: registered nets by spec, custom ones passed again."""

from __future__ import annotations

import json
import re

import pytest
import torch
from sbi.neural_nets.embedding_nets import FCEmbedding

import sbiplug
from sbiplug.cli import main
from sbiplug.persistence import ESTIMATOR_CONFIG, ESTIMATOR_WEIGHTS, save_trainer
from sbiplug.study import StudyError

SMALL = {
    "num_simulations": 200,
    "train_options": {"max_num_epochs": 2},
    "show_progress_bars": False,
}
NET = {"hidden_features": 8, "num_transforms": 1}


def _study(embedding_net):
    study = sbiplug.Study(
        "gaussian_linear", estimator_options={"embedding_net": embedding_net, **NET}, **SMALL
    )
    return study.run(num_posterior_samples=20, num_predictive_draws=0)


def _same_posterior(first, second):
    theta, x_o = first.samples[0, 0, :10], first.observations[0]
    torch.testing.assert_close(
        first.posterior.log_prob(theta, x=x_o), second.posterior.log_prob(theta, x=x_o)
    )


def test_registered_embedding_net_round_trips(tmp_path):
    net = sbiplug.make_embedding_net("fc", input_dim=10, output_dim=4)
    result = _study(net)
    assert result.provenance["estimator_options"]["embedding_net"] == {
        "name": "fc",
        "options": {"input_dim": 10, "output_dim": 4},
    }
    result.save(tmp_path)
    config = json.loads((tmp_path / "estimator" / ESTIMATOR_CONFIG).read_text())
    assert config["options"]["embedding_net"]["name"] == "fc"
    # no pickles: the weights load with weights_only=True
    torch.load(tmp_path / "estimator" / ESTIMATOR_WEIGHTS, weights_only=True)
    loaded = sbiplug.StudyResult.load(tmp_path)
    assert loaded.estimator is not None
    _same_posterior(result, loaded)


def test_a_spec_table_in_a_study_file_round_trips(tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text(
        """
num_simulations = 200
num_posterior_samples = 20
num_predictive_draws = 0
show_progress_bars = false
[simulator]
name = "gaussian_linear"
[estimator]
name = "npe"
train = { max_num_epochs = 2 }
[estimator.options]
hidden_features = 8
num_transforms = 1
embedding_net = { name = "fc", options = { input_dim = 10, output_dim = 3 } }
"""
    )
    assert main(["run", str(study), "--out", str(tmp_path / "out")]) == 0
    loaded = sbiplug.StudyResult.load(tmp_path / "out" / "result")
    assert loaded.estimator is not None
    network = loaded.estimator.build_posterior().posterior_estimator
    assert network.embedding_net(torch.zeros(2, 10)).shape == (2, 3)


def test_custom_module_warns_at_save_and_loads_when_passed_again(tmp_path):
    result = _study(FCEmbedding(10, 4))
    with pytest.warns(
        UserWarning, match="embedding_net \\(FCEmbedding\\) is a module built outside"
    ):
        result.save(tmp_path)
    with pytest.warns(UserWarning, match="StudyResult.load\\(folder, estimator_options="):
        assert sbiplug.StudyResult.load(tmp_path).estimator is None
    loaded = sbiplug.StudyResult.load(
        tmp_path, estimator_options={"embedding_net": FCEmbedding(10, 4)}
    )
    _same_posterior(result, loaded)


def test_save_trainer_names_a_module_it_cannot_store(tmp_path):
    result = _study(FCEmbedding(10, 4))
    with pytest.raises(
        TypeError, match=r"option 'embedding_net' is a FCEmbedding.*make_embedding_net"
    ):
        save_trainer(
            result.estimator,
            tmp_path,
            estimator="npe",
            options={"embedding_net": FCEmbedding(10, 4)},
        )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "fcc"}, "unknown embedding_net 'fcc'"),
        ({"name": "fc", "size": 3}, re.escape("a table {name = ..., options = {...}}")),
        ({"name": "fc", "options": {"input_dim": 10, "width": 3}}, "embedding_net 'fc'.*'width'"),
    ],
)
def test_bad_embedding_specs_fail_before_work(spec, message):
    with pytest.raises(StudyError, match=message):
        sbiplug.Study("gaussian_linear", estimator_options={"embedding_net": spec}, **SMALL)


def test_builtin_embedding_nets_build_from_json():
    assert {"fc", "cnn", "permutation_invariant"} <= set(sbiplug.embedding_nets())
    cnn = sbiplug.make_embedding_net("cnn", input_shape=[16, 16], output_dim=5)
    assert cnn(torch.zeros(3, 16, 16)).shape == (3, 5)
    deep_set = sbiplug.make_embedding_net(
        "permutation_invariant",
        trial_net={"name": "fc", "options": {"input_dim": 2, "output_dim": 4}},
        trial_net_output_dim=4,
        output_dim=6,
    )
    assert deep_set(torch.zeros(3, 7, 2)).shape == (3, 6)
    with pytest.raises(TypeError, match="options must be JSON values"):
        sbiplug.make_embedding_net("fc", input_dim=torch.tensor(3))
