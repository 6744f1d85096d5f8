"""The demo app's own tasks, beside the kit's: what a Rails developer types every day.

They use the kit's public pieces (App, the command funnel, the rendered set), so they get its
context checks, --dry, secret masking and error messages for free.
"""

from __future__ import annotations

from invoke import Collection, Context

from devloop.kit import App, kit_task
from devloop.workflow import cycle, cycle_lock

ENV_HELP = "environment (dev, staging, qa…); default app.env"


@kit_task(help={"env": ENV_HELP, "pod": "the Deployment (or pod) to open it in"})
def console(c: Context, env: str | None = None, pod: str = "deploy/demoapp-puma") -> None:
    """Open a Rails console in a puma pod."""
    app = App.load(c, env)
    app.run(app.kubectl("exec", "-it", pod, "-c", "puma", "--", "bin/rails", "console"), interactive=True)


@kit_task(help={"env": ENV_HELP})
def dbconsole(c: Context, env: str | None = None) -> None:
    """Open a MySQL client in the database pod, as root."""
    app = App.load(c, env)
    # The password stays in the pod: MYSQL_PWD is read from its own environment, never from this command line.
    app.run(app.kubectl("exec", "-it", "demoapp-mysql-0", "-c", "mysql", "--", "sh", "-c",
                        'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mysql -h 127.0.0.1 -u root "$MYSQL_DATABASE"'),
            interactive=True)


@kit_task(help={"env": ENV_HELP, "timeout": "seconds to wait for the Job and the app (default app.timeout)"})
def setup_db(c: Context, env: str | None = None, timeout: int | None = None) -> None:
    """Rerun this version's setup-db Job; wait until ready."""
    app = App.load(c, env)
    with cycle_lock(app):
        app.run(app.kubectl("delete", "job", "--selector", "app=demoapp,component=setup-db", "--ignore-not-found",
                            "--wait=true"))
        cycle(app, timeout=timeout)


ns = Collection("rails")
for _task in (console, dbconsole, setup_db):
    ns.add_task(_task)
