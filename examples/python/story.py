#!/usr/bin/env python3
"""A real language model follows a principle, in Python: Karpathy's
stories15M (scripts/fetch_model.sh) in plain torch, decoded with and without
linalign.LinearAlignmentLogitsProcessor — the Hugging Face transformers
calling convention, processor(input_ids, scores) -> scores, so the same
object goes into `model.generate(..., logits_processor=LogitsProcessorList([p]))`.

The processor's principle scores come from the same model run on the
principle followed by the story so far. Printed: the base and the aligned
stories, each step's η and KL(π*‖π), and tokens/s.

usage: story.py [--model-dir DIR] [--prompt TEXT] [--principle TEXT]
                [--steps N] [--ratio R] [--seed S]
"""
import argparse
import os
import struct
import sys
import time

import numpy as np
import torch

import linalign

BOS, EOS = 1, 2


def default_model_dir():
    """Where scripts/fetch_model.sh puts the model (as examples/story/llama2.hpp)."""
    if os.environ.get("LINALIGN_MODEL_DIR"):
        return os.environ["LINALIGN_MODEL_DIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "linalign", "stories15M")


class Llama2:
    """The llama2.c legacy checkpoint (examples/story/llama2.hpp documents the
    layout): a forward pass over whole sequences, returning the last
    position's logits — no KV cache, enough for a 15M-parameter model."""

    def __init__(self, path):
        with open(path, "rb") as f:
            head = struct.unpack("7i", f.read(28))
        self.dim, self.hidden, self.layers, self.heads, self.kv_heads, vocab, self.seq_len = head
        self.vocab, shared = abs(vocab), vocab > 0
        w = torch.from_numpy(np.fromfile(path, dtype=np.float32, offset=28))
        at = 0

        def take(*shape):
            nonlocal at
            n = int(np.prod(shape))
            t = w[at:at + n].view(*shape)
            at += n
            return t

        D, H, L, kv = self.dim, self.hidden, self.layers, self.dim * self.kv_heads // self.heads
        self.emb = take(self.vocab, D)
        self.rms_att, self.wq, self.wk = take(L, D), take(L, D, D), take(L, kv, D)
        self.wv, self.wo, self.rms_ffn = take(L, kv, D), take(L, D, D), take(L, D)
        self.w1, self.w2, self.w3 = take(L, H, D), take(L, D, H), take(L, H, D)
        self.rms_final = take(D)
        at += self.seq_len * (D // self.heads)  # the legacy RoPE tables: computed instead
        self.wcls = self.emb if shared else take(self.vocab, D)

    @staticmethod
    def _rmsnorm(x, w):
        return w * (x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5))

    def _rope(self, x):  # x [B, T, heads, hs]: rotate adjacent pairs, as llama2.c
        B, T, nh, hs = x.shape
        freq = 1.0 / (10000.0 ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs))
        ang = torch.arange(T, dtype=torch.float32)[:, None] * freq[None, :]
        cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], -1).flatten(-2)

    @torch.no_grad()
    def __call__(self, ids):
        """ids [B, T] (torch.long) -> next-token logits [B, V] (float32)."""
        B, T = ids.shape
        hs, kvh = self.dim // self.heads, self.kv_heads
        x = self.emb[ids]
        mask = torch.full((T, T), float("-inf")).triu(1)
        for l in range(self.layers):
            h = self._rmsnorm(x, self.rms_att[l])
            q = self._rope((h @ self.wq[l].T).view(B, T, self.heads, hs))
            k = self._rope((h @ self.wk[l].T).view(B, T, kvh, hs))
            v = (h @ self.wv[l].T).view(B, T, kvh, hs)
            rep = self.heads // kvh
            k, v = k.repeat_interleave(rep, 2), v.repeat_interleave(rep, 2)
            att = torch.einsum("bthd,bshd->bhts", q, k) / hs ** 0.5 + mask
            o = torch.einsum("bhts,bshd->bthd", att.softmax(-1), v).reshape(B, T, self.dim)
            x = x + o @ self.wo[l].T
            h = self._rmsnorm(x, self.rms_ffn[l])
            x = x + (torch.nn.functional.silu(h @ self.w1[l].T) * (h @ self.w3[l].T)) @ self.w2[l].T
        return self._rmsnorm(x[:, -1], self.rms_final) @ self.wcls.T


