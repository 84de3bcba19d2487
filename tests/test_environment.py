"""The conda environment, the pip lock and pyproject.toml must not drift apart."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def lock_pins():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            spec = line.split(";")[0].strip()
            name, version = spec.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_environment_yml_pins_exactly_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = {}
    for spec in pip:
        name, version = spec.split(";")[0].strip().split("==")
        env_pins[name.lower().replace("_", "-")] = version
    assert env_pins == lock_pins()
    assert "python=3.11" in env["dependencies"]


def test_lock_pins_the_tested_torch_and_every_direct_dependency():
    pins = lock_pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    for dep in deps:
        name = re.split(r"[<>=!~ ;\[]", dep, maxsplit=1)[0].lower()
        assert name in pins, f"{name} is in pyproject.toml but not pinned in requirements.lock"


def test_installed_versions_match_the_lock():
    from importlib.metadata import version

    pins = lock_pins()
    for name in ("torch", "snntorch", "numpy", "matplotlib", "scikit-learn", "nbval"):
        assert version(name) == pins[name], name
