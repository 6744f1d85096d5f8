"""The editor namespace (being built)."""

from invoke import Collection

ns = Collection("editor")
