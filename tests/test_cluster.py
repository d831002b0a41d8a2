"""``cluster.yaml`` passes Ray's own cluster-launcher validation (offline: no cloud, no network).

``ray up`` resolves a cluster config in ``ray.autoscaler._private.commands._bootstrap_config``:
``prepare_config`` (merge with the provider's ``defaults.yaml``, merge ``setup_commands`` into the
head/worker lists, fill per-type ``min_workers``/``max_workers``), then the provider's resource
auto-detection (AWS API calls, skipped here: every node type declares its resources), then
``validate_config`` (the JSON schema ``ray/autoscaler/ray-schema.json`` plus Ray's cross-field
checks). These tests run the same ``prepare_config`` + ``validate_config`` on the file, check the
parts the platform relies on, and check that broken copies are rejected, so they can fail.
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from automl_chars.data import DATA_ROOT_ENV

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
SHARED = "/mnt/automl_chars"


def raw_config() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def ray_validate(config: dict) -> dict:
    """What ``ray up`` does to a config before touching the cloud; returns the prepared config."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def prepared() -> dict:
    return ray_validate(raw_config())


def worker_types(config: dict) -> dict:
    return {k: v for k, v in config["available_node_types"].items()
            if k != config["head_node_type"]}


def test_cluster_yaml_passes_ray_validation(prepared):
    assert prepared["provider"]["type"] == "aws"
    assert prepared["cluster_name"] == "automl-chars"
    # prepare_config filled per-type limits from the global max_workers; the head launches none.
    assert prepared["available_node_types"][prepared["head_node_type"]]["max_workers"] == 0
    assert prepared["max_workers"] >= 1


def test_head_is_cpu_only_and_workers_declare_gpus(prepared):
    head = prepared["available_node_types"][prepared["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["resources"]["CPU"] >= 1
    workers = worker_types(prepared)
    assert workers, "no worker node types"
    for name, node in workers.items():
        assert node["resources"].get("GPU", 0) >= 1, f"{name} declares no GPU"
        assert node["resources"].get("CPU", 0) >= 1, f"{name} declares no CPU"
        assert re.match(r"(g4dn|g5|g6|p3|p4d|p5)\.", node["node_config"]["InstanceType"]), name
        assert node["max_workers"] <= prepared["max_workers"]
        assert node.get("min_workers", 0) == 0, f"{name}: idle GPU nodes should scale to zero"


def test_setup_installs_this_package_from_the_synced_tree(prepared):
    mounts = prepared["file_mounts"]
    remote = next(r for r, local in mounts.items() if (ROOT / local).resolve() == ROOT)
    assert (ROOT / mounts[remote] / "pyproject.toml").read_text().count('name = "automl-chars"') == 1
    # After merging, the common setup_commands run on the head and on every worker.
    for key in ("head_setup_commands", "worker_setup_commands"):
        installs = [c for c in prepared[key] if "pip install" in c and "-e" in shlex.split(c)]
        assert any(shlex.split(c)[-1] == remote for c in installs), (key, installs)
        # The package's ray dependency is pinned to one version cluster-wide.
        assert any(re.search(r'"ray\[default,tune\]==[\d.]+"', c) for c in prepared[key]), key


def test_dashboard_tensorboard_and_shared_roots(prepared):
    head_start = " ".join(prepared["head_start_ray_commands"])
    assert "--head" in head_start
    assert "--dashboard-host=0.0.0.0" in head_start and "--dashboard-port=8265" in head_start
    assert re.search(rf"tensorboard --logdir {SHARED}/results\b.*--port 6006", head_start)
    assert "$RAY_HEAD_IP:6379" in " ".join(prepared["worker_start_ray_commands"])
    # The data and results roots point to the shared folder on every node...
    for key in ("head_setup_commands", "worker_setup_commands"):
        text = " ".join(prepared[key])
        assert f"export {DATA_ROOT_ENV}={SHARED}/data" in text, key
        assert f"export AUTOML_CHARS_RESULTS={SHARED}/results" in text, key
    # ...which the head exports over NFS and every worker mounts at the same path.
    assert any("/etc/exports" in c and SHARED in c for c in prepared["head_setup_commands"])
    assert any(f"$RAY_HEAD_IP:{SHARED} {SHARED}" in c for c in prepared["worker_setup_commands"])


def _drop_worker_resources(c):
    del c["available_node_types"]["gpu_a10g"]["resources"]


def _string_max_workers(c):
    c["max_workers"] = "four"


def _fractional_gpu_resource(c):
    c["available_node_types"]["gpu_t4"]["resources"]["GPU"] = 0.5


def _misspelled_key(c):
    c["setup_command"] = c.pop("setup_commands")


def _commands_not_a_list(c):
    c["worker_start_ray_commands"] = "ray start --address=$RAY_HEAD_IP:6379"


def _unknown_head_type(c):
    c["head_node_type"] = "head_gpu"


def _min_workers_above_max(c):
    c["available_node_types"]["gpu_a10g"]["min_workers"] = 5
    c["available_node_types"]["gpu_t4"]["min_workers"] = 5


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        (_drop_worker_resources, jsonschema.ValidationError),  # a required field
        (_string_max_workers, jsonschema.ValidationError),  # a wrong type
        (_fractional_gpu_resource, jsonschema.ValidationError),  # node resources are integers
        (_misspelled_key, jsonschema.ValidationError),  # no extra top-level keys
        (_commands_not_a_list, jsonschema.ValidationError),
        (_unknown_head_type, ValueError),  # Ray's cross-field checks
        (_min_workers_above_max, ValueError),
    ],
    ids=lambda v: getattr(v, "__name__", "").lstrip("_"),
)
def test_broken_copies_fail_validation(breakage, error):
    config = raw_config()
    ray_validate(config)  # the intact file passes...
    breakage(config)
    with pytest.raises(error):  # ...and the broken copy does not
        ray_validate(config)


def test_token_authentication_stays_on_for_every_node(prepared):
    """The head and the workers share your token (a worker without it cannot join)."""
    assert prepared["file_mounts"].get("~/.ray/auth_token") == "~/.ray/auth_token"
    for key in ("head_setup_commands", "worker_setup_commands"):
        assert any("export RAY_AUTH_MODE=token" in c for c in prepared[key]), key
