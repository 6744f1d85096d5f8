"""Render + lint of 1,000 documents (target <= 0.5 s), beside a sed | kubectl --dry-run=client pipeline.

Usage: .venv/bin/python bench/render_bench.py [DOCS]   (the pipeline needs KUBECONFIG; skipped otherwise)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devloop.core import lint, render  # noqa: E402

TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web{i}, labels: {{app: web{i}}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web{i}}}}}
  template:
    metadata: {{labels: {{app: web{i}}}}}
    spec:
      containers:
      - name: web
        image: demoapp
        env: [{{name: URL, value: "http://demoapp.${{MINIKUBE_IP}}.nip.io/"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web{i}}}
spec: {{selector: {{app: web{i}}}, ports: [{{port: 80, protocol: TCP}}]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: conf{i}}}
data: {{HOST: "demoapp.${{MINIKUBE_IP}}.nip.io"}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: ing{i}}}
spec:
  rules:
  - host: web{i}.${{MINIKUBE_IP}}.nip.io
    http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web{i}, port: {{number: 80}}}}}}}}]}}
"""


def kit_pipeline(folder: Path) -> int:
    origins: dict[int, Path] = {}
    sources = [render.Source(p, p.read_text()) for p in render.manifest_files(folder)]
    declared = set(render.BUILTIN_VARS)
    documents = render.parse(render.substitute(sources, declared, {"MINIKUBE_IP": "192.168.49.2"}), origins)
    render.set_images(documents, {"demoapp": "demoapp:3f2a1b4c5d6e"})
    render.label(documents, "demoapp", "dev")
    findings = lint.lint(documents, origins, ["demoapp"], {"demoapp": "demoapp:3f2a1b4c5d6e"})
    render.dump(documents)
    assert not [f for f in findings if f.error]
    return len(documents)


def shell_pipeline(folder: Path) -> None:
    subprocess.run(f"cat {folder}/*.yaml | sed 's/${{MINIKUBE_IP}}/192.168.49.2/g' | "
                   "kubectl apply --dry-run=client -o yaml -f - > /dev/null", shell=True, check=True)


def main() -> None:
    docs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(docs // 4):
            (folder / f"app{i:04d}.yaml").write_text(TEMPLATE.format(i=i))
        kit = []
        for _ in range(5):
            start = time.perf_counter()
            count = kit_pipeline(folder)
            kit.append(time.perf_counter() - start)
        print(f"render + lint + dump of {count} documents ({docs // 4} files), 5 runs")
        print(f"  kit core: median {statistics.median(kit):.3f} s  (min {min(kit):.3f} s; target <= 0.5 s)")
        if os.environ.get("KUBECONFIG"):
            pipe = []
            for _ in range(3):
                start = time.perf_counter()
                shell_pipeline(folder)
                pipe.append(time.perf_counter() - start)
            print(f"  sed | kubectl apply --dry-run=client -o yaml: median {statistics.median(pipe):.3f} s "
                  "(substitution only: no placeholder check, no lint)")
            print(f"  ratio kit/pipeline: {statistics.median(kit) / statistics.median(pipe):.2f}")
        else:
            print("  (set KUBECONFIG to time the sed | kubectl pipeline beside it)")


if __name__ == "__main__":
    main()
