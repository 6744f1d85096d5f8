"""The demo Rails app's tasks: the devloop kit's, plus this app's own in tasks/ (rails console, dbconsole, setup-db)."""
from pathlib import Path

from devloop import namespace

__path__ = [str(Path(__file__).with_name("tasks"))]  # so tasks/rails.py imports as tasks.rails
from tasks import rails  # noqa: E402

ns = namespace()
ns.add_collection(rails.ns)
