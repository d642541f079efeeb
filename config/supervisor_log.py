"""Supervisor event listener: every supervised process's output on the terminal, each line
prefixed with the process's name (``web      | …``), as honcho did.

supervisord (config/supervisord.conf) sends PROCESS_LOG events with the raw chunks a process
wrote; this prints them line by line on stderr, which supervisord copies to its own stdout.
Standard library only: it runs before anything else is imported and must never fail.
"""

from __future__ import annotations

import sys

WIDTH = 12  # the longest program name, so the bars line up


def main() -> None:
    partial: dict[str, bytes] = {}  # a process's last line, until its newline arrives
    stdin, stdout, out = sys.stdin.buffer, sys.stdout, sys.stderr.buffer
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header = dict(token.split(":", 1) for token in stdin.readline().decode().split())
        payload = stdin.read(int(header["len"]))
        if header.get("eventname", "").startswith("PROCESS_LOG"):
            head, _, data = payload.partition(b"\n")
            fields = dict(token.split(":", 1) for token in head.decode().split())
            name = fields["processname"]
            lines = (partial.pop(name, b"") + data).split(b"\n")
            if len(lines[-1]) > 65536:  # no newline for that long: print it as it is
                lines.append(b"")
            elif lines[-1]:
                partial[name] = lines[-1]
            prefix = name.ljust(WIDTH).encode() + b"| "
            out.write(b"".join(prefix + line + b"\n" for line in lines[:-1]))
            out.flush()
        stdout.write("RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    main()
