"""The client packages on its own: just ``spectator_client``, needing httpx and websockets, not Django.

(The suite's environment has no ``wheel``, so this builds the source distribution, which
records the same metadata; a real install is ``pip install ./spectator_client``.)
"""

import shutil
import subprocess
import sys
import tarfile

from tests.support.servers import ROOT

BUILD_SDIST = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"


def test_the_client_packages_without_the_server(tmp_path):
    source = tmp_path / "spectator_client"
    shutil.copytree(
        ROOT / "spectator_client", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    )
    out = subprocess.run(
        [sys.executable, "-c", BUILD_SDIST, str(tmp_path)], cwd=source, check=True, capture_output=True, text=True
    ).stdout
    with tarfile.open(tmp_path / out.strip().splitlines()[-1]) as archive:
        files = {name.split("/", 1)[1]: name for name in archive.getnames() if "/" in name}

        def read(name):
            return archive.extractfile(files[name]).read().decode()

        requires_text = read("spectator_client.egg-info/requires.txt")
        requires = requires_text.split("[", 1)[0].split()
        extras = {
            section.split("]", 1)[0]: section.split("]", 1)[1].split() for section in requires_text.split("[")[1:]
        }
        top_level = read("spectator_client.egg-info/top_level.txt").split()
        sources = {name.removeprefix("./") for name in read("spectator_client.egg-info/SOURCES.txt").split()}
    assert sorted(r.split(">")[0] for r in requires) == ["httpx", "websockets"]
    assert top_level == ["spectator_client"]
    assert {"__init__.py", "stream.py", "integrations/__init__.py", "integrations/gymnasium.py"} <= sources
    # The integrations' libraries are extras: pip install "./spectator_client[gymnasium]".
    assert sorted(extras) == ["gymnasium", "images", "sb3"]
    assert any(r.startswith("stable-baselines3") for r in extras["sb3"])
