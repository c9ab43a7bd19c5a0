"""The bundled model's offline word-level tokenizer (a `PreTrainedTokenizerFast`) and its prompt check.

Every word of the 64x64 world is one token; any other word would be read as `<unk>`, so prompts
for the bundled world are checked first (`check_prompt`) and an unknown word is an error naming it.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from revival.errors import RevivalError

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
MAX_LENGTH = 16


class UnknownWordError(RevivalError, ValueError):
    """A prompt uses words the bundled world's tokenizer does not know."""


def build_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over `words`, padded to MAX_LENGTH (`revival.minisd.pipeline.tokenizer`:
    over the 64x64 world's vocabulary)."""
    vocab = {w: i for i, w in enumerate(SPECIALS + list(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=MAX_LENGTH,
    )


def check_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> None:
    """Raise UnknownWordError naming the words of `prompt` the word-level `tokenizer` does not know, listing its
    vocabulary."""
    vocab = tokenizer.get_vocab()
    unknown = [w for w in prompt.lower().split() if w not in vocab or w in SPECIALS]
    if unknown:
        known = sorted(w for w in vocab if w not in SPECIALS)
        raise UnknownWordError(
            f"unknown word(s) {', '.join(map(repr, unknown))} in prompt {prompt!r}; "
            f"the bundled model's vocabulary is: {' '.join(known)}"
        )
