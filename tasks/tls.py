"""The tls namespace (being built)."""

from invoke import Collection

ns = Collection("tls")
