"""Small local stand-ins for the external datasets the paper pipelines read, each in its source's own layout.

A rehearsal (`skywork-rl run PIPELINE --rehearse`) runs a paper pipeline's graph on CPU; its data
stages must then read files that look like the real sources, so the `load-data` adapters and
mappings, `clean`, `dedup` and `benchmark-data` run exactly as on the real data. Each writer below
produces N rows, deterministic by seed, with the kinds of rows the real source has: the same column
names and types as the hub's files (read from the datasets' cards and the code that loads them:
`data_prep/mappings.py`, `eval/benchmarks.py`), text-only rows where the source has them, several
images where it has them, options, images rendered with PIL (real PNG / JPEG bytes).

One entry point per stage kind returns the config values the stand-in replaces, as dotted keys:
`standin_for` (a ``load-data`` stage's ``input``/``source`` groups) and `stage_standins` (any stage:
``load-data``, ``benchmark-data``; ``{}`` for a stage that reads no external dataset).

Sources (hub id / built-in mapping -> layout written):

- ``derek-thomas/ScienceQA`` / ``scienceqa``: ``data/train-00000-of-00001.parquet``; ``image`` (null
  for text-only items, about half), ``question``, ``choices`` (2-5), ``answer`` (int8 index),
  ``hint``, ``task``, ``grade``, ``subject``, ``topic``, ``category``, ``skill``, ``lecture``,
  ``solution``.
- ``allenai/sciq`` / ``sciq``: ``data/train-00000-of-00001.parquet``; ``question``, ``distractor3``,
  ``distractor1``, ``distractor2``, ``correct_answer``, ``support`` (text only).
- ``FanqingM/MMK12`` / ``mmk12``: ``data/train-00000-of-00001.parquet``; ``id``, ``subject``,
  ``image`` (every item has one), ``question``, ``answer`` (free-form values, and letters for
  questions with their options inline).
- ``Zhiqiang007/MathV360K`` / ``mathv360k``: ``train_samples_all_tuning.json`` (LLaVA records ``id``,
  ``image`` = ``<source dataset>/images/<n>.png|jpg``, ``conversations``) and ``data_images/``; the
  rows go round the 20 source datasets the R1V3 pipelines pick plus one they leave out (one row each at least).
- ``MMMU/MMMU`` (benchmark ``mmmu``): ``<Subject>/{dev,validation}-00000-of-00001.parquet``; ``id``
  (``validation_<Subject>_<n>``), ``question`` (with ``<image k>`` tags), ``options`` (a Python list
  literal, ``[]`` for open questions), ``explanation``, ``image_1`` .. ``image_7`` (null past the
  item's images; some items have 2-3), ``img_type``, ``answer``, ``topic_difficulty``,
  ``question_type``, ``subfield``.
- ``AI4Math/MathVista`` (benchmark ``mathvista``): ``data/{testmini,test}-00000-of-00001.parquet``;
  ``pid``, ``question``, ``image`` (the path string), ``decoded_image``, ``choices`` (null for
  free-form), ``unit``, ``precision``, ``answer``, ``question_type``, ``answer_type``, ``metadata``
  (struct), ``query``.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skywork_rl.errors import DataError

# MathV360K's source datasets the R1V3 pipelines' connector-pick stage names (recipes/skywork-r1v3*/
# pipeline.yaml), and one it leaves out (counted as not listed), as the real JSON has more sources.
MATHV360K_PICKED: tuple[str, ...] = (
    "FigureQA",
    "ChartQA",
    "DVQA",
    "PlotQA",
    "MapQA",
    "GeoQA+",
    "Geometry3K",
    "UniGeo",
    "GEOS",
    "CLEVR-Math",
    "TabMWP",
    "Super-CLEVR",
    "IconQA",
    "TQA",
    "AI2D",
    "ScienceQA",
    "DocVQA",
    "TextVQA",
    "VizWiz",
    "VQA-RAD",
)
MATHV360K_UNLISTED: tuple[str, ...] = ("VQA-AS",)
MMMU_SUBJECTS: tuple[str, ...] = ("Math", "Physics", "Art_Theory")

_COLORS = ("red", "green", "blue", "orange", "purple", "teal", "brown", "gray", "navy", "olive")
_SHAPES = ("circle", "square", "triangle")
_WORDS = (
    "amber",
    "basalt",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "granite",
    "harbor",
    "iris",
    "juniper",
    "kelp",
    "lagoon",
    "meadow",
    "nectar",
    "orchid",
    "prairie",
    "quartz",
    "willow",
)


def render_image(rng: random.Random, label: str, fmt: str = "PNG") -> bytes:
    """A small picture (shapes and a label) encoded as real PNG or JPEG bytes."""
    from PIL import Image, ImageDraw

    width, height = rng.randint(48, 96), rng.randint(48, 96)
    image = Image.new("RGB", (width, height), rng.choice(("white", "ivory", "lightyellow", "lavender")))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 4)):
        x0, y0 = rng.randint(0, width - 12), rng.randint(0, height - 12)
        x1, y1 = rng.randint(x0 + 6, width), rng.randint(y0 + 6, height)
        shape, color = rng.choice(_SHAPES), rng.choice(_COLORS)
        if shape == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif shape == "square":
            draw.rectangle((x0, y0, x1, y1), fill=color)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=color)
    draw.text((2, 2), label, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _image(rng: random.Random, label: str, fmt: str = "PNG") -> dict[str, Any]:
    return {"bytes": render_image(rng, label, fmt), "path": None}


def _parquet(path: Path, rows: list[dict[str, Any]], features: dict[str, Any]) -> Path:
    from datasets import Dataset, Features

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=Features(features)).to_parquet(str(path))
    return path


def _check_rows(rows: int, name: str) -> None:
    if rows < 1:
        raise DataError(f"stand-in {name}: rows must be >= 1, got {rows}")


# --- ScienceQA ------------------------------------------------------------------------------------


def scienceqa_features() -> dict[str, Any]:
    """derek-thomas/ScienceQA's columns (its card): `image` (null for text-only items), `choices`,
    `answer` int8 and the metadata strings."""
    from datasets import Image, List, Value

    text = Value("string")
    strings = ("hint", "task", "grade", "subject", "topic", "category", "skill", "lecture", "solution")
    return {
        "image": Image(),
        "question": text,
        "choices": List(text),
        "answer": Value("int8"),
        **{name: text for name in strings},
    }


def write_scienceqa(dest: Path, rows: int, seed: int, split: str = "train") -> Path:
    """derek-thomas/ScienceQA's layout: ``data/<split>-00000-of-00001.parquet``; returns the folder."""
    _check_rows(rows, "scienceqa")
    rng = random.Random(f"scienceqa-{seed}")
    features = scienceqa_features()
    subjects = (
        ("natural science", "physics", "Velocity", "Compare magnets"),
        ("social science", "geography", "Geography", "Read a map: cardinal directions"),
        ("language science", "verbs", "Verb tense", "Is the sentence in the past, present or future tense?"),
    )
    out = []
    for i in range(rows):
        subject, topic, category, skill = subjects[i % len(subjects)]
        options = [f"{rng.choice(_WORDS)} {i}-{k}" for k in range(rng.randint(2, 5))]
        with_image = i % 2 == 0  # about half of ScienceQA's items have a picture
        out.append(
            {
                "image": _image(rng, f"sqa {i}") if with_image else None,
                "question": f"Which choice fits the {topic} exhibit number {i} about the {rng.choice(_WORDS)} sample?",
                "choices": options,
                "answer": rng.randrange(len(options)),
                "hint": "" if with_image and i % 4 == 0 else f"Read the {category.lower()} note {i} first.",
                "task": "closed choice" if len(options) > 2 else "yes or no",
                "grade": f"grade{1 + i % 12}",
                "subject": subject,
                "topic": topic,
                "category": category,
                "skill": skill,
                "lecture": f"A lecture on {topic}.",
                "solution": f"The right option is explained by the {topic} rule.",
            }
        )
    folder = dest / "scienceqa"
    _parquet(folder / "data" / f"{split}-00000-of-00001.parquet", out, features)
    return folder


