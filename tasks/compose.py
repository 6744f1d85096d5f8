"""The compose namespace (being built)."""

from invoke import Collection

ns = Collection("compose")
