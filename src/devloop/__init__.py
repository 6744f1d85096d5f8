"""devloop: Invoke tasks that replace a containerised app's Makefile (build, deliver, render, apply, wait, watch).

An app's ``tasks.py``::

    from devloop import namespace
    ns = namespace()

Importing this package reads no file, changes no environment variable and never exits: work starts when
a task runs.
"""

from devloop.collection import namespace

__version__ = "0.2.0"
__all__ = ["namespace", "__version__"]
