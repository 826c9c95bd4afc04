"""The renderers of the synthetic tasks: each draws one problem whose answer is read off its image.

Every renderer takes a seeded `random.Random` and the image side and returns a `Problem` with a
`key`: a canonical text of everything that determines the question and the picture. Two draws with
the same key are the same problem; `skywork_rl.miniature.synthetic` assigns train / RL / held-out splits by
hashing it, so a split never holds a problem another split holds, whatever seed drew it.

Two families:

- the reasoning demos (``count_shapes``, ``digit_arithmetic``, ``tallest_bar``): a worked trace per
  problem, small details to read (bitmap digits, bar heights). The 2-layer tiny models cannot read
  them at 56 px; they exercise the stages, not learning.
- the miniature's tasks (``MINIATURE_TASKS``): shapes on a 4x4 grid whose cells are the vision
  tower's 14 px patches at the tiny models' 56 px, so the answer is in what the patches see. They
  are graded by how much of the image carries the answer: SFT teaches the tiny model
  ``shape_color`` (held-out 0.52 greedy after 120 steps, 0.72 after 160 in another run; the tiny
  pipeline runs 140);
  mixes with the other two reached about 0.5 after 300 steps (README, "Run the tiny pipeline",
  says what GRPO does and does not do on them).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLORS = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 60), "orange": (240, 150, 30)}
SHAPES = ("circle", "square", "triangle")
GRID = 4
# 3x5 bitmap digits: rendering needs no font file, so images are identical on every machine.
_DIGITS = {
    "0": ["111", "101", "101", "101", "111"],
    "1": ["010", "110", "010", "010", "111"],
    "2": ["111", "001", "111", "100", "111"],
    "3": ["111", "001", "111", "001", "111"],
    "4": ["101", "101", "111", "001", "001"],
    "5": ["111", "100", "111", "001", "111"],
    "6": ["111", "100", "111", "101", "111"],
    "7": ["111", "001", "010", "010", "010"],
    "8": ["111", "101", "111", "101", "111"],
    "9": ["111", "101", "111", "001", "111"],
}


@dataclass
class Problem:
    """One rendered problem before it becomes a canonical row; `key` is its identity."""

    task: str
    question: str
    answer: str
    reasoning: str
    image: Image.Image
    key: str
    # A compositional task's verdict on its attribute combination: True, the combination is held out
    # (the problem belongs to the held-out split); False, it is a training combination (train or RL by
    # the key's hash). None: the split is the key's hash alone (the other tasks).
    heldout: bool | None = None


Renderer = Callable[[random.Random, int], Problem]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], color: tuple) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=color)
    elif shape == "square":
        draw.rectangle(box, fill=color)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=color)


def _draw_number(draw: ImageDraw.ImageDraw, text: str, x: int, y: int, cell: int) -> int:
    for ch in text:
        for r, row in enumerate(_DIGITS[ch]):
            for c, bit in enumerate(row):
                if bit == "1":
                    draw.rectangle(
                        [x + c * cell, y + r * cell, x + (c + 1) * cell - 1, y + (r + 1) * cell - 1], fill=0
                    )
        x += 4 * cell
    return x


def _cells_key(cells: dict[tuple[int, int], tuple[str, str]]) -> str:
    return ";".join(f"{r}{c}:{shape}:{color}" for (r, c), (shape, color) in sorted(cells.items()))


def _render_grid(
    cells: dict[tuple[int, int], tuple[str, str]], size: int, pad_fraction: float
) -> Image.Image:
    """White image, one shape per occupied cell of the 4x4 grid."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    step = size // GRID
    pad = int(step * pad_fraction)
    for (row, col), (shape, color) in cells.items():
        box = (col * step + pad, row * step + pad, (col + 1) * step - pad - 1, (row + 1) * step - pad - 1)
        _draw_shape(draw, shape, box, COLORS[color])
    return image


def _shuffled_cells(rng: random.Random) -> list[tuple[int, int]]:
    cells = [(r, c) for r in range(GRID) for c in range(GRID)]
    rng.shuffle(cells)
    return cells


# --- the reasoning demos ----------------------------------------------------------------------


def count_shapes(rng: random.Random, size: int) -> Problem:
    """Count the shapes of one colour among distractors."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    target_color = rng.choice(list(COLORS))
    target_shape = rng.choice(SHAPES)
    cells = [(i, j) for i in range(4) for j in range(4)]
    rng.shuffle(cells)
    n_target = rng.randint(1, 5)
    n_other = rng.randint(0, 4)
    step = size // 4
    placed: dict[tuple[int, int], tuple[str, str]] = {}
    for k, (i, j) in enumerate(cells[: n_target + n_other]):
        if k < n_target:
            color, shape = target_color, target_shape
        else:
            color = rng.choice([c for c in COLORS if c != target_color])
            shape = rng.choice(SHAPES)
        placed[(i, j)] = (shape, color)
        pad = step // 6
        _draw_shape(
            draw,
            shape,
            (i * step + pad, j * step + pad, (i + 1) * step - pad, (j + 1) * step - pad),
            COLORS[color],
        )
    question = f"How many {target_color} {target_shape}s are in the image?"
    reasoning = (
        f"I scan the grid for {target_color} {target_shape}s and ignore the other shapes. "
        f"Counting them one by one gives {n_target}."
    )
    key = f"count_shapes|{target_color} {target_shape}|{_cells_key(placed)}"
    return Problem("count_shapes", question, str(n_target), reasoning, image, key)


def digit_arithmetic(rng: random.Random, size: int) -> Problem:
    """Read two numbers drawn in the image and combine them."""
    a, b = rng.randint(2, 49), rng.randint(2, 49)
    op = rng.choice(["+", "-", "*"])
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    cell = max(1, size // 28)
    _draw_number(draw, str(a), size // 8, size // 5, cell)
    _draw_number(draw, str(b), size // 8, size // 5 + 7 * cell, cell)
    word = {"+": "sum", "-": "difference (top minus bottom)", "*": "product"}[op]
    question = f"The image shows two numbers, one above the other. What is their {word}?"
    reasoning = f"The top number reads {a} and the bottom number reads {b}. {a} {op} {b} = {result}."
    key = f"digit_arithmetic|{a}{op}{b}"
    return Problem("digit_arithmetic", question, str(result), reasoning, image.convert("RGB"), key)


def tallest_bar(rng: random.Random, size: int) -> Problem:
    """Pick the tallest bar of a bar chart by its letter."""
    n = rng.randint(3, 4)
    letters = "ABCD"[:n]
    heights = rng.sample(range(2, 10), n)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    width = size // (n + 1)
    for k, h in enumerate(heights):
        x0 = k * width + width // 2
        draw.rectangle([x0, size - h * size // 11, x0 + width // 2, size - 1], fill=COLORS["blue"])
    best = letters[heights.index(max(heights))]
    question = (
        f"The bar chart has {n} bars labelled {', '.join(letters)} from left to right. "
        "Which bar is the tallest? Answer with its letter."
    )
    order = ", ".join(f"{letter}={h}" for letter, h in zip(letters, heights, strict=True))
    reasoning = f"Estimating the bar heights from left to right: {order}. The tallest is {best}."
    key = f"tallest_bar|{','.join(map(str, heights))}"
    return Problem("tallest_bar", question, best, reasoning, image, key)


REASONING_TASKS: dict[str, Renderer] = {
    "count_shapes": count_shapes,
    "digit_arithmetic": digit_arithmetic,
    "tallest_bar": tallest_bar,
}
