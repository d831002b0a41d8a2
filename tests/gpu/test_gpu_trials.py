"""Trials on a share of a GPU, run as Ray actors the way Tune runs them.

CI has no GPU, so these skip there; on a machine with one, ``python -m pytest -m gpu`` runs them
(the session's Ray instance then owns the machine's GPUs, see ``ray_session``).
"""

import pytest
import ray
from ray import tune

from automl_chars import run_bohb
from automl_chars.spaces import cnn_space, subspace
from automl_chars.trainables import CNNTrainable
from automl_chars.training.fidelity import Fidelity

pytestmark = [pytest.mark.slow, pytest.mark.gpu, pytest.mark.usefixtures("needs_gpu")]

# Dropout (the GPU's RNG) and augmentation (the trial's generator) make every RNG state matter.
CONFIG = {"optimizer": "adam", "learning_rate": 0.003, "batch_size": 16, "augment": True,
          "conv1_dropout": True, "conv1_dropout_rate": 0.3}


def _actor(ds, fidelity: Fidelity, gpus: float):
    """A ``CNNTrainable`` actor holding ``gpus`` of a GPU, as Tune starts one for a trial."""
    cls = tune.with_parameters(CNNTrainable, dataset=ds, fidelity=fidelity, seed=0)
    return ray.remote(num_cpus=0.5, num_gpus=gpus)(cls).remote(config=CONFIG)


def _train(actor, units: int) -> list[dict]:
    return ray.get([actor.train.remote() for _ in range(units)])  # an actor runs calls in order


def test_trial_on_a_gpu_share_pauses_and_resumes_on_gpu_or_cpu(ray_session, make_dataset,
                                                                 tmp_path):
    ds = make_dataset(per_class=40)
    fid = Fidelity("subset", max_budget=4)
    straight = _actor(ds, fid, 0.25)
    reference = _train(straight, 4)

    paused = _actor(ds, fid, 0.25)
    first = _train(paused, 2)
    checkpoint = ray.get(paused.save.remote(str(tmp_path / "ckpt")))
    ray.kill(paused)

    resumed = _actor(ds, fid, 0.25)
    ray.get(resumed.restore.remote(checkpoint))
    rest = _train(resumed, 2)
    assert {r["device"] for r in reference + first + rest} == {"cuda"}
    assert [r["budget"] for r in first + rest] == [1, 2, 3, 4]
    assert [r["samples_seen"] for r in first + rest] == [r["samples_seen"] for r in reference]
    # The same run continued (up to cuDNN's nondeterministic kernels), not a restart.
    assert [r["train_loss"] for r in first + rest] == pytest.approx(
        [r["train_loss"] for r in reference], rel=1e-3)
    assert rest[0]["train_loss"] != pytest.approx(first[0]["train_loss"], rel=1e-3)

    # A checkpoint written on a GPU resumes on a CPU-only actor (a cluster without GPUs left).
    on_cpu = _actor(ds, fid, 0)
    ray.get(on_cpu.restore.remote(checkpoint))
    cpu_rest = _train(on_cpu, 2)
    assert {r["device"] for r in cpu_rest} == {"cpu"}
    assert [r["budget"] for r in cpu_rest] == [3, 4]
    assert [r["samples_seen"] for r in cpu_rest] == [r["samples_seen"] for r in rest]
    # Other random draws than on the GPU, but the trained weights: nearer the GPU's continuation
    # than a fresh start.
    loss = cpu_rest[0]["train_loss"]
    assert abs(loss - rest[0]["train_loss"]) < abs(loss - first[0]["train_loss"])
    for actor in (straight, resumed, on_cpu):  # give the session's GPU and CPUs back
        ray.kill(actor)


def test_sweep_with_a_quarter_gpu_per_trial(ray_session, make_dataset, tmp_path):
    assert ray_session.cluster_resources().get("GPU", 0) >= 1
    space = subspace(cnn_space(), ["learning_rate", "batch_size", "conv1_channels"], seed=0)
    result = run_bohb(make_dataset(per_class=30), space=space, preset="3_1_3_2",
                      gpus_per_trial=0.25, cpus_per_trial=0.5, storage_path=tmp_path,
                      name="quarter-gpu", verbose=0)
    t = result.trials
    assert len(t) == 5 and (t["status"] == "TERMINATED").all(), t["error"].tolist()
    assert (t["device"] == "cuda").all()
    assert result.settings["gpus_per_trial"] == 0.25
    assert 0.0 <= result.test_accuracy <= 1.0


def test_a_gpu_trial_measures_its_models_costs_on_the_gpu(ray_session, make_dataset):
    """Latency and throughput are the GPU's (synchronised around each pass); parameters and
    FLOPs are the same numbers as on the CPU."""
    from automl_chars.models import build_model, count_flops, count_params, measure_costs
    from automl_chars.trainables.cnn import cnn_settings

    ds = make_dataset()
    r = _train(_actor(ds, Fidelity(), 0.25), 1)[0]
    assert r["device"] == "cuda" and r["latency_ms"] > 0 and r["throughput"] > 0
    net = build_model("cnn", cnn_settings(CONFIG).arch, ds.num_classes, ds.image_shape)
    assert r["params"] == count_params(net) and r["flops"] == count_flops(net, ds.image_shape)
    on_gpu = measure_costs(net.to("cuda"), ds.image_shape)
    assert on_gpu.device == "cuda" and on_gpu.flops == r["flops"]