# --- SciQ -----------------------------------------------------------------------------------------


def write_sciq(dest: Path, rows: int, seed: int, split: str = "train") -> Path:
    """allenai/sciq's layout: ``data/<split>-00000-of-00001.parquet`` (text only); returns the folder."""
    from datasets import Value

    _check_rows(rows, "sciq")
    rng = random.Random(f"sciq-{seed}")
    columns = ("question", "distractor3", "distractor1", "distractor2", "correct_answer", "support")
    out = []
    for i in range(rows):
        answer = f"{rng.choice(_WORDS)}ite {i}"
        out.append(
            {
                "question": f"Which mineral named in field survey {i} forms when {rng.choice(_WORDS)} water cools slowly?",
                "distractor3": f"{rng.choice(_WORDS)}ose",
                "distractor1": f"{rng.choice(_WORDS)}ane",
                "distractor2": f"{rng.choice(_WORDS)}ium",
                "correct_answer": answer,
                "support": f"Slow cooling lets {answer} form crystals." if i % 3 else "",
            }
        )
    folder = dest / "sciq"
    _parquet(
        folder / "data" / f"{split}-00000-of-00001.parquet", out, dict.fromkeys(columns, Value("string"))
    )
    return folder


# --- MMK12 ----------------------------------------------------------------------------------------


