"""The container's command, mounts and image recipe: pure functions, checked without Docker."""

from __future__ import annotations

import ductwork as dw
from ductwork.backends.docker import container_config
from ductwork.backends.docker_env import dockerfile, image_tag


def test_container_config_mounts_job_lib_and_local_store():
    config = container_config("sha256:abc", "/tmp/job1", "/src/ductwork", "/data/store", 1000, 1000,
                              cpus=1.5, memory="2g")
    assert config["image"] == "sha256:abc"
    assert config["command"] == ["python", "-m", "ductwork.runtime.engine.worker", "--job",
                                 "/ductwork/job", "--store", "/ductwork/store"]
    assert config["volumes"] == {
        "/tmp/job1": {"bind": "/ductwork/job", "mode": "rw"},
        "/src/ductwork": {"bind": "/ductwork/lib/ductwork", "mode": "ro"},
        "/data/store": {"bind": "/ductwork/store", "mode": "rw"},
    }
    assert config["user"] == "1000:1000"  # outputs on the store belong to the invoking user
    assert config["network_mode"] == "none"
    assert config["environment"]["PYTHONPATH"] == "/ductwork/lib"
    assert config["nano_cpus"] == 1_500_000_000 and config["mem_limit"] == "2g"


def test_container_config_without_a_local_store_ships_values():
    config = container_config("img", "/tmp/job", "/src/ductwork", None, 0, 0)
    assert "--store" not in config["command"]
    assert "/ductwork/store" not in {v["bind"] for v in config["volumes"].values()}
    assert "nano_cpus" not in config and "mem_limit" not in config


def test_dockerfile_installs_packages_trusts_the_ca_and_sets_variables():
    env = dw.Environment(pip=["six==1.16.0", "tqdm>=4"], apt=["curl"], env={"A": "1"})
    text = dockerfile(env, "sha256:base", with_ca=True)
    lines = text.splitlines()
    assert lines[0] == "FROM sha256:base"
    assert "COPY ca-bundle.crt /etc/ssl/certs/ductwork-ca.crt" in text
    assert "PIP_CERT=/etc/ssl/certs/ductwork-ca.crt" in text
    assert "apt-get install -y --no-install-recommends curl" in text
    assert "uv pip install" in text and "pip install --no-cache-dir six==1.16.0 'tqdm>=4'" in text
    assert 'ENV A="1"' in text
    assert "COPY" not in dockerfile(env, "b", with_ca=False)


def test_image_tags_follow_the_environment_and_the_base_image():
    a = dw.Environment(pip=["six==1.16.0"])
    b = dw.Environment(pip=["six==1.15.0"])
    assert image_tag(a, "sha256:1", True) == image_tag(dw.Environment(pip=["six==1.16.0"]),
                                                       "sha256:1", True)
    assert image_tag(a, "sha256:1", True) != image_tag(b, "sha256:1", True)
    assert image_tag(a, "sha256:1", True) != image_tag(a, "sha256:2", True)  # rebuilt base
    assert image_tag(a, "sha256:1", True).startswith("ductwork-env:")
