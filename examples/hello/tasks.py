"""The hello app's tasks: the devloop kit's, for this folder."""
from devloop import namespace

ns = namespace()