def write_mmk12(dest: Path, rows: int, seed: int, split: str = "train") -> Path:
    """FanqingM/MMK12's layout: ``data/<split>-00000-of-00001.parquet``, one image per item; returns the folder."""
    from datasets import Image, Value

    _check_rows(rows, "mmk12")
    rng = random.Random(f"mmk12-{seed}")
    features = {
        "id": Value("string"),
        "subject": Value("string"),
        "image": Image(),
        "question": Value("string"),
        "answer": Value("string"),
    }
    out = []
    for i in range(rows):
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        if i % 3 == 2:  # options inline, the letter as the answer
            right = rng.randrange(4)
            values = [a * b + (k - right) * 3 for k in range(4)]
            options = " ".join(f"{chr(65 + k)}. {v}" for k, v in enumerate(values))
            question = (
                f"As shown in the figure, rectangle {i} has sides {a} and {b}. What is its area? {options}"
            )
            answer = chr(65 + right)
        else:
            question = f"As shown in the figure, a line through point P{i} has slope {a} and meets the axis at {b}. Find y when x = 1."
            answer = str(a + b)
        out.append(
            {
                "id": f"mmk12-{split}-{i}",
                "subject": "math",
                "image": _image(rng, f"k12 {i}", "PNG" if i % 2 else "JPEG"),
                "question": question,
                "answer": answer,
            }
        )
    folder = dest / "mmk12"
    _parquet(folder / "data" / f"{split}-00000-of-00001.parquet", out, features)
    return folder


# --- MathV360K ------------------------------------------------------------------------------------


