"""The miniature's tasks: shapes on a 4x4 grid, graded by how much of the picture holds the answer.

At the tiny models' 56 px a grid cell is exactly one 14 px patch of the vision tower, so an answer
is always in what some patches see; the tasks differ in how many patches carry it:

- ``shape_color``: one large shape covers much of the image; name its colour.
- ``small_color``: one small shape (one or two patches wide) anywhere; name its colour.
- ``more_color``: squares of two colours; which colour has more (compare two areas).

and the compositional tasks (``COMPOSITIONAL_TASKS``), the learning benchmarks' miniatures:

- ``quadrant_color``: four squares, one per quadrant (one image token each after InternVL's pixel
  shuffle), of random colours; what colour is the one in the named quadrant? The trace reads the
  four in order, then selects the asked one. Its held-out split is disjoint in content, not only by
  key: a picture showing both colours of a pair in ``HELDOUT_PAIRS`` is held-out, so no train or
  RL picture shows those colours together.
- ``half_color``: the same with two tall boxes, one per half (left, right): a binary selection. The
  trace names and reads the asked half first, then the other ("right green, left red. The right is
  green."); held-out by the same colour pairs (ours: issue 23's "fewer quadrants, asked first", after
  the diagnosis found the tiny model reads ``quadrant_color``'s pictures right but ignores which
  quadrant is asked; benchmarks/RESULTS.md, "Binary selection").

The answers are words or numbers the accuracy reward checks exactly, the traces are short (the
miniature's rollouts are a few dozen tokens, so RL runs in minutes on 2 CPU cores), and every
problem's key is the full list of what was drawn where, so equal keys are equal pictures.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from skywork_rl.miniature.tasks import (
    COLORS,
    SHAPES,
    Problem,
    Renderer,
    _cells_key,
    _draw_shape,
    _render_grid,
    _shuffled_cells,
)


def _one_shape_color(task: str, rng: random.Random, size: int, sides: tuple[int, int]) -> Problem:
    """One shape of a random colour, kind, side (in `sides`, inclusive) and place; name its colour."""
    color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
    side = rng.randint(*sides)
    x0, y0 = rng.randint(0, size - side), rng.randint(0, size - side)
    image = Image.new("RGB", (size, size), "white")
    _draw_shape(ImageDraw.Draw(image), shape, (x0, y0, x0 + side, y0 + side), COLORS[color])
    key = f"{task}|{shape}:{color}|{x0},{y0},{side}|{size}"
    return Problem(task, f"What colour is the {shape}?", color, f"The {shape} is {color}.", image, key)


def shape_color(rng: random.Random, size: int) -> Problem:
    """One large shape of random size and place: its colour fills much of the image."""
    return _one_shape_color("shape_color", rng, size, (size // 2, size - 4))


def small_color(rng: random.Random, size: int) -> Problem:
    """One small shape (a patch or two wide) anywhere in the image."""
    return _one_shape_color("small_color", rng, size, (size // 8, size // 4))


def more_color(rng: random.Random, size: int) -> Problem:
    """Squares of two colours in different numbers: which colour has more?"""
    a, b = rng.sample(list(COLORS), 2)
    n_a, n_b = rng.sample(range(1, 7), 2)
    free = _shuffled_cells(rng)
    cells = {free[k]: ("square", a if k < n_a else b) for k in range(n_a + n_b)}
    winner = a if n_a > n_b else b
    first, second = sorted((a, b))
    question = f"Which colour has more squares, {first} or {second}?"
    key = f"more_color|{_cells_key(cells)}|{size}"
    image = _render_grid(cells, size, pad_fraction=1 / 6)
    return Problem("more_color", question, winner, f"Most squares are {winner}.", image, key)


MINIATURE_TASKS: dict[str, Renderer] = {
    "shape_color": shape_color,
    "small_color": small_color,
    "more_color": more_color,
}


# Colour pairs only held-out pictures show together. Every colour still appears in training, each
# beside the two colours of the other pair, so a model that reads each quadrant can answer them; a memory
# of training pictures holds none of them.
HELDOUT_PAIRS = (frozenset({"green", "red"}), frozenset({"blue", "orange"}))
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")


def quadrant_color(rng: random.Random, size: int) -> Problem:
    """Four squares, one per quadrant, of random colours: what colour is the one the question names?

    The trace reads the four quadrants in order, then picks the one asked (two steps: read, select).
    A picture that shows both colours of a `HELDOUT_PAIRS` pair belongs to the held-out split."""
    colors = [rng.choice(list(COLORS)) for _ in QUADRANTS]
    asked = rng.randrange(len(QUADRANTS))
    answer = colors[asked]
    half = size // 2
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    boxes = []
    for k, color in enumerate(colors):  # each square of random size and place inside its quadrant
        side = rng.randint(half * 5 // 8, half - 2)
        x0 = (k % 2) * half + rng.randint(1, half - side - 1)
        y0 = (k // 2) * half + rng.randint(1, half - side - 1)
        draw.rectangle((x0, y0, x0 + side - 1, y0 + side - 1), fill=COLORS[color])
        boxes.append(f"{x0},{y0},{side}")
    question = f"What colour is the {QUADRANTS[asked]} square?"
    reasoning = f"{', '.join(colors)}. The {QUADRANTS[asked]} is {answer}."
    key = f"quadrant_color|{','.join(colors)}|{';'.join(boxes)}|{asked}|{size}"
    held = any(pair <= set(colors) for pair in HELDOUT_PAIRS)
    return Problem("quadrant_color", question, answer, reasoning, image, key, heldout=held)


HALVES = ("left", "right")


def half_color(rng: random.Random, size: int) -> Problem:
    """Two tall boxes, one per half (left, right), of random colours: what colour is the one asked?

    A binary selection; the trace names and reads the asked half first, then the other, then states
    the answer (its first colour). A picture showing both colours of a `HELDOUT_PAIRS` pair is
    held-out."""
    colors = [rng.choice(list(COLORS)) for _ in HALVES]
    asked = rng.randrange(len(HALVES))
    answer = colors[asked]
    half = size // 2
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    boxes = []
    for k, color in enumerate(colors):  # a tall box of random size and place inside its half
        # Tall, so both image tokens of its half (top and bottom quadrant after the pixel shuffle) show
        # it: a square anywhere in the half was not read after 300 SFT steps (RESULTS.md, H1).
        width, height = rng.randint(half * 5 // 8, half - 2), rng.randint(size * 5 // 8, size - 2)
        x0 = k * half + rng.randint(1, half - width - 1)
        y0 = rng.randint(1, size - height - 1)
        draw.rectangle((x0, y0, x0 + width - 1, y0 + height - 1), fill=COLORS[color])
        boxes.append(f"{x0},{y0},{width},{height}")
    question = f"What colour is the {HALVES[asked]} box?"
    # The asked half is read first, then the other: the answer is the trace's first colour.
    order = (asked, 1 - asked)
    listed = ", ".join(f"{HALVES[k]} {colors[k]}" for k in order)
    reasoning = f"{listed}. The {HALVES[asked]} is {answer}."
    key = f"half_color|{','.join(colors)}|{';'.join(boxes)}|{asked}|{size}"
    held = any(pair <= set(colors) for pair in HELDOUT_PAIRS)
    return Problem("half_color", question, answer, reasoning, image, key, heldout=held)


COMPOSITIONAL_TASKS: dict[str, Renderer] = {"quadrant_color": quadrant_color, "half_color": half_color}
