"""The shape of an answer: what a GraphQL or REST answer must be before anything reads it. A wrong shape is
a ShapeError, which the enrichment boundary reports once per episode."""


class ShapeError(ValueError):
    """An answer that is not of the shape asked for (GraphQL or REST)."""


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