def write_mathv360k(dest: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """MathV360K's layout: ``train_samples_all_tuning.json`` and ``data_images/<source>/images/<n>.<ext>``.

    Rows go round `MATHV360K_PICKED` then `MATHV360K_UNLISTED`, at least one per source dataset (so
    ``rows`` below 21 still gives the connector-pick stage every domain it names). Returns (the JSON
    file, the ``data_images`` folder)."""
    _check_rows(rows, "mathv360k")
    rng = random.Random(f"mathv360k-{seed}")
    root = dest / "mathv360k"
    images = root / "data_images"
    sources = MATHV360K_PICKED + MATHV360K_UNLISTED
    records = []
    for i in range(max(rows, len(sources))):
        source = sources[i % len(sources)]
        ext = "jpg" if i % 3 == 0 else "png"
        relative = f"{source}/images/{i}.{ext}"
        (images / source / "images").mkdir(parents=True, exist_ok=True)
        (images / relative).write_bytes(render_image(rng, f"{source} {i}", "JPEG" if ext == "jpg" else "PNG"))
        if i % 2:
            right = rng.randrange(3)
            options = "\n".join(f"({chr(65 + k)}) {rng.choice(_WORDS)} {k}" for k in range(3))
            human = (
                "<image>\nHint: Please answer the question and provide the correct option letter, "
                f"e.g., A, B, C, D, at the end.\nQuestion: Which label marks region {i} of the {source} "
                f"figure?\nChoices:\n{options}"
            )
            answer = chr(65 + right)
        else:
            value = rng.randint(1, 99)
            human = (
                "<image>\nHint: Please answer the question requiring an integer answer and provide the "
                f"final value, e.g., 1, 2, 3, at the end.\nQuestion: How many marks does panel {i} of the "
                f"{source} figure show above {value}?"
            )
            answer = str(value % 7)
        records.append(
            {
                "id": f"identity_{i}",
                "image": relative,
                "conversations": [
                    {"from": "human", "value": human},
                    {"from": "gpt", "value": f"The answer is {answer}"},
                ],
            }
        )
    path = root / "train_samples_all_tuning.json"
    path.write_text(json.dumps(records))
    return path, images


# --- MMMU -----------------------------------------------------------------------------------------


def write_mmmu(dest: Path, rows: int, seed: int) -> Path:
    """MMMU/MMMU's layout: ``<Subject>/{dev,validation}-00000-of-00001.parquet`` (`MMMU_SUBJECTS`; the
    ``rows`` validation items spread over them, a few dev items each); returns the folder."""
    from datasets import Image, Value

    _check_rows(rows, "mmmu")
    rng = random.Random(f"mmmu-{seed}")
    text = Value("string")
    features = {
        "id": text,
        "question": text,
        "options": text,
        "explanation": text,
        **{f"image_{k}": Image() for k in range(1, 8)},
        "img_type": text,
        "answer": text,
        "topic_difficulty": text,
        "question_type": text,
        "subfield": text,
    }
    folder = dest / "mmmu"
    for s, subject in enumerate(MMMU_SUBJECTS):
        for split, count in (("dev", 2), ("validation", len(range(s, rows, len(MMMU_SUBJECTS))))):
            out = []
            for n in range(1, count + 1):
                pictures = 1 + (n % 3 == 0) + (n % 5 == 0)  # some items show 2 or 3 images
                tags = " ".join(f"<image {k}>" for k in range(1, pictures + 1))
                open_question = n % 4 == 0
                options = (
                    [] if open_question else [f"{rng.choice(_WORDS)} {v}" for v in range(rng.randint(2, 5))]
                )
                item = {
                    "id": f"{split}_{subject}_{n}",
                    "question": f"Considering {tags}, what does the {subject.replace('_', ' ')} {split} plate {n} "
                    f"of the {rng.choice(_WORDS)} series depict?",
                    "options": repr(options),
                    "explanation": "",
                    "img_type": repr(["Diagrams"] * pictures),
                    "answer": str(rng.randint(1, 50))
                    if open_question
                    else chr(65 + rng.randrange(len(options))),
                    "topic_difficulty": rng.choice(("Easy", "Medium", "Hard")),
                    "question_type": "open" if open_question else "multiple-choice",
                    "subfield": subject.replace("_", " "),
                }
                for k in range(1, 8):
                    item[f"image_{k}"] = _image(rng, f"{subject} {n}.{k}") if k <= pictures else None
                out.append(item)
            if out:
                _parquet(folder / subject / f"{split}-00000-of-00001.parquet", out, features)
    return folder


# --- MathVista ------------------------------------------------------------------------------------


def write_mathvista(dest: Path, rows: int, seed: int) -> Path:
    """AI4Math/MathVista's layout: ``data/testmini-00000-of-00001.parquet`` (``rows`` items) and a small
    ``data/test-00000-of-00001.parquet`` (no answers, as on the hub); returns the folder."""
    from datasets import Image, List, Value

    _check_rows(rows, "mathvista")
    rng = random.Random(f"mathvista-{seed}")
    text = Value("string")
    features = {
        "pid": text,
        "question": text,
        "image": text,
        "decoded_image": Image(),
        "choices": List(text),
        "unit": text,
        "precision": Value("float64"),
        "answer": text,
        "question_type": text,
        "answer_type": text,
        "metadata": {
            "category": text,
            "context": text,
            "grade": text,
            "img_height": Value("int64"),
            "img_width": Value("int64"),
            "language": text,
            "skills": List(text),
            "source": text,
            "split": text,
            "task": text,
        },
        "query": text,
    }
    folder = dest / "mathvista"
    for split, count, offset in (("testmini", rows, 1), ("test", 2, 1001)):
        out = []
        for n in range(offset, offset + count):
            choice = n % 2 == 0
            choices = [f"{rng.choice(_WORDS)} {v}" for v in range(4)] if choice else None
            answer = choices[rng.randrange(4)] if choices else str(rng.randint(1, 30))
            question = f"How many {rng.choice(_WORDS)} tiles lie inside frame {n} of this mosaic?"
            hint = (
                "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
                if choice
                else "Hint: Please answer the question requiring an integer answer and provide the final value, "
                "e.g., 1, 2, 3, at the end."
            )
            listed = (
                "\nChoices:\n" + "\n".join(f"({chr(65 + k)}) {c}" for k, c in enumerate(choices))
                if choices
                else ""
            )
            out.append(
                {
                    "pid": str(n),
                    "question": question,
                    "image": f"images/{n}.jpg",
                    "decoded_image": _image(rng, f"vista {n}", "JPEG"),
                    "choices": choices,
                    "unit": None,
                    "precision": None,
                    "answer": answer if split == "testmini" else "",
                    "question_type": "multi_choice" if choice else "free_form",
                    "answer_type": "text" if choice else "integer",
                    "metadata": {
                        "category": "math-targeted-vqa",
                        "context": "abstract scene",
                        "grade": "elementary school",
                        "img_height": 64,
                        "img_width": 64,
                        "language": "english",
                        "skills": ["arithmetic reasoning"],
                        "source": "IconQA",
                        "split": split,
                        "task": "math word problem",
                    },
                    "query": f"{hint}\nQuestion: {question}{listed}",
                }
            )
        _parquet(folder / "data" / f"{split}-00000-of-00001.parquet", out, features)
    return folder


# --- dispatch -------------------------------------------------------------------------------------

# hub id (lower case) -> built-in mapping name of the same source
HUB_SOURCES: dict[str, str] = {
    "derek-thomas/scienceqa": "scienceqa",
    "allenai/sciq": "sciq",
    "fanqingm/mmk12": "mmk12",
    "zhiqiang007/mathv360k": "mathv360k",
}
BENCHMARK_WRITERS: dict[str, Callable[[Path, int, int], Path]] = {
    "mmmu": write_mmmu,
    "mathvista": write_mathvista,
}


def _load_data_source(input_config: dict[str, Any], source_config: dict[str, Any]) -> str:
    location = str(input_config.get("path") or "")
    mapping = str(source_config.get("mapping") or "").lower().replace("_", "-")
    key = location.lower()
    for hub_id, name in HUB_SOURCES.items():
        if key == hub_id:
            return name
    if mapping in HUB_SOURCES.values():
        return mapping
    known = sorted(set(HUB_SOURCES.values()))
    raise DataError(
        f"stand-ins: no stand-in for the source input.path={location!r} (source.mapping={mapping or None!r}); "
        f"stand-ins exist for the hub ids {sorted(HUB_SOURCES)} and the mappings {known}: add a writer to "
        "data_prep/standins.py in that source's own layout"
    )


def standin_for(
    input_config: dict[str, Any], source_config: dict[str, Any], dest: Path, rows: int, seed: int
) -> dict[str, Any]:
    """Write the stand-in of a ``load-data`` stage's source under `dest`; return the config values it
    replaces as dotted keys (``input.path``; ``source.image_root`` for MathV360K's image folder). The
    parquet stand-ins are folders holding ``data/<input.split>-00000-of-00001.parquet``, so the
    stage's split is read as on the hub.

    Dispatches on the hub id in ``input.path``, else the built-in ``source.mapping``; a source without
    a stand-in is a `DataError` naming it."""
    name = _load_data_source(input_config, source_config)
    dest = Path(dest)
    split = str(input_config.get("split") or "train")
    if name == "mathv360k":
        path, images = write_mathv360k(dest, rows, seed)
        return {"input.path": str(path), "source.image_root": str(images)}
    writer = {"scienceqa": write_scienceqa, "sciq": write_sciq, "mmk12": write_mmk12}[name]
    return {"input.path": str(writer(dest, rows, seed, split))}


def stage_standins(stage: str, config: dict[str, Any], dest: Path, rows: int, seed: int) -> dict[str, Any]:
    """The stand-ins of whatever external dataset a stage reads (``{}`` when it reads none), as dotted
    config keys -> new values: ``load-data`` (`standin_for`) and ``benchmark-data`` (one stand-in per
    ``benchmarks.sources`` entry, ``benchmarks.sources.<name>``)."""
    if stage == "load-data":
        return standin_for(config.get("input") or {}, config.get("source") or {}, dest, rows, seed)
    if stage == "benchmark-data":
        sources = (config.get("benchmarks") or {}).get("sources") or {}
        unknown = sorted(set(sources) - set(BENCHMARK_WRITERS))
        if unknown:
            raise DataError(
                f"stand-ins: no stand-in for the benchmark(s) {unknown} (benchmarks.sources); stand-ins exist "
                f"for {sorted(BENCHMARK_WRITERS)}: add a writer to data_prep/standins.py in its own layout"
            )
        return {
            f"benchmarks.sources.{name}": str(BENCHMARK_WRITERS[name](Path(dest), rows, seed))
            for name in sources
        }
    return {}
