"""The bundled model's word-level tokenizer: one token a word, a saved copy that reads back the same, and the
prompt check that names an unknown word (ported from the first generation's tokenizer tests)."""

import pytest
from transformers import AutoTokenizer

from revival.errors import RevivalError
from revival.minisd import world
from revival.minisd.pipeline import tokenizer
from revival.minisd.tokenizer import MAX_LENGTH, UnknownWordError, check_prompt


def test_round_trip_and_padding(tmp_path):
    tok = tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "a star in the style of neon"
    ids = loaded(text, padding="max_length", max_length=MAX_LENGTH).input_ids
    assert ids == tok(text, padding="max_length", max_length=MAX_LENGTH).input_ids
    assert len(ids) == MAX_LENGTH
    assert loaded.decode(ids, skip_special_tokens=True) == text
    assert ids[0] == tok.bos_token_id and tok.eos_token_id in ids


def test_every_word_is_one_token():
    tok = tokenizer()
    for w in world.vocabulary():
        assert len(tok(w, add_special_tokens=False).input_ids) == 1


def test_unknown_word_error_names_it_and_lists_the_vocabulary():
    tok = tokenizer()
    check_prompt(tok, "a photo of a striped star")
    check_prompt(tok, "A Star in a Desert")  # words are compared lower-cased
    with pytest.raises(UnknownWordError) as e:
        check_prompt(tok, "a unicorn in a desert")
    msg = str(e.value)
    assert isinstance(e.value, RevivalError) and "\n" not in msg
    assert "'unicorn'" in msg and "desert" in msg and "star" in msg and "striped" in msg
    with pytest.raises(UnknownWordError, match="'<unk>'"):
        check_prompt(tok, "a <unk> in a desert")  # a special token is not a word
