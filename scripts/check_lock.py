#!/usr/bin/env python3
"""Fail when the locks in requirements/ no longer satisfy pyproject.toml.

Usage: check_lock.py pyproject.toml requirements/run.txt requirements/test.txt

Offline and fast (run by `make lint`): every requirement of pyproject.toml (the runtime
ones for run.txt, runtime and test extras for test.txt) must be pinned in the lock to a
version its range allows, and the runtime pins of both locks must agree. Fix: `make lock`.
"""

import re
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(path):
    with open(path, encoding="utf-8") as f:
        return {canonicalize_name(m[1]): m[2] for line in f if (m := PIN.match(line))}


def unmet(requirements, locked):
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            yield f"{req.name} is not pinned"
        elif not req.specifier.contains(version, prereleases=True):
            yield f"{req.name}=={version} is outside {req.specifier}"


def main(pyproject, run_lock, test_lock):
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    runtime = project.get("dependencies", [])
    test = project.get("optional-dependencies", {}).get("test", [])
    run_pins, test_pins = pins(run_lock), pins(test_lock)
    problems = [f"{run_lock}: {p}" for p in unmet(runtime, run_pins)]
    problems += [f"{test_lock}: {p}" for p in unmet(runtime + test, test_pins)]
    problems += [
        f"{test_lock}: {name}=={test_pins.get(name)} but {run_lock} has {version}"
        for name, version in run_pins.items()
        if name in test_pins and test_pins[name] != version
    ]
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"the locks are stale against {pyproject}: run `make lock`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[2])
    sys.exit(main(*sys.argv[1:]))