class Tokenizer:
    """llama2.c's BPE tokenizer (examples/story/llama2.hpp)."""

    def __init__(self, path, vocab):
        with open(path, "rb") as f:
            b = f.read()
        at, self.pieces, self.scores = 4, [], []
        for _ in range(vocab):
            score, n = struct.unpack_from("fi", b, at)
            self.pieces.append(b[at + 8:at + 8 + n])
            self.scores.append(score)
            at += 8 + n
        self.ids = {p: i for i, p in enumerate(self.pieces)}

    def encode(self, text):
        t = [BOS, self.ids[b" "]]
        for ch in text:
            u = ch.encode()
            t += [self.ids[u]] if u in self.ids else [3 + c for c in u]
        while True:  # the best-scoring merge, until none applies
            best = None
            for i in range(1, len(t) - 1):
                j = self.ids.get(self.pieces[t[i]] + self.pieces[t[i + 1]])
                if j is not None and (best is None or self.scores[j] > self.scores[best[0]]):
                    best = (j, i)
            if best is None:
                return t
            t[best[1]:best[1] + 2] = [best[0]]

    def decode(self, prev, token):
        p = self.pieces[token]
        if prev == BOS and p.startswith(b" "):
            p = p[1:]
        if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
            p = bytes([int(p[3:5], 16)])
        return p


def decode(model, prompt_ids, steps, seed, processor=None):
    """Samples `steps` tokens; `processor(input_ids, scores)` as in transformers."""
    ids = torch.tensor([prompt_ids])
    g = torch.Generator().manual_seed(seed)
    out, etas, kls = [], [], []
    for _ in range(steps):
        scores = model(ids)
        if processor is not None:
            scores = processor(ids, scores)
            d = processor.last_diagnostics
            etas.append(float(d["eta"][0]))
            kls.append(float(d["kl_base"][0]))
        token = int(torch.multinomial(scores.softmax(-1), 1, generator=g)[0, 0])
        if token in (BOS, EOS):
            break
        out.append(token)
        ids = torch.cat([ids, torch.tensor([[token]])], 1)
    return out, etas, kls


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", default=default_model_dir())
    ap.add_argument("--prompt", default="Once upon a time")
    ap.add_argument("--principle", default="The story is sad.")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--ratio", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    model = Llama2(os.path.join(a.model_dir, "stories15M.bin"))
    tok = Tokenizer(os.path.join(a.model_dir, "tokenizer.bin"), model.vocab)
    plain = tok.encode(a.prompt)
    guide = tok.encode(a.principle + " " + a.prompt)
    if len(guide) + a.steps > model.seq_len:
        sys.exit(f"--steps: the principle, the prompt and the story exceed {model.seq_len} positions")
    # The principle context: the principle and the prompt, then the story so far.
    def principle_scores(input_ids):
        prefix = torch.tensor([guide]).expand(input_ids.shape[0], -1)
        return model(torch.cat([prefix, input_ids[:, len(plain):]], 1))

    la = linalign.LinearAlignmentLogitsProcessor(principle_scores, ratio=a.ratio)
    print(f'prompt: "{a.prompt}"   principle: "{a.principle}"   seed {a.seed}\n')
    for name, proc in (("base", None), (f"Linear Alignment (ratio {a.ratio:g})", la)):
        t0 = time.perf_counter()
        toks, etas, kls = decode(model, plain, a.steps, a.seed, proc)
        secs = time.perf_counter() - t0
        text = b"".join(tok.decode(p, t) for p, t in zip([plain[-1]] + toks, toks))
        print(f"== {name} ==\n{a.prompt}{text.decode(errors='replace')}")
        if etas:
            print("eta per step:", " ".join(f"{e:.2f}" for e in etas))
            print("KL(pi*|pi) per step:", " ".join(f"{k:.3f}" for k in kls))
        print(f"{len(toks)} tokens in {secs:.2f} s: {len(toks) / secs:.1f} tokens/s\n")


if __name__ == "__main__":
    main()
