"""The embedding model: questions through the ONNX export, documents through PyTorch, and the
two must land in the same space (a question is matched against documents embedded the other way)."""

from __future__ import annotations

import copy
import threading

import numpy as np

from rag.embeddings import OnnxQueryEncoder

TEXTS = [
    "When is the v2.4 release?",
    "Who owns the billing_events migration dry-run?",
    "ok",
    # past the model's 256 tokens: both routes must truncate it the same way
    "Rotate the leaked staging key and invalidate every session. " * 60,
    "Ünïcödé, emoji 🚀 and `code_spans()` in one question",
]


def test_questions_take_the_onnx_route_and_agree_with_pytorch(embedder):
    assert embedder.warm_query_encoder() == "onnx"
    assert isinstance(embedder._onnx, OnnxQueryEncoder)
    by_torch = embedder.encode(TEXTS)
    by_onnx = np.stack([embedder.encode_query(t) for t in TEXTS])
    assert by_onnx.shape == (len(TEXTS), embedder.dimension)
    assert by_onnx.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(by_onnx, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(by_torch * by_onnx, axis=1)) >= 0.9999
    # and it ranks as PyTorch does: each question is nearest to itself among the others
    assert list(np.argmax(by_onnx @ by_torch.T, axis=1)) == list(range(len(TEXTS)))


def test_concurrent_questions_each_get_their_own_embedding(embedder):
    """Callers arriving together are batched (padding differs by batch): each must still get
    the vector of its own text."""
    expected = {t: embedder.encode([t])[0] for t in TEXTS}
    got: dict[int, tuple[str, np.ndarray]] = {}
    barrier = threading.Barrier(len(TEXTS) * 2)

    def ask(i: int, text: str) -> None:
        barrier.wait()
        got[i] = (text, embedder.encode_query(text))

    threads = [threading.Thread(target=ask, args=(i, TEXTS[i % len(TEXTS)]))
               for i in range(len(TEXTS) * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == len(TEXTS) * 2
    for text, vec in got.values():
        assert float(vec @ expected[text]) >= 0.9999


def test_query_encoder_torch_never_builds_the_export(embedder):
    plain = copy.copy(embedder)  # shares the loaded model: only the routing differs
    plain.route_questions("torch")
    assert plain.warm_query_encoder() == "torch"
    vec = plain.encode_query(TEXTS[0])
    assert plain._onnx is None
    assert float(vec @ embedder.encode([TEXTS[0]])[0]) >= 0.9999


def test_models_the_export_does_not_cover_stay_on_pytorch(embedder):
    class Odd(list):
        tokenizer = embedder.model.tokenizer

    odd = Odd([embedder.model[0]])  # a transformer without pooling: not the supported layout
    assert OnnxQueryEncoder.build(odd, 256) is None


def test_questions_asked_while_the_export_is_built_are_answered_by_pytorch(embedder):
    fresh = copy.copy(embedder)  # the same model, its question route not built yet
    fresh.route_questions("auto")
    assert fresh._onnx is None
    expected = embedder.encode([TEXTS[1]])[0]
    warm = threading.Thread(target=fresh.warm_query_encoder)
    warm.start()
    answered = []
    while warm.is_alive() or not answered:
        answered.append(float(fresh.encode_query(TEXTS[1]) @ expected))
    warm.join()
    assert fresh._onnx is not None and fresh._onnx_state == "on"
    answered.append(float(fresh.encode_query(TEXTS[1]) @ expected))  # now through ONNX
    assert min(answered) >= 0.9999
