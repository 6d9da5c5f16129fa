"""examples/python/story.py: the torch stories15M model agrees with the C++
forward pass's known facts (tests/model/test_stories15m.cpp), and the
HF-convention processor decodes with it (η = 1 + ratio; ratio −1 is the base
model). Skips when the model is not fetched (scripts/fetch_model.sh)."""
import os
import sys

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python"))
import story  # noqa: E402

import linalign  # noqa: E402

MODEL_DIR = story.default_model_dir()
pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(MODEL_DIR, "stories15M.bin")),
    reason="stories15M not fetched (scripts/fetch_model.sh)")


@pytest.fixture(scope="module")
def model_and_tokenizer():
    m = story.Llama2(os.path.join(MODEL_DIR, "stories15M.bin"))
    return m, story.Tokenizer(os.path.join(MODEL_DIR, "tokenizer.bin"), m.vocab)


def greedy(model, ids, steps, processor=None):
    ids = torch.tensor([ids])
    for _ in range(steps):
        scores = model(ids)
        if processor is not None:
            scores = processor(ids, scores)
        ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], 1)
    return ids[0].tolist()


def test_the_known_facts_of_the_checkpoint(model_and_tokenizer):
    model, tok = model_and_tokenizer
    ids = tok.encode("Once upon a time")
    assert ids == [1, 9038, 2501, 263, 931]
    logits = model(torch.tensor([ids]))[0]
    assert int(logits.argmax()) == 29892
    assert abs(float(logits.double().sum()) - -280656.049) < 1.0
    out = greedy(model, ids, 9)
    text = b"".join(tok.decode(p, t) for p, t in zip(out[4:], out[5:])).decode()
    assert text.startswith(", there was a little girl named Lily"), text


def test_the_processor_decodes_with_the_principle(model_and_tokenizer):
    model, tok = model_and_tokenizer
    plain = tok.encode("Once upon a time")
    guide = tok.encode("The story is about a dragon. Once upon a time")

    def principle_scores(ids):
        return model(torch.cat([torch.tensor([guide]), ids[:, len(plain):]], 1))

    base = greedy(model, plain, 6)
    # ratio −1: η = 0, ℓ* is the base log-softmax, the same greedy tokens.
    same = linalign.LinearAlignmentLogitsProcessor(principle_scores, ratio=-1.0)
    assert greedy(model, plain, 6, same) == base
    la = linalign.LinearAlignmentLogitsProcessor(principle_scores, ratio=2.0)
    aligned = greedy(model, plain, 6, la)
    assert float(la.last_diagnostics["eta"][0]) == 3.0
    assert float(la.last_diagnostics["kl_base"][0]) > 0.0
    assert aligned != base  # the principle moved the story


def test_the_example_runs(capsys):
    story.main(["--steps", "5", "--principle", "The story is about a dragon."])
    out = capsys.readouterr().out
    assert "== base ==" in out and "== Linear Alignment (ratio 2) ==" in out
    assert "eta per step: 3.00 3.00 3.00 3.00 3.00" in out
