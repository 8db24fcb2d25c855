"""Package metadata comes from settings.ini (one version, one list of requirements)."""
from configparser import ConfigParser
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
cfg = ConfigParser()
cfg.read(here / "settings.ini")
cfg = cfg["DEFAULT"]
# every `NAME_requirements` line but dev's is the extra NAME; the dev extra also installs all of them (CI tests them)
extras = {key.removesuffix("_requirements"): cfg[key].split() for key in cfg
          if key.endswith("_requirements") and key != "dev_requirements"}
extras["dev"] = cfg["dev_requirements"].split() + [req for reqs in extras.values() for req in reqs]

setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=cfg["license"],
    keywords=cfg["keywords"].split(),
    python_requires=f">={cfg['min_python']}",
    packages=find_packages(include=[cfg["lib_path"], f"{cfg['lib_path']}.*"]),
    install_requires=cfg["requirements"].split(),
    extras_require=extras,
    entry_points={
        "console_scripts": cfg["console_scripts"].split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
