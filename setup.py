"""The one thing pyproject.toml cannot say: the design's top-level folders install under ``hwnas.``.

``controller/``, ``device_agent/``, ``predictors/`` and ``protos/`` stay where the design puts them; the
distribution claims only the ``hwnas`` import name (``hwnas.controller``, ...). Every package below those
folders is found here, so a new subpackage needs no list kept by hand.
"""

from setuptools import find_packages, setup

FOLDERS = ("controller", "device_agent", "predictors", "protos")

setup(
    package_dir={"hwnas": "hwnas", **{f"hwnas.{folder}": folder for folder in FOLDERS}},
    packages=["hwnas", *(f"hwnas.{folder}{'.' + sub if sub else ''}" for folder in FOLDERS
                         for sub in ("", *find_packages(where=folder)))],
)
