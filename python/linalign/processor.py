"""A dual-context logits processor in the Hugging Face transformers calling
convention: processor(input_ids, scores) -> scores."""


class LinearAlignmentLogitsProcessor:
    """Replaces the next-token scores of the plain context by the aligned
    log-probs ℓ* (SPEC §2), the principle context's scores coming from
    `principle_scores(input_ids) -> [B, V]` (typically the same model run on
    the prompt with the principle prepended, with its own KV cache).

    Use it as one of `model.generate(..., logits_processor=[...])`'s
    processors; put temperature / top-p warpers after it (they act on ℓ*,
    which is a log-distribution: softmax(ℓ*) = π*).
    """

    def __init__(self, principle_scores, *, rule="fixed", ratio=2.0, epsilon=0.1, eta_max=8.0,
                 temperature=1.0, update="tilt", context=None):
        self.principle_scores = principle_scores
        self.params = dict(rule=rule, ratio=ratio, epsilon=epsilon, eta_max=eta_max,
                           temperature=temperature, update=update, context=context)
        self.last_diagnostics = None

    def __call__(self, input_ids, scores):
        from . import align

        principle = self.principle_scores(input_ids)
        out, self.last_diagnostics = align(scores, principle, diagnostics=True, **self.params)
        return out if out.dtype == scores.dtype else out.to(scores.dtype)
