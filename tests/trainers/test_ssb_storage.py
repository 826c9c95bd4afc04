"""The buffer's compact host storage: a group's image stored once, pixels in the tower's dtype, replays exact."""

from __future__ import annotations

import io

import pytest
import torch

from skywork_rl.trainers.ssb_storage import compact_rows, restore_row, stored_bytes, vision_dtype


def _group(size: int = 4) -> list[dict]:
    """Rows of one GRPO group as `split_rows` gives them: same prompt and image, own completions."""
    pixels = torch.rand(2, 3, 4, 4)  # 96 float32 values: 384 bytes
    prompt = torch.tensor([5, 6, 7, 8, 9])
    return [
        {
            "prompt_ids": prompt.clone(),
            "completion_ids": torch.tensor([i, i + 1, i + 2]),
            "advantages": torch.tensor(float(i) - 1.5),
            "pixel_values": pixels.clone(),
            "num_images": 1,
        }
        for i in range(size)
    ]


def test_a_group_stores_its_image_once_and_its_bytes_count_once():
    rows = _group()
    stored = compact_rows(rows, pixel_dtype=torch.bfloat16)
    assert len({s["pixel_values"].untyped_storage().data_ptr() for s in stored}) == 1
    assert all(s["pixel_values"].dtype == torch.bfloat16 for s in stored)
    assert stored[0]["prompt_ids"] is stored[3]["prompt_ids"]
    # By hand: pixels once in bf16 (96 x 2), prompt ids once (5 x 8), four completions (3 x 8), four
    # scalar advantages (4): 192 + 40 + 96 + 16. The float32 rows as pushed before held 4 x (384 + 40 + 24 + 4).
    assert stored_bytes(stored) == 192 + 40 + 96 + 16
    assert stored_bytes(rows) == 4 * (384 + 40 + 24 + 4)
    # A checkpoint (torch.save) keeps the sharing, so a resumed buffer is as small.
    blob = io.BytesIO()
    torch.save(stored, blob)
    blob.seek(0)
    assert stored_bytes(torch.load(blob, weights_only=True)) == stored_bytes(stored)


def test_pixels_come_back_in_the_batch_dtype_and_other_fields_untouched():
    rows = _group(1)
    restored = restore_row(compact_rows(rows, pixel_dtype=torch.bfloat16)[0], like=rows[0])
    assert restored["pixel_values"].dtype == torch.float32
    assert torch.equal(restored["pixel_values"], rows[0]["pixel_values"].to(torch.bfloat16).float())
    assert torch.equal(restored["completion_ids"], rows[0]["completion_ids"])
    kept = compact_rows(rows, pixel_dtype=None)[0]  # float32 weights: pixels stay float32, bitwise
    assert torch.equal(kept["pixel_values"], rows[0]["pixel_values"])


@pytest.mark.parametrize("arch", ["internvl", "qwen2_5_vl", "llava"])
def test_a_bf16_model_sees_the_same_pixels_from_the_buffer(arch, tiny_model_dir):
    """Pixels stored in the tower's dtype and cast back give bitwise the logits of the pushed float32 ones."""
    from trl.data_utils import prepare_multimodal_messages

    from skywork_rl.families.parts import load_model_and_processor
    from skywork_rl.miniature.synthetic import build_dataset

    model, processor = load_model_and_processor(str(tiny_model_dir[arch]), dtype="bfloat16")
    row = build_dataset(1, seed=0)[0]
    inputs = processor.apply_chat_template(
        [prepare_multimodal_messages(row["prompt"], images=row["images"])],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    assert inputs["pixel_values"].dtype == torch.float32 and vision_dtype(model) == torch.bfloat16
    pushed = {"pixel_values": inputs["pixel_values"]}
    stored = compact_rows([pushed], pixel_dtype=vision_dtype(model))[0]
    assert stored["pixel_values"].dtype == torch.bfloat16  # half the bytes
    replayed = restore_row(stored, like=pushed)["pixel_values"]
    assert not torch.equal(replayed, inputs["pixel_values"])  # the stored values did lose precision...
    with torch.no_grad():
        original = model(**inputs).logits
        again = model(**{**inputs, "pixel_values": replayed}).logits
    assert torch.equal(original, again)  # ... that the model's own cast drops anyway
