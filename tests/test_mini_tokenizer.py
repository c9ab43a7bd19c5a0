import pytest

from revival.mini.tokenizer import MAX_LENGTH, UnknownWordError, build_tokenizer, check_prompt
from revival.mini.world import vocabulary


def test_round_trip_and_padding(tmp_path):
    tok = build_tokenizer()
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "a star in the style of neon"
    ids = loaded(text, padding="max_length", max_length=MAX_LENGTH).input_ids
    assert ids == tok(text, padding="max_length", max_length=MAX_LENGTH).input_ids
    assert len(ids) == MAX_LENGTH
    assert loaded.decode(ids, skip_special_tokens=True) == text
    assert ids[0] == tok.bos_token_id and tok.eos_token_id in ids


def test_every_word_is_one_token():
    tok = build_tokenizer()
    for w in vocabulary():
        assert len(tok(w, add_special_tokens=False).input_ids) == 1


def test_unknown_word_error_lists_vocabulary():
    tok = build_tokenizer()
    with pytest.raises(UnknownWordError) as e:
        check_prompt(tok, "a unicorn in a desert")
    assert "'unicorn'" in str(e.value) and "desert" in str(e.value) and "star" in str(e.value)
