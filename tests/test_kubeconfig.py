"""core.kubeconfig: which files kubectl reads, and which current-context wins."""

from __future__ import annotations

import os
from pathlib import Path

from devloop.core import kubeconfig


def test_the_kubeconfig_variable_lists_the_files_in_order_skipping_empty_entries() -> None:
    listed = os.pathsep.join(["/a/config", "", "/b/config"])
    assert kubeconfig.paths(listed, Path("/home/u")) == [Path("/a/config"), Path("/b/config")]


def test_without_the_variable_the_file_is_in_the_home_folder() -> None:
    assert kubeconfig.paths("", Path("/home/u")) == [Path("/home/u/.kube/config")]


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
