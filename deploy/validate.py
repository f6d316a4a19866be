"""Checks deploy/: the Kubernetes manifest against the oldest and newest Kubernetes that
kubernetes-validate knows (--strict: an unknown field is an error, not a typo ignored by the
API server), the Compose file with `docker-compose config` (schema and types; no daemon needed),
and in both that the shutdown delay ends a second or more before the grace period does, as the
server drains in under a second after it; in the manifest, that the image is pinned by digest
and that the Deployment leaves the replica count to the autoscaler; in the Compose file, that no
service publishes ports on the host's network.

Run with the Python that has kubernetes-validate (and so PyYAML); .ci/run makes a venv for it.
Exits 1 on the first failure.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes_validate.utils import all_versions

DEPLOY = Path(__file__).resolve().parent
KUBERNETES = DEPLOY / "kubernetes.yaml"
COMPOSE = DEPLOY / "compose.yaml"
DELAY = "TINYAPI_SHUTDOWN_DELAY"


def fail(message):
    sys.exit(f"FAIL: {message}")


def run(argv, env=None):
    print("$", " ".join(str(a) for a in argv), flush=True)
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, env=env)
    if done.returncode != 0:
        print(done.stdout, end="")
        fail(f"{Path(argv[0]).name} exited with {done.returncode}")
    return done.stdout


def seconds(duration):
    """A Compose duration such as `15s`, `1m30s` or `1m` in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(duration))
    if not parts or not any(parts.groups()):
        fail(f"stop_grace_period {duration!r} is not in minutes and seconds")
    return int(parts[1] or 0) * 60 + int(parts[2] or 0)


def check_delay(where, delay, grace):
    print(f"{where}: {DELAY} {delay} s, grace period {grace} s")
    if delay is None or not int(delay) + 1 <= grace:
        fail(f"{where}: {DELAY} must be set and end at least 1 s before the grace period")


def main():
    versions = all_versions()
    validator = Path(sys.executable).with_name("kubernetes-validate")
    for version in dict.fromkeys((versions[0], versions[-1])):  # oldest, newest
        print(run([validator, "--strict", "-k", version, KUBERNETES]), end="")
    deployment = next(d for d in yaml.safe_load_all(KUBERNETES.read_text())
                      if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
    check_delay(KUBERNETES.name, env.get(DELAY), pod.get("terminationGracePeriodSeconds", 30))
    image = pod["containers"][0]["image"]
    if not re.search(r"@sha256:[0-9a-f]{64}$", image):
        fail(f"{KUBERNETES.name}: {image} is not pinned by digest")
    if "replicas" in deployment["spec"]:
        fail(f"{KUBERNETES.name}: replicas set beside the HorizontalPodAutoscaler, which owns it")

    # The delay a user may set (compose.yaml says at most 14 s), and none by default.
    for delay in (None, "14"):
        env = {k: v for k, v in os.environ.items() if k != DELAY}
        if delay:
            env[DELAY] = delay
        config = yaml.safe_load(run(["docker-compose", "-f", COMPOSE, "config"], env))
        for name, service in config["services"].items():
            check_delay(f"{COMPOSE.name} {name}", service.get("environment", {}).get(DELAY),
                        seconds(service.get("stop_grace_period", "10s")))
            if "host" in service.get("network_mode", "") and service.get("ports"):
                fail(f"{COMPOSE.name} {name}: ports with host networking")
    print("deploy: both files valid")


if __name__ == "__main__":
    main()
