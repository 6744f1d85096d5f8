"""The minikube namespace (being built)."""

from invoke import Collection

ns = Collection("minikube")
