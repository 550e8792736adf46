"""Kumpul: the web service (settings, domain, database, storage, queue, routes)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kumpul")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"
