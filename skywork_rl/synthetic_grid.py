"""The miniature's tasks: shapes on a 4x4 grid, graded by how much of the picture holds the answer.

At the tiny models' 56 px a grid cell is exactly one 14 px patch of the vision tower, so an answer
is always in what some patches see; the tasks differ in how many patches carry it:

- ``shape_color``: one large shape covers much of the image; name its colour.
- ``small_color``: one small shape (one or two patches wide) anywhere; name its colour.
- ``more_color``: squares of two colours; which colour has more (compare two areas).

and one compositional task (``COMPOSITIONAL_TASKS``), the learning benchmarks' miniature:

- ``count_compare``: squares of two colours; by how many squares does the colour with more exceed
  the other? Count each colour, compare, subtract (the trace writes the three steps). Its held-out
  split is disjoint in content, not only by key: the colour pairs ``HELDOUT_PAIRS`` appear only in
  held-out problems, so no train or RL picture ever shows those two colours together.

The answers are words or numbers the accuracy reward checks exactly, the traces are short (the
miniature's rollouts are a few dozen tokens, so RL runs in minutes on 2 CPU cores), and every
problem's key is the full list of what was drawn where, so equal keys are equal pictures.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from skywork_rl.synthetic_tasks import (
    COLORS,
    SHAPES,
    Problem,
    Renderer,
    _cells_key,
    _draw_shape,
    _render_grid,
    _shuffled_cells,
)


def shape_color(rng: random.Random, size: int) -> Problem:
    """One large shape of random size and place: its colour fills much of the image."""
    color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
    side = rng.randint(size // 2, size - 4)
    x0, y0 = rng.randint(0, size - side), rng.randint(0, size - side)
    image = Image.new("RGB", (size, size), "white")
    _draw_shape(ImageDraw.Draw(image), shape, (x0, y0, x0 + side, y0 + side), COLORS[color])
    key = f"shape_color|{shape}:{color}|{x0},{y0},{side}|{size}"
    return Problem(
        "shape_color", f"What colour is the {shape}?", color, f"The {shape} is {color}.", image, key
    )


def small_color(rng: random.Random, size: int) -> Problem:
    """One small shape (a patch or two wide) anywhere in the image."""
    color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
    side = rng.randint(size // 8, size // 4)
    x0, y0 = rng.randint(0, size - side), rng.randint(0, size - side)
    image = Image.new("RGB", (size, size), "white")
    _draw_shape(ImageDraw.Draw(image), shape, (x0, y0, x0 + side, y0 + side), COLORS[color])
    key = f"small_color|{shape}:{color}|{x0},{y0},{side}|{size}"
    return Problem(
        "small_color", f"What colour is the {shape}?", color, f"The {shape} is {color}.", image, key
    )


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


# Colour pairs only held-out problems show together. Every colour still appears in training (each in
# two of the four training pairs), so a model that counts each colour can answer them; a memory of
# training pictures cannot hold one.
HELDOUT_PAIRS = frozenset({("green", "red"), ("blue", "orange")})
COUNT_COMPARE_MAX = 6  # squares of the colour with more; the difference is 1..4, each equally likely


def count_compare(rng: random.Random, size: int) -> Problem:
    """Squares of two colours: how many more has the colour with more? Answer 1-4, uniform."""
    a, b = rng.sample(list(COLORS), 2)
    diff = rng.randint(1, 4)
    low = rng.randint(1, COUNT_COMPARE_MAX - diff)
    n_a, n_b = (low + diff, low) if rng.random() < 0.5 else (low, low + diff)
    free = _shuffled_cells(rng)
    cells = {free[k]: ("square", a if k < n_a else b) for k in range(n_a + n_b)}
    first, second = sorted((a, b))
    counts = {a: n_a, b: n_b}
    question = f"Which colour has more squares, {first} or {second}? How many more?"
    reasoning = (
        f"{first} {counts[first]}, {second} {counts[second]}. {max(n_a, n_b)} - {min(n_a, n_b)} = {diff}"
    )
    key = f"count_compare|{_cells_key(cells)}|{size}"
    image = _render_grid(cells, size, pad_fraction=1 / 6)
    held = (first, second) in HELDOUT_PAIRS
    return Problem("count_compare", question, str(diff), reasoning, image, key, heldout=held)


COMPOSITIONAL_TASKS: dict[str, Renderer] = {"count_compare": count_compare}
