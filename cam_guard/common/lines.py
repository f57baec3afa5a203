"""Whole lines out of a pipe that hands over bytes in arbitrary pieces."""


class LineSplitter:
    """Bytes from a pipe in, whole lines out (a line may arrive in pieces)."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[str]:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        if len(self._partial) > 4096:  # a "line" that never ends is still worth showing
            lines.append(self._partial)
            self._partial = b""
        return [line.decode(errors="replace") for line in lines]
