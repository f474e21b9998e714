"""The shape of an answer: what a GraphQL or REST answer must be before anything reads it. A wrong shape is
a ShapeError, which the enrichment boundary reports once per episode."""

from octopus_telegraf.base import log


class ShapeError(ValueError):
    """An answer that is not of the shape asked for (GraphQL or REST)."""


class Ceiling:
    """Listed answers have ceilings: an answer cut to one is an answer, not a fault. One W! the first time
    in this process (`who`: whose answer), D! after."""

    def __init__(self, who: str):
        self.who = who
        self.told = False

    def cut(self, message: str) -> None:
        (log.debug if self.told else log.warn)(f"{self.who}: {message}")
        self.told = True


def listed(data, *path) -> list[dict]:
    """The dicts found by following `path` through nested objects and lists, skipping nulls; ShapeError
    when a step is neither an object, a list of them, nor null."""
    found = [data]
    for key in path:
        step = []
        for item in found:
            value = item.get(key)
            if isinstance(value, list):
                step += [v for v in value if v is not None]
            elif value is not None:
                step.append(value)
        if not all(isinstance(v, dict) for v in step):
            raise ShapeError(f"`{key}` is not an object")
        found = step
    return found
