"""The helm namespace (being built)."""

from invoke import Collection

ns = Collection("helm")
