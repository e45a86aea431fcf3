"""The package list, which pyproject.toml cannot compute: widget's own packages, and the top-level templates/ and
static/ folders as widget.templates and widget.static (mapped in pyproject.toml), so that a wheel serves pages."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["widget", "widget.*"]), "widget.templates", "widget.static"])
