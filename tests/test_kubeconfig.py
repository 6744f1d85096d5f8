"""core.kubeconfig: which files kubectl reads, and which current-context wins."""

from __future__ import annotations

import os
from pathlib import Path

from devloop.core import kubeconfig


def test_the_kubeconfig_variable_lists_the_files_in_order_skipping_empty_entries() -> None:
    listed = os.pathsep.join(["/a/config", "", "/b/config"])
    assert kubeconfig.paths(listed, "/home/u") == [Path("/a/config"), Path("/b/config")]


def test_without_the_variable_the_file_is_in_the_home_folder() -> None:
    assert kubeconfig.paths("", "/home/u") == [Path("/home/u/.kube/config")]


def test_an_unknown_home_folder_gives_no_file_to_read() -> None:
    assert kubeconfig.paths("", None) == []


def test_the_first_file_that_sets_current_context_wins() -> None:
    texts = ["", "kind: Config\ncurrent-context: ''\n", "current-context: minikube\n", "current-context: gke_prod\n"]
    assert kubeconfig.current_context(texts) == "minikube"


def test_no_file_setting_it_gives_none() -> None:
    assert kubeconfig.current_context(["kind: Config\n", "contexts: []\n"]) is None
    assert kubeconfig.current_context([]) is None


def test_a_file_kubectl_could_not_load_gives_none_even_after_a_file_that_sets_it() -> None:
    assert kubeconfig.current_context(["current-context: minikube\n", "current-context: [x\n"]) is None
    assert kubeconfig.current_context(["- a list\n"]) is None


def test_a_context_that_is_not_text_gives_none() -> None:
    assert kubeconfig.current_context(["current-context: 42\n", "current-context: kind-dev\n"]) is None


def test_a_file_kubectl_would_refuse_to_load_gives_none() -> None:
    for broken in ("clusters: 5\n", "apiVersion: v9\n", "kind: Pod\n", "current-context: 15\n", "users: {}\n"):
        assert kubeconfig.current_context(["current-context: minikube\n", broken]) is None, broken


def test_a_complete_file_is_read() -> None:
    text = ("apiVersion: v1\nkind: Config\npreferences: {}\ncurrent-context: kind-dev\n"
            "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
            "contexts: [{name: kind-dev, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n")
    assert kubeconfig.current_context([text]) == "kind-dev"
