"""The application layer: the `streamer` command and the processes it wires together.

The one place that imports the applications (`transcoder`, `cdn_edge`) and the shared core
(`streamer`) side by side; nothing imports it. `cli` parses the command line and chooses what
to run; `demo` is the README's first command.
"""

__all__: list[str] = []
